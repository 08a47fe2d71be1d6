"""Two `pier up` starting at once on one new PostgreSQL database (a standby and its
leader, started together): both migrate it, one after the other, and neither fails."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import inspect

from pier.store.database import create_store_engine, migrate
from tests.postgres import PostgresServer


def test_two_processes_migrating_a_new_database_at_once_both_succeed(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.database(migrated=False)
    engines = [create_store_engine(url) for _ in range(2)]
    start = threading.Barrier(2)

    def run(n: int) -> None:
        start.wait()
        migrate(engines[n])

    try:
        with ThreadPoolExecutor(2) as pool:
            for done in [pool.submit(run, n) for n in range(2)]:
                done.result()
        assert "leases" in inspect(engines[0]).get_table_names()
    finally:
        for engine in engines:
            engine.dispose()
        postgres_server.drop(url)
