"""What a model node's instance is told about inference: workers, queue limit, batching;
for engine triton, the launcher's command line, in a local instance or in an image."""

from __future__ import annotations

from datetime import UTC, datetime

from pier.controller.instance_specs import inference_args, triton_command, triton_in_image_command
from pier.domain.records import ModelRecord
from pier.domain.specs import ModelFormat, parse_node_spec


def test_workers_follow_the_configuration_and_batching_is_off_by_default() -> None:
    spec = parse_node_spec({"model": "iris", "configuration": "c1.4"})
    assert inference_args(spec, queue_limit=32) == ("--workers", "4", "--max-queue", "32")


def test_the_node_s_batching_fields_reach_the_model_server() -> None:
    spec = parse_node_spec({"model": "iris", "max_batch_size": 16, "batch_delay_ms": 2.5})
    args = inference_args(spec, queue_limit=256)
    assert args[-4:] == ("--max-batch-size", "16", "--batch-delay-ms", "2.5")


def triton_argv(metadata: dict[str, object] | None = None, **fields: object) -> list[str]:
    model = ModelRecord(
        project="default", name="iris", version=3, format=ModelFormat.ONNX, sha256="0" * 64,
        size_bytes=1, metadata=metadata or {}, created_at=datetime.now(UTC),
    )  # fmt: skip
    spec = parse_node_spec({"model": "iris", "engine": "triton", **fields})
    return list(triton_command(model, "{workdir}/model/x.onnx", spec))


def test_engine_triton_runs_pier_s_launcher_with_its_metrics_on_the_extra_port() -> None:
    argv = triton_argv(configuration="c1.4")
    assert argv[1:3] == ["-m", "pier.modelserver.triton"]
    assert argv[argv.index("--port") + 1] == "{port}"
    assert argv[argv.index("--metrics-port") + 1] == "{port:8002}"
    assert argv[argv.index("--workers") + 1] == "4"
    assert "--max-batch-size" not in argv


def test_engine_triton_batches_on_one_model_instance() -> None:
    argv = triton_argv(configuration="c1.4", max_batch_size=32, batch_delay_ms=1)
    assert argv[argv.index("--workers") + 1] == "1"
    assert argv[argv.index("--max-batch-size") + 1] == "32"
    assert argv[argv.index("--batch-delay-ms") + 1] == "1"


def test_engine_triton_warms_up_on_the_example_the_model_was_pushed_with() -> None:
    assert "--example" not in triton_argv()
    argv = triton_argv({"example_sha256": "1" * 64})
    assert argv[argv.index("--example") + 1] == "{workdir}/model/example.json"


def test_engine_triton_in_an_image_runs_the_image_s_launcher_on_the_container_ports() -> None:
    model = ModelRecord(
        project="default", name="iris", version=1, format=ModelFormat.ONNX, sha256="0" * 64,
        size_bytes=1, metadata={}, created_at=datetime.now(UTC),
    )  # fmt: skip
    spec = parse_node_spec(
        {"model": "iris", "engine": "triton", "image": "triton:1", "args": ["--trace"]}
    )
    argv = list(triton_in_image_command(model, "/pier/model/x.onnx", spec))
    assert argv[:3] == ["python3", "-m", "pier.modelserver.triton"] and argv[-1] == "--trace"
    assert argv[argv.index("--path") + 1] == "/pier/model/x.onnx"
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--port") + 1] == "8080"
    assert argv[argv.index("--metrics-port") + 1] == "8002"
    assert argv[argv.index("--repository") + 1] == "/tmp/pier-triton"
