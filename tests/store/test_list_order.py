"""Lists come in the same order on every store: names compared byte by byte, as SQLite
does, also on a PostgreSQL database whose collation is a language's (en-US)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pier.domain.specs import ModelFormat, parse_node_spec
from pier.store.database import create_store_engine, migrate
from pier.store.repository import Repository
from tests.postgres import PostgresServer

NODES = ["ab", "a-c", "a1", "b", "a"]
MODELS = ["ab", "B", "a-c", "_x", "a1", "A.b"]


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-en-us"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'pier.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.database(icu_locale="en-US" if request.param.endswith("en-us") else None)
    engine = create_store_engine(url)
    migrate(engine)
    repository = Repository(engine)
    repository.ensure_default_project()
    yield repository
    engine.dispose()
    if request.param != "sqlite":
        server.drop(url)


def test_nodes_and_models_are_listed_in_byte_order(repo: Repository) -> None:
    for name in NODES:
        repo.add_node("default", name, parse_node_spec({"image": "echo:1", "port": 80}),
                      runtime="docker")  # fmt: skip
    for name in MODELS:
        repo.add_model("default", name, fmt=ModelFormat.ONNX, sha256="0" * 64, size_bytes=1,
                       metadata={})  # fmt: skip
    assert [n.name for n in repo.list_nodes()] == sorted(NODES)
    assert [m.name for m in repo.list_models("default")] == sorted(MODELS)
