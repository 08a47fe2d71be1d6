"""Fixtures of the end-to-end tests that need a Docker engine and the local registry."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.docker.images import build_and_push, missing_prerequisite


@pytest.fixture(scope="session")
def echo_image() -> Iterator[str]:
    from pier.runtimes.docker import probe_engine

    problem = probe_engine() or missing_prerequisite()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a Docker engine and registry: {problem}")
        pytest.skip(problem)
    yield build_and_push("echo:1")
