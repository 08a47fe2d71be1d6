"""What a model node's instance is told about inference: workers, queue limit, batching."""

from __future__ import annotations

from pier.controller.instance_specs import inference_args
from pier.domain.specs import parse_node_spec


def test_workers_follow_the_configuration_and_batching_is_off_by_default() -> None:
    spec = parse_node_spec({"model": "iris", "configuration": "c1.4"})
    assert inference_args(spec, queue_limit=32) == ("--workers", "4", "--max-queue", "32")


def test_the_node_s_batching_fields_reach_the_model_server() -> None:
    spec = parse_node_spec({"model": "iris", "max_batch_size": 16, "batch_delay_ms": 2.5})
    args = inference_args(spec, queue_limit=256)
    assert args[-4:] == ("--max-batch-size", "16", "--batch-delay-ms", "2.5")
