"""A project's allowed configurations and quotas, and the pure math of what fits.

A quota caps a sum over the project's nodes that are neither deleted nor suspended: instances, and
the vCPUs, memory and GPUs of their configurations. What a node counts for is its
*claim*: the instances it holds now (the autoscaler's target), and never fewer than its
``min_instances``. Creating or updating a node is refused when its ``min_instances``
does not fit beside the others' claims (QuotaExceeded names the quota); the autoscaler
takes a node above its minimum only as far as the quotas leave room, and says which
quota held it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from pier.domain.configurations import Configuration, format_bytes, get_configuration
from pier.domain.errors import ConfigurationNotAllowed, QuotaExceeded

Cap = Annotated[int, Field(ge=0, strict=True)] | None


class ProjectLimits(BaseModel):
    """What a project's nodes may use; None everywhere: no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    configurations: list[str] | None = None
    """The configurations its nodes may use; None: every one."""
    max_instances: Cap = None
    """Instances of all its nodes together."""
    max_vcpus: Cap = None
    """vCPUs of all its instances together."""
    max_memory_bytes: Cap = None
    """Memory of all its instances together."""
    max_gpus: Cap = None
    """GPUs of all its instances together."""


class Usage(BaseModel):
    """What a project's nodes claim now (see the module docstring)."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    instances: int = 0
    vcpus: int = 0
    memory_bytes: int = 0
    gpus: int = 0

    def plus(self, configuration: Configuration, count: int) -> Usage:
        return Usage(
            instances=self.instances + count,
            vcpus=self.vcpus + configuration.vcpu * count,
            memory_bytes=self.memory_bytes + configuration.memory_bytes * count,
            gpus=self.gpus + configuration.gpus * count,
        )


class ProjectLimitsView(BaseModel):
    """A project's limits and what its nodes claim against them."""

    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    project: str
    limits: ProjectLimits
    usage: Usage


QUOTAS: Final[tuple[tuple[str, str, Callable[[Configuration], int]], ...]] = (
    ("max_instances", "instances", lambda c: 1),
    ("max_vcpus", "vcpus", lambda c: c.vcpu),
    ("max_memory_bytes", "memory_bytes", lambda c: c.memory_bytes),
    ("max_gpus", "gpus", lambda c: c.gpus),
)
"""(quota field, usage field, what one instance of a configuration counts for)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """What one node counts for: ``count`` instances of ``configuration``."""

    configuration: str
    count: int


def node_claim(configuration: str, *, min_instances: int, target: int | None) -> Claim:
    """A node's claim: its target, never below its minimum."""
    return Claim(configuration, max(min_instances, target or 0))


def usage_of(claims: Iterable[Claim]) -> Usage:
    usage = Usage()
    for claim in claims:
        usage = usage.plus(get_configuration(claim.configuration), claim.count)
    return usage


def check_configuration(project: str, limits: ProjectLimits, configuration: str) -> None:
    """ConfigurationNotAllowed unless the project's nodes may use ``configuration``."""
    if limits.configurations is not None and configuration not in limits.configurations:
        raise ConfigurationNotAllowed(project, configuration, limits.configurations)


def check_fits(project: str, limits: ProjectLimits, others: Usage, claim: Claim) -> None:
    """QuotaExceeded naming the first quota that ``claim`` beside ``others`` passes."""
    configuration = get_configuration(claim.configuration)
    wanted = others.plus(configuration, claim.count)
    for quota, field, _ in QUOTAS:
        cap: int | None = getattr(limits, quota)
        if cap is not None and getattr(wanted, field) > cap:
            used, asked = getattr(others, field), getattr(wanted, field) - getattr(others, field)
            raise QuotaExceeded(
                project, quota,
                f"{claim.count} instances of {claim.configuration} need {_amount(field, asked)}; "
                f"the other nodes hold {_amount(field, used)} of {_amount(field, cap)}",
            )  # fmt: skip


def instances_within(
    limits: ProjectLimits, others: Usage, configuration: str
) -> tuple[int, str] | None:
    """The most instances of ``configuration`` that fit beside ``others``, and the quota
    that sets it; None when no quota limits it."""
    per_instance = get_configuration(configuration)
    best: tuple[int, str] | None = None
    for quota, field, each in QUOTAS:
        cap: int | None = getattr(limits, quota)
        size = each(per_instance)
        if cap is None or size == 0:
            continue
        fits = max(0, (cap - getattr(others, field)) // size)
        if best is None or fits < best[0]:
            best = (fits, quota)
    return best


def _amount(field: str, value: int) -> str:
    if field == "memory_bytes":
        return format_bytes(value)
    return f"{value} {field.replace('vcpus', 'vCPUs')}"
