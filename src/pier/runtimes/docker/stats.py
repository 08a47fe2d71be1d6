"""CPU percent between two stats samples of a container, as `docker stats` computes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pier.domain.names import InstanceId


class CpuSamples:
    """The previous CPU sample of each instance; a percent needs two."""

    def __init__(self) -> None:
        self._samples: dict[InstanceId, tuple[int, int]] = {}

    def percent(self, instance_id: InstanceId, cpu: Mapping[str, Any]) -> float:
        """Container CPU time over host CPU time since the previous call, times CPUs (0.0
        on the first call)."""
        total = int((cpu.get("cpu_usage") or {}).get("total_usage") or 0)
        system = int(cpu.get("system_cpu_usage") or 0)
        online = int(cpu.get("online_cpus") or 1)
        previous = self._samples.get(instance_id)
        self._samples[instance_id] = (total, system)
        if previous is None or system <= previous[1]:
            return 0.0
        return max(0.0, (total - previous[0]) / (system - previous[1]) * online * 100.0)

    def forget(self, instance_id: InstanceId) -> None:
        self._samples.pop(instance_id, None)

    def clear(self) -> None:
        self._samples.clear()
