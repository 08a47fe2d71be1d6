"""pier's own series on a real `pier up`: after requests to a node, /series answers
requests/s and a p95 from the gateway's buckets, and `pier node top --once` shows them;
requests through an alias give the alias's series (its own line and its node's); bytes
per node and instance and the model server's inferences, queue and compute time per
instance are sampled; the control plane's /metrics shows the same traffic labelled by
project, node, alias and instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from pier import Client
from tests.conftest import IrisModel, PierProcess
from tests.e2e.load import Load

FAST_SAMPLING = {"PIER_SERIES__SAMPLE_S": "0.5"}


def lines(pier: PierProcess, metric: str, of: str = "nodes/iris") -> list[dict[str, Any]]:
    with pier.api() as api:
        answer = api.get(
            f"/api/v1/projects/default/{of}/series", params={"metric": metric, "since": 120}
        )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["series"]
    return found


def series(pier: PierProcess, metric: str, of: str = "nodes/iris") -> list[dict[str, Any]]:
    return [p for line in lines(pier, metric, of) for p in line["points"]]


def has_value(pier: PierProcess, metric: str, of: str = "nodes/iris") -> Callable[[], bool]:
    return lambda: any((p["value"] or 0) > 0 for p in series(pier, metric, of))


def valued_lines(pier: PierProcess, metric: str, of: str = "nodes/iris") -> set[str | None]:
    """Which lines (by instance, or by node for an alias) have a value above zero."""
    return {
        line.get("node") or line["instance"]
        for line in lines(pier, metric, of)
        if any((p["value"] or 0) > 0 for p in line["points"])
    }


def test_series_and_top_show_a_nodes_load(
    pier_factory: Callable[..., PierProcess], iris_onnx: IrisModel
) -> None:
    pier = pier_factory(env=FAST_SAMPLING)
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
    pier.cli("node", "create", "iris", "--model", "iris", "--wait")
    pier.cli("alias", "create", "pub", "--node", "iris")

    def alias_answers() -> bool:
        with pier.gateway() as gateway:
            return gateway.get("/default/aliases/pub/v2/health/ready").status_code == 200

    pier.wait_for(alias_answers, what="the alias routed at the gateway")
    with Load(pier, clients=2, path="/default/aliases/pub/v2/health/ready") as load:
        pier.wait_for(has_value(pier, "requests_per_s"), timeout_s=20, what="requests/s > 0")
        pier.wait_for(has_value(pier, "p95"), timeout_s=20, what="a p95")
        shown = pier.cli("node", "top", "iris", "--once").stdout
        figures = pier.cli_json("node", "top", "iris", "--once")
        pier.wait_for(
            lambda: valued_lines(pier, "requests_per_s", "aliases/pub") == {None, "iris"},
            timeout_s=20, what="the alias's requests/s, its own and its node's",
        )  # fmt: skip
        with pier.api() as api:  # while the load goes on: its requests are in flight
            control_metrics = api.get("/metrics").text
    assert load.statuses and set(load.statuses) == {200}
    with Client(pier.url, pier.token) as sdk:  # the SDK reads the same lines
        p95 = sdk.alias_series("pub", "p95", since=120)
    assert {line.node for line in p95.series} == {None, "iris"}
    assert any(p.value for line in p95.series for p in line.points)
    assert has_value(pier, "bytes_out_per_s", "aliases/pub")()
    (instance,) = valued_lines(pier, "memory_bytes")
    assert valued_lines(pier, "bytes_out_per_s") == {None, instance}
    assert valued_lines(pier, "bytes_in_per_s") == {None, instance}
    with pier.api() as api:
        wrong = api.get(
            "/api/v1/projects/default/aliases/pub/series", params={"metric": "cpu_percent"}
        )
    assert wrong.status_code == 422 and "metric" in wrong.text
    for name in (
        'pier_node_requests_total{code="2xx",node="iris",project="default"}',
        'pier_node_request_duration_seconds_bucket{le="+Inf",node="iris",project="default"}',
        'pier_node_bytes_total{direction="out",node="iris",project="default"}',
        'pier_node_in_flight_requests{node="iris",project="default"}',
        'pier_alias_requests_total{alias="pub",code="2xx",node="iris",project="default"}',
        f'pier_instance_bytes_total{{direction="in",instance="{instance}",node="iris"',
        f'pier_instance_memory_bytes{{instance="{instance}",node="iris",project="default"}}',
    ):
        assert name in control_metrics, name
    assert pier.token not in control_metrics
    assert "REQ/S" in shown and "P95 ms" in shown
    assert figures["node"]["requests_per_s"] > 0 and figures["node"]["p95"] > 0
    assert figures["node"]["instances_healthy"] == 1
    instances = [row for row in figures if row != "node"]
    assert instances and figures[instances[0]]["memory_bytes"] > 0
    auth = {"authorization": f"Bearer {pier.token}"}
    with httpx.Client(base_url=pier.gateway_url, headers=auth, trust_env=False) as gateway:
        for _ in range(4):
            answer = gateway.post("/default/nodes/iris/v2/models/iris/infer",
                                  json=iris_onnx.infer_request())  # fmt: skip
            assert answer.status_code == 200, answer.text
    pier.wait_for(lambda: valued_lines(pier, "inferences_per_s") == {instance}, timeout_s=20,
                  what="the model server's inferences/s")  # fmt: skip
    assert valued_lines(pier, "compute_s") == {instance}
    assert valued_lines(pier, "queue_s") <= {instance}  # no wait at all is 0


def test_series_names_a_bad_parameter(pier: PierProcess) -> None:
    """Parameters are checked before the node is looked up."""
    with pier.api() as api:
        answer = api.get(
            "/api/v1/projects/default/nodes/web/series", params={"metric": "bogus", "since": 60}
        )
    assert answer.status_code == 422
    assert "metric" in answer.text
