"""What to run for a node: the InstanceSpec a runtime gets for one new instance."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from pier.domain.configurations import get_configuration
from pier.domain.model_files import example_path, model_path
from pier.domain.names import InstanceId, NodeKey
from pier.domain.records import ModelRecord, NodeRecord
from pier.domain.specs import TRITON_METRICS_PORT, Engine, NodeSpec
from pier.runtimes.base import InstanceSpec, Mount

DEFAULT_LAUNCHER: Final = ("python3", "-m", "pier.modelserver")
"""How a model in an image starts pier's model server unless the node says otherwise."""
CONTAINER_MODEL_DIR: Final = "/pier/model"
"""Where a model served from an image is mounted (read-only) inside its containers."""
CONTAINER_MODEL_PORT: Final = 8080
LOCAL_MODEL_DIR: Final = "model"
"""Where a local instance's copy of its model lies, in the instance's own directory."""


EXAMPLE_FILE: Final = "example.json"
"""The model's example request (if it was pushed with one), next to the model."""


def _example_option(model: ModelRecord, path: str) -> tuple[str, ...]:
    """``--example`` and the model's example request beside the model at ``path``, if
    it was pushed with one."""
    if "example_sha256" not in model.metadata:
        return ()
    return ("--example", f"{path.rsplit('/', 1)[0]}/{EXAMPLE_FILE}")


def _model_server_args(model: ModelRecord, *, path: str, host: str, port: str) -> tuple[str, ...]:
    return (
        "--name", model.name,
        "--version", str(model.version),
        "--format", model.format.value,
        "--path", path,
        "--host", host,
        "--port", port,
        *_example_option(model, path),
    )  # fmt: skip


def inference_args(
    spec: NodeSpec, *, queue_limit: int, default_max_body_bytes: int | None = None
) -> tuple[str, ...]:
    """How the model server runs inference: a worker thread per vCPU of the node's
    configuration, the queue limit, the node's body limit (its ``max_body_bytes``, else
    ``default_max_body_bytes``, the gateway's: one limit for the whole path), and dynamic
    batching when the node asks for it."""
    args: tuple[str, ...] = (
        "--workers", str(get_configuration(spec.configuration).vcpu),
        "--max-queue", str(queue_limit),
    )  # fmt: skip
    body_limit = default_max_body_bytes if spec.max_body_bytes is None else spec.max_body_bytes
    if body_limit is not None:
        args += ("--max-body-bytes", str(body_limit))
    if spec.max_batch_size is not None and spec.max_batch_size > 1:
        args += ("--max-batch-size", str(spec.max_batch_size))
        args += ("--batch-delay-ms", f"{spec.batch_delay_ms or 0.0:g}")
    return args


def model_server_command(
    model: ModelRecord, path: str, inference: Sequence[str] = ()
) -> tuple[str, ...]:
    """argv of pier's model server for ``model`` at ``path``; ``{port}`` and ``{workdir}``
    are filled in by the runtime."""
    return (
        sys.executable, "-m", "pier.modelserver",
        *_model_server_args(model, path=path, host="127.0.0.1", port="{port}"),
        *inference,
    )  # fmt: skip


TRITON_LAUNCHER: Final = ("python3", "-m", "pier.modelserver.triton")
"""How engine triton starts in an image unless the node says otherwise (``command``)."""
CONTAINER_TRITON_REPOSITORY: Final = "/tmp/pier-triton"
"""Where pier's launcher writes the model repository inside an engine triton container."""


def triton_command(model: ModelRecord, path: str, spec: NodeSpec) -> tuple[str, ...]:
    """argv of engine triton in a local instance: pier's launcher writes the model
    repository in the instance's directory, then becomes tritonserver on the instance's
    port, its metrics on the second port (``{port:8002}``, filled in by the runtime)."""
    return (
        sys.executable, "-m", "pier.modelserver.triton",
        *_triton_args(model, spec, path=path, repository="{workdir}/triton", host="127.0.0.1",
                      port="{port}", metrics_port=f"{{port:{TRITON_METRICS_PORT}}}"),
    )  # fmt: skip


def triton_in_image_command(
    model: ModelRecord, container_path: str, spec: NodeSpec
) -> tuple[str, ...]:
    """argv of engine triton in a container: the image's pier launcher (``command``, else
    ``python3 -m pier.modelserver.triton``) writes the repository in the container for
    the model mounted read-only at ``container_path``, then becomes the image's
    tritonserver on the container's model port and Triton's metrics port."""
    return (
        *(spec.command or TRITON_LAUNCHER),
        *_triton_args(model, spec, path=container_path, repository=CONTAINER_TRITON_REPOSITORY,
                      host="0.0.0.0", port=str(CONTAINER_MODEL_PORT),
                      metrics_port=str(TRITON_METRICS_PORT)),
        *(spec.args or ()),
    )  # fmt: skip


def _triton_args(
    model: ModelRecord,
    spec: NodeSpec,
    *,
    path: str,
    repository: str,
    host: str,
    port: str,
    metrics_port: str,
) -> tuple[str, ...]:
    """The launcher's arguments. One model instance per vCPU, or one when batching:
    Triton's batcher then fills one instance's batches instead of splitting them (faster
    on the compute-bound model of bench/modelnode.py, about 1000 against 800 requests/s
    at concurrency 32 on one CPU)."""
    batching: tuple[str, ...] = ()
    instances = get_configuration(spec.configuration).vcpu
    if spec.max_batch_size is not None and spec.max_batch_size > 1:
        instances = 1
        batching = (
            "--max-batch-size", str(spec.max_batch_size),
            "--batch-delay-ms", f"{spec.batch_delay_ms or 0.0:g}",
        )  # fmt: skip
    return (
        "--name", model.name, "--version", str(model.version),
        "--format", model.format.value, "--path", path,
        "--repository", repository,
        "--host", host, "--port", port, "--metrics-port", metrics_port,
        "--workers", str(instances),
        *batching,
        *_example_option(model, path),
    )  # fmt: skip


def model_in_image_command(
    model: ModelRecord,
    container_path: str,
    launcher: Sequence[str] | None,
    args: Sequence[str] | None,
    inference: Sequence[str] = (),
) -> tuple[str, ...]:
    """argv of pier's model server inside a container, serving the model mounted at
    ``container_path``."""
    port = str(CONTAINER_MODEL_PORT)
    return (
        *(launcher or DEFAULT_LAUNCHER),
        *_model_server_args(model, path=container_path, host="0.0.0.0", port=port),
        *inference,
        *(args or ()),
    )


def _example_mount(model: ModelRecord, models_dir: Path, directory: str) -> tuple[Mount, ...]:
    """The model's example request, put next to the model, if it was pushed with one."""
    digest = model.metadata.get("example_sha256")
    if not isinstance(digest, str):
        return ()
    return (Mount(example_path(models_dir, digest).resolve(), f"{directory}/{EXAMPLE_FILE}"),)


def instance_spec(
    node: NodeRecord,
    instance_id: InstanceId,
    *,
    model: ModelRecord | None,
    models_dir: Path,
    queue_limit: int,
    default_max_body_bytes: int | None = None,
) -> InstanceSpec:
    """``default_max_body_bytes``: the gateway's body limit, which a node without its own
    ``max_body_bytes`` has, at the gateway and in its model server alike."""
    spec = node.spec
    inference = inference_args(
        spec, queue_limit=queue_limit, default_max_body_bytes=default_max_body_bytes
    )
    env = {
        **spec.env,
        **spec.secret_env,
        "PIER_NODE": node.name,
        "PIER_PROJECT": node.project,
        "PIER_INSTANCE_ID": instance_id,
    }
    command: tuple[str, ...] = tuple(spec.command or ())
    args: tuple[str, ...] = tuple(spec.args or ())
    port = spec.port
    mounts: tuple[Mount, ...] = ()
    if model is not None and spec.image is not None:
        source = model_path(models_dir, model.sha256, model.format).resolve()
        target = f"{CONTAINER_MODEL_DIR}/{source.name}"
        if spec.engine is Engine.TRITON:
            command = triton_in_image_command(model, target, spec)
        else:
            command = model_in_image_command(model, target, spec.command, spec.args, inference)
        args, port = (), CONTAINER_MODEL_PORT
        mounts = (Mount(source, target), *_example_mount(model, models_dir, CONTAINER_MODEL_DIR))
    elif model is not None:  # a local instance gets its own copy, in its own directory
        source = model_path(models_dir, model.sha256, model.format).resolve()
        target = f"{LOCAL_MODEL_DIR}/{source.name}"
        if spec.engine is Engine.TRITON:
            command = triton_command(model, f"{{workdir}}/{target}", spec)
        else:
            command = model_server_command(model, f"{{workdir}}/{target}", inference)
        mounts = (Mount(source, target), *_example_mount(model, models_dir, LOCAL_MODEL_DIR))
    return InstanceSpec(
        instance_id=instance_id,
        node=NodeKey.parse(f"{node.project}/{node.name}"),
        command=command,
        args=args,
        env=env,
        configuration=get_configuration(spec.configuration),
        image=node.pinned_image or spec.image,
        port=port,
        generation=node.generation,
        extra_ports=spec.extra_ports,
        mounts=mounts,
        placement=tuple(spec.placement),
    )
