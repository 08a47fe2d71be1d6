"""Test images: build a context under tests/images/ and push it to the local registry.

``build_and_push("echo:1")`` builds ``tests/images/echo`` with ``VERSION=1`` (so ``echo:1``
and ``echo:2`` are different images with different digests), tags it
``127.0.0.1:5000/pier-test/echo:1``, pushes it and returns that reference. The build uses
the engine's legacy builder (no buildx here) and Debian's static busybox (package
``busybox-static``), copied into a temporary build context. Results are cached per test
session; building again is cheap anyway (the engine's build cache) and pushing is
idempotent. Start the engine and the registry with ``scripts/start-docker.sh``.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final

import docker.errors

REGISTRY: Final = "127.0.0.1:5000"
REPOSITORY_PREFIX: Final = f"{REGISTRY}/pier-test"
IMAGES_DIR: Final = Path(__file__).resolve().parents[1] / "images"
BUSYBOX: Final = Path("/bin/busybox")
PT_INTERP: Final = 3

_built: dict[str, str] = {}
_lock = threading.Lock()


class ImageBuildFailed(Exception):
    """A test image could not be built or pushed; the message says why."""


def build_and_push(tag: str = "echo:1") -> str:
    """Build ``tests/images/<name>`` for ``<name>:<version>``, push it, return its reference."""
    with _lock:
        if tag not in _built:
            _built[tag] = _build_and_push(tag)
        return _built[tag]


def image_ref(tag: str) -> str:
    """Where ``build_and_push(tag)`` puts the image: ``127.0.0.1:5000/pier-test/<tag>``."""
    return f"{REPOSITORY_PREFIX}/{tag}"


def missing_prerequisite() -> str | None:
    """Why test images cannot be built here (no static busybox, no registry), else None."""
    if not BUSYBOX.is_file():
        return f"{BUSYBOX} is missing: apt-get install busybox-static"
    if not _is_static(BUSYBOX):
        return f"{BUSYBOX} is not statically linked: apt-get install busybox-static"
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            f"http://{REGISTRY}/v2/", timeout=2
        ):
            pass
    except urllib.error.HTTPError:
        pass  # a registry that wants credentials still answers
    except OSError as e:
        return f"no registry answers on http://{REGISTRY}/v2/ ({e})"
    return None


def _build_and_push(tag: str) -> str:
    name, _, version = tag.partition(":")
    version = version or "latest"
    source = IMAGES_DIR / name
    if not (source / "Dockerfile").is_file():
        raise ImageBuildFailed(f"no test image {name!r}: {source}/Dockerfile is missing")
    problem = missing_prerequisite()
    if problem is not None:
        raise ImageBuildFailed(problem)
    ref = image_ref(f"{name}:{version}")
    client = docker.from_env()
    try:
        with tempfile.TemporaryDirectory(prefix=f"pier-image-{name}-") as context:
            shutil.copytree(source, context, dirs_exist_ok=True, symlinks=True)
            shutil.copy2(BUSYBOX, Path(context) / "busybox")
            build_image(client, context, ref, {"VERSION": version})
        push_image(client, ref)
    finally:
        client.close()
    return ref


def build_image(
    client: docker.DockerClient, context: str | Path, ref: str, buildargs: dict[str, str]
) -> None:
    """Build ``context`` as ``ref``; ImageBuildFailed with the build's log if it fails."""
    try:
        client.images.build(path=str(context), tag=ref, buildargs=buildargs, rm=True, forcerm=True)
    except docker.errors.BuildError as e:
        log = "".join(str(item.get("stream", "")) for item in e.build_log)
        raise ImageBuildFailed(f"building {ref} failed: {e.msg}\n{log}") from None


def push_image(client: docker.DockerClient, ref: str) -> None:
    """Push ``ref`` to its registry; ImageBuildFailed with the registry's error."""
    repository, _, tag = ref.rpartition(":")
    for item in client.images.push(repository, tag=tag, stream=True, decode=True):
        if "error" in item:
            raise ImageBuildFailed(f"pushing {ref} failed: {item['error']}")


def _is_static(path: Path) -> bool:
    """Whether an ELF64 little-endian executable has no program interpreter."""
    with path.open("rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return False
        (phoff,) = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != PT_INTERP for i in range(phnum))
