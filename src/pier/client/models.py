"""The Client's calls on models: push a file or directory, list, read, delete."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx

from pier.client.base import ClientBase, typed_answer
from pier.client.uploads import (
    RUNS_CODE,
    UPLOAD_READ_TIMEOUT_S,
    detect_format,
    read_chunks,
    upload_body,
)
from pier.domain.errors import InvalidSpec
from pier.domain.views import ModelList, ModelsDeleted, ModelVersion, ModelVersions


class ModelCalls(ClientBase):
    """Models and their versions."""

    def push_model(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        fmt: str | None = None,
        trust: bool = False,
        example: bytes | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ModelVersion:
        """Upload a model file (or a Python or Triton model directory) as a new version of
        ``name``;
        ``example``: a V2 JSON inference request the model accepts, for its warm-up."""
        path = Path(path)
        if not path.exists():
            raise InvalidSpec("path", f"{str(path)!r} does not exist")
        fmt = fmt or detect_format(path)
        if fmt in RUNS_CODE and not trust:
            raise InvalidSpec("trust", RUNS_CODE[fmt])
        head = example or b""
        headers = {"Content-Type": "application/octet-stream"}
        if example:
            headers["x-pier-example-length"] = str(len(example))
        with upload_body(path, fmt) as (body, size, filename):
            response = self._request(
                "POST",
                self._project_path("models", name),
                params={"format": fmt, "trust": str(trust).lower(), "filename": filename},
                content=read_chunks(body, size, on_progress, head=head),
                headers={**headers, "Content-Length": str(len(head) + size)},
                timeout=httpx.Timeout(
                    self.timeout_s, read=max(self.timeout_s, UPLOAD_READ_TIMEOUT_S)
                ),
            )
        return typed_answer(response, ModelVersion)

    def list_models(self) -> list[ModelVersion]:
        """Every version of every model in the project."""
        return typed_answer(self._request("GET", self._project_path("models")), ModelList).models

    def get_model(self, name: str) -> ModelVersions:
        """A model with all its versions."""
        return typed_answer(self._request("GET", self._project_path("models", name)), ModelVersions)

    def delete_model(self, name: str, version: int | None = None) -> ModelsDeleted:
        """Delete a model's versions (all, or one); ``pier.ModelInUse`` while a node uses
        them."""
        params = {} if version is None else {"version": version}
        response = self._request("DELETE", self._project_path("models", name), params=params)
        return typed_answer(response, ModelsDeleted)
