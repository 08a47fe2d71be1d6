"""The counters a guarded rollout is decided on, taken from the gateway's own Prometheus
text: the gateway's errors (a 503 refusal with no latency, a 504 after the timeout) are
errors, the histogram gives p95, and a refusal without latency does not push p95 to the
histogram's top."""

from __future__ import annotations

import pytest

from pier.controller.alias_figures import AliasFiguresBoard, traffic_counts
from pier.controller.gateway_view import parse_alias_figures
from pier.domain.rollouts import StepFigures, TrafficCounts
from pier.gateway.metrics import GatewayMetrics

KEY = ("p", "prod", "v2")


def _counts(metrics: GatewayMetrics) -> TrafficCounts:
    return traffic_counts(parse_alias_figures(metrics.render().decode()))[KEY]


def test_gateway_errors_count_as_errors_and_p95_comes_from_the_timed_requests() -> None:
    metrics = GatewayMetrics()
    stats = metrics.alias("p", "prod", "v2")
    for _ in range(90):
        stats.record(200, 0.004)
    for _ in range(8):
        stats.record(503, None)  # refused before any instance answered: no latency
    stats.record(504, 0.004)  # the gateway's timeout, timed
    stats.record(500, 0.004)  # the instance's own error
    stats.record(404, 0.004)  # a client error is no error of the node
    counts = _counts(metrics)
    assert (counts.requests, counts.errors, counts.timed) == (101, 10, 93)
    figures = StepFigures.of(counts)
    assert figures.error_rate == pytest.approx(10 / 101)
    assert figures.p95_ms is not None and figures.p95_ms <= 5.0  # every timed one is fast


def test_a_step_window_subtracts_the_timed_count_too() -> None:
    metrics = GatewayMetrics()
    stats = metrics.alias("p", "prod", "v2")
    for _ in range(10):
        stats.record(503, None)
    start = _counts(metrics)
    for _ in range(20):
        stats.record(200, 0.004)
    window = _counts(metrics).since(start)
    assert (window.requests, window.errors, window.timed) == (20, 0, 20)
    assert StepFigures.of(window).p95_ms <= 5.0  # type: ignore[operator]


def test_the_board_gives_each_mirror_s_figures_in_milliseconds() -> None:
    metrics = GatewayMetrics()
    mirror = metrics.mirror("p", "prod", "v3")
    for _ in range(3):
        mirror.answered(200, 0.004)
    mirror.answered(500, 0.004)
    mirror.count_dropped()
    mirror.compared(True, 0.0)
    mirror.compared(False, 0.5)
    board = AliasFiguresBoard()
    board.publish(parse_alias_figures(metrics.render().decode()))
    seen = board.mirror_figures("p", "prod")["v3"]
    assert (seen.mirrored, seen.dropped, seen.errors, seen.compared) == (4, 1, 1, 2)
    assert seen.equal_share == 0.5 and seen.max_abs_difference == 0.5
    assert seen.p50_ms is not None and 0 < seen.p50_ms <= 5.0
    assert board.mirror_figures("p", "other") == {}
