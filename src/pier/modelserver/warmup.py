"""The warm-up inference a model passes before it is ready.

With an example request (a V2 JSON inference request, the ``--example`` file), the
warm-up is that request, through the same decoding and encoding as any other. Without
one, inputs are derived from the model's declared inputs, every dynamic dimension set
to 1, trying values of each datatype in turn until the model accepts one set:

=========  ===========================================
datatype   values tried
=========  ===========================================
numeric    0, then 1
BOOL       false, then true
BYTES      ``"0"`` (text that parses as a number, JSON or a word), then ``""``, then ``"a"``
=========  ===========================================

Only a refusal of the input (what answers 400: ``ValueError``, ``TypeError``...) moves
on to the next set; any other failure is the model's own and ends the warm-up. A model
that refuses every set (or its example) fails to load with :class:`WarmUpFailed`, whose
message says why and how to give an example.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import orjson

from pier.modelserver.v2 import BadRequest, TensorSpec, V2Error

if TYPE_CHECKING:
    from pier.modelserver.dataplane import ServedModel

BYTES_VALUES: tuple[bytes, ...] = (b"0", b"", b"a")
NUMERIC_VALUES: tuple[int, ...] = (0, 1)
HINT = "give the model an example request it accepts: pier model push --example @req.json"


class WarmUpFailed(Exception):
    """The model refused its warm-up inference; the message says why."""


def warm_up(model: ServedModel, example: bytes | None) -> None:
    """One inference on ``example`` (a JSON request) or on derived inputs."""
    if example is not None:
        _warm_up_on_example(model, example)
        return
    reasons: list[str] = []
    for feed in derived_feeds(model.inputs.values()):
        try:
            results = model.predict(feed, model.output_names)
        except BadRequest as exc:
            if exc.message not in reasons:
                reasons.append(exc.message)
            continue
        except V2Error as exc:
            raise WarmUpFailed(f"warm-up of model {model.name!r} failed: {exc.message}") from None
        missing = sorted(set(model.output_names) - set(results))
        if missing:
            raise WarmUpFailed(f"warm-up of model {model.name!r} returned no output(s) {missing}")
        return
    raise WarmUpFailed(
        f"warm-up of model {model.name!r} failed on every input derived from its declared "
        f"inputs ({'; '.join(reasons)}); {HINT}"
    )


def _warm_up_on_example(model: ServedModel, example: bytes) -> None:
    try:
        request = orjson.loads(example)
        if not isinstance(request, dict):
            raise BadRequest("the example must be a JSON object")
        model.run_request(request, memoryview(example))
    except orjson.JSONDecodeError as exc:
        raise WarmUpFailed(f"the example request is not valid JSON: {exc}") from None
    except V2Error as exc:
        raise WarmUpFailed(
            f"warm-up of model {model.name!r} on its example request failed: {exc.message}"
        ) from None


def derived_feeds(specs: Iterable[TensorSpec]) -> Iterator[dict[str, np.ndarray]]:
    """Sets of inputs for ``specs``: the n-th set takes each datatype's n-th value (its
    last one once they run out)."""
    specs = list(specs)
    has_bytes = any(spec.datatype == "BYTES" for spec in specs)
    for attempt in range(len(BYTES_VALUES if has_bytes else NUMERIC_VALUES)):
        yield {spec.name: _example(spec, attempt) for spec in specs}


def _example(spec: TensorSpec, attempt: int) -> np.ndarray:
    shape = tuple(1 if dim < 0 else dim for dim in spec.shape)
    if spec.datatype == "BYTES":
        return np.full(shape, BYTES_VALUES[attempt], dtype=np.object_)
    value = NUMERIC_VALUES[min(attempt, len(NUMERIC_VALUES) - 1)]
    return np.full(shape, value, dtype=spec.dtype)
