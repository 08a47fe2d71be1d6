"""The controller's typed view of the gateway's alias and mirror figures, read from the
gateway's own Prometheus text."""

from __future__ import annotations

import pytest

from pier.controller.gateway_view import AliasNodeKey, LatencyHistogram, parse_alias_figures
from pier.domain.names import AliasName, NodeName, ProjectName
from pier.gateway.metrics import GatewayMetrics

KEY = AliasNodeKey(ProjectName("p"), AliasName("prod"), NodeName("v2"))


def _worker(latencies: list[float], errors: int) -> GatewayMetrics:
    metrics = GatewayMetrics()
    stats = metrics.alias("p", "prod", "v2")
    for latency in latencies:
        stats.record(200, latency)
    for _ in range(errors):
        stats.record(503, None)
    mirror = metrics.mirror("p", "prod", "v3")
    mirror.answered(200, 0.004)
    mirror.answered(500, 0.02)
    mirror.count_dropped()
    mirror.compared(True, 0.0)
    mirror.compared(False, 0.25)
    return metrics


def test_figures_of_two_workers_add_up_and_give_quantiles() -> None:
    one = parse_alias_figures(_worker([0.003] * 90, errors=2).render().decode())
    two = parse_alias_figures(_worker([0.2] * 10, errors=0).render().decode())
    both = one.plus(two)
    figures = both.aliases[KEY]
    assert figures.requests == {"2xx": 100, "5xx": 2}
    assert figures.error_rate == pytest.approx(2 / 102)
    assert figures.latency.count == 100
    assert 0.1 < figures.p95_s <= 0.25  # type: ignore[operator]  # the slow tenth
    assert 0.0025 < figures.latency.quantile(0.5) <= 0.005  # type: ignore[operator]
    mirror = both.mirrors[AliasNodeKey(ProjectName("p"), AliasName("prod"), NodeName("v3"))]
    assert (mirror.mirrored, mirror.sent, mirror.errors, mirror.dropped) == (4, 2, 2, 2)
    assert mirror.equal_share == 0.5
    assert mirror.max_abs_difference == 0.25
    assert mirror.p50_s is not None and mirror.p95_s is not None


def test_a_window_is_the_later_figures_minus_the_earlier() -> None:
    metrics = _worker([0.003] * 10, errors=0)
    earlier = parse_alias_figures(metrics.render().decode()).aliases[KEY]
    stats = metrics.alias("p", "prod", "v2")
    for _ in range(5):
        stats.record(500, 0.5)
    later = parse_alias_figures(metrics.render().decode()).aliases[KEY]
    window = later.minus(earlier)
    assert window.requests == {"2xx": 0, "5xx": 5}
    assert window.error_rate == 1.0
    assert 0.25 < window.p95_s <= 0.5  # type: ignore[operator]


def test_no_observations_have_no_quantile() -> None:
    assert LatencyHistogram().quantile(0.95) is None
