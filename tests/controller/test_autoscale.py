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


def test_a_scaler_skipping_unchanged_readings_decides_as_one_that_reads_them_all() -> None:
    """Burst, quiet long enough for the burst's recommendation to expire, then load
    again after a long idle: the scaler that skips the readings ``unchanged`` stands for
    scales down when the window expires and reads the new load as the other does."""
    node = spec(low=0)
    every, skipping = NodeScaler(SETTINGS, start=0, now=0.0), NodeScaler(SETTINGS, start=0, now=0.0)
    loads = [16.0] * 14 + [0.0] * 200 + [6.0] * 20  # readings every 0.5 s
    integral, skipped, targets = 0.0, 0, []
    for step, concurrency in enumerate(loads, start=1):
        t, integral = step * 0.5, integral + concurrency * 0.5
        every.observe(t, integral)
        every.decide(node, t)
        if skipping.unchanged(t, integral, node, None):
            skipped += 1
        else:
            skipping.observe(t, integral)
            skipping.decide(node, t)
        assert skipping.target == every.target, step
        targets.append(every.target)
        if step > 14:
            assert skipping.concurrency() == pytest.approx(every.concurrency()), step
    assert skipped > 100  # the quiet readings were skipped
    assert 4 in targets and targets[14 + 60] == 4  # held for the delay after the burst
    assert 0 in targets  # the burst's recommendation expired: scaled down to the floor
    assert targets[-1] == 2  # ceil(6 / 4) after the idle, as if every reading were read
