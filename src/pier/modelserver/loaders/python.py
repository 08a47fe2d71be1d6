"""Python model classes: a directory holding ``model.py``.

The contract a user's ``model.py`` follows::

    import numpy as np

    class Model:
        # Declared API: V2 datatypes, -1 for a dynamic dimension.
        inputs = [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
        outputs = [{"name": "y", "datatype": "FP32", "shape": [-1]}]

        def load(self) -> None:
            # Called once, before the first request. Read files relative to
            # pathlib.Path(__file__).parent.
            ...

        def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {"y": inputs["x"].sum(axis=1)}

* **Which class.** The class named ``Model``; failing that, the only class defined in
  ``model.py`` that has both ``load`` and ``predict``. It is created with no arguments.
* **Imports.** The directory is put first on ``sys.path``, so ``model.py`` can import
  modules that sit next to it.
* **Inputs and outputs** are class attributes: sequences of dicts with ``name``,
  ``datatype`` and ``shape`` (tuples ``(name, datatype, shape)`` work too). Requests
  are checked against ``inputs`` before ``predict`` sees them, so ``predict`` gets every
  declared input with the declared dtype. Input arrays may be read-only views of the
  request body: copy one before changing it in place.
* **predict** returns a dict with at least the declared outputs; values are converted
  to the declared datatype (``BYTES`` accepts ``str`` or ``bytes`` elements). Extra keys
  are ignored. An exception from ``predict`` fails that request only: ``ValueError``,
  ``TypeError``, ``KeyError`` and ``IndexError`` answer 400 (taken to be caused by the
  input), anything else 500.
* **Warm-up.** Before the server reports ready, ``predict`` is called once with zeros
  (empty strings for ``BYTES``), every dynamic dimension set to 1; if it raises, the
  model fails to load. Make ``predict`` accept such input.
* **Threads.** ``predict`` runs on the server's worker threads, never on its event
  loop: health probes are answered while it runs, however long it takes, and up to
  ``--workers`` calls (the node's vCPUs) run at once. State shared between calls
  needs a lock. With dynamic batching (``--max-batch-size``) one call may hold the
  rows of several requests.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pier.modelserver.v2 import InferenceFailed, TensorSpec

MODULE_FILE = "model.py"
CLASS_NAME = "Model"


class ModelClassError(ValueError):
    """``model.py`` does not follow the contract; the message says how."""


def _import(directory: Path) -> ModuleType:
    path = directory / MODULE_FILE
    if not path.is_file():
        raise ModelClassError(f"{directory} has no {MODULE_FILE}")
    sys.path.insert(0, str(directory))
    spec = importlib.util.spec_from_file_location("pier_user_model", path)
    if spec is None or spec.loader is None:
        raise ModelClassError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def find_model_class(module: ModuleType) -> type[Any]:
    """The class named ``Model``, else the only class defining ``load`` and ``predict``."""
    named = getattr(module, CLASS_NAME, None)
    if inspect.isclass(named):
        return named
    candidates = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
        and callable(getattr(cls, "load", None))
        and callable(getattr(cls, "predict", None))
    ]
    if len(candidates) != 1:
        found = ", ".join(cls.__name__ for cls in candidates) or "none"
        raise ModelClassError(
            f"{MODULE_FILE} must define a class {CLASS_NAME!r}, or exactly one class with "
            f"load() and predict() (found: {found})"
        )
    return candidates[0]


def _specs(instance: Any, attribute: str) -> tuple[TensorSpec, ...]:
    declared = getattr(instance, attribute, None)
    if not declared:
        raise ModelClassError(f"{type(instance).__name__}.{attribute} must list its tensors")
    specs = []
    for item in declared:
        try:
            if isinstance(item, Mapping):
                name, datatype, shape = item["name"], item["datatype"], item["shape"]
            else:
                name, datatype, shape = item
            specs.append(TensorSpec(str(name), str(datatype), tuple(int(d) for d in shape)))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelClassError(
                f"{type(instance).__name__}.{attribute}: {item!r} is not a tensor "
                f"(name, datatype, shape): {e}"
            ) from None
    return tuple(specs)


class PythonModel:
    """A user's model class behind the contract above."""

    platform = "python"

    def __init__(self, instance: Any) -> None:
        self._instance = instance
        self.inputs = _specs(instance, "inputs")
        self.outputs = _specs(instance, "outputs")
        self._dtypes = {spec.name: spec.dtype for spec in self.outputs}

    def predict(
        self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> Mapping[str, np.ndarray]:
        results = self._instance.predict(dict(inputs))
        if not isinstance(results, Mapping):
            raise InferenceFailed(f"predict() returned {type(results).__name__}, not a dict")
        converted = {}
        for name in outputs:
            if name not in results:
                raise InferenceFailed(f"predict() returned no output {name!r}")
            converted[name] = np.asarray(results[name], dtype=self._dtypes[name])
        return converted


def load(path: Path) -> PythonModel:
    """Import ``model.py`` from a directory, create its model class and call ``load()``."""
    cls = find_model_class(_import(path))
    instance = cls()
    model = PythonModel(instance)  # checks the declared specs before the (slow) load
    instance.load()
    return model
