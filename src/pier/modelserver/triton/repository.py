"""The model repository tritonserver serves for one node: ``<repository>/<model>/``.

For a model in one of pier's formats pier writes ``config.pbtxt`` (Triton's
``ModelConfig`` in protobuf text), derived from the loaded model as the configuration
extension of pier's own server is (:func:`pier.modelserver.model_config.model_config`):
inputs, outputs, ``max_batch_size`` and ``dynamic_batching`` when the node asks for
batching and the model has a batch dimension, one instance per worker; the Python
backend runs it through pier's loaders (:mod:`.backend`), told the model's format and
path in ``parameters``. A pushed Triton model directory is copied as it is, its
``name`` set to the model's (Triton requires the directory's name), dynamic batching
added when the node asks for it and the directory allows batches.

``backends/python`` is the distribution's Python backend with the stub built for the
running Python, as tritonserver looks for the stub in the backend's directory; the
distribution's other backends are linked beside it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from pier.modelserver.loaders import load_model
from pier.modelserver.model_config import model_config
from pier.modelserver.triton.distribution import TritonDistribution
from pier.modelserver.v2 import TensorSpec

CONFIG_FILE: Final = "config.pbtxt"
BACKEND_MODEL: Final = (
    "from pier.modelserver.triton.backend import TritonPythonModel  # noqa: F401\n"
)
"""The version directory's model.py: pier's Python-backend model."""
_DATATYPES: Final = {"TYPE_STRING": "BYTES"}


def read_config(directory: Path) -> model_config_pb2.ModelConfig:
    """The ``config.pbtxt`` of a Triton model directory; ValueError naming what is wrong."""
    try:
        text = (directory / CONFIG_FILE).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {CONFIG_FILE}: {exc}") from None
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ValueError(f"{CONFIG_FILE} is not a Triton model configuration: {exc}") from None


def describe_directory(directory: Path) -> dict[str, Any]:
    """The V2 metadata of a Triton model directory, from its configuration: what the
    control plane stores at push (nothing in it is run)."""
    config = read_config(directory)
    if not any(child.is_dir() and child.name.isdigit() for child in directory.iterdir()):
        raise ValueError("a Triton model directory needs a version directory (1/, 2/...)")
    batch = [-1] if config.max_batch_size > 0 else []

    def tensor(t: Any) -> dict[str, Any]:
        name = model_config_pb2.DataType.Name(t.data_type)
        datatype = _DATATYPES.get(name, name.removeprefix("TYPE_"))
        return {"name": t.name, "datatype": datatype, "shape": [*batch, *t.dims]}

    return {
        "platform": config.platform or config.backend,
        "inputs": [tensor(t) for t in config.input],
        "outputs": [tensor(t) for t in config.output],
    }


def write_repository(
    repository: Path,
    *,
    name: str,
    version: str,
    fmt: str,
    model: Path,
    workers: int,
    max_batch_size: int,
    batch_delay_s: float,
    example: Path | None = None,
) -> None:
    """Write ``repository/name`` for the model at ``model`` (see the module docstring);
    ``example``: the request pier's backend warms the model up on (a pier format's)."""
    target = repository / name
    shutil.rmtree(target, ignore_errors=True)
    if fmt == "triton":
        shutil.copytree(model, target, copy_function=shutil.copyfile)
        for directory, _, _ in os.walk(target):  # the instance's copy was read-only
            os.chmod(directory, 0o755)
        config = read_config(target)
        config.name = name
        if (
            max_batch_size > 1
            and config.max_batch_size > 0
            and not config.HasField("dynamic_batching")
        ):
            config.dynamic_batching.max_queue_delay_microseconds = round(batch_delay_s * 1e6)
    else:
        loaded = load_model(model, fmt)
        config = pier_model_config(
            name, fmt, model.resolve(), loaded.inputs, loaded.outputs,
            workers=workers, max_batch_size=max_batch_size, batch_delay_s=batch_delay_s,
            example=None if example is None else example.resolve(),
        )  # fmt: skip
        (target / version).mkdir(parents=True)
        (target / version / "model.py").write_text(BACKEND_MODEL)
    (target / CONFIG_FILE).write_text(text_format.MessageToString(config))


def pier_model_config(
    name: str,
    fmt: str,
    path: Path,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    *,
    workers: int,
    max_batch_size: int,
    batch_delay_s: float,
    example: Path | None = None,
) -> model_config_pb2.ModelConfig:
    """The Python backend's configuration of a model in one of pier's formats: where the
    backend finds the model and its example request, in ``parameters``."""
    document = model_config(
        name=name, platform="", backend="python", inputs=inputs, outputs=outputs,
        max_batch_size=max_batch_size, batch_delay_s=batch_delay_s,
    )  # fmt: skip
    document.pop("model_warmup")
    document["instance_group"] = [{"kind": "KIND_CPU", "count": workers}]
    document["parameters"] = {
        "pier_format": {"string_value": fmt},
        "pier_path": {"string_value": str(path)},
    }
    if example is not None:
        document["parameters"]["pier_example"] = {"string_value": str(example)}
    return json_format.ParseDict(document, model_config_pb2.ModelConfig())


def write_backends(directory: Path, distribution: TritonDistribution) -> Path:
    """``directory/python``: the distribution's Python backend, with the stub for this
    Python; its other backends (an official image's onnxruntime, ...) linked beside it,
    for the Triton model directories that name them."""
    python = directory / "python"
    shutil.rmtree(directory, ignore_errors=True)
    python.mkdir(parents=True)
    for backend in distribution.python_backend.parent.iterdir():
        if backend.name != "python":
            (directory / backend.name).symlink_to(backend)
    for item in distribution.python_backend.iterdir():
        if item.name != "triton_python_backend_stub":
            (python / item.name).symlink_to(item)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    (python / "triton_python_backend_stub").symlink_to(distribution.stub(version))
    return directory
