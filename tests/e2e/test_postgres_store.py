"""`pier up --database-url postgresql+psycopg://...`: a real pier on a real PostgreSQL
server keeps everything there (no SQLite file), brings a node to Healthy and, killed and
started again, adopts its instances from the store without making any twice."""

from __future__ import annotations

import signal
from collections.abc import Callable

from sqlalchemy import func, select

from pier.store.database import create_store_engine
from pier.store.tables import InstanceRow
from tests.conftest import IrisModel, PierProcess
from tests.e2e.loop_ticks import wait_for_ticks
from tests.e2e.test_model_node_end_to_end import push_and_create

START_S = 90.0
"""`pier up` takes ~25 s to start on this 2-core machine under a full suite's load."""


def stored_instances(url: str) -> int:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(InstanceRow)) or 0)
    finally:
        engine.dispose()


def test_pier_on_postgresql_adopts_its_instances_after_a_kill(
    pier_factory: Callable[..., PierProcess], postgres_url: str, iris_onnx: IrisModel
) -> None:
    pier = pier_factory(args=["--database-url", postgres_url], start=False)
    pier.start(START_S)
    push_and_create(pier, iris_onnx)
    assert pier.node("iris")["status"] == "Healthy"
    assert not (pier.data_dir / "pier.db").exists()
    before = sorted(i["id"] for i in pier.instances("iris"))
    pids = sorted(pier.instance_pids())
    pier.stop(signal.SIGKILL)
    pier.start(START_S)
    assert "adopted 2 instances of 1 node, removed 0" in pier.output()
    pier.wait_for(lambda: pier.serving("iris"), what="node iris served after the restart")
    wait_for_ticks(pier, "--model", "iris", ticks=1)  # a whole tick: it made no instance
    assert sorted(i["id"] for i in pier.instances("iris")) == before
    assert sorted(pier.instance_pids()) == pids
    assert stored_instances(postgres_url) == 2
