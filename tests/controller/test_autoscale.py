"""The autoscaler's arithmetic: average concurrency from the in-flight integral, scale up at
once, scale down only after the delay, always within min..max."""

from __future__ import annotations

import pytest

from pier.controller.autoscale import AutoscaleSettings, NodeScaler
from pier.domain.specs import NodeSpec, parse_node_spec

SETTINGS = AutoscaleSettings(window_s=6.0, scale_down_delay_s=30.0)


def spec(low: int = 1, high: int = 5, target: float = 4.0) -> NodeSpec:
    return parse_node_spec(
        {"model": "iris", "min_instances": low, "max_instances": high, "target_in_flight": target}
    )


def feed(scaler: NodeScaler, node: NodeSpec, *, start: float, end: float, concurrency: float,
         integral: float, step: float = 0.5) -> tuple[float, int]:  # fmt: skip
    """Readings every ``step`` s of a node holding ``concurrency`` requests in flight."""
    t = start
    while t < end:
        t += step
        integral += concurrency * step
        scaler.observe(t, integral)
        scaler.decide(node, t)
    return integral, scaler.target


def test_the_target_follows_average_concurrency_up_at_once() -> None:
    node = spec()
    scaler = NodeScaler(SETTINGS, start=1, now=0.0)
    _, target = feed(scaler, node, start=0.0, end=7.0, concurrency=10.0, integral=0.0)
    assert target == 3  # ceil(10 / 4)
    assert scaler.concurrency() == pytest.approx(10.0)


def test_exactly_on_the_target_needs_no_extra_instance() -> None:
    scaler = NodeScaler(SETTINGS, start=1, now=0.0)
    _, target = feed(scaler, spec(), start=0.0, end=7.0, concurrency=8.0, integral=0.0)
    assert target == 2


def test_scale_down_waits_for_the_delay() -> None:
    node = spec()
    scaler = NodeScaler(SETTINGS, start=1, now=0.0)
    integral, target = feed(scaler, node, start=0.0, end=7.0, concurrency=16.0, integral=0.0)
    assert target == 4
    integral, target = feed(scaler, node, start=7.0, end=30.0, concurrency=0.0, integral=integral)
    assert target == 4  # quiet for 23 s: not yet
    _, target = feed(scaler, node, start=30.0, end=45.0, concurrency=0.0, integral=integral)
    assert target == 1


def test_the_target_stays_within_min_and_max() -> None:
    scaler = NodeScaler(SETTINGS, start=2, now=0.0)
    _, target = feed(scaler, spec(low=2, high=3), start=0.0, end=7.0, concurrency=100.0,
                     integral=0.0)  # fmt: skip
    assert target == 3
    quiet = NodeScaler(SETTINGS, start=2, now=0.0)
    _, target = feed(quiet, spec(low=2, high=3), start=0.0, end=60.0, concurrency=0.0,
                     integral=0.0)  # fmt: skip
    assert target == 2


def test_without_figures_the_target_holds() -> None:
    scaler = NodeScaler(SETTINGS, start=3, now=0.0)
    for t in range(100):
        assert scaler.decide(spec(), float(t)).target == 3  # the gateway never answered


def test_a_restarted_gateway_does_not_read_as_negative_load() -> None:
    node = spec()
    scaler = NodeScaler(SETTINGS, start=1, now=0.0)
    feed(scaler, node, start=0.0, end=7.0, concurrency=12.0, integral=0.0)
    scaler.observe(7.5, 0.0)  # the counter began again
    assert scaler.concurrency() is None
    scaler.observe(9.0, 6.0)
    assert scaler.concurrency() == pytest.approx(4.0)
