"""What to run for a node: the InstanceSpec a runtime gets for one new instance."""

from __future__ import annotations

import sys
from pathlib import Path

from pier.domain.configurations import get_configuration
from pier.domain.model_files import model_path
from pier.domain.names import InstanceId, NodeKey
from pier.domain.records import ModelRecord, NodeRecord
from pier.runtimes.base import InstanceSpec


def model_server_command(model: ModelRecord, models_dir: Path) -> tuple[str, ...]:
    """argv of pier's model server for ``model``; ``{port}`` is filled in by the runtime."""
    return (
        sys.executable, "-m", "pier.modelserver",
        "--name", model.name,
        "--version", str(model.version),
        "--format", model.format.value,
        "--path", str(model_path(models_dir, model.sha256, model.format)),
        "--host", "127.0.0.1",
        "--port", "{port}",
    )  # fmt: skip


def instance_spec(
    node: NodeRecord, instance_id: InstanceId, *, model: ModelRecord | None, models_dir: Path
) -> InstanceSpec:
    spec = node.spec
    env = {
        **spec.env,
        **spec.secret_env,
        "PIER_NODE": node.name,
        "PIER_PROJECT": node.project,
        "PIER_INSTANCE_ID": instance_id,
    }
    command: tuple[str, ...] = tuple(spec.command or ())
    if model is not None:
        command = model_server_command(model, models_dir)
    return InstanceSpec(
        instance_id=instance_id,
        node=NodeKey.parse(f"{node.project}/{node.name}"),
        command=command,
        args=tuple(spec.args or ()),
        env=env,
        configuration=get_configuration(spec.configuration),
        image=node.pinned_image or spec.image,
        port=spec.port,
        generation=node.generation,
    )
