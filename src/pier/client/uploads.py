"""A model's upload: its format told by its path, and its bytes (the file, or a gzip tar of
a model directory) read in chunks with progress."""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Final

from pier.domain.errors import InvalidSpec

UPLOAD_CHUNK_BYTES: Final = 1 << 20
UPLOAD_READ_TIMEOUT_S: Final = 300.0
"""How long the server may take to check an uploaded model before it answers."""

FORMATS_BY_SUFFIX: Final[Mapping[str, str]] = {
    ".onnx": "onnx",
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
}
FORMATS: Final = ("onnx", "sklearn", "python", "triton")
DIRECTORY_FORMATS: Final = frozenset({"python", "triton"})
"""Formats pushed as a directory (uploaded as a gzip tar)."""
PICKLE_WARNING: Final = (
    "a scikit-learn model is a pickle, and loading a pickle runs code from it: "
    "push it with trust=True (--trust) only if you trust where it came from"
)
PYTHON_MODEL_WARNING: Final = (
    "a Python model runs its model.py when pier checks it and in every instance: "
    "push it with trust=True (--trust) only if you trust where it came from"
)
TRITON_MODEL_WARNING: Final = (
    "a Triton model directory runs its backend's code (a model.py) in every instance: "
    "push it with trust=True (--trust) only if you trust where it came from"
)
RUNS_CODE: Final[Mapping[str, str]] = {
    "sklearn": PICKLE_WARNING,
    "python": PYTHON_MODEL_WARNING,
    "triton": TRITON_MODEL_WARNING,
}
"""Formats whose loading runs code from the model: pushing them needs trust."""


def detect_format(path: Path) -> str:
    """The model format told by a path: .onnx, .joblib/.pkl/.pickle, or a directory (a
    Triton model directory when it holds a config.pbtxt, else a Python model)."""
    if path.is_dir():
        return "triton" if (path / "config.pbtxt").is_file() else "python"
    if fmt := FORMATS_BY_SUFFIX.get(path.suffix.lower()):
        return fmt
    raise InvalidSpec(
        "format",
        f"cannot tell the model format of {str(path)!r} from its name; "
        f"give it as one of {', '.join(FORMATS)} (--format)",
    )


@contextlib.contextmanager
def upload_body(path: Path, fmt: str) -> Iterator[tuple[IO[bytes], int, str]]:
    """The bytes to upload: the file itself, or a gzip tar of a model directory."""
    if fmt not in DIRECTORY_FORMATS or (path.is_file() and path.suffix in (".gz", ".tgz")):
        with path.open("rb") as file:
            yield file, path.stat().st_size, path.name
        return
    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            members = sorted(path.iterdir()) if path.is_dir() else [path]
            for member in members:
                tar.add(member, arcname=member.name, filter=_skip_caches)
        size = archive.tell()
        archive.seek(0)
        yield archive, size, f"{path.stem if path.is_file() else path.name}.tar.gz"


def _skip_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = Path(info.name).parts
    if "__pycache__" in parts or info.name.endswith(".pyc") or ".git" in parts:
        return None
    return info


def read_chunks(
    file: IO[bytes], size: int, on_progress: Callable[[int, int], None] | None, *, head: bytes = b""
) -> Iterator[bytes]:
    if head:
        yield head
    sent = 0
    if on_progress is not None:
        on_progress(0, size)
    while chunk := file.read(UPLOAD_CHUNK_BYTES):
        yield chunk
        sent += len(chunk)
        if on_progress is not None:
            on_progress(sent, size)
