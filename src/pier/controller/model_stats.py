"""A model node instance's own figures, from its model server's statistics
(``GET /v2/models/stats``, Triton's statistics extension, which pier's model server and
tritonserver both answer): inferences, and the time requests waited in the queue and
the model computed, added up over every model it serves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from pier.controller.probe_client import BadAnswer, fetch

STATS_PATH: Final = "/v2/models/stats"
STATS_MAX_BYTES: Final = 4 << 20
"""A statistics answer larger than this is not read (a Triton server of many models
answers some kilobytes per model)."""


@dataclass(frozen=True, slots=True)
class ModelServerCounts:
    """Counters since the model server started."""

    inferences: float = 0.0
    """Samples inferred (Triton's ``inference_count``)."""
    queued: float = 0.0
    """Requests timed in the queue, and their time there in seconds."""
    queue_s: float = 0.0
    computed: float = 0.0
    """Model runs timed, and their compute time in seconds."""
    compute_s: float = 0.0

    def since(self, before: ModelServerCounts | None) -> ModelServerCounts:
        """The increase since ``before``; a server that restarted counts from zero."""
        if before is None or self.inferences < before.inferences or self.queued < before.queued:
            return self
        return ModelServerCounts(
            self.inferences - before.inferences,
            self.queued - before.queued,
            self.queue_s - before.queue_s,
            self.computed - before.computed,
            self.compute_s - before.compute_s,
        )


def parse_model_stats(body: dict[str, Any]) -> ModelServerCounts:
    """Every model's (and version's) statistics of one answer, added up."""
    inferences = queued = queue_ns = computed = compute_ns = 0.0
    for model in body.get("model_stats") or ():
        stats = model.get("inference_stats") or {}
        queue = stats.get("queue") or {}
        compute = stats.get("compute_infer") or {}
        inferences += float(model.get("inference_count") or 0)
        queued += float(queue.get("count") or 0)
        queue_ns += float(queue.get("ns") or 0)
        computed += float(compute.get("count") or 0)
        compute_ns += float(compute.get("ns") or 0)
    return ModelServerCounts(inferences, queued, queue_ns / 1e9, computed, compute_ns / 1e9)


async def read_model_stats(endpoint: str, timeout_s: float) -> ModelServerCounts | None:
    """The instance's counters (``endpoint``: ``http://host:port``); None when it did not
    answer them in ``timeout_s``, or not as statistics."""
    address = urlsplit(endpoint)
    if address.scheme != "http" or address.hostname is None:
        return None
    try:
        status, body = await fetch(
            address.hostname, address.port or 80, STATS_PATH,
            timeout_s=timeout_s, max_body_bytes=STATS_MAX_BYTES,
        )  # fmt: skip
        if status != 200:
            return None
        return parse_model_stats(json.loads(body))
    except (OSError, TimeoutError, BadAnswer, ValueError, AttributeError, TypeError):
        return None
