"""The Python environment the Python backend's stub runs in.

The stub is a program that embeds the Python it finds first on PATH (with that
Python's environment, read from its ``pyvenv.cfg``; PYTHONPATH is ignored). Without a
numpy 1 to put first (see :mod:`.distribution`), that is the node's own Python, so
pier and the model's packages import as in pier's own server. With one, pier writes a
virtual environment of its own beside the model repository: the same interpreter, and
one ``.pth`` file that puts the numpy 1 directory first and then every entry of the
launcher's ``sys.path`` (its venv, pier's sources, PYTHONPATH), so numpy resolves to
numpy 1 and everything else to what the node has.
"""

from __future__ import annotations

import platform
import shutil
import sys
from pathlib import Path
from typing import Final

PTH_FILE: Final = "pier-triton-stub.pth"


def stub_bin_directory(directory: Path, stub_numpy: Path | None) -> Path:
    """The directory to put first on tritonserver's PATH: the running Python's own
    ``bin``, or (with ``stub_numpy``) that of an environment written at ``directory``."""
    if stub_numpy is None:
        return Path(sys.executable).parent
    return write_stub_environment(directory, stub_numpy) / "bin"


def write_stub_environment(directory: Path, stub_numpy: Path) -> Path:
    """A virtual environment at ``directory`` running this interpreter on numpy 1 from
    ``stub_numpy`` and this process's import path after it; returns ``directory``."""
    shutil.rmtree(directory, ignore_errors=True)
    interpreter = Path(sys.executable).resolve()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    packages = directory / "lib" / version / "site-packages"
    packages.mkdir(parents=True)
    (directory / "bin").mkdir()
    for name in ("python", "python3", version):
        (directory / "bin" / name).symlink_to(interpreter)
    (directory / "pyvenv.cfg").write_text(
        f"home = {interpreter.parent}\ninclude-system-site-packages = false\n"
        f"version = {platform.python_version()}\n"
    )
    entries = [str(stub_numpy.resolve())]
    entries += [entry for entry in sys.path if entry and Path(entry).is_dir()]
    (packages / PTH_FILE).write_text("".join(f"{entry}\n" for entry in entries))
    return directory
