"""Two pier processes writing to one store at once (two engines, two connection pools):
no update is lost, no instance or model version is stored twice, and neither writer gets
an error for the other's write. On SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from pier.domain.errors import QuotaExceeded
from pier.domain.instance_status import InstanceStatus
from pier.domain.quotas import ProjectLimits
from pier.domain.records import InstanceRecord
from pier.domain.specs import ModelFormat, parse_node_spec
from pier.services.nodes import NodeService
from pier.services.quotas import QuotaService
from pier.store.database import create_store_engine
from pier.store.repository import Repository, utcnow

WRITES = 15
"""Writes by each writer; enough that, without a lock, interleavings are near certain."""


@pytest.fixture
def writers(engine: Engine) -> Iterator[tuple[Repository, Repository]]:
    """Two repositories on the same store, each with an engine (a pool) of its own."""
    first = Repository(engine)
    first.ensure_default_project()
    first.add_node("default", "web", parse_node_spec({"image": "echo:0", "port": 80}),
                   runtime="docker")  # fmt: skip
    other = create_store_engine(engine.url.render_as_string(hide_password=False))
    yield first, Repository(other, sealer=first._sealer)
    other.dispose()


def both(writers: tuple[Repository, Repository], write: Callable[[Repository, int], None]) -> None:
    """Run ``write(repo, n)`` WRITES times in each writer at once, started together."""
    start = threading.Barrier(2)

    def run(repo: Repository, writer: int) -> None:
        start.wait()
        for i in range(WRITES):
            write(repo, writer * WRITES + i)

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(run, repo, n) for n, repo in enumerate(writers)]:
            done.result()


def test_concurrent_spec_updates_lose_no_generation(
    writers: tuple[Repository, Repository],
) -> None:
    def new_image(repo: Repository, n: int) -> None:
        repo.update_node_spec("default", "web", parse_node_spec({"image": f"echo:{n + 1}",
                                                                 "port": 80}))  # fmt: skip

    both(writers, new_image)
    assert writers[0].get_node("default", "web").generation == 1 + 2 * WRITES


def test_the_same_instance_stored_by_both_writers_is_one_row(
    writers: tuple[Repository, Repository],
) -> None:
    def store(repo: Repository, n: int) -> None:
        repo.upsert_instance(instance(f"web-{n % WRITES}", restarts=n))

    both(writers, store)
    stored = writers[1].list_instances("default", "web")
    assert sorted(i.id for i in stored) == sorted(f"web-{n}" for n in range(WRITES))


def test_model_versions_uploaded_at_once_are_numbered_once_each(
    writers: tuple[Repository, Repository],
) -> None:
    def upload(repo: Repository, n: int) -> None:
        repo.add_model("default", "iris", fmt=ModelFormat.ONNX, sha256=f"{n:064x}",
                       size_bytes=5 * 2**30, metadata={})  # fmt: skip

    both(writers, upload)
    versions = [m.version for m in writers[0].list_models("default", "iris")]
    assert versions == list(range(1, 2 * WRITES + 1))
    assert writers[0].get_model("default", "iris").size_bytes == 5 * 2**30


def test_nodes_created_at_once_never_pass_the_projects_quota(
    writers: tuple[Repository, Repository],
) -> None:
    QuotaService(writers[0]).set("default", ProjectLimits(max_instances=WRITES))
    refused: list[QuotaExceeded] = []

    def create(repo: Repository, n: int) -> None:
        try:
            NodeService(repo).create("default", f"n{n}", {"image": "echo:0", "port": 80},
                                     actor="admin")  # fmt: skip
        except QuotaExceeded as exc:  # anything else (a store error) fails the test
            refused.append(exc)

    both(writers, create)
    nodes = writers[0].list_nodes("default")  # "web" and the new ones, one instance each
    assert len(nodes) == WRITES and len(refused) == WRITES + 1


def instance(instance_id: str, *, restarts: int) -> InstanceRecord:
    now = utcnow()
    return InstanceRecord(
        id=instance_id, project="default", node="web", status=InstanceStatus.CREATED,
        since=now, endpoint=None, restarts=restarts, last_error=None, generation=1,
        runtime="docker", limits_applied=(), limits_not_applied=(), created_at=now,
    )  # fmt: skip
