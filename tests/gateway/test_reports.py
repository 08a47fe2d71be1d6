"""What a gateway reports to the control plane (report.py): every worker under the
gateway's one id, kept beside its routes file; the table it serves as soon as it applies
it; its requests in flight to removed instances as soon as they change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.gateway.gateway_processes import (
    TOKEN,
    FakeControlPlane,
    Gateway,
    Upstream,
    node,
    table,
    wait_until,
)

from pier.controller.gateway_registry import GatewayRegistry
from pier.domain.gateways import GatewayReport
from pier.gateway.metrics import GatewayMetrics
from pier.gateway.report import Reporter, gateway_id


def reports(plane: FakeControlPlane) -> list[tuple[str, dict[str, Any]]]:
    """(gateway id, report) of each report the control plane got."""
    return [(target.split("/")[4], json.loads(body)) for target, _, body in list(plane.reports)]


def test_every_worker_reports_under_the_id_kept_beside_the_routes_file(
    gateway_factory: Callable[..., Gateway],
    upstreams: dict[str, Upstream],
    control_plane: FakeControlPlane,
    tmp_path: Path,
) -> None:
    control_plane.publish(table(node("one", upstreams["a"].endpoint), version=7))
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    gateway = gateway_factory(
        None, "--workers", "2", "--control-url", f"http://127.0.0.1:{control_plane.port}",
        "--token-file", str(token_file),
    )  # fmt: skip
    wait_until(
        lambda: (
            {(r["worker"], r["routes_version"]) for _, r in reports(control_plane)}
            >= {(0, 7), (1, 7)}
        ),
        what="both workers to report serving version 7",
    )
    kept = gateway.routes_file.with_suffix(".id").read_text().strip()
    assert {gateway_id for gateway_id, _ in reports(control_plane)} == {kept}
    assert {(r["url"], r["workers"]) for _, r in reports(control_plane)} == {(gateway.url, 2)}
    assert {auth for _, auth, _ in control_plane.reports} == {f"Bearer {TOKEN}"}
    assert all("pier_gateway_" in r["metrics"] for _, r in reports(control_plane))
    assert gateway_id(gateway.routes_file) == kept  # the same id at the next start
    assert TOKEN not in gateway.log.read_text()


async def test_a_worker_reports_at_once_when_its_draining_requests_change(
    control_plane: FakeControlPlane,
) -> None:
    draining: dict[str, int] = {}
    reporter = Reporter(
        control_url=f"http://127.0.0.1:{control_plane.port}", token_file=None,
        gateway_id="gw-test", url="http://gw", worker=(0, 1),
        snapshot=lambda: (3, dict(draining)), render_metrics=lambda: b"",
        activity=lambda: 0, routes_changed=asyncio.sleep,
    )  # fmt: skip
    task = asyncio.create_task(reporter.run())
    try:
        await _until(lambda: any(r["routes_version"] == 3 for _, r in reports(control_plane)))
        draining["web-1"] = 2
        await _until(lambda: reports(control_plane)[-1][1]["draining"] == {"web-1": 2})
        del draining["web-1"]
        await _until(lambda: reports(control_plane)[-1][1]["draining"] == {})
    finally:
        task.cancel()


async def test_an_idle_worker_renders_no_figures_and_its_heartbeats_carry_none(
    control_plane: FakeControlPlane,
) -> None:
    control_plane.report_answer = b'{"report_interval_s": 0.02, "heartbeat_s": 0.1}'
    metrics = GatewayMetrics()
    for index in range(50):
        metrics.node("default", f"n{index}")
    rendered: list[bytes] = []

    def render() -> bytes:
        rendered.append(metrics.render())
        return rendered[-1]

    reporter = Reporter(
        control_url=f"http://127.0.0.1:{control_plane.port}", token_file=None,
        gateway_id="gw-test", url="http://gw", worker=(0, 1), snapshot=lambda: (3, {}),
        render_metrics=render, activity=metrics.activity, routes_changed=asyncio.sleep,
    )  # fmt: skip
    task = asyncio.create_task(reporter.run())
    try:
        await _until(lambda: len(reports(control_plane)) >= 4)  # the first, then heartbeats
        first, *heartbeats = [r for _, r in reports(control_plane)]
        assert 'node="n49"' in first["metrics"] and not first["metrics_unchanged"]
        assert all(r["metrics"] == "" and r["metrics_unchanged"] for r in heartbeats)
        assert len(rendered) == 1  # nothing moved: nothing rendered again

        metrics.node("default", "n7").record(200, 0.01, 100, 200)
        await _until(lambda: 'code="2xx"' in reports(control_plane)[-1][1]["metrics"])
        assert len(rendered) == 2
    finally:
        task.cancel()


def test_the_registry_keeps_a_workers_figures_through_reports_that_carry_none() -> None:
    registry = GatewayRegistry()
    figures = "pier_gateway_in_flight_seconds_total 1.0\n"
    unchanged = GatewayReport(url="http://gw", routes_version=3, metrics_unchanged=True)
    assert registry.report("gw-a", unchanged).figures_missing  # it has none: it asks
    registry.report("gw-a", GatewayReport(url="http://gw", routes_version=3, metrics=figures))
    assert not registry.report("gw-a", unchanged).figures_missing
    assert asyncio.run(registry.metrics()) == [("gw-a/0", figures)]


async def _until(check: Callable[[], bool]) -> None:
    """``check`` true, waited for off the event loop (where the reporter runs)."""
    await asyncio.to_thread(wait_until, check, 5.0)
