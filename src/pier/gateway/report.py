"""Reporting to the control plane: what this gateway worker serves, drains and counts.

Every worker pushes a ``GatewayReport`` to ``POST /api/v1/gateways/{id}/report`` (the
control plane never dials out: a gateway on another machine may not be reachable):

- at once when it applies a new route table (so the control plane knows the node is
  routed) and when its requests in flight to removed instances change (so a draining
  instance stops as soon as the last one is done); both are checked every ``CHECK_S``;
- every ``report_interval_s`` while its figures (the worker's /metrics as the admin
  sees it: the load the autoscaler, passive health and alias figures add up over
  gateways) change, which they do with traffic only. They are rendered again only when
  the counters moved (``GatewayMetrics.activity``, a few integers per node), so an idle
  gateway renders nothing however many nodes it routes;
- else every ``heartbeat_s``: an idle gateway costs the control plane little, and its
  reports tell it that the gateway is alive. A report whose figures are those the
  control plane already has carries none (``metrics_unchanged``); a control plane that
  has none of them (it restarted) says so in its answer, and the next report has them.
  The control plane's answer sets both intervals.

The id is the gateway's own, shared by its workers: made once and kept beside its routes
file (``<routes file>.id`` with the suffix replaced), so a restarted gateway is the
same gateway to the control plane; without a routes file it is new at each start. A
failed report is logged once (and once when reports get through again) and retried
with a backoff; the token file is re-read for each report, and never logged.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import httpx
import structlog
from pydantic import ValidationError

from pier.domain.gateways import GATEWAY_ID_RE, GatewayReport, GatewayReportAnswer
from pier.gateway.sync import BACKOFF_MAX_S, BACKOFF_MIN_S, read_token

log = structlog.get_logger("pier.gateway.report")

CHECK_S: Final = 0.1
"""How often the routes version and the draining requests are checked for a change."""
DEFAULT_INTERVAL_S: Final = 0.5
DEFAULT_HEARTBEAT_S: Final = 5.0
"""The report interval and heartbeat until the control plane says otherwise."""
REPORT_TIMEOUT_S: Final = 5.0

Snapshot = Callable[[], tuple[int, dict[str, int]]]
"""(routes version served, requests in flight to removed instances by instance id)."""


def gateway_id(routes_file: Path | None) -> str:
    """The gateway's stable id: read from beside ``routes_file``, else made (and kept
    there when there is a routes file)."""
    path = routes_file.with_suffix(".id") if routes_file is not None else None
    if path is not None:
        try:
            known = path.read_text().strip()
        except OSError:
            known = ""
        if GATEWAY_ID_RE.match(known):
            return known
    made = f"gw-{secrets.token_hex(4)}"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(made + "\n")
        os.replace(tmp, path)
    return made


def public_url(host: str, port: int) -> str:
    """Where clients reach a gateway listening on ``host``: the machine's name for an
    address that listens everywhere."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://{host}:{port}"


class Reporter:
    """Reports one worker's state to the control plane until cancelled."""

    def __init__(
        self,
        *,
        control_url: str,
        token_file: Path | None,
        gateway_id: str,
        url: str,
        worker: tuple[int, int],
        snapshot: Snapshot,
        render_metrics: Callable[[], bytes],
        activity: Callable[[], object],
        routes_changed: Callable[[float], Awaitable[None]],
    ) -> None:
        """``worker``: (index, count); ``activity()``: a fingerprint of what the figures
        show (``GatewayMetrics.activity``): they are rendered again only once it moved;
        ``routes_changed(timeout_s)`` returns when the worker applies a new table, or after
        ``timeout_s``."""
        self._endpoint = f"{control_url.rstrip('/')}/api/v1/gateways/{gateway_id}/report"
        self._token_file = token_file
        self._id = gateway_id
        self._url = url
        self._worker = worker
        self._snapshot = snapshot
        self._render_metrics = render_metrics
        self._activity = activity
        self._routes_changed = routes_changed
        self._interval_s = DEFAULT_INTERVAL_S
        self._heartbeat_s = DEFAULT_HEARTBEAT_S
        self._failing = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        sent: tuple[tuple[int, dict[str, int]], bytes] | None = None
        figures, rendered_from = b"", self._activity()
        sent_at = read_at = -float("inf")
        delay_s = BACKOFF_MIN_S
        async with httpx.AsyncClient(timeout=REPORT_TIMEOUT_S, trust_env=False) as client:
            while True:
                state, now = self._snapshot(), loop.time()
                changed = sent is None or state != sent[0]
                if changed or now - read_at >= self._interval_s:
                    read_at, moved = now, self._activity()
                    if sent is None or changed or moved != rendered_from:
                        figures, rendered_from = self._render_metrics(), moved
                    new_figures = sent is None or figures != sent[1]
                    if changed or new_figures or now - sent_at >= self._heartbeat_s:
                        taken = await self._send(client, state, figures, whole=new_figures)
                        if taken is None:
                            await asyncio.sleep(delay_s)
                            delay_s = min(delay_s * 2, BACKOFF_MAX_S)
                            continue
                        sent, sent_at, delay_s = (state, figures), now, BACKOFF_MIN_S
                        if taken.figures_missing:
                            sent = None  # the control plane has none of ours: send them
                await self._routes_changed(CHECK_S)

    async def _send(
        self,
        client: httpx.AsyncClient,
        state: tuple[int, dict[str, int]],
        figures: bytes,
        *,
        whole: bool,
    ) -> GatewayReportAnswer | None:
        """One report, with the figures if ``whole`` (else it says they are unchanged);
        the control plane's answer, or None if it did not take the report."""
        version, draining = state
        report = GatewayReport(
            url=self._url, worker=self._worker[0], workers=self._worker[1],
            routes_version=version, draining=draining,
            metrics=figures.decode() if whole else "", metrics_unchanged=not whole,
        )  # fmt: skip
        token = read_token(self._token_file)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = await client.post(
                self._endpoint, content=report.model_dump_json(), headers=headers | _JSON
            )
            response.raise_for_status()
            answer = GatewayReportAnswer.model_validate_json(response.content)
            self._interval_s, self._heartbeat_s = answer.report_interval_s, answer.heartbeat_s
        except (httpx.HTTPError, ValidationError) as e:
            if not self._failing:
                log.warning("gateway report failed; retrying", url=self._endpoint,
                            error=_described(e))  # fmt: skip
            self._failing = True
            return None
        if self._failing:
            log.info("gateway reports get through again", url=self._endpoint)
        self._failing = False
        return answer


_JSON: Final = {"Content-Type": "application/json"}


def _described(error: Exception) -> str:
    """The error without anything the request carried (no header is in it)."""
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        if status in (401, 403):
            return f"{status}: the control plane refused the token in the token file"
        return f"{status} from the control plane"
    return repr(error)
