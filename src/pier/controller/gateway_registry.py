"""The gateway registry: every gateway that reports to this control plane, and what it said.

A gateway (``pier gateway`` on any machine, or the one `pier up` starts: the same
mechanism) has a stable id it keeps beside its routes file; each of its workers pushes a
``GatewayReport`` (routes version served, requests in flight to removed instances, its
Prometheus figures) with ``POST /api/v1/gateways/{id}/report``. The registry keeps the
last report of each (gateway, worker), in memory: after a control-plane restart every
gateway is back within one report interval.

What the controller decides over gateways is decided over the *live* workers: those that
reported within ``timeout_s``. A node is routed when every live worker serves a table
that has it (``oldest_served``), an instance drained when none has requests in flight to
it, and load figures add up over all of them (``GatewayView`` reads ``statuses`` and
``metrics`` here). A worker silent for longer is left out, with one log line naming its
gateway, and one more when it reports again; a gateway silent for ``forget_s`` is
forgotten. Nothing here is logged of a report but ids, URLs and counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from pier.domain.gateways import GatewayInfo, GatewayList, GatewayReport, GatewayReportAnswer
from pier.settings import GatewayRegistrySettings

log = structlog.get_logger("pier.controller.gateways")

HEARTBEATS_PER_TIMEOUT = 3
"""An idle gateway reports this many times within the timeout: one lost report (or two)
does not leave it out."""


@dataclass(slots=True)
class _Worker:
    report: GatewayReport
    at: float
    """When it last reported (the registry's clock)."""
    silent: bool = False
    """Logged as silent, and left out, until it reports again."""


@dataclass(slots=True)
class _Gateway:
    url: str
    workers: dict[int, _Worker] = field(default_factory=dict)

    @property
    def last_at(self) -> float:
        return max(w.at for w in self.workers.values())


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A live worker's routes version and requests in flight to removed instances."""

    key: str
    """``gateway-id/worker``."""
    routes_version: int
    draining: dict[str, int]


class GatewayRegistry:
    def __init__(
        self,
        settings: GatewayRegistrySettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings or GatewayRegistrySettings()
        self._clock = clock
        self._gateways: dict[str, _Gateway] = {}

    def report(self, gateway_id: str, report: GatewayReport) -> GatewayReportAnswer:
        """Keep ``report`` as what worker ``report.worker`` of ``gateway_id`` says now."""
        now = self._clock()
        gateway = self._gateways.get(gateway_id)
        if gateway is None:
            gateway = self._gateways[gateway_id] = _Gateway(report.url)
            log.info("gateway registered", gateway=gateway_id, url=report.url,
                     workers=report.workers)  # fmt: skip
        gateway.url = report.url
        for index in [i for i in gateway.workers if i >= report.workers]:
            del gateway.workers[index]  # it runs fewer workers now
        known = gateway.workers.get(report.worker)
        if known is not None and known.silent:
            log.info("gateway reporting again; counted for routed and drained", gateway=gateway_id,
                     url=report.url, worker=report.worker)  # fmt: skip
        missing = False
        if report.metrics_unchanged:  # a heartbeat: the figures are the ones kept
            missing = known is None
            report.metrics = "" if known is None else known.report.metrics
        gateway.workers[report.worker] = _Worker(report, now)
        return GatewayReportAnswer(
            report_interval_s=self._settings.report_interval_s,
            heartbeat_s=self._settings.timeout_s / HEARTBEATS_PER_TIMEOUT,
            figures_missing=missing,
        )

    async def statuses(self) -> list[WorkerStatus] | None:
        """Every live worker's routes version and draining requests; None without any."""
        live = self._live()
        if not live:
            return None
        return [WorkerStatus(k, w.report.routes_version, dict(w.report.draining)) for k, w in live]

    async def metrics(self) -> list[tuple[str, str]] | None:
        """(``gateway-id/worker``, Prometheus text) of every live worker; None without any
        (the load is unknown, not zero)."""
        live = self._live()
        return [(key, w.report.metrics) for key, w in live] if live else None

    def oldest_served(self, current: int) -> int | None:
        """The oldest route table version a live worker serves, where a version above
        ``current`` (another, earlier control plane's) counts as none (-1); None without
        any live worker."""
        versions = [w.report.routes_version for _, w in self._live()]
        return min(v if v <= current else -1 for v in versions) if versions else None

    def listing(self) -> GatewayList:
        """Every gateway known (live or silent), by id."""
        self._sweep()
        now = self._clock()
        known = sorted(self._gateways.items())
        return GatewayList(gateways=[self._info(i, g, now) for i, g in known])

    def _info(self, gateway_id: str, gateway: _Gateway, now: float) -> GatewayInfo:
        reporting = [w for w in gateway.workers.values() if not w.silent]
        shown = reporting or list(gateway.workers.values())
        return GatewayInfo(
            id=gateway_id,
            url=gateway.url,
            workers=max(w.report.workers for w in gateway.workers.values()),
            workers_reporting=len(reporting),
            last_report_age_s=round(now - gateway.last_at, 3),
            routes_version=min(w.report.routes_version for w in shown),
            state="live" if reporting else "silent",
        )

    def _live(self) -> list[tuple[str, _Worker]]:
        self._sweep()
        return [
            (f"{gateway_id}/{index}", worker)
            for gateway_id, gateway in self._gateways.items()
            for index, worker in sorted(gateway.workers.items())
            if not worker.silent
        ]

    def _sweep(self) -> None:
        """Leave out each worker silent for ``timeout_s`` (once, with a log line); forget
        gateways silent for ``forget_s``."""
        now = self._clock()
        timeout_s, forget_s = self._settings.timeout_s, self._settings.forget_s
        for gateway_id, gateway in list(self._gateways.items()):
            if now - gateway.last_at >= forget_s:
                del self._gateways[gateway_id]
                log.info("gateway forgotten", gateway=gateway_id, url=gateway.url)
                continue
            for index, worker in gateway.workers.items():
                if not worker.silent and now - worker.at >= timeout_s:
                    worker.silent = True
                    log.warning(
                        "gateway silent; no longer counted for routed and drained",
                        gateway=gateway_id, url=gateway.url, worker=index,
                        silent_s=round(now - worker.at, 1),
                    )  # fmt: skip
