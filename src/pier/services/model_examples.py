"""The example request a model is pushed with (``pier model push --example @req.json``).

An upload carries it ahead of the model: with header ``x-pier-example-length: N``, the
first N bytes of the body are the example (a V2 JSON inference request), the rest is the
model, as the V2 protocol's ``Inference-Header-Content-Length`` puts a JSON header
before binary data. The example is checked, stored by its SHA-256 under the data dir,
and named in the model's metadata (``example_sha256``); each instance's model server
warms the model up on it (``--example``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import orjson

from pier.domain.errors import BodyTooLarge, InvalidSpec
from pier.domain.model_files import example_path

EXAMPLE_SETTING = "models.max_example_bytes (env PIER_MODELS__MAX_EXAMPLE_BYTES)"
EXAMPLE_HEADER = "x-pier-example-length"


async def split_example(
    body: AsyncIterator[bytes], length: int, *, limit_bytes: int
) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first ``length`` bytes of ``body`` (the example), and the rest of it."""
    if length > limit_bytes:
        raise BodyTooLarge(limit_bytes, what="the example request", setting=EXAMPLE_SETTING)
    chunks = body.__aiter__()
    head = bytearray()
    rest = b""
    while len(head) < length:
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            raise InvalidSpec(
                "example", f"the body ended before the {length} bytes of {EXAMPLE_HEADER}"
            ) from None
        need = length - len(head)
        head += chunk[:need]
        rest = chunk[need:]

    async def remainder() -> AsyncIterator[bytes]:
        if rest:
            yield rest
        async for chunk in chunks:
            yield chunk

    return bytes(head), remainder()


def check_example(example: bytes) -> None:
    """InvalidSpec (field ``example``) unless it is a JSON inference request."""
    try:
        request = orjson.loads(example)
    except orjson.JSONDecodeError as exc:
        raise InvalidSpec("example", f"the example request is not JSON: {exc}") from None
    inputs = request.get("inputs") if isinstance(request, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise InvalidSpec(
            "example", "the example must be a V2 inference request with an 'inputs' list"
        )


def store_example(models_dir: Path, example: bytes) -> tuple[str, Path | None]:
    """Store ``example`` by its SHA-256: the digest, and the file if this call made it."""
    digest = hashlib.sha256(example).hexdigest()
    path = example_path(models_dir, digest)
    if path.exists():
        return digest, None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(example)
    os.replace(partial, path)
    return digest, path
