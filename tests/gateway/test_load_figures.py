"""What the gateway tells the controller: the in-flight integral it scales on, and the
removed instances it still has requests in flight to (drained before they stop)."""

from __future__ import annotations

import pytest

from pier.controller.gateway_view import parse_in_flight_seconds
from pier.domain.names import NodeKey
from pier.domain.routes import RouteInstance
from pier.gateway.metrics import GatewayMetrics, NodeStats
from pier.gateway.pool import UpstreamRegistry


def test_the_gateway_integrates_requests_in_flight_over_time() -> None:
    stats = NodeStats("default", "web")
    stats.begin(0.0)
    stats.begin(1.0)
    stats.end(3.0)
    assert stats.in_flight_seconds(4.0) == pytest.approx(1 * 1 + 2 * 2 + 1 * 1)
    stats.end(4.0)
    assert stats.in_flight_seconds(100.0) == pytest.approx(6.0)


def test_the_integral_is_exported_and_read_back_by_node() -> None:
    now = [10.0]
    metrics = GatewayMetrics(clock=lambda: now[0])
    stats = metrics.node("default", "web")
    stats.begin(8.0)
    text = metrics.render().decode()
    assert 'pier_gateway_in_flight_seconds_total{node="web",project="default"} 2.0' in text
    assert parse_in_flight_seconds(text) == {NodeKey.parse("default/web"): 2.0}


def test_the_gateway_lists_removed_instances_until_their_requests_are_done() -> None:
    registry = UpstreamRegistry()
    leaving = registry.get(RouteInstance(instance_id="web-1", endpoint="http://127.0.0.1:9"))
    staying = registry.get(RouteInstance(instance_id="web-2", endpoint="http://127.0.0.1:10"))
    leaving.in_flight = 2
    registry.retire_all_but([staying])
    assert registry.draining() == {"web-1": 2}
    leaving.in_flight = 0
    assert registry.draining() == {}
