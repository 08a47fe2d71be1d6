"""Whether a mirror answered what the primary answered: the outputs of two V2 answers.

Both answers are V2 JSON (``{"outputs": [{"name", "data", ...}]}``, the KServe / Open
Inference Protocol). Outputs are paired by name; each pair's ``data`` (flat or nested
lists) is compared element by element: numbers are equal within ``tolerance``
(absolutely or relatively, as ``math.isclose``), anything else when it is the same.
Equal bodies, the common case of a mirror serving the same model, are equal without
being parsed (when they have an ``"outputs"`` member). A chunked answer is compared by
its data (the chunks as the relay writes them: each read of the instance's answer is
one chunk, so two answers' chunks rarely fall alike). Anything that is not such an
answer (another content, a chunked body cut short, invalid JSON) is not compared at
all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import orjson

from pier.http.wire import CHUNKED

_NUMBERS: Final = (int, float)
"""What orjson makes of a JSON number (``type()`` of them: a bool is neither)."""


@dataclass(frozen=True, slots=True)
class Comparison:
    is_equal: bool
    max_abs_difference: float
    """Over the numbers that could be paired (0.0 if none could)."""


SAME: Final = Comparison(True, 0.0)
_CHUNKED_LINE: Final = b"\r\n" + CHUNKED
"""How the relay marks an answer it re-chunked (it drops the instance's own header)."""


def compare_answers(primary: bytes, mirrored: bytes, tolerance: float) -> Comparison | None:
    """Compare two whole HTTP answers' V2 outputs; None when either has none. Equal
    bodies are not parsed."""
    ours_body, theirs_body = _body(primary), _body(mirrored)
    if ours_body is None or theirs_body is None:
        return None
    if theirs_body == ours_body:
        return SAME if ours_body.find(b'"outputs"') >= 0 else None
    ours = _outputs(ours_body)
    if ours is None:
        return None
    theirs = _outputs(theirs_body)
    if theirs is None:
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
            if type(a) in _NUMBERS and type(b) in _NUMBERS:
                largest = max(largest, abs(a - b))
                is_equal = is_equal and math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
            else:
                is_equal = is_equal and a == b
    return Comparison(is_equal, largest)


def _body(answer: bytes) -> bytes | None:
    """The body of a whole HTTP answer (head and body), its data if it is chunked; None
    without a head or with a chunked body cut short."""
    end = answer.find(b"\r\n\r\n")
    if end < 0:
        return None
    body = answer[end + 4 :]
    if answer.find(_CHUNKED_LINE, 0, end + 2) < 0:
        return body
    return _dechunked(body)


def _dechunked(body: bytes) -> bytes | None:
    """The data of a chunked body (size in hex, CRLF, data, CRLF; to the chunk of size
    0), None if it is cut short or not chunked."""
    parts: list[bytes] = []
    at = 0
    while True:
        line_end = body.find(b"\r\n", at)
        if line_end < 0:
            return None
        try:
            size = int(body[at:line_end].partition(b";")[0], 16)
        except ValueError:
            return None
        if size == 0:
            return b"".join(parts)
        start = line_end + 2
        at = start + size + 2
        if body[at - 2 : at] != b"\r\n":
            return None
        parts.append(body[start : at - 2])


def _outputs(body: bytes) -> dict[str, list[Any]] | None:
    """``name -> flat data`` of a V2 answer's body, None if it is not one."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    outputs = parsed.get("outputs") if isinstance(parsed, dict) else None
    if not isinstance(outputs, list):
        return None
    found: dict[str, list[Any]] = {}
    for index, output in enumerate(outputs):
        if not isinstance(output, dict) or "data" not in output:
            return None
        data = output["data"]
        found[str(output.get("name", index))] = _flat(data) if isinstance(data, list) else [data]
    return found


def _flat(data: list[Any]) -> list[Any]:
    """The items of nested lists, in order (a flat list as it is)."""
    if not any(type(item) is list for item in data):
        return data
    flat: list[Any] = []
    for item in data:
        if type(item) is list:
            flat += _flat(item)
        else:
            flat.append(item)
    return flat
