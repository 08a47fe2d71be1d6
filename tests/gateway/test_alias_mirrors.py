"""Mirroring an alias's requests: a mirror that fails or hangs changes nothing for the
callers, its figures show it, and mirrored V2 outputs are compared with the primary's.
The figures are read the way the controller reads them (``GatewayView``)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from gateway_processes import (
    TOKEN,
    Gateway,
    Upstream,
    accepts,
    node,
    start_upstream,
    stop,
    table,
    wait_until,
)
from raw_http import RawClient

from pier.controller.gateway_view import (
    AliasFiguresRead,
    AliasNodeKey,
    GatewayView,
    parse_in_flight_seconds,
)
from pier.domain.names import AliasName, NodeKey, NodeName, ProjectName
from pier.domain.routes import AliasMirror, AliasRoute, AliasTarget, RouteTable
from pier.domain.specs import Access
from pier.gateway.__main__ import parse_args
from pier.gateway.limits import MirrorLimits
from pier.settings import GatewaySettings


@pytest.fixture(scope="module")
def mirror_upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Upstream]]:
    """Instances that answer 500 (``fails``), never answer (``hangs``), or answer V2
    outputs other than the shared ``a``'s (``other``)."""
    log_dir = tmp_path_factory.mktemp("mirror-upstreams")
    started = {name: start_upstream(name, log_dir) for name in ("fails", "hangs", "other")}
    try:
        for upstream in started.values():
            wait_until(lambda u=upstream: accepts(u.port), what=f"upstream {upstream.name}")
        yield started
    finally:
        for upstream in started.values():
            stop(upstream.process)


@pytest.fixture
def twin_mirrored(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> Callable[..., Gateway]:
    """Start a gateway (of the test's own, with ``args``) where alias ``prod`` sends its
    requests to v1 and copies each to ``twin``, a node of the same instance."""

    def start(*args: str) -> Gateway:
        a = upstreams["a"].endpoint
        routes = table(node("v1", a), node("twin", a), aliases=(_mirrored(("twin", 100)),))
        return gateway_factory(routes, *args)

    return start


def _mirrored(*mirrors: tuple[str, float]) -> AliasRoute:
    return AliasRoute(
        project="default",
        alias="prod",
        targets=(AliasTarget(node="v1", weight=100),),
        mirrors=tuple(AliasMirror(node=n, percent=p) for n, p in mirrors),
        access=Access.PRIVATE,
    )


def _key(node: str) -> AliasNodeKey:
    return AliasNodeKey(ProjectName("default"), AliasName("prod"), NodeName(node))


def _read(gateway: Gateway) -> AliasFiguresRead:
    async def read() -> AliasFiguresRead:
        async with httpx.AsyncClient() as client:
            figures = await GatewayView.over_http(gateway.url, client, token=TOKEN).alias_figures()
        assert figures is not None
        return figures

    return asyncio.run(read())


def _call(gateway: Gateway, path: str, n: int) -> None:
    with gateway.client() as client:
        for _ in range(n):
            response = client.get(path, headers={"authorization": f"Bearer {TOKEN}"})
            assert response.status_code == 200, response.text
            assert response.headers["x-pier-node"] == "v1"


def _settled(gateway: Gateway, node: str, copies: int) -> Callable[[], bool]:
    """True once every one of ``copies`` copies to ``node`` has an outcome."""

    def check() -> bool:
        figures = _read(gateway).mirrors.get(_key(node))
        return figures is not None and figures.mirrored + figures.dropped == copies

    return check


def test_a_failing_or_hanging_mirror_changes_nothing_for_callers(
    gateway_factory: Callable[..., Gateway],
    upstreams: dict[str, Upstream],
    mirror_upstreams: dict[str, Upstream],
) -> None:
    routes: RouteTable = table(
        node("v1", upstreams["a"].endpoint),
        node("broken", mirror_upstreams["fails"].endpoint),
        node("stuck", mirror_upstreams["hangs"].endpoint, timeout_s=0.3),
        aliases=(_mirrored(("broken", 100), ("stuck", 100)),),
    )
    gateway = gateway_factory(routes, "--mirror-max-in-flight", "2", "--mirror-queue-size", "4")
    _call(gateway, "/default/aliases/prod/x", 40)

    wait_until(_settled(gateway, "broken", 40), what="every copy to broken to end")
    wait_until(_settled(gateway, "stuck", 40), what="every copy to stuck to end")
    figures = _read(gateway)
    broken, stuck = figures.mirrors[_key("broken")], figures.mirrors[_key("stuck")]
    assert broken.sent == 0 and broken.errors > 0
    assert broken.p50_s is not None  # its 500s were answers, with a latency
    assert stuck.sent == 0 and stuck.errors > 0 and stuck.dropped > 0
    v1 = figures.aliases[_key("v1")]
    assert v1.requests == {"2xx": 40}
    assert v1.error_rate == 0.0
    assert v1.p95_s is not None


def test_mirrored_outputs_are_compared_with_the_primarys(
    gateway_factory: Callable[..., Gateway],
    upstreams: dict[str, Upstream],
    mirror_upstreams: dict[str, Upstream],
) -> None:
    a = upstreams["a"].endpoint
    routes = table(
        node("v1", a),
        node("twin", a),  # the same model: the same outputs
        node("changed", mirror_upstreams["other"].endpoint),
        aliases=(_mirrored(("twin", 100), ("changed", 100)),),
    )
    gateway = gateway_factory(routes)
    _call(gateway, "/default/aliases/prod/outputs", 15)
    _call(gateway, "/default/aliases/prod/outputs?chunks=3", 5)  # compared by their data

    wait_until(_settled(gateway, "twin", 20), what="every copy to twin to end")
    wait_until(_settled(gateway, "changed", 20), what="every copy to changed to end")
    figures = _read(gateway)
    twin, changed = figures.mirrors[_key("twin")], figures.mirrors[_key("changed")]
    assert (twin.sent, twin.equal, twin.equal_share, twin.max_abs_difference) == (20, 20, 1.0, 0.0)
    assert (changed.sent, changed.differ, changed.equal_share) == (20, 20, 0.0)
    assert changed.max_abs_difference == pytest.approx(0.5)
    # the copies are load on the mirror nodes, counted in their own figures
    text = httpx.get(f"{gateway.url}/metrics", headers={"authorization": f"Bearer {TOKEN}"}).text
    assert 'pier_gateway_requests_total{code="2xx",node="twin",project="default"} 20.0' in text
    assert parse_in_flight_seconds(text)[NodeKey.parse("default/changed")] > 0


def test_requests_with_bodies_over_the_limit_are_not_mirrored(
    twin_mirrored: Callable[..., Gateway],
) -> None:
    gateway = twin_mirrored("--mirror-max-body-bytes", "100")
    with gateway.client() as client:
        auth = {"authorization": f"Bearer {TOKEN}"}
        for size in (10, 1000) * 10:
            answer = client.post("/default/aliases/prod/x", headers=auth, content=b"x" * size)
            assert answer.status_code == 200
            assert answer.json()["body_bytes"] == size

    wait_until(_settled(gateway, "twin", 20), what="every copy to twin to end")
    twin = _read(gateway).mirrors[_key("twin")]
    assert (twin.sent, twin.dropped, twin.errors) == (10, 10, 0)


def test_pipelined_requests_never_sent_are_not_mirrored_and_hold_no_room(
    twin_mirrored: Callable[..., Gateway],
) -> None:
    gateway = twin_mirrored("--mirror-queue-size", "2")
    auth = f"authorization: Bearer {TOKEN}\r\n".encode()
    slow = b"GET /default/aliases/prod/sleep?s=0.5 HTTP/1.1\r\nhost: t\r\n%s\r\n" % auth
    queued = b"GET /default/aliases/prod/x HTTP/1.1\r\nhost: t\r\n%s\r\n" % auth
    with RawClient(gateway.port) as client:
        client.send(slow + queued * 3)  # then gone: the first is abandoned, 3 never sent
    _call(gateway, "/default/aliases/prod/x", 5)

    wait_until(_settled(gateway, "twin", 6), what="every copy to twin to end")
    twin = _read(gateway).mirrors[_key("twin")]
    assert (twin.sent, twin.dropped) == (5, 1)  # the abandoned one's copy is not sent


def test_the_mirror_settings_are_the_gateways_defaults_and_flags() -> None:
    settings, defaults = GatewaySettings(), MirrorLimits()
    for field in dataclasses.fields(MirrorLimits):
        assert getattr(settings, f"mirror_{field.name}") == getattr(defaults, field.name)
    assert parse_args(["--mirror-batch-wait-s", "0.2"]).mirror.batch_wait_s == 0.2


def test_a_copy_waits_for_others_to_be_sent_with(twin_mirrored: Callable[..., Gateway]) -> None:
    gateway = twin_mirrored("--mirror-batch-wait-s", "1.0")
    asked_at = time.monotonic()
    _call(gateway, "/default/aliases/prod/x", 1)

    wait_until(_settled(gateway, "twin", 1), what="the copy to twin to end")
    assert time.monotonic() - asked_at >= 1.0  # sent when the burst's wait was over
    assert _read(gateway).mirrors[_key("twin")].sent == 1


def test_the_figures_of_every_worker_are_summed(twin_mirrored: Callable[..., Gateway]) -> None:
    gateway = twin_mirrored("--workers", "2")
    for _ in range(4):  # new connections: the kernel spreads them over the workers
        _call(gateway, "/default/aliases/prod/x", 5)

    wait_until(_settled(gateway, "twin", 20), what="every copy to twin to end")
    figures = _read(gateway)
    assert figures.aliases[_key("v1")].requests == {"2xx": 20}
    assert figures.mirrors[_key("twin")].sent == 20
