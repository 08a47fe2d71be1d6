"""Triton's classification extension: an output's top classes instead of its values.

An output requested with ``parameters.classification = N`` (``tritonclient``'s
``InferRequestedOutput(name, class_count=N)``) comes back as a ``BYTES`` tensor of the
N largest values with their index, as ``"value:index"`` strings, largest first (ties
keep index order). Floats are written as C's ``%f`` (``"0.987000:2"``), as Triton does.
A tensor with a batch dimension (rank 2 or more) is classified per row, the rest of
each row taken as one vector: the result's shape is ``[rows, N]``; a vector gives
``[N]``. N is capped at the number of classes.
"""

from __future__ import annotations

import numpy as np

from pier.modelserver.v2 import BadRequest

_NUMERIC_KINDS = "iuf"


def class_count(name: str, value: object) -> int:
    """The ``classification`` parameter of output ``name``, checked."""
    if type(value) is not int or value < 1:
        raise BadRequest(f"output {name!r}: classification must be a positive integer")
    return value


def classify(name: str, array: np.ndarray, count: int) -> np.ndarray:
    """The top ``count`` classes of ``array`` as an object array of ``bytes``."""
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise BadRequest(f"output {name!r} of {array.dtype} cannot be classified")
    rows = array.reshape(1, -1) if array.ndim <= 1 else array.reshape(array.shape[0], -1)
    count = min(count, rows.shape[1])
    text = "%f:%d" if array.dtype.kind == "f" else "%d:%d"
    result = np.empty((rows.shape[0], count), dtype=np.object_)
    for r, row in enumerate(rows):
        top = np.argsort(-row.astype(np.float64), kind="stable")[:count]
        result[r] = [(text % (row[i], i)).encode() for i in top]
    return result.reshape(count) if array.ndim <= 1 else result
