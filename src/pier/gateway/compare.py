"""Whether a mirror answered what the primary answered: the outputs of two V2 answers.

Both answers are V2 JSON (``{"outputs": [{"name", "data", ...}]}``, the KServe / Open
Inference Protocol). Outputs are paired by name; each pair's ``data`` (flat or nested
lists) is compared element by element: numbers are equal within ``tolerance``
(absolutely or relatively, as ``math.isclose``), anything else when it is the same.
Anything that is not such an answer (another content, a chunked copy, invalid JSON) is
not compared at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Comparison:
    is_equal: bool
    max_abs_difference: float
    """Over the numbers that could be paired (0.0 if none could)."""


def compare_answers(primary: bytes, mirrored: bytes, tolerance: float) -> Comparison | None:
    """Compare two whole HTTP answers' V2 outputs; None when either has none."""
    ours, theirs = _outputs(primary), _outputs(mirrored)
    if ours is None or theirs is None:
        return None
    is_equal = ours.keys() == theirs.keys()
    largest = 0.0
    for name, data in ours.items():
        other = theirs.get(name)
        if other is None:
            continue
        if len(data) != len(other):
            is_equal = False
        for a, b in zip(data, other, strict=False):
            if _is_number(a) and _is_number(b):
                largest = max(largest, abs(a - b))
                is_equal = is_equal and math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
            else:
                is_equal = is_equal and a == b
    return Comparison(is_equal, largest)


def _outputs(answer: bytes) -> dict[str, list[Any]] | None:
    """``name -> flat data`` of a V2 answer (head and body), None if it is not one."""
    end = answer.find(b"\r\n\r\n")
    if end < 0:
        return None
    try:
        body = orjson.loads(answer[end + 4 :])
    except orjson.JSONDecodeError:
        return None
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(outputs, list):
        return None
    found: dict[str, list[Any]] = {}
    for index, output in enumerate(outputs):
        if not isinstance(output, dict) or "data" not in output:
            return None
        found[str(output.get("name", index))] = list(_flat(output["data"]))
    return found


def _flat(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        for item in data:
            yield from _flat(item)
    else:
        yield data


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
