"""Limits of a local instance: CPU affinity and RLIMIT_DATA, planned in pier and applied in
the child between fork and exec."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pier.domain.configurations import Configuration, format_bytes


@dataclass(frozen=True, slots=True)
class LimitPlan:
    """The limits one instance gets, decided in pier and applied in the child before exec."""

    cpus: tuple[int, ...] | None = None
    memory_bytes: int | None = None
    applied: tuple[str, ...] = ()
    not_applied: tuple[str, ...] = ()

    def preexec(self) -> Callable[[], None] | None:
        """The function the child runs between fork and exec; None when there is nothing to do."""
        cpus, memory_bytes = self.cpus, self.memory_bytes
        if cpus is None and memory_bytes is None:
            return None

        def apply_limits() -> None:
            if cpus is not None:
                os.sched_setaffinity(0, cpus)
            if memory_bytes is not None:
                resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))

        return apply_limits


def plan_limits(
    configuration: Configuration | None,
    *,
    available_cpus: Sequence[int],
    first_cpu_index: int = 0,
    memory_hard_limit_bytes: int = resource.RLIM_INFINITY,
) -> LimitPlan:
    """Decide CPU affinity and memory limit for ``configuration`` on this machine."""
    if configuration is None:
        return LimitPlan()
    applied: list[str] = []
    not_applied: list[str] = []
    cpus = _plan_cpus(configuration.vcpu, available_cpus, first_cpu_index, applied, not_applied)
    memory_bytes: int | None = None
    if configuration.memory_bytes > 0:
        memory_bytes = configuration.memory_bytes
        asked = format_bytes(memory_bytes)
        if memory_hard_limit_bytes != resource.RLIM_INFINITY and (
            memory_hard_limit_bytes < memory_bytes
        ):
            memory_bytes = memory_hard_limit_bytes
            applied.append(
                f"memory={format_bytes(memory_bytes)} (RLIMIT_DATA; {asked} asked, "
                "capped by pier's own hard limit)"
            )
        else:
            applied.append(f"memory={asked} (RLIMIT_DATA)")
    if configuration.gpus > 0:
        not_applied.append(
            f"gpus={configuration.gpus}: not applied: the local runtime has no GPU isolation"
        )
    return LimitPlan(cpus, memory_bytes, tuple(applied), tuple(not_applied))


def _plan_cpus(
    vcpu: int,
    available_cpus: Sequence[int],
    first_cpu_index: int,
    applied: list[str],
    not_applied: list[str],
) -> tuple[int, ...] | None:
    if vcpu <= 0:
        return None
    if not available_cpus:
        not_applied.append(f"vcpu={vcpu}: not applied: CPU affinity is not supported here")
        return None
    ordered = sorted(available_cpus)
    if vcpu > len(ordered):
        not_applied.append(
            f"vcpu={vcpu}: only {len(ordered)} CPUs on this machine, affinity to all of them"
        )
        return None
    chosen = sorted(ordered[(first_cpu_index + i) % len(ordered)] for i in range(vcpu))
    applied.append(f"cpus={vcpu} (affinity {format_cpus(chosen)})")
    return tuple(chosen)


def format_cpus(cpus: Sequence[int]) -> str:
    """CPU numbers as ranges, the way taskset and cgroups write them: "0-2,5"."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in ranges)


def available_cpus() -> list[int]:
    if not hasattr(os, "sched_getaffinity"):
        return []
    return sorted(os.sched_getaffinity(0))
