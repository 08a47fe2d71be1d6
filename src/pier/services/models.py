"""Model use cases: push (stream, hash, validate, store content-addressed) and list.

Validation runs pier's model server in a subprocess (``--describe``): the control
plane never loads a user's pickle or Python class in its own process. That subprocess
runs user code (a pickle, a model.py), so it runs in the same sandbox as local instances
(pier.sandbox): the sandbox user, a clean environment, a directory of its own outside the
data dir holding a copy of the uploaded model, and nothing else of pier's files.

An upload is bounded (ModelSettings): refused from its Content-Length before the body
is read, or once a body sent without one grows past the limit; it is streamed to a temp
file, never held in memory. A Python model archive is checked member by member (size,
count, only plain files and directories) before anything is unpacked, off the event
loop. A refused upload leaves nothing behind under the models directory.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any

from pier.domain.errors import BodyTooLarge, InvalidSpec, ModelInUse
from pier.domain.event_kinds import EventKind
from pier.domain.model_files import UNPACKED, model_path
from pier.domain.names import validate_model_name
from pier.domain.specs import ModelFormat
from pier.domain.views import ModelVersion
from pier.sandbox import MODEL_SERVER_ENV, Sandbox
from pier.services.model_examples import check_example, split_example, store_example
from pier.services.views import model_view
from pier.settings import ModelSettings
from pier.store.repository import Repository

DESCRIBE_TIMEOUT_S = 120.0
UPLOAD_SETTING = "models.max_upload_bytes (env PIER_MODELS__MAX_UPLOAD_BYTES)"
UNPACKED_SETTING = "models.max_unpacked_bytes (env PIER_MODELS__MAX_UNPACKED_BYTES)"
FILES_SETTING = "models.max_files (env PIER_MODELS__MAX_FILES)"


RUNS_CODE = {
    ModelFormat.SKLEARN: "loading a scikit-learn pickle runs its code",
    ModelFormat.PYTHON: "a Python model runs its model.py (when pier checks it, and in every "
    "instance)",
    ModelFormat.TRITON: "a Triton model directory runs its backend's code (a model.py) in "
    "every instance",
}
"""Formats whose loading runs code from the upload: they need trust."""


class ModelService:
    def __init__(
        self,
        repo: Repository,
        models_dir: Path,
        limits: ModelSettings | None = None,
        *,
        sandbox: Sandbox,
    ) -> None:
        self._repo = repo
        self._dir = models_dir
        self._limits = limits or ModelSettings()
        self._sandbox = sandbox

    @property
    def limits(self) -> ModelSettings:
        return self._limits

    async def push(
        self,
        project: str,
        name: str,
        body: AsyncIterator[bytes],
        *,
        fmt: str,
        trust: bool,
        actor: str,
        declared_bytes: int | None = None,
        example_bytes: int | None = None,
    ) -> ModelVersion:
        """Store an uploaded model as the next version of ``name``. ``declared_bytes``:
        the request's Content-Length, checked before the body is read; ``example_bytes``:
        the length of the example request ahead of the model in ``body``
        (:mod:`pier.services.model_examples`)."""
        self._repo.require_project(project)
        validate_model_name(name, field="name")
        model_format = _parse_format(fmt)
        if model_format in RUNS_CODE and not trust:
            raise InvalidSpec(
                "trust",
                f"{RUNS_CODE[model_format]}; "
                "push it with trust (pier model push --trust) if you trust it",
            )
        limit = self._limits.max_upload_bytes
        if declared_bytes is not None and declared_bytes - (example_bytes or 0) > limit:
            raise BodyTooLarge(limit, what="the model upload", setting=UPLOAD_SETTING)
        example = None
        if example_bytes is not None:
            example, body = await split_example(
                body, example_bytes, limit_bytes=self._limits.max_example_bytes
            )
            check_example(example)
        tmp_dir = self._dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir)
        tmp = Path(tmp_name)
        created: Path | None = None  # the stored model if this push made it: undone on failure
        example_file: Path | None = None  # the same for the example
        try:
            digest, size = await _receive(body, fd, limit_bytes=limit)
            if size == 0:
                raise InvalidSpec("body", "the model file is empty")
            final = model_path(self._dir, digest, model_format)
            final.parent.mkdir(parents=True, exist_ok=True)
            if not final.exists():
                created = final
                if model_format in UNPACKED:
                    await asyncio.to_thread(_unpack, tmp, final, self._limits, model_format)
                else:
                    os.replace(tmp, final)
            metadata = await describe(final, model_format, self._sandbox)
            if example is not None:
                metadata["example_sha256"], example_file = store_example(self._dir, example)
            record = self._repo.add_model(
                project, name, fmt=model_format, sha256=digest, size_bytes=size, metadata=metadata
            )
        except BaseException:
            if created is not None and not self._is_used(digest):
                await asyncio.to_thread(_remove, created)  # keep no file no version refers to
            if example_file is not None:
                example_file.unlink(missing_ok=True)
            raise
        finally:
            tmp.unlink(missing_ok=True)
        self._repo.add_event(
            project,
            kind=EventKind.MODEL_PUSHED,
            actor=actor,
            message=f"model {name} version {record.version} pushed by {actor}",
        )
        return model_view(record)

    def _is_used(self, sha256: str) -> bool:
        """Whether a stored version refers to the file; when the store cannot tell, yes."""
        try:
            return self._repo.is_model_file_used(sha256)
        except Exception:
            return True

    def list(self, project: str, name: str | None = None) -> list[ModelVersion]:
        self._repo.require_project(project)
        models = self._repo.list_models(project, name)
        if name is not None and not models:
            self._repo.get_model(project, name)  # raises ModelNotFound
        return [model_view(m) for m in models]

    def delete(
        self, project: str, name: str, version: int | None = None, *, actor: str
    ) -> builtins.list[ModelVersion]:
        """Delete a model's versions (all, or one) unless a node uses them: ModelInUse."""
        doomed = [m for m in self.list(project, name) if version in (None, m.version)]
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
            if not self._repo.is_model_file_used(model.sha256):
                _remove(model_path(self._dir, model.sha256, model.format))
        versions = ", ".join(str(m.version) for m in doomed)
        self._repo.add_event(
            project,
            kind=EventKind.MODEL_DELETED,
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


async def _receive(body: AsyncIterator[bytes], fd: int, *, limit_bytes: int) -> tuple[str, int]:
    """Stream ``body`` into ``fd``: its SHA-256 and size; BodyTooLarge past the limit."""
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        async for chunk in body:
            size += len(chunk)
            if size > limit_bytes:
                raise BodyTooLarge(limit_bytes, what="the model upload", setting=UPLOAD_SETTING)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


_ROOT_FILE = {ModelFormat.PYTHON: "model.py", ModelFormat.TRITON: "config.pbtxt"}
"""What a model directory of each format holds at its root."""


def _unpack(archive: Path, target: Path, limits: ModelSettings, fmt: ModelFormat) -> None:
    """Extract a tar (gzip or not) of a model directory (Python, Triton) into ``target``,
    after checking every member: plain files and directories only, inside the directory,
    no more than the limits. Blocking: run it in a thread."""
    staging = Path(tempfile.mkdtemp(dir=target.parent))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = _checked_members(tar, limits)
                tar.extractall(staging, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise InvalidSpec("body", f"a {fmt.value} model must be a tar archive: {exc}") from None
        if not (staging / _ROOT_FILE[fmt]).is_file():
            raise InvalidSpec(
                "body", f"a {fmt.value} model directory needs a {_ROOT_FILE[fmt]} at its root"
            )
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _checked_members(tar: tarfile.TarFile, limits: ModelSettings) -> list[tarfile.TarInfo]:
    """The archive's members, read (not extracted) one by one and refused as soon as
    one points outside the directory, is not a plain file or directory, or the archive
    goes over a limit. (The "data" filter would refuse most of these too, but only once
    extracting, and it takes absolute names as relative ones.)"""
    members: list[tarfile.TarInfo] = []
    unpacked_bytes = 0
    for member in tar:
        if member.name.startswith("/") or ".." in PurePosixPath(member.name).parts:
            raise InvalidSpec(
                "body", f"{member.name!r} in the archive points outside the model directory"
            )
        if not (member.isfile() or member.isdir()):
            raise InvalidSpec(
                "body",
                f"{member.name!r} in the archive is a link or a special file; "
                "a Python model holds plain files and directories only",
            )
        members.append(member)
        unpacked_bytes += member.size
        if len(members) > limits.max_files:
            raise InvalidSpec(
                "body",
                f"the archive holds more than {limits.max_files} files and directories; "
                f"the setting {FILES_SETTING} raises the limit",
            )
        if unpacked_bytes > limits.max_unpacked_bytes:
            raise BodyTooLarge(
                limits.max_unpacked_bytes, what="the unpacked model", setting=UNPACKED_SETTING
            )
    return members


async def describe(path: Path, fmt: ModelFormat, sandbox: Sandbox) -> dict[str, Any]:
    """The model's V2 metadata, read by the model server in a sandboxed subprocess."""
    target = f"model/{path.name}"
    workdir = await asyncio.to_thread(
        sandbox.make_dir, f"_describe-{secrets.token_hex(6)}", {target: path}
    )
    try:
        return await _run_describe(workdir / target, fmt, sandbox, workdir)
    finally:
        await asyncio.to_thread(sandbox.remove_dir, workdir)


async def _run_describe(
    path: Path, fmt: ModelFormat, sandbox: Sandbox, workdir: Path
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "pier.modelserver", "--describe", "--name", "model",
            "--format", fmt.value, "--path", str(path)]  # fmt: skip
    env = sandbox.environment(MODEL_SERVER_ENV, home=workdir)
    options = sandbox.popen_options(workdir)

    def run() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, env=env,
            timeout=DESCRIBE_TIMEOUT_S, check=False, **options,
        )  # fmt: skip

    try:  # in a thread: the sandbox's user and groups are subprocess's options, not the loop's
        proc = await asyncio.to_thread(run)
    except subprocess.TimeoutExpired:  # killed by subprocess.run
        raise InvalidSpec("body", f"loading the model took over {DESCRIBE_TIMEOUT_S:g} s") from None
    out, err = proc.stdout, proc.stderr
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        raise InvalidSpec("body", f"not a loadable {fmt.value} model: {reason}")
    try:
        result: dict[str, Any] = json.load(io.BytesIO(out))
    except ValueError:
        raise InvalidSpec("body", "the model server could not describe this model") from None
    return result
