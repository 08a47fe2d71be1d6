"""pier's own series on a real `pier up`: after requests to a node, /series answers
requests/s and a p95 from the gateway's buckets, and `pier node top --once` shows them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.conftest import IrisModel, PierProcess
from tests.e2e.load import Load

FAST_SAMPLING = {"PIER_SERIES__SAMPLE_S": "0.5"}


def series(pier: PierProcess, metric: str) -> list[dict[str, Any]]:
    with pier.api() as api:
        answer = api.get(
            "/api/v1/projects/default/nodes/iris/series",
            params={"metric": metric, "since": 120},
        )
    assert answer.status_code == 200, answer.text
    return [p for line in answer.json()["series"] for p in line["points"]]


def has_value(pier: PierProcess, metric: str) -> Callable[[], bool]:
    return lambda: any((p["value"] or 0) > 0 for p in series(pier, metric))


def test_series_and_top_show_a_nodes_load(
    pier_factory: Callable[..., PierProcess], iris_onnx: IrisModel
) -> None:
    pier = pier_factory(env=FAST_SAMPLING)
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
    pier.cli("node", "create", "iris", "--model", "iris", "--wait")
    with Load(pier, clients=2, path="/default/nodes/iris/v2/health/ready") as load:
        pier.wait_for(has_value(pier, "requests_per_s"), timeout_s=20, what="requests/s > 0")
        pier.wait_for(has_value(pier, "p95"), timeout_s=20, what="a p95")
        shown = pier.cli("node", "top", "iris", "--once").stdout
        figures = pier.cli_json("node", "top", "iris", "--once")
    assert load.statuses and set(load.statuses) == {200}
    assert "REQ/S" in shown and "P95 ms" in shown
    assert figures["node"]["requests_per_s"] > 0 and figures["node"]["p95"] > 0
    assert figures["node"]["instances_healthy"] == 1
    instances = [row for row in figures if row != "node"]
    assert instances and figures[instances[0]]["memory_bytes"] > 0


def test_series_names_a_bad_parameter(pier: PierProcess) -> None:
    """Parameters are checked before the node is looked up."""
    with pier.api() as api:
        answer = api.get(
            "/api/v1/projects/default/nodes/web/series", params={"metric": "bogus", "since": 60}
        )
    assert answer.status_code == 422
    assert "metric" in answer.text
