"""Where NVIDIA's tritonserver is: the nvidia-pytriton package's copy, or one on PATH.

The wheel keeps the server under ``pytriton/tritonserver`` (``bin/tritonserver``,
``backends/python``, ``python_backend_stubs/3.X``) and the shared libraries it and the
Python backend's stub link (the CUDA runtime among them, loaded even on CPU) in
``nvidia_pytriton.libs`` beside the package. pier only runs the binary, so the package
may be installed without its dependencies (which pin numpy below 2): ``make triton``
puts it in ``<venv>/triton``; an installation in the running Python's path, or a
``tritonserver`` on PATH (Triton's own layout, ``<root>/bin`` and ``<root>/backends``),
serve as well.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

INSTALL_HINT: Final = (
    "install NVIDIA's nvidia-pytriton package, which ships it (`make triton` puts it in "
    ".venv/triton; or `pip install --no-deps nvidia-pytriton`), or put a tritonserver on PATH"
)


class TritonNotInstalled(Exception):
    """No tritonserver where pier looks for one: the message says what to install."""

    def __init__(self) -> None:
        super().__init__(
            f"engine triton needs NVIDIA's tritonserver, not found here: {INSTALL_HINT}"
        )


@dataclass(frozen=True, slots=True)
class TritonDistribution:
    """One tritonserver installation."""

    root: Path
    """The directory holding ``bin/tritonserver`` and ``backends``."""
    libs: Path | None
    """Shared libraries the server and the stub need (the wheel's), if any."""

    @property
    def server(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def python_backend(self) -> Path:
        return self.root / "backends" / "python"

    def stub(self, version: str) -> Path:
        """The Python backend's stub built for Python ``version`` ("3.11")."""
        built = self.root / "python_backend_stubs" / version / "triton_python_backend_stub"
        return built if built.is_file() else self.python_backend / "triton_python_backend_stub"


def find_distribution(
    *,
    prefix: Path | None = None,
    search_path: Sequence[str] | None = None,
    path_env: str | None = None,
) -> TritonDistribution:
    """The first tritonserver found in ``<prefix>/triton``, on ``search_path`` (default:
    ``sys.path``), then on ``path_env`` (default: PATH); TritonNotInstalled otherwise."""
    prefix = Path(sys.prefix) if prefix is None else prefix
    entries = [prefix / "triton", *map(Path, sys.path if search_path is None else search_path)]
    for found in _wheel_installations(entries):
        return found
    on_path = shutil.which(
        "tritonserver", path=os.environ.get("PATH") if path_env is None else path_env
    )
    if on_path is not None:
        return TritonDistribution(Path(on_path).resolve().parent.parent, None)
    raise TritonNotInstalled


def _wheel_installations(entries: Iterable[Path]) -> Iterable[TritonDistribution]:
    for entry in entries:
        found = TritonDistribution(
            entry / "pytriton" / "tritonserver", entry / "nvidia_pytriton.libs"
        )
        if os.access(found.server, os.X_OK):
            yield found
