"""Fixtures of the web UI's tests: one real `pier up` per module, with the iris model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import IrisModel, PierProcess, running_pier

FAST_SAMPLING = {"PIER_SERIES__SAMPLE_S": "0.5", "PIER_UI__POLL_S": "0.5",
                 "PIER_UI__CHART_POLL_S": "1"}  # fmt: skip


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, iris_onnx: IrisModel) -> Iterator[PierProcess]:
    """`pier up` with the iris model pushed, sampling and pages refreshing fast."""
    data_dir = tmp_path_factory.mktemp("ui") / "data"
    with running_pier(data_dir, env=FAST_SAMPLING, timeout_s=90) as pier:
        with pier.api() as api:
            pushed = api.post(
                "/api/v1/projects/default/models/iris",
                params={"format": "onnx"},
                content=iris_onnx.path.read_bytes(),
            )
        assert pushed.status_code == 201, pushed.text
        yield pier
