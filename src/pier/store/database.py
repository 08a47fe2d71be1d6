"""Engine creation and migrations: SQLite in WAL mode by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, func, make_url, select

from pier.settings import StoreSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

POSTGRESQL_DRIVER = "postgresql+psycopg"
"""The one PostgreSQL driver pier ships (psycopg 3); ``postgresql://`` URLs get it."""


def create_store_engine(url: str | URL, settings: StoreSettings | None = None) -> Engine:
    """An engine for ``url``: SQLite gets WAL, a busy timeout and foreign keys; PostgreSQL
    a pool of checked connections, a connect timeout and a lock timeout.

    ``hide_parameters``: SQLAlchemy's errors quote the statement's bound values otherwise,
    and those are secret values, registry credentials and token digests."""
    settings = settings or StoreSettings()
    parsed = store_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": settings.busy_timeout_s},
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return _postgresql_engine(parsed, settings)
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)


def store_url(url: str | URL) -> URL:
    """``url`` parsed; a PostgreSQL URL without a driver (or ``postgres://``) gets psycopg."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=POSTGRESQL_DRIVER)
    return parsed


def _postgresql_engine(url: URL, settings: StoreSettings) -> Engine:
    """``pool_pre_ping``: a connection the server dropped (a restart, a failover) is
    replaced before use instead of failing the call. ``lock_timeout``: a write waiting on
    another's row lock fails as SQLite's busy timeout does, as 503 store_unavailable."""
    lock_timeout_ms = max(1, round(settings.busy_timeout_s * 1000))
    return create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_timeout=settings.pool_timeout_s,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={
            "connect_timeout": settings.connect_timeout_s,
            "application_name": "pier",
            "options": f"-c lock_timeout={lock_timeout_ms} -c TimeZone=UTC",
        },
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(url: str) -> Any:
    from alembic.config import Config  # imported when migrating, not on every CLI start

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # configparser interpolates "%": a URL-quoted password or socket path must not break it
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


MIGRATION_LOCK_KEY = 0x70696D67  # "pimg"
"""The PostgreSQL advisory lock held while migrating: two `pier up` starting at once on
one database (a leader and its standby) migrate it one after the other."""


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent). On PostgreSQL, one process at
    a time: another's migration is waited for however long it takes (its lock goes with
    its connection if it dies), the statements' own lock timeout holding after that."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=True))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            timeout = connection.exec_driver_sql("SHOW lock_timeout").scalar_one()
            connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            connection.execute(select(func.set_config("lock_timeout", timeout, True)))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
