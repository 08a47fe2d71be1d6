"""pier's model in Triton's Python backend: ``TritonPythonModel`` loads the model with
pier's loaders and runs Triton's requests on it.

The stub that runs this file is the running Python's (the launcher puts its ``bin``
first on PATH), so pier and its dependencies import as in pier's own server. With
dynamic batching on, Triton hands ``execute`` several requests at once: those that can
be concatenated (same requested outputs, same inner shapes and types) run as one
``predict`` and are split back by rows; if that call fails, each request of the group
runs alone, so a bad request fails alone (as :mod:`pier.modelserver.batching` does).

Tensors cross between Triton and numpy with the stub's own ``as_numpy()`` and
``Tensor(name, array)``, BYTES included: the stub runs on numpy 1, which the wheel's
stub is built against (:mod:`.stub_environment`).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog
import triton_python_backend_utils as pb_utils

from pier.modelserver.dataplane import ServedModel
from pier.modelserver.loaders import LoadedModel, load_model
from pier.modelserver.warmup import WarmUpFailed, warm_up
from pier.observability.logging import configure_logging

Arrays = Mapping[str, np.ndarray]
log = structlog.get_logger("pier.modelserver.triton")


class TritonPythonModel:
    """The Python backend's model class (the name Triton looks for)."""

    def initialize(self, args: Mapping[str, str]) -> None:
        """Load the model and warm it up as pier's own server does (on the node's
        example request, else on inputs derived from the model), so that Triton reports
        it ready only once it is warm; a failed warm-up fails the load, logged first."""
        configure_logging()  # key=value lines on the stub's stderr, Triton's log
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config["parameters"].items()}
        self._model: LoadedModel = load_model(
            Path(parameters["pier_path"]), parameters["pier_format"]
        )
        self._all_outputs = tuple(spec.name for spec in self._model.outputs)
        example = parameters.get("pier_example")
        served = ServedModel(args["model_name"], args["model_version"], self._model)
        try:
            warm_up(served, None if example is None else Path(example).read_bytes())
        except WarmUpFailed as exc:
            log.error("model load failed", model=served.name, error=str(exc))
            raise

    def execute(self, requests: Sequence[Any]) -> list[Any]:
        """One response per request, in order."""
        answers: list[Arrays | Exception | None] = [None] * len(requests)
        groups: dict[Hashable, list[tuple[int, Arrays, tuple[str, ...]]]] = {}
        for index, request in enumerate(requests):
            try:
                inputs, outputs = self._read(request)
            except Exception as exc:
                answers[index] = exc
                continue
            key = (outputs, tuple((n, a.shape[1:], a.dtype.str) for n, a in sorted(inputs.items())))
            groups.setdefault(key, []).append((index, inputs, outputs))
        for group in groups.values():
            for index, answer in zip((g[0] for g in group), self._run_group(group), strict=True):
                answers[index] = answer
        return [_response(answer) for answer in answers]

    def _read(self, request: Any) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
        inputs = {}
        for spec in self._model.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, spec.name)
            if tensor is None:
                raise ValueError(f"input {spec.name!r} is missing")
            inputs[spec.name] = tensor.as_numpy()
        return inputs, tuple(request.requested_output_names()) or self._all_outputs

    def _run_group(
        self, group: Sequence[tuple[int, Arrays, tuple[str, ...]]]
    ) -> list[Arrays | Exception]:
        if len(group) == 1:
            return [self._predict(group[0][1], group[0][2])]
        rows = [len(next(iter(inputs.values()))) for _, inputs, _ in group]
        combined = {
            name: np.concatenate([inputs[name] for _, inputs, _ in group]) for name in group[0][1]
        }
        answer = self._predict(combined, group[0][2])
        if isinstance(answer, Exception):
            return [self._predict(inputs, outputs) for _, inputs, outputs in group]
        cuts = np.cumsum(rows)[:-1]
        parts = {name: np.split(array, cuts) for name, array in answer.items()}
        return [{name: split[i] for name, split in parts.items()} for i in range(len(group))]

    def _predict(self, inputs: Arrays, outputs: tuple[str, ...]) -> Arrays | Exception:
        try:
            answer = self._model.predict(inputs, outputs)
            return {name: answer[name] for name in outputs}
        except Exception as exc:
            return exc


def _response(answer: Arrays | Exception | None) -> Any:
    if not isinstance(answer, Mapping):
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(answer)))
    return pb_utils.InferenceResponse(output_tensors=[_tensor(n, a) for n, a in answer.items()])


def _tensor(name: str, array: np.ndarray) -> Any:
    array = np.ascontiguousarray(array)
    if array.dtype.kind in "SU":  # str elements are encoded as UTF-8 by the stub
        array = array.astype(np.object_)
    return pb_utils.Tensor(name, array)
