"""Where engine triton finds tritonserver, and what it says when there is none: the
error names engine and the package to install; the wheel's layout is found under a
prefix's triton directory (where `make triton` installs it) or on the Python path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pier.modelserver.triton.distribution import TritonNotInstalled, find_distribution


def fake_wheel(entry: Path) -> Path:
    server = entry / "pytriton" / "tritonserver" / "bin" / "tritonserver"
    server.parent.mkdir(parents=True)
    server.write_text("#!/bin/sh\n")
    server.chmod(0o755)
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


def test_a_wheel_on_the_python_path_is_found_too(tmp_path: Path) -> None:
    server = fake_wheel(tmp_path / "site-packages")
    found = find_distribution(
        prefix=tmp_path / "venv", search_path=[str(tmp_path / "site-packages")], path_env=""
    )
    assert found.server == server
