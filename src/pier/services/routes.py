"""How the API gets routes and logs from the controller without importing it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from pier.domain.gateways import GatewayList, GatewayReport, GatewayReportAnswer
from pier.domain.routes import AliasRoute, RouteChanges, RouteTable
from pier.domain.traffic import InstanceUsage, Traffic
from pier.domain.views import ControllerFigures, MirrorFiguresView


class RouteSource(Protocol):
    async def wait_newer(
        self, after: int, *, wait_s: float, worker: int = 0, workers: int = 1
    ) -> RouteTable: ...

    async def wait_changes(
        self, after: int, *, wait_s: float, worker: int = 0, workers: int = 1
    ) -> RouteChanges | RouteTable: ...

    def routed(self, project: str, node: str) -> bool: ...

    def served_alias(self, project: str, alias: str) -> AliasRoute | None: ...


class GatewayRegistrySource(Protocol):
    """The gateways that report to this control plane (controller/gateway_registry.py)."""

    def report(self, gateway_id: str, report: GatewayReport) -> GatewayReportAnswer: ...

    def listing(self) -> GatewayList: ...


class ControllerFiguresSource(Protocol):
    def figures(self) -> ControllerFigures: ...

    """How long the controller's recent ticks took."""


class MirrorFiguresSource(Protocol):
    def mirror_figures(self, project: str, alias: str) -> dict[str, MirrorFiguresView]: ...

    """What the gateway saw of an alias's mirrors, by mirror node, as last read."""


class InstanceStatsSource(Protocol):
    async def stats(self, instance_id: str) -> tuple[float | None, int | None]: ...

    """(cpu_percent, memory_bytes) of one instance, None where unknown."""


class LogSource(Protocol):
    def logs(
        self, instance_id: str, *, follow: bool, tail: int | None = None
    ) -> AsyncIterator[str]: ...


class TrafficSource(Protocol):
    """What the sampler read last: the gateway's figures and each instance's CPU and
    memory (``controller.sampling.Sampler``)."""

    def traffic(self) -> Traffic | None: ...

    def usage(self) -> Mapping[str, InstanceUsage]: ...
