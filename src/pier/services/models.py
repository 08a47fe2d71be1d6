"""Model use cases: push (stream, hash, validate, store content-addressed) and list.

Validation runs pier's model server in a subprocess (``--describe``): the control
plane never loads a user's pickle or Python class in its own process.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pier.domain.errors import InvalidSpec, ModelInUse
from pier.domain.model_files import model_path
from pier.domain.names import validate_name
from pier.domain.specs import ModelFormat
from pier.services.views import model_view
from pier.store.repository import Repository

DESCRIBE_TIMEOUT_S = 120.0


class ModelService:
    def __init__(self, repo: Repository, models_dir: Path) -> None:
        self._repo = repo
        self._dir = models_dir

    async def push(
        self,
        project: str,
        name: str,
        body: AsyncIterator[bytes],
        *,
        fmt: str,
        trust: bool,
        actor: str,
    ) -> dict[str, Any]:
        """Store an uploaded model as the next version of ``name``."""
        self._repo.require_project(project)
        validate_name(name, field="name")
        model_format = _parse_format(fmt)
        if model_format is ModelFormat.SKLEARN and not trust:
            raise InvalidSpec(
                "trust",
                "loading a scikit-learn pickle runs its code; "
                "push it with trust (pier model push --trust) if you trust it",
            )
        tmp_dir = self._dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir)
        tmp = Path(tmp_name)
        try:
            digest, size = await _receive(body, fd)
            if size == 0:
                raise InvalidSpec("body", "the model file is empty")
            final = model_path(self._dir, digest, model_format)
            final.parent.mkdir(parents=True, exist_ok=True)
            if model_format is ModelFormat.PYTHON:
                if not final.exists():
                    _unpack(tmp, final)
            else:
                os.replace(tmp, final)
            try:
                metadata = await describe(final, model_format)
            except InvalidSpec:
                if not self._repo.is_model_file_used(digest):
                    _remove(final)  # not a model: keep no file that no version refers to
                raise
        finally:
            tmp.unlink(missing_ok=True)
        record = self._repo.add_model(
            project, name, fmt=model_format, sha256=digest, size_bytes=size, metadata=metadata
        )
        self._repo.add_event(
            project,
            kind="model_pushed",
            actor=actor,
            message=f"model {name} version {record.version} pushed by {actor}",
        )
        return model_view(record)

    def list(self, project: str, name: str | None = None) -> list[dict[str, Any]]:
        self._repo.require_project(project)
        models = self._repo.list_models(project, name)
        if name is not None and not models:
            self._repo.get_model(project, name)  # raises ModelNotFound
        return [model_view(m) for m in models]

    def delete(
        self, project: str, name: str, version: int | None = None, *, actor: str
    ) -> builtins.list[dict[str, Any]]:
        """Delete a model's versions (all, or one) unless a node uses them: ModelInUse."""
        doomed = [m for m in self.list(project, name) if version in (None, m["version"])]
        if not doomed:
            self._repo.get_model(project, name, version)  # raises ModelNotFound
        users = [
            node.name
            for node in self._repo.list_nodes(project)
            if node.spec.model == name and version in (None, node.spec.model_version)
        ]
        if users:
            raise ModelInUse(project, name, version, users)
        self._repo.remove_models(project, name, version)
        for model in doomed:
            if not self._repo.is_model_file_used(model["sha256"]):
                _remove(model_path(self._dir, model["sha256"], ModelFormat(model["format"])))
        versions = ", ".join(str(m["version"]) for m in doomed)
        self._repo.add_event(
            project,
            kind="model_deleted",
            actor=actor,
            message=f"model {name} version(s) {versions} deleted by {actor}",
        )
        return doomed


def _remove(path: Path) -> None:
    """Delete a model file or unpacked Python model directory."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _parse_format(fmt: str) -> ModelFormat:
    try:
        return ModelFormat(fmt)
    except ValueError:
        choices = ", ".join(f.value for f in ModelFormat)
        raise InvalidSpec(
            "format", f"unknown model format {fmt!r}; choose one of {choices}"
        ) from None


async def _receive(body: AsyncIterator[bytes], fd: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        async for chunk in body:
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def _unpack(archive: Path, target: Path) -> None:
    """Extract a gzip tar of a Python model directory, refusing unsafe members."""
    staging = Path(tempfile.mkdtemp(dir=target.parent))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InvalidSpec("body", f"a Python model must be a tar archive: {exc}") from None
        if not (staging / "model.py").is_file():
            raise InvalidSpec("body", "a Python model directory needs a model.py at its root")
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


async def describe(path: Path, fmt: ModelFormat) -> dict[str, Any]:
    """The model's V2 metadata, read by the model server in a subprocess."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pier.modelserver", "--describe", "--name", "model",
        "--format", fmt.value, "--path", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), DESCRIBE_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        raise InvalidSpec("body", f"loading the model took over {DESCRIBE_TIMEOUT_S:g} s") from None
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        raise InvalidSpec("body", f"not a loadable {fmt.value} model: {reason}")
    try:
        result: dict[str, Any] = json.load(io.BytesIO(out))
    except ValueError:
        raise InvalidSpec("body", "the model server could not describe this model") from None
    return result
