"""Model loaders: one per saved-model format, behind one small protocol.

A loader turns a path into a :class:`LoadedModel`, which declares its inputs and
outputs as V2 :class:`~pier.modelserver.v2.TensorSpec` values and predicts on a dict of
numpy arrays. The formats' modules are imported lazily, so that describing an ONNX
model does not import scikit-learn and the other way round.

Formats (see :func:`detect_format`):

* ``onnx`` — a ``.onnx`` file, run by onnxruntime on CPU (``platform``
  ``onnxruntime_onnx``).
* ``sklearn`` — a ``.joblib``/``.pkl``/``.pickle`` file of a scikit-learn estimator
  (``platform`` ``sklearn``). Loading it runs code from the file: the control plane
  only deploys it with an explicit trust flag.
* ``python`` — a directory with ``model.py`` holding a model class (``platform``
  ``python``); see :mod:`pier.modelserver.loaders.python` for the contract.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pier.modelserver.v2 import TensorSpec

FORMATS: Mapping[str, str] = {
    "onnx": "pier.modelserver.loaders.onnx",
    "sklearn": "pier.modelserver.loaders.sklearn",
    "python": "pier.modelserver.loaders.python",
}
"""Format name -> module with a ``load(path) -> LoadedModel`` function."""

_SUFFIXES: Mapping[str, str] = {
    ".onnx": "onnx",
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
}


@runtime_checkable
class LoadedModel(Protocol):
    """A model ready to predict. ``predict`` is called from worker threads, several at
    once (onnxruntime sessions and fitted scikit-learn estimators allow it)."""

    platform: str
    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]

    def predict(
        self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> Mapping[str, np.ndarray]:
        """Run the model; return at least the requested ``outputs`` by name."""
        ...


class Loader(Protocol):
    """What each format module provides as ``load``."""

    def __call__(self, path: Path) -> LoadedModel: ...


class UnknownFormat(ValueError):
    def __init__(self, fmt: str) -> None:
        super().__init__(f"unknown model format {fmt!r}; choose one of {', '.join(FORMATS)}")


def detect_format(path: Path) -> str | None:
    """The format of a saved model from its name, or None when it is not recognised."""
    if path.is_dir():
        return "python" if (path / "model.py").is_file() else None
    return _SUFFIXES.get(path.suffix.lower())


def get_loader(fmt: str) -> Loader:
    """The ``load`` function of a format, importing its module on first use."""
    module_name = FORMATS.get(fmt)
    if module_name is None:
        raise UnknownFormat(fmt)
    loader: Loader = importlib.import_module(module_name).load
    return loader


def load_model(path: Path, fmt: str) -> LoadedModel:
    """Load a saved model of a given format."""
    return get_loader(fmt)(path)


def describe(model: LoadedModel) -> dict[str, Any]:
    """The V2 model metadata fields that come from the model itself."""
    return {
        "platform": model.platform,
        "inputs": [spec.to_json() for spec in model.inputs],
        "outputs": [spec.to_json() for spec in model.outputs],
    }


def describe_model(path: Path, fmt: str) -> dict[str, Any]:
    """Load a model without serving it and return its platform, inputs and outputs.

    The control plane calls this to validate an upload and to show the model's API. It
    raises whatever the format's loader raises for a broken file. For ``sklearn`` and
    ``python`` models this runs the user's code (unpickling, ``model.py``, ``load()``
    and one warm-up-sized ``predict``): do it in a throwaway process, or only for
    trusted uploads.
    """
    return describe(load_model(path, fmt))


__all__ = [
    "FORMATS",
    "LoadedModel",
    "Loader",
    "UnknownFormat",
    "describe",
    "describe_model",
    "detect_format",
    "get_loader",
    "load_model",
]
