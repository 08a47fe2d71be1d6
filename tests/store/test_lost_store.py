"""A store that does not answer makes calls fail with StoreUnavailable, named by the
database's reason and never by the URL's password; a PostgreSQL connection the server
dropped (a restart) is replaced before the next call instead of failing it."""

from __future__ import annotations

import pytest
from sqlalchemy import make_url, text

from pier.domain.errors import StoreUnavailable
from pier.settings import StoreSettings
from pier.store.database import create_store_engine, migrate
from pier.store.repository import Repository

PASSWORD = "pg-password-c0ffee"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent/dir/pier.db",
        f"postgresql+psycopg://pier:{PASSWORD}@/pier?host=/nonexistent/socket",
        f"postgresql://pier:{PASSWORD}@127.0.0.1:1/pier",
    ],
    ids=["sqlite", "postgresql-socket", "postgresql-tcp"],
)
def test_a_store_that_does_not_answer_is_store_unavailable(url: str) -> None:
    engine = create_store_engine(url, StoreSettings(connect_timeout_s=1, pool_timeout_s=1))
    try:
        with pytest.raises(StoreUnavailable) as caught:
            Repository(engine).list_nodes()
    finally:
        engine.dispose()
    assert caught.value.message and PASSWORD not in caught.value.message


def test_a_connection_the_server_dropped_is_replaced(postgres_url: str) -> None:
    engine = create_store_engine(postgres_url)
    admin = create_store_engine(make_url(postgres_url).set(database="postgres"))
    try:
        migrate(engine)
        repo = Repository(engine)
        repo.add_project("kept")
        with engine.connect() as connection:  # back in the pool after, as if idle
            pid = connection.scalar(text("SELECT pg_backend_pid()"))
        with admin.connect() as connection:
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert "kept" in [name for name, _ in repo.list_projects()]
    finally:
        engine.dispose()
        admin.dispose()
