"""Fixtures of the end-to-end tests that need a Docker engine and the local registry."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.docker.images import build_and_push, missing_prerequisite
from tests.docker.python_image import build_modelserver_image, missing_python_image_prerequisite


def _skip_unless_ready(problem: str | None) -> None:
    """Skip on a developer's machine without Docker; CI must have everything."""
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a Docker engine and registry: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="session")
def echo_image() -> Iterator[str]:
    from pier.runtimes.docker import probe_engine

    _skip_unless_ready(probe_engine() or missing_prerequisite())
    yield build_and_push("echo:1")


@pytest.fixture(scope="session")
def modelserver_image() -> Iterator[str]:
    """An image with Python and pier installed (tests/docker/python_image.py)."""
    from pier.runtimes.docker import probe_engine

    _skip_unless_ready(probe_engine() or missing_python_image_prerequisite())
    yield build_modelserver_image()


@pytest.fixture(scope="session")
def triton_image() -> Iterator[str]:
    """A Triton image with pier installed (tests/docker/triton_image.py)."""
    from pier.runtimes.docker import probe_engine
    from tests.docker.triton_image import build_triton_image, missing_triton_image_prerequisite

    _skip_unless_ready(probe_engine() or missing_triton_image_prerequisite())
    yield build_triton_image()
