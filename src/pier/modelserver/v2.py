"""Types and codecs of the KServe V2 / Open Inference Protocol over HTTP.

What matters for compatibility with ``tritonclient.http`` and its default settings:

* Tensors travel either as JSON (``data``: flat or nested list, plus ``shape`` and
  ``datatype``) or through the *binary tensor data* extension: the request body is a
  JSON header followed by raw tensor bytes; the header's length is in the
  ``Inference-Header-Content-Length`` HTTP header and each binary input says its size in
  ``parameters.binary_data_size``. Binary data follows the inputs' order in the header.
* Outputs are returned in binary when the requested output has ``parameters.binary_data``
  true, or, when it does not say, when the request has ``parameters.binary_data_output``
  true (tritonclient sets that when it requests no outputs explicitly). Such a response
  carries the same header, ``application/octet-stream`` content type, and
  ``parameters.binary_data_size`` per binary output instead of ``data``.
* ``BYTES`` elements in binary form are each a 4-byte little-endian length followed by
  the bytes; in JSON they are strings. In numpy they are object arrays of ``bytes``.
* Errors are ``{"error": "message"}``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
"""V2 datatype name -> numpy dtype (BYTES is an object array of ``bytes``)."""

_NAMES_BY_DTYPE: dict[np.dtype[Any], str] = {dt: name for name, dt in DATATYPES.items()}
_LENGTH = struct.Struct("<I")
_NUMPY_JSON = orjson.OPT_SERIALIZE_NUMPY


class V2Error(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(V2Error):
    status = 400


class ModelNotFound(V2Error):
    status = 404

    def __init__(self, name: str, version: str | None = None) -> None:
        # Triton's words: its example clients check for "Request for unknown model".
        what = f"{name!r}" if version is None else f"{name!r} version {version!r}"
        super().__init__(f"Request for unknown model: {what} is not found")


class ModelNotReady(V2Error):
    status = 503

    def __init__(self, name: str) -> None:
        super().__init__(f"model {name!r} is not ready")


class InferenceFailed(V2Error):
    status = 500


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The V2 datatype name for a numpy dtype; strings become BYTES."""
    name = _NAMES_BY_DTYPE.get(dtype)
    if name is not None:
        return name
    if dtype.kind in "USO":
        return "BYTES"
    raise ValueError(f"numpy dtype {dtype} has no V2 datatype")


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """An input or output a model declares; -1 in ``shape`` is a dynamic dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.datatype not in DATATYPES:
            raise ValueError(f"tensor {self.name!r}: unknown datatype {self.datatype!r}")

    @property
    def dtype(self) -> np.dtype[Any]:
        return DATATYPES[self.datatype]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def accepts_shape(self, shape: Sequence[int]) -> bool:
        """Whether a request's shape fits this spec (same rank, fixed dims equal)."""
        if len(shape) != len(self.shape):
            return False
        return all(want == -1 or want == got for want, got in zip(self.shape, shape, strict=True))

    def example(self) -> np.ndarray:
        """Zeros with every dynamic dimension set to 1, for a warm-up inference."""
        shape = tuple(1 if dim < 0 else dim for dim in self.shape)
        if self.datatype == "BYTES":
            return np.full(shape, b"", dtype=np.object_)
        return np.zeros(shape, dtype=self.dtype)


def tensor_from_json(datatype: str, shape: Sequence[int], data: Any) -> np.ndarray:
    """A numpy array from a JSON tensor's ``data`` (flat or nested list)."""
    if datatype == "BYTES":
        array = _bytes_from_json(data)
    else:
        array = np.asarray(data, dtype=DATATYPES[datatype])
    if array.size != math.prod(shape):
        raise BadRequest(f"has {array.size} elements in 'data' but shape {list(shape)}")
    return array.reshape(shape)


def _bytes_from_json(data: Any) -> np.ndarray:
    array = np.array(data, dtype=np.object_)
    flat = array.reshape(-1)
    for i, item in enumerate(flat):
        if isinstance(item, str):
            flat[i] = item.encode()
        elif not isinstance(item, bytes):
            raise BadRequest("BYTES data must be strings")
    return array


def tensor_from_binary(
    datatype: str, shape: Sequence[int], buffer: memoryview, offset: int, size: int
) -> np.ndarray:
    """A numpy array over ``size`` raw bytes at ``offset``, without copying."""
    if offset + size > len(buffer):
        raise BadRequest(f"binary_data_size {size} runs past the end of the request body")
    count = math.prod(shape)
    if datatype == "BYTES":
        array = _bytes_from_binary(buffer[offset : offset + size], count)
        return array.reshape(shape)
    dtype = DATATYPES[datatype]
    if size != count * dtype.itemsize:
        raise BadRequest(
            f"has binary_data_size {size} but shape {list(shape)} of {datatype} "
            f"needs {count * dtype.itemsize} bytes"
        )
    return np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(shape)


def _bytes_from_binary(chunk: memoryview, count: int) -> np.ndarray:
    items: list[bytes] = []
    offset, end = 0, len(chunk)
    while offset < end:
        if offset + 4 > end:
            raise BadRequest("truncated BYTES element length")
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += 4
        if offset + length > end:
            raise BadRequest("truncated BYTES element")
        items.append(bytes(chunk[offset : offset + length]))
        offset += length
    if len(items) != count:
        raise BadRequest(f"has {len(items)} BYTES elements but its shape needs {count}")
    array = np.empty(count, dtype=np.object_)
    array[:] = items
    return array


def _bytes_items(array: np.ndarray) -> list[bytes]:
    return [item.encode() if isinstance(item, str) else bytes(item) for item in array.flat]


def _json_data(datatype: str, array: np.ndarray) -> Any:
    if datatype == "BYTES":
        try:
            return [item.decode() for item in _bytes_items(array)]
        except UnicodeDecodeError as e:
            raise BadRequest("BYTES output is not UTF-8; request it with binary_data") from e
    return np.ascontiguousarray(array).reshape(-1)


def _binary_data(datatype: str, array: np.ndarray) -> memoryview:
    if datatype == "BYTES":
        items = _bytes_items(array)
        return memoryview(b"".join(_LENGTH.pack(len(item)) + item for item in items))
    return np.ascontiguousarray(array).reshape(-1).data


def encode_response(
    head: dict[str, Any], outputs: Sequence[tuple[str, str, np.ndarray, bool]]
) -> tuple[bytes, int | None]:
    """The response body and, when some output is binary, the JSON header's length.

    ``head`` holds model_name, model_version and id; each output is
    (name, datatype, array, binary).
    """
    tensors: list[dict[str, Any]] = []
    buffers: list[memoryview] = []
    for name, datatype, array, binary in outputs:
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": array.shape}
        if binary:
            buffer = _binary_data(datatype, array)
            tensor["parameters"] = {"binary_data_size": buffer.nbytes}
            buffers.append(buffer)
        else:
            tensor["data"] = _json_data(datatype, array)
        tensors.append(tensor)
    head["outputs"] = tensors
    header = orjson.dumps(head, option=_NUMPY_JSON)
    if not buffers:
        return header, None
    return b"".join([header, *buffers]), len(header)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
