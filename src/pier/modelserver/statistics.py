"""Triton's statistics extension: counts and durations of one model's inferences.

``GET /v2/models/{name}[/versions/{v}]/stats`` (and ``/v2/models/stats`` for every
model) answers ``{"model_stats": [...]}`` in Triton's shape, which
``tritonclient``'s ``get_inference_statistics`` and ``perf_analyzer`` read:

* ``inference_count`` counts samples (the batch dimension), ``execution_count`` calls
  of the model; ``last_inference`` is the end of the latest one in ms since the epoch.
* ``inference_stats``: ``success`` and ``fail`` time whole requests from the start of
  their inference; ``queue`` the wait before the model ran; ``compute_input`` decoding
  the request, ``compute_infer`` the model, ``compute_output`` encoding the response.
  Each is ``{"count", "ns"}``. pier has no response cache: ``cache_hit``/``cache_miss``
  stay zero.
* ``batch_stats``: the compute durations per batch size.

Updates take a lock: inference may run on worker threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Duration:
    """How many times something happened and how long it took in all, in ns."""

    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += ns

    def to_json(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass(slots=True)
class Phases:
    """The durations of one request's (or batch's) parts, in ns."""

    queue_ns: int = 0
    input_ns: int = 0
    infer_ns: int = 0
    output_ns: int = 0


@dataclass(slots=True)
class _BatchStats:
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


_PHASES = ("queue", "compute_input", "compute_infer", "compute_output")
_UNUSED = ("cache_hit", "cache_miss")


class InferenceStatistics:
    """The statistics of one served model version."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self._lock = threading.Lock()
        self.inference_count = 0
        self.execution_count = 0
        self.last_inference_ms = 0
        self.success = Duration()
        self.fail = Duration()
        self._phases = {phase: Duration() for phase in _PHASES}
        self._batches: dict[int, _BatchStats] = {}

    def record_success(
        self, samples: int, total_ns: int, phases: Phases, *, requests: int = 1
    ) -> None:
        """``requests`` answered (a dynamic batch: more than one) by one execution of the
        model on ``samples`` rows."""
        with self._lock:
            self.inference_count += samples
            self.execution_count += 1
            self.last_inference_ms = time.time_ns() // 1_000_000
            self.success.add(total_ns, requests)
            for phase, ns in zip(_PHASES, _values(phases), strict=True):
                self._phases[phase].add(ns, requests)
            batch = self._batches.get(samples)
            if batch is None:
                batch = self._batches[samples] = _BatchStats()
            batch.compute_input.add(phases.input_ns)
            batch.compute_infer.add(phases.infer_ns)
            batch.compute_output.add(phases.output_ns)

    def record_failure(self, total_ns: int) -> None:
        with self._lock:
            self.fail.add(total_ns)

    def to_json(self) -> dict[str, Any]:
        """This model's entry of ``model_stats``."""
        with self._lock:
            inference = {
                "success": self.success.to_json(),
                "fail": self.fail.to_json(),
                **{phase: duration.to_json() for phase, duration in self._phases.items()},
                **{name: Duration().to_json() for name in _UNUSED},
            }
            batches = [
                {
                    "batch_size": size,
                    "compute_input": stats.compute_input.to_json(),
                    "compute_infer": stats.compute_infer.to_json(),
                    "compute_output": stats.compute_output.to_json(),
                }
                for size, stats in sorted(self._batches.items())
            ]
            return {
                "name": self.name,
                "version": self.version,
                "last_inference": self.last_inference_ms,
                "inference_count": self.inference_count,
                "execution_count": self.execution_count,
                "inference_stats": inference,
                "batch_stats": batches,
            }


def _values(phases: Phases) -> tuple[int, int, int, int]:
    return phases.queue_ns, phases.input_ns, phases.infer_ns, phases.output_ns
