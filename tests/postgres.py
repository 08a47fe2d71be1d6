"""A throw-away PostgreSQL server for the tests (``scripts/start-postgres.sh``: started
once a session) and a fresh database per test, made from a template (fast)."""

from __future__ import annotations

import atexit
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import URL, Engine, text

from pier.store.database import create_store_engine, migrate, store_url

SCRIPT = Path(__file__).parent.parent / "scripts" / "start-postgres.sh"


@dataclass
class PostgresServer:
    """The test cluster, reached as its superuser over its unix socket."""

    url: URL
    _admin: Engine = field(init=False)
    _template: str | None = None
    _made: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._admin = create_store_engine(self.url.render_as_string(hide_password=False))

    def database(self, *, migrated: bool = False, icu_locale: str | None = None) -> str:
        """The URL of a new, empty database (``migrated``: at the newest revision;
        ``icu_locale``: text compared by that locale's rules, e.g. ``en-US``)."""
        name = f"pier_test_{uuid.uuid4().hex[:12]}"
        template = self._migrated_template() if migrated else "template0"
        collation = f" LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'" if icu_locale else ""
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{collation}')
        self._made.append(name)
        return self._url_of(name)

    def drop(self, url: str) -> None:
        name = store_url(url).database
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for name in [*self._made, self._template]:
            if name is not None:
                self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin.dispose()

    def _migrated_template(self) -> str:
        """One migrated database per session, copied for each test (other sessions on
        this machine have their own: a template must have no other connection)."""
        if self._template is None:
            name = f"pier_template_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            self._execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
            engine = create_store_engine(self._url_of(name))
            migrate(engine)
            engine.dispose()
            self._template = name
        return self._template

    def _url_of(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with self._admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(sql))


_shared: PostgresServer | None = None


def shared_postgres() -> PostgresServer:
    """The test cluster of this test process, started on first use (the session fixture
    ``postgres_server`` and the pier processes of ``PIER_TEST_STORE=postgresql`` share it);
    its databases are dropped when the process ends."""
    global _shared
    if _shared is None:
        _shared = start_postgres()
        atexit.register(_shared.close)
    return _shared


def start_postgres() -> PostgresServer:
    """Start (or find running) the test cluster; skip without it, fail under CI=true."""
    result = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=180, check=False
    )
    if result.returncode == 0:
        return PostgresServer(store_url(result.stdout.strip().splitlines()[-1]))
    problem = (result.stderr.strip().splitlines() or ["start-postgres.sh failed"])[-1]
    if os.environ.get("CI") == "true":
        pytest.fail(f"the store must be testable on PostgreSQL in CI: {problem}")
    pytest.skip(f"no PostgreSQL test server here ({problem}); run scripts/start-postgres.sh")
