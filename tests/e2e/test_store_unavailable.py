"""A store that takes no writes: the API answers 503 store_unavailable and recovers,
no secret or token reaches any log or event, and stopping still stops everything."""

from __future__ import annotations

import contextlib
import secrets
import signal
import sqlite3
from collections.abc import Callable, Iterator

import psutil

from tests.conftest import IrisModel, PierProcess, sqlite_only
from tests.e2e.test_model_node_end_to_end import push_and_create

pytestmark = sqlite_only  # the store is locked through SQLite's own lock

SHORT_BUSY_TIMEOUT = {"PIER_STORE__BUSY_TIMEOUT_S": "0.3"}


@contextlib.contextmanager
def store_locked(pier: PierProcess) -> Iterator[None]:
    """Hold the SQLite store's write lock from another connection (longer than pier's
    busy timeout): every write of pier fails meanwhile, reads go on (WAL)."""
    holder = sqlite3.connect(pier.data_dir / "pier.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_locked_store_answers_503_then_serves_again_and_no_secret_is_logged(
    pier_factory: Callable[..., PierProcess],
) -> None:
    pier = pier_factory(env=SHORT_BUSY_TIMEOUT)
    value = f"canary-{secrets.token_hex(8)}"
    put = ("/api/v1/projects/default/secrets/registry", {"value": {"password": value}})
    with pier.api() as api:
        with store_locked(pier):
            refused = api.put(put[0], json=put[1])
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "store_unavailable"
        assert refused.headers["Retry-After"] == "1"
        assert api.put(put[0], json=put[1]).status_code == 200  # pier kept running
    pier.stop(signal.SIGTERM)
    written = pier.log_path.read_text() + (pier.data_dir / "logs" / "gateway.log").read_text()
    with contextlib.closing(sqlite3.connect(pier.data_dir / "pier.db")) as db:
        events = " ".join(row[0] for row in db.execute("SELECT message FROM events"))
    for leak in (value, pier.token):
        assert leak not in written
        assert leak not in events


def test_sigterm_while_the_store_is_locked_stops_instances_and_gateway(
    pier_factory: Callable[..., PierProcess], iris_onnx: IrisModel
) -> None:
    pier = pier_factory(env=SHORT_BUSY_TIMEOUT)
    push_and_create(pier, iris_onnx, instances=1)
    started = [*pier.instance_pids(), pier.gateway_pid()]
    with store_locked(pier):
        pier.stop(signal.SIGTERM)
    assert [pid for pid in started if not is_gone(pid)] == [], pier.output()
    assert "nothing left running" in pier.output()
