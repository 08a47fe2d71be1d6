"""The gateway registry: what the controller decides over several gateways (routed,
drained, load) counts every live one, and one silent for the timeout is left out with
one log line, and counted again (one more line) when it reports."""

from __future__ import annotations

from structlog.testing import capture_logs

from pier.controller.gateway_registry import GatewayRegistry
from pier.controller.gateway_view import GatewayView
from pier.domain.gateways import GatewayReport
from pier.domain.names import NodeKey
from pier.gateway.metrics import GatewayMetrics
from pier.settings import GatewayRegistrySettings

WEB = NodeKey.parse("default/web")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def registry(clock: Clock) -> GatewayRegistry:
    return GatewayRegistry(GatewayRegistrySettings(timeout_s=15, forget_s=600), clock=clock)


def report(version: int = 1, *, draining: dict[str, int] | None = None, load_s: float = 0.0,
           worker: int = 0, workers: int = 1) -> GatewayReport:  # fmt: skip
    metrics = GatewayMetrics(clock=lambda: load_s)
    metrics.node("default", "web").begin(0.0)  # one request in flight since 0: load_s
    return GatewayReport(
        url="http://gw:8000", worker=worker, workers=workers, routes_version=version,
        draining=draining or {}, metrics=metrics.render().decode(),
    )  # fmt: skip


async def test_an_instance_is_drained_only_when_no_live_gateway_has_requests_to_it() -> None:
    clock = Clock()
    gateways = registry(clock)
    view = GatewayView(gateways)
    assert await view.status() is None  # no gateway: nothing in flight through one
    gateways.report("gw-a", report(5))
    gateways.report("gw-b", report(4, draining={"web-1": 2}))
    status = await view.status()
    assert status is not None
    assert (status.routes_version, status.draining) == (4, {"web-1": 2})

    gateways.report("gw-a", report(5, draining={"web-1": 1}))
    status = await view.status()
    assert status is not None and status.draining == {"web-1": 3}  # added up
    gateways.report("gw-b", report(5))
    status = await view.status()
    assert status is not None and status.draining == {"web-1": 1}  # gw-a still has one


async def test_load_adds_up_over_gateways_and_their_workers() -> None:
    gateways = registry(Clock())
    view = GatewayView(gateways)
    assert await view.load() is None  # unknown, not zero
    gateways.report("gw-a", report(load_s=2.0, worker=0, workers=2))
    gateways.report("gw-a", report(load_s=1.0, worker=1, workers=2))
    gateways.report("gw-b", report(load_s=4.0))
    assert await view.load() == {WEB: 7.0}
    traffic = await view.traffic()
    assert traffic is not None and traffic.nodes[("default", "web")].in_flight == 3.0


async def test_a_silent_gateway_is_left_out_once_with_a_line_and_back_with_another() -> None:
    clock = Clock()
    gateways = registry(clock)
    view = GatewayView(gateways)
    gateways.report("gw-a", report(5, load_s=1.0))
    gateways.report("gw-b", report(3, draining={"web-1": 1}, load_s=2.0))
    clock.now += 10
    gateways.report("gw-a", report(5, load_s=1.0))
    assert gateways.oldest_served(5) == 3  # gw-b not silent long enough yet

    clock.now += 6  # gw-b: 16 s without a report
    with capture_logs() as logs:
        assert gateways.oldest_served(5) == 5
        status = await view.status()
        assert await view.load() == {WEB: 1.0}
        gateways.listing()
    assert status is not None and status.draining == {}
    silent = [e for e in logs if e["event"].startswith("gateway silent")]
    assert [(e["gateway"], e["url"]) for e in silent] == [("gw-b", "http://gw:8000")]
    listed = {g.id: g for g in gateways.listing().gateways}
    assert (listed["gw-a"].state, listed["gw-b"].state) == ("live", "silent")
    assert listed["gw-b"].last_report_age_s == 16.0 and listed["gw-b"].workers_reporting == 0

    with capture_logs() as logs:
        gateways.report("gw-b", report(5))
        gateways.report("gw-b", report(5))
    assert [e["gateway"] for e in logs if e["event"].startswith("gateway reporting")] == ["gw-b"]
    assert {g.state for g in gateways.listing().gateways} == {"live"}


async def test_a_gateway_silent_long_enough_is_forgotten_and_fewer_workers_are_fewer() -> None:
    clock = Clock()
    gateways = registry(clock)
    gateways.report("gw-a", report(1, worker=1, workers=2))
    gateways.report("gw-a", report(2, worker=0, workers=2))
    assert gateways.oldest_served(2) == 1
    gateways.report("gw-a", report(2, worker=0, workers=1))  # restarted with one worker
    assert gateways.oldest_served(2) == 2
    clock.now += 601
    assert gateways.listing().gateways == []


async def test_figures_that_do_not_parse_count_as_none_and_break_nothing() -> None:
    gateways = registry(Clock())
    view = GatewayView(gateways)
    gateways.report("gw-a", report(load_s=2.0))
    bad = report().model_copy(update={"metrics": 'pier_gateway_requests_total{node="x" 1\n'})
    gateways.report("gw-b", bad)
    assert await view.load() == {WEB: 2.0}
    assert await view.traffic() is not None
