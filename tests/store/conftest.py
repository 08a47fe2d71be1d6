"""The store's contract runs on every store pier supports: each test here that takes
``store_url``, ``engine`` or ``repo`` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pier.store.database import create_store_engine, migrate
from pier.store.repository import Repository
from tests.postgres import PostgresServer

STORES = ["sqlite", "postgresql"]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store of its own: a SQLite file, or a PostgreSQL database."""
    yield from _store(request, tmp_path, migrated=False)


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a migrated store of its own (PostgreSQL: a copy of a migrated
    template, which the migrations find at the newest revision)."""
    for url in _store(request, tmp_path, migrated=True):
        engine = create_store_engine(url)
        migrate(engine)
        yield engine
        engine.dispose()


def _store(request: pytest.FixtureRequest, tmp_path: Path, *, migrated: bool) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pier.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.database(migrated=migrated)
    yield url
    server.drop(url)


@pytest.fixture
def repo(engine: Engine) -> Repository:
    """A migrated store with its default project (modules add what they need by
    overriding it: ``def repo(repo: Repository)``)."""
    repository = Repository(engine)
    repository.ensure_default_project()
    return repository
