"""The migrations build exactly the schema the ORM tables describe, on a real SQLite file
and a real PostgreSQL database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pier.store.database import alembic_config, create_store_engine, migrate
from pier.store.tables import Base


def test_migrations_match_the_tables(store_url: str) -> None:
    engine = create_store_engine(store_url)
    try:
        migrate(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_migrating_twice_changes_nothing(store_url: str) -> None:
    engine = create_store_engine(store_url)
    try:
        migrate(engine)
        migrate(engine)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() is not None
    finally:
        engine.dispose()


def test_nodes_made_before_runtimes_were_stored_are_bound_by_their_spec(store_url: str) -> None:
    """Image nodes are bound to docker, model nodes to local: never a guess at start-up."""
    from alembic import command
    from sqlalchemy import text

    engine = create_store_engine(store_url)
    try:
        config = alembic_config(str(engine.url))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
            connection.execute(text("INSERT INTO projects VALUES ('default', '2026-01-01')"))
            for name, spec in (("web", '{"image": "echo:1"}'), ("iris", '{"model": "iris"}')):
                connection.execute(
                    text(
                        "INSERT INTO nodes (project, name, spec, generation, deleting, "
                        "reached_minimum, crash_looping, created_at, updated_at) VALUES "
                        "('default', :name, :spec, 1, false, false, false, "
                        "'2026-01-01', '2026-01-01')"
                    ),
                    {"name": name, "spec": spec},
                )
        migrate(engine)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT name, runtime FROM nodes ORDER BY name"))
            assert rows.all() == [("iris", "local"), ("web", "docker")]
    finally:
        engine.dispose()
