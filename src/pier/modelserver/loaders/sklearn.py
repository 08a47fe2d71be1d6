"""scikit-learn estimators saved with joblib or pickle.

Loading unpickles the file, which runs code from it: the control plane deploys such a
model only with an explicit trust flag, so nothing is enforced here.

Metadata conventions (the names skl2onnx gives a classifier exported with
``zipmap: False``, so that clients of a scikit-learn node and of its ONNX export use
the same names):

* one input ``input``, ``FP32``, shape ``[-1, n_features_in_]`` (``[-1, -1]`` when the
  estimator does not record ``n_features_in_``). The array is passed to the estimator
  as it is; scikit-learn converts it as it needs;
* output ``label``: what ``predict`` returns;
* output ``probabilities``: what ``predict_proba`` returns, only when the estimator
  has ``predict_proba``.

The outputs' datatypes and shapes are what the estimator returns for ``FP32`` input,
found by predicting once on zeros at load time (which is also the warm-up). So
``label`` is ``INT64`` for integer classes, ``BYTES`` for string classes and ``FP64``
(or ``FP32``) for regressors, shape ``[-1]`` (``[-1, n]`` for multi-output
estimators); ``probabilities`` is ``FP64`` ``[-1, n_classes]``, or ``FP32`` when the
estimator was fitted on float32 data. Only the requested outputs are computed, so a
request for ``label`` alone does not call ``predict_proba``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pier.modelserver.v2 import TensorSpec, datatype_of

INPUT = "input"
LABEL = "label"
PROBABILITIES = "probabilities"


def _output_spec(name: str, result: np.ndarray) -> TensorSpec:
    return TensorSpec(name, datatype_of(result.dtype), (-1, *result.shape[1:]))


class SklearnModel:
    """A scikit-learn estimator behind the V2 conventions described above."""

    platform = "sklearn"

    def __init__(self, estimator: Any) -> None:
        if not callable(getattr(estimator, "predict", None)):
            raise TypeError(f"{type(estimator).__name__} has no predict method")
        self._estimator = estimator
        n_features = int(getattr(estimator, "n_features_in_", -1))
        self.inputs = (TensorSpec(INPUT, "FP32", (-1, n_features)),)
        self._methods: dict[str, Callable[[np.ndarray], Any]] = {LABEL: estimator.predict}
        if callable(getattr(estimator, "predict_proba", None)):
            self._methods[PROBABILITIES] = estimator.predict_proba
        example = self.inputs[0].example()
        self.outputs = tuple(
            _output_spec(name, np.asarray(method(example)))
            for name, method in self._methods.items()
        )

    def predict(
        self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> Mapping[str, np.ndarray]:
        x = inputs[INPUT]
        return {name: np.asarray(self._methods[name](x)) for name in outputs}


def _unpickle(path: Path) -> Any:
    try:
        import joblib
    except ImportError:  # joblib comes with scikit-learn, but plain pickles need neither
        with path.open("rb") as f:
            return pickle.load(f)
    return joblib.load(path)


def load(path: Path) -> SklearnModel:
    """Unpickle an estimator (joblib or pickle) and derive its V2 specs."""
    return SklearnModel(_unpickle(path))
