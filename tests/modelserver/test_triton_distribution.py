"""Where engine triton finds tritonserver, and what it says when there is none: the
error names engine and the package to install; the wheel's layout is found under a
prefix's triton directory (where `make triton` installs it) or on the Python path,
with the numpy 1 its Python-backend stub is built for beside it (refused without it,
saying how to install it); the stub's environment imports that numpy first and pier
from the node's Python. An official image's tritonserver (on PATH, in
/opt/tritonserver) serves with its own Python backend's stub and its other backends."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pier.modelserver.triton.distribution import TritonNotInstalled, find_distribution
from pier.modelserver.triton.repository import write_backends
from pier.modelserver.triton.stub_environment import write_stub_environment


def fake_numpy(directory: Path, version: str = "1.26.4") -> Path:
    (directory / "numpy").mkdir(parents=True)
    (directory / "numpy" / "__init__.py").write_text(f"__version__ = {version!r}\n")
    return directory


def fake_wheel(entry: Path, *, stub_numpy: bool = True) -> Path:
    server = entry / "pytriton" / "tritonserver" / "bin" / "tritonserver"
    server.parent.mkdir(parents=True)
    server.write_text("#!/bin/sh\n")
    server.chmod(0o755)
    if stub_numpy:
        fake_numpy(entry / "stub-numpy")
    return server


def test_no_tritonserver_names_engine_and_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(TritonNotInstalled) as missing:
        find_distribution(prefix=tmp_path, search_path=[str(tmp_path)], path_env=str(tmp_path))
    message = str(missing.value)
    assert "engine triton" in message and "nvidia-pytriton" in message
    assert "make triton" in message


def test_the_wheel_is_found_where_make_triton_puts_it(tmp_path: Path) -> None:
    server = fake_wheel(tmp_path / "triton")
    found = find_distribution(prefix=tmp_path, search_path=[], path_env="")
    assert found.server == server
    assert found.libs == tmp_path / "triton" / "nvidia_pytriton.libs"
    assert found.stub_numpy == tmp_path / "triton" / "stub-numpy"


def test_under_numpy_2_the_wheel_without_numpy_1_beside_it_is_refused(tmp_path: Path) -> None:
    fake_wheel(tmp_path / "triton", stub_numpy=False)
    with pytest.raises(TritonNotInstalled) as missing:
        find_distribution(prefix=tmp_path, search_path=[], path_env="")
    message = str(missing.value)
    assert "engine triton needs numpy 1" in message and "make triton" in message
    assert str(tmp_path / "triton" / "stub-numpy") in message


def test_the_stub_imports_numpy_1_first_and_pier_from_the_node_s_python(
    tmp_path: Path,
) -> None:
    numpy1 = fake_numpy(tmp_path / "numpy1", version="1.0.stub")
    environment = write_stub_environment(tmp_path / "stub-python", numpy1)
    check = "import numpy, pier.modelserver.triton; print(numpy.__version__)"
    ran = subprocess.run(
        [environment / "bin" / "python3", "-c", check], capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "1.0.stub"


def test_a_wheel_on_the_python_path_is_found_too(tmp_path: Path) -> None:
    server = fake_wheel(tmp_path / "site-packages")
    found = find_distribution(
        prefix=tmp_path / "venv", search_path=[str(tmp_path / "site-packages")], path_env=""
    )
    assert found.server == server


def test_an_official_layout_on_path_serves_its_stub_and_other_backends(tmp_path: Path) -> None:
    root = tmp_path / "opt" / "tritonserver"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tritonserver").write_text("#!/bin/sh\n")
    (root / "bin" / "tritonserver").chmod(0o755)
    for backend in ("python", "onnxruntime"):
        (root / "backends" / backend).mkdir(parents=True)
    (root / "backends" / "python" / "triton_python_backend_stub").write_text("stub")
    (root / "backends" / "python" / "libtriton_python.so").write_text("backend")
    found = find_distribution(prefix=tmp_path, search_path=[], path_env=str(root / "bin"))
    assert found.root == root and found.libs is None and found.stub_numpy is None
    backends = write_backends(tmp_path / "repository" / "backends", found)
    assert (backends / "python" / "triton_python_backend_stub").read_text() == "stub"
    assert (backends / "python" / "libtriton_python.so").read_text() == "backend"
    assert (backends / "onnxruntime").resolve() == root / "backends" / "onnxruntime"
