"""Where NVIDIA's tritonserver is: the nvidia-pytriton package's copy, or one on PATH.

The wheel keeps the server under ``pytriton/tritonserver`` (``bin/tritonserver``,
``backends/python``, ``python_backend_stubs/3.X``) and the shared libraries it and the
Python backend's stub link (the CUDA runtime among them, loaded even on CPU) in
``nvidia_pytriton.libs`` beside the package. pier only runs the binary, so the package
may be installed without its dependencies (which pin numpy below 2): ``make triton``
puts it in ``<venv>/triton``; an installation in the running Python's path, or a
``tritonserver`` on PATH (Triton's own layout, ``<root>/bin`` and ``<root>/backends``),
serve as well.

The wheel's Python-backend stub is built against numpy 1: under numpy 2 it reads every
array it makes or takes with a stride of 0 (numeric tensors are garbage, a BYTES tensor
kills the stub). So under numpy 2 the wheel counts as installed only with numpy 1
beside it, in ``<triton>/stub-numpy`` (``make triton`` puts it there), which the stub
imports ahead of the node's packages (:func:`.stub_environment.write_stub_environment`).
"""

from __future__ import annotations

import dataclasses
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
STUB_NUMPY_DIR: Final = "stub-numpy"
"""Beside the wheel's ``pytriton``: numpy 1 for the Python backend's stub."""
STUB_NUMPY_HINT: Final = (
    "engine triton needs numpy 1 for the Python backend of the nvidia-pytriton wheel at {where} "
    "(its stub is built against numpy 1 and this Python has numpy {version}): `make triton` "
    "installs it, or `pip install --no-deps --target {target} 'numpy<2'`"
)


class TritonNotInstalled(Exception):
    """No usable tritonserver where pier looks for one: the message says what to install."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or f"engine triton needs NVIDIA's tritonserver, not found here: {INSTALL_HINT}"
        )


@dataclass(frozen=True, slots=True)
class TritonDistribution:
    """One tritonserver installation."""

    root: Path
    """The directory holding ``bin/tritonserver`` and ``backends``."""
    libs: Path | None
    """Shared libraries the server and the stub need (the wheel's), if any."""
    stub_numpy: Path | None = None
    """A directory holding numpy 1 that the Python backend's stub imports first (the
    wheel's, under numpy 2); None: the stub runs on the node's own packages."""

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
        return _with_stub_numpy(found)
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


def _with_stub_numpy(wheel: TritonDistribution) -> TritonDistribution:
    """The wheel with the numpy 1 its stub needs: none under numpy 1, else ``stub-numpy``
    beside it, else TritonNotInstalled saying how to install it."""
    import numpy as np

    if int(np.__version__.split(".")[0]) < 2:
        return wheel
    entry = wheel.root.parent.parent
    target = entry / STUB_NUMPY_DIR
    if not (target / "numpy" / "__init__.py").is_file():
        raise TritonNotInstalled(
            STUB_NUMPY_HINT.format(where=entry, version=np.__version__, target=target)
        )
    return dataclasses.replace(wheel, stub_numpy=target)
