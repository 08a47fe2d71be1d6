"""What routes need, held on app.state and handed over as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from pier.domain.roles import Principal
from pier.services.access import AccessService
from pier.services.aliases import AliasService
from pier.services.audit import AuditService
from pier.services.models import ModelService
from pier.services.nodes import NodeService
from pier.services.projects import ProjectService
from pier.services.quotas import QuotaService
from pier.services.rollouts import RolloutService
from pier.services.routes import (
    ControllerFiguresSource,
    GatewayRegistrySource,
    InstanceStatsSource,
    LogSource,
    RouteSource,
    TrafficSource,
)
from pier.services.secrets import SecretService
from pier.services.series import SeriesService
from pier.settings import UiSettings
from pier.store.repository import Repository


@dataclass(frozen=True)
class Services:
    repo: Repository
    nodes: NodeService
    aliases: AliasService
    rollouts: RolloutService
    models: ModelService
    secrets: SecretService
    projects: ProjectService
    access: AccessService
    routes: RouteSource
    logs: LogSource
    stats: InstanceStatsSource
    gateway_url: str
    runtimes: Collection[str]
    """The runtimes loaded now (one that was missing may load later)."""
    audit: AuditService
    quotas: QuotaService
    series: SeriesService | None = None
    """pier's own time series; None where none are kept."""
    ui: UiSettings = field(default_factory=UiSettings)
    """The web UI's settings."""
    controller: ControllerFiguresSource | None = None
    """The controller's tick times; None where no controller runs."""
    traffic: TrafficSource | None = None
    """The sampler's last read of the gateway and the instances, for /metrics; None
    where no sampler runs."""
    gateways: GatewayRegistrySource | None = None
    """The gateways that report here; None where none may."""


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_actor(request: Request) -> str:
    actor: str = request.state.actor
    return actor


def get_principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
ActorDep = Annotated[str, Depends(get_actor)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
