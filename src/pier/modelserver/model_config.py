"""Triton's model configuration extension: ``GET /v2/models/{name}/config``.

The document is Triton's ``ModelConfig`` as JSON, derived from the served model, so
that ``tritonclient``'s ``get_model_config`` and tools built on it (``perf_analyzer``)
find what they look for:

* ``input``/``output``: name, ``data_type`` (``TYPE_FP32``...; ``BYTES`` is
  ``TYPE_STRING``) and ``dims``.
* ``max_batch_size``: with dynamic batching on and a model whose tensors all start
  with a batch dimension, the node's maximum batch size, and ``dims`` leave the batch
  dimension out (Triton's convention); otherwise 0 and ``dims`` are the whole shape
  (-1 for a dynamic dimension).
* ``dynamic_batching`` (only when on): ``max_queue_delay_microseconds`` from the
  node's batch delay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pier.modelserver.v2 import TensorSpec

_TYPE_NAMES = {"BYTES": "TYPE_STRING"}


def triton_data_type(datatype: str) -> str:
    """Triton's config name of a V2 datatype: ``FP32`` -> ``TYPE_FP32``."""
    return _TYPE_NAMES.get(datatype, f"TYPE_{datatype}")


def model_config(
    *,
    name: str,
    platform: str,
    backend: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    max_batch_size: int = 0,
    batch_delay_s: float = 0.0,
) -> dict[str, Any]:
    """The configuration of a model; ``max_batch_size`` above 1 means dynamic batching."""
    batched = max_batch_size > 1 and all(spec.shape[:1] == (-1,) for spec in (*inputs, *outputs))
    config: dict[str, Any] = {
        "name": name,
        "platform": platform,
        "backend": backend,
        "max_batch_size": max_batch_size if batched else 0,
        "input": [_tensor(spec, batched) | {"format": "FORMAT_NONE"} for spec in inputs],
        "output": [_tensor(spec, batched) for spec in outputs],
        "instance_group": [{"name": name, "kind": "KIND_CPU", "count": 1}],
        "version_policy": {"latest": {"num_versions": 1}},
        "parameters": {},
        "model_warmup": [],
    }
    if batched:
        config["dynamic_batching"] = {
            "preferred_batch_size": [max_batch_size],
            "max_queue_delay_microseconds": round(batch_delay_s * 1_000_000),
        }
    return config


def _tensor(spec: TensorSpec, batched: bool) -> dict[str, Any]:
    dims = list(spec.shape[1:] if batched else spec.shape)
    tensor: dict[str, Any] = {
        "name": spec.name,
        "data_type": triton_data_type(spec.datatype),
        "dims": dims,
    }
    if not dims:  # one value per row: Triton writes it as [1] reshaped to []
        tensor |= {"dims": [1], "reshape": {"shape": []}}
    return tensor
