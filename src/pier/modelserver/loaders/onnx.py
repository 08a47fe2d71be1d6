"""ONNX models on onnxruntime's CPU provider.

Inputs and outputs come from the session; symbolic or unknown dimensions become -1.
Outputs that are not tensors (for example the ``ZipMap`` sequence of maps that skl2onnx
adds to classifiers unless told ``zipmap: False``) cannot travel over V2, so they are
left out of the metadata and never computed.

onnxruntime's ``InvalidArgument`` and ``Fail`` errors while running become
``ValueError`` (answered 400): names, datatypes and shapes are checked before the
session sees a request, so what it still rejects comes from the input's values.

The intra-op thread pool is limited to the CPUs this process may run on (its affinity
mask, which a runtime sets from the node's configuration): onnxruntime otherwise sizes
it from all the machine's cores and its spinning threads starve the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import structlog
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from pier.modelserver.v2 import TensorSpec

log = structlog.get_logger(__name__)

_INPUT_FAULTS = (ort_errors.InvalidArgument, ort_errors.Fail)

_DATATYPES: Mapping[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def _spec(arg: Any) -> TensorSpec | None:
    datatype = _DATATYPES.get(arg.type)
    if datatype is None:
        return None
    shape = tuple(dim if isinstance(dim, int) and dim >= 0 else -1 for dim in arg.shape)
    return TensorSpec(arg.name, datatype, shape)


def session_options() -> ort.SessionOptions:
    """CPU-friendly options: intra-op threads = CPUs in our affinity mask, no spinning."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning workers burn the core the event loop needs between requests.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class OnnxModel:
    """An onnxruntime session with V2 tensor specs."""

    platform = "onnxruntime_onnx"

    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session
        self.inputs: tuple[TensorSpec, ...] = ()
        self.outputs: tuple[TensorSpec, ...] = ()
        for arg in session.get_inputs():
            spec = _spec(arg)
            if spec is None:
                raise ValueError(f"ONNX input {arg.name!r} has unsupported type {arg.type}")
            self.inputs += (spec,)
        for arg in session.get_outputs():
            spec = _spec(arg)
            if spec is None:
                log.warning("output skipped", output=arg.name, type=arg.type)
                continue
            self.outputs += (spec,)
        self._string_inputs = frozenset(s.name for s in self.inputs if s.datatype == "BYTES")

    def predict(
        self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> Mapping[str, np.ndarray]:
        feed = dict(inputs)
        for name in self._string_inputs:
            feed[name] = _as_str(feed[name])
        try:
            results = self._session.run(list(outputs), feed)
        except _INPUT_FAULTS as e:
            # The server checked names, datatypes and shapes; what onnxruntime still
            # rejects depends on the values (inconsistent batch sizes, bad indices).
            raise ValueError(str(e)) from None
        return dict(zip(outputs, results, strict=True))


def _as_str(array: np.ndarray) -> np.ndarray:
    """onnxruntime wants ``str`` elements where V2 gives ``bytes``."""
    out = np.empty(array.shape, dtype=np.object_)
    out.flat[:] = [x.decode() if isinstance(x, bytes) else str(x) for x in array.flat]
    return out


def load(path: Path) -> OnnxModel:
    """Open an ONNX file in an onnxruntime CPU session."""
    session = ort.InferenceSession(
        str(path), sess_options=session_options(), providers=["CPUExecutionProvider"]
    )
    return OnnxModel(session)
