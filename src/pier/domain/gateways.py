"""What a gateway tells the control plane, and what the control plane lists of gateways.

Every gateway, on the control plane's machine or another one, pushes a ``GatewayReport``
per worker to ``POST /api/v1/gateways/{id}/report``: right after it applies a new route
table, whenever its requests in flight to removed instances change, and at least every
``GatewayReportAnswer.report_interval_s`` (the control plane says how often, so its
setting is the only one). The control plane never dials out to a gateway: one on another
machine may not be reachable from it.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GATEWAY_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
GATEWAY_ID_RE: Final = re.compile(GATEWAY_ID_PATTERN)


class GatewayReport(BaseModel):
    """One gateway worker's state, as it reports it."""

    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    url: Annotated[str, Field(max_length=2048)]
    """Where clients reach the gateway (its public URL)."""
    worker: Annotated[int, Field(ge=0, le=1023)] = 0
    """Which of the gateway's workers reports."""
    workers: Annotated[int, Field(ge=1, le=1024)] = 1
    """How many workers the gateway runs; each reports for itself."""
    routes_version: int
    """The version of the route table the worker serves."""
    draining: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    """Requests in flight to instances no longer in its routes, by instance id."""
    metrics: Annotated[str, Field(max_length=64 * 2**20)] = ""
    """The worker's own ``pier_gateway_*`` series, in Prometheus text (its /metrics as the
    admin sees it): the load the autoscaler, passive health and the alias figures read."""
    metrics_unchanged: bool = False
    """The figures are those of the worker's last report (``metrics`` is then empty): an
    idle gateway's heartbeat carries no figures."""

    @model_validator(mode="after")
    def _worker_among_workers(self) -> GatewayReport:
        if self.worker >= self.workers:
            raise ValueError(f"worker {self.worker} is not below workers ({self.workers})")
        return self


class GatewayReportAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    report_interval_s: float
    """Read the figures this often, and report them when they changed."""
    heartbeat_s: float = 5.0
    """Report within this long even when nothing changed."""
    figures_missing: bool = False
    """The report said its figures were unchanged, but this control plane has none of
    that worker's (it restarted): send them with the next report."""


class GatewayInfo(BaseModel):
    """A registered gateway as the control plane sees it."""

    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    id: str
    url: str
    workers: int
    """Workers the gateway says it runs."""
    workers_reporting: int
    """Of those, the ones that reported within the timeout."""
    last_report_age_s: float
    """Seconds since any of its workers last reported."""
    routes_version: int
    """The oldest route table version its reporting workers serve."""
    state: Literal["live", "silent"]
    """live: counted for "routed" and "drained"; silent: no report within
    ``PIER_GATEWAY_REGISTRY__TIMEOUT_S``, left out of both until it reports again."""


class GatewayList(BaseModel):
    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    gateways: list[GatewayInfo]
