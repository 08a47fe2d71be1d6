"""The migrations build exactly the schema the ORM tables describe, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pier.store.database import create_store_engine, migrate
from pier.store.tables import Base


def test_migrations_match_the_tables(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'pier.db'}")
    try:
        migrate(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'pier.db'}")
    try:
        migrate(engine)
        migrate(engine)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() is not None
    finally:
        engine.dispose()
