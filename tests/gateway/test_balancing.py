"""Instance choice and retries: spread over instances, refused connections retried."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from gateway_processes import (
    Gateway,
    Upstream,
    accepts,
    node,
    start_upstream,
    stop,
    table,
    wait_until,
)


def test_requests_spread_over_both_instances(gateway: Gateway) -> None:
    with gateway.client() as client:
        seen = Counter(client.get("/default/nodes/echo/x").json()["instance"] for _ in range(60))
    assert set(seen) == {"a", "b"}
    assert min(seen.values()) >= 10  # ties between idle instances break at random


def test_refused_connection_is_retried_on_another_instance(
    gateway: Gateway, upstreams: dict[str, Upstream]
) -> None:
    with gateway.client() as client:
        responses = [client.post("/default/nodes/flaky/infer", content=b"{}") for _ in range(20)]
    assert [r.status_code for r in responses] == [200] * 20
    assert {r.headers["x-pier-instance"] for r in responses} == {"flaky-1"}


def test_all_instances_refusing_is_502_connect_failed(
    gateway_factory: Callable[..., Gateway], dead_endpoint: str
) -> None:

    own = gateway_factory(table(node("down", dead_endpoint)))
    with own.client() as client:
        response = client.get("/default/nodes/down/x")
    assert response.status_code == 502
    error = response.json()
    assert error["code"] == "upstream_connect_failed"
    assert error["node"] == "down"


def test_instance_dropping_the_connection_is_502_disconnected(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get("/default/nodes/flaky/drop")
        after = client.get("/default/nodes/flaky/x")
    assert response.status_code == 502
    assert response.json()["code"] == "upstream_disconnected"
    assert after.status_code == 200


def test_killing_an_instance_mid_traffic_fails_only_requests_it_had(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream], tmp_path: Path
) -> None:
    doomed = start_upstream("doomed", tmp_path)
    try:
        wait_until(lambda: accepts(doomed.port), what="doomed instance")
        own = gateway_factory(table(node("pair", doomed.endpoint, upstreams["a"].endpoint)))

        def call(seconds: float) -> tuple[int, str]:
            with own.client() as client:
                response = client.get(f"/default/nodes/pair/sleep?s={seconds}")
            code = response.json().get("code", "") if response.is_error else ""
            return response.status_code, code

        def doomed_has_requests() -> bool:
            with httpx.Client() as direct:
                return bool(direct.get(f"{doomed.endpoint}/count").json()["count"] > 0)

        with ThreadPoolExecutor(8) as pool:
            during = pool.map(call, [2.0] * 8)
            wait_until(doomed_has_requests, what="requests in flight to the doomed instance")
            doomed.process.kill()
            results = list(during)
        after = [call(0) for _ in range(10)]
    finally:
        stop(doomed.process)
    codes = {code for status, code in results if status != 200}
    assert codes == {"upstream_disconnected"}  # the doomed instance had some of the 8
    assert after == [(200, "")] * 10
