"""A node's configuration as container limits: NanoCpus, Memory, GPU device requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from docker.types import DeviceRequest

from pier.domain.configurations import Configuration, format_bytes

MIN_MEMORY_BYTES: Final = 6 * 2**20
"""The engine refuses memory limits below 6 MiB."""


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """What the engine's host offers; read once, used to cap limits."""

    cpus: int
    memory_bytes: int
    has_gpu_runtime: bool


@dataclass(frozen=True, slots=True)
class LimitPlan:
    """Host-config limits for one container, with what was and was not applied."""

    nano_cpus: int | None = None
    memory_bytes: int | None = None
    gpus: int = 0
    applied: tuple[str, ...] = ()
    not_applied: tuple[str, ...] = ()

    def host_config(self) -> dict[str, Any]:
        """Keyword arguments for ``containers.create``."""
        options: dict[str, Any] = {}
        if self.nano_cpus is not None:
            options["nano_cpus"] = self.nano_cpus
        if self.memory_bytes is not None:
            options["mem_limit"] = self.memory_bytes
            options["memswap_limit"] = self.memory_bytes  # no swap beyond the limit
        if self.gpus > 0:
            options["device_requests"] = [DeviceRequest(count=self.gpus, capabilities=[["gpu"]])]
        return options


def plan_limits(configuration: Configuration | None, engine: EngineFacts) -> LimitPlan:
    """Decide NanoCpus, Memory and GPU requests for ``configuration`` on this engine."""
    if configuration is None:
        return LimitPlan()
    applied: list[str] = []
    not_applied: list[str] = []
    nano_cpus = memory_bytes = None
    if configuration.vcpu > 0:
        cpus = min(configuration.vcpu, engine.cpus)
        nano_cpus = cpus * 10**9
        applied.append(f"cpus={cpus} (NanoCpus)")
        if cpus < configuration.vcpu:
            not_applied.append(
                f"vcpu={configuration.vcpu}: capped at the Docker host's {engine.cpus} CPUs"
            )
    if configuration.memory_bytes > 0:
        asked = format_bytes(configuration.memory_bytes)
        memory_bytes = max(min(configuration.memory_bytes, engine.memory_bytes), MIN_MEMORY_BYTES)
        applied.append(f"memory={format_bytes(memory_bytes)} (Memory)")
        if memory_bytes < configuration.memory_bytes:
            not_applied.append(
                f"memory={asked}: capped at the Docker host's {format_bytes(engine.memory_bytes)}"
            )
        elif memory_bytes > configuration.memory_bytes:
            not_applied.append(f"memory={asked}: raised to the Docker engine's minimum of 6 MiB")
    gpus = 0
    if configuration.gpus > 0:
        if engine.has_gpu_runtime:
            gpus = configuration.gpus
            applied.append(f"gpus={gpus} (device request)")
        else:
            not_applied.append(
                f"gpus={configuration.gpus}: not applied: the Docker engine has no GPU runtime"
            )
    return LimitPlan(nano_cpus, memory_bytes, gpus, tuple(applied), tuple(not_applied))
