"""A test image with Python and pier installed, like a user's ``FROM python`` + ``pip install
pier``: what a node that serves a model from an image runs.

No image comes from the internet, so the image is assembled here:

1. A Debian base (``pier-test/python-base:<suite>``): ``debootstrap --variant=minbase
   --include=python3`` from the machine's own Debian mirror (read from its apt sources),
   apt caches and docs trimmed, ``docker import``-ed. About 40 s, once per Docker engine:
   the engine keeps it.
2. pier's locked runtime dependencies (``uv export --no-dev``) installed as manylinux
   wheels for the base's Python with ``uv pip install --target`` (seconds with uv's cache),
   plus pier's own source, copied into ``tests/images/modelserver/``'s build context.

The image is tagged with a hash of everything that went in (pier's source, uv.lock, the
Dockerfile, the base), so a stale image is never reused and an unchanged one is not
rebuilt; it is pushed to the local registry and pulled by pier like any user's image.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Final

import docker.errors
from tests.docker.images import (
    IMAGES_DIR,
    ImageBuildFailed,
    build_image,
    image_ref,
    missing_prerequisite,
    push_image,
)

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
PIER_SOURCE: Final = REPO_ROOT / "src" / "pier"
CONTEXT_SOURCE: Final = IMAGES_DIR / "modelserver"
BASE_REPOSITORY: Final = "pier-test/python-base"
PYTHON_LABEL: Final = "pier-test.python"
TRIMMED: Final = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info")

_lock = threading.Lock()
_built: list[str] = []


def build_modelserver_image() -> str:
    """Build (or reuse) the image, push it, return its reference in the local registry."""
    with _lock:
        if not _built:
            _built.append(_build())
        return _built[0]


def missing_python_image_prerequisite() -> str | None:
    """Why the image cannot be built here, else None."""
    problem = missing_prerequisite()
    if problem is not None:
        return problem
    if shutil.which("debootstrap") is None:
        return "debootstrap is missing: apt-get install debootstrap (scripts/start-docker.sh does)"
    if _uv() is None:
        return "uv is missing: run `make install` (it puts uv in .tools/bin)"
    return None


def _build() -> str:
    problem = missing_python_image_prerequisite()
    if problem is not None:
        raise ImageBuildFailed(problem)
    client = docker.from_env()
    try:
        base = _python_base(client)
        python = client.images.get(base).labels.get(PYTHON_LABEL) or ""
        with tempfile.TemporaryDirectory(prefix="pier-image-modelserver-") as tmp:
            context = Path(tmp)
            shutil.copytree(CONTEXT_SOURCE, context, dirs_exist_ok=True)
            shutil.copytree(
                PIER_SOURCE, context / "site" / "pier", ignore=shutil.ignore_patterns("__pycache__")
            )
            ref = image_ref(f"modelserver:{_inputs_digest(base)}")
            if not has_image(client, ref):
                _install_dependencies(context / "site", python)
                build_image(client, context, ref, {"BASE": base})
        push_image(client, ref)
        return ref
    finally:
        client.close()


def _python_base(client: docker.DockerClient) -> str:
    """``pier-test/python-base:<suite>``, debootstrapped and imported when the engine lacks it."""
    suite = _os_release().get("VERSION_CODENAME") or "bookworm"
    tag = f"{BASE_REPOSITORY}:{suite}"
    if has_image(client, tag):
        return tag
    mirror = _debian_mirror(suite)
    with tempfile.TemporaryDirectory(prefix="pier-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run_command(
            "debootstrap", "--variant=minbase", "--include=python3", suite, str(rootfs), mirror
        )
        for relative in TRIMMED:
            shutil.rmtree(rootfs / relative, ignore_errors=True)
        for leftover in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            leftover.unlink()
        python = run_command(
            "chroot", str(rootfs), "python3", "-c",
            "import sys; print('%d.%d' % sys.version_info[:2])",
        ).strip()  # fmt: skip
        archive = Path(tmp) / "rootfs.tar"
        run_command("tar", "-C", str(rootfs), "-cf", str(archive), ".")
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(
            str(archive),
            repository=repository,
            tag=version,
            changes=[f"LABEL {PYTHON_LABEL}={python}", 'CMD ["python3"]'],
        )
    return tag


def _install_dependencies(target: Path, python: str) -> None:
    """pier's locked runtime dependencies, as wheels for the image's Python and platform."""
    uv = _uv()
    assert uv is not None
    requirements = target.parent / "requirements.txt"
    run_command(
        uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--quiet",
        "--project", str(REPO_ROOT), "-o", str(requirements),
    )  # fmt: skip
    run_command(
        uv, "pip", "install", "--quiet", "--target", str(target),
        "--python-version", python, "--python-platform", f"{platform.machine()}-manylinux_2_28",
        "--only-binary", ":all:", "-r", str(requirements),
    )  # fmt: skip
    requirements.unlink()


def _inputs_digest(base: str) -> str:
    digest = hashlib.sha256(base.encode())
    for root in (PIER_SOURCE, CONTEXT_SOURCE):
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO_ROOT)).encode())
                digest.update(path.read_bytes())
    digest.update((REPO_ROOT / "uv.lock").read_bytes())
    return digest.hexdigest()[:16]


def has_image(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _debian_mirror(suite: str) -> str:
    """The first Debian mirror this machine's apt sources use for ``suite``."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else ():
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[0] != "#"
            )
            uris = fields.get("URIs", "").split()
            if (
                uris
                and suite in fields.get("Suites", "").split()
                and "main" in fields.get("Components", "")
            ):
                return uris[0]
    for path in (Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))):
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^\]]*\]", " ", line).split()  # drop "[arch=... signed-by=...]"
            if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words:
                return words[1]
    raise ImageBuildFailed(f"no Debian mirror for {suite!r} in this machine's apt sources")


def _os_release() -> dict[str, str]:
    path = Path("/etc/os-release")
    if not path.is_file():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value.strip('"') for key, value in pairs}


def _uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    bundled = REPO_ROOT / ".tools" / "bin" / "uv"
    return str(bundled) if bundled.is_file() else None


def run_command(*argv: str) -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-20:])
        raise ImageBuildFailed(f"{' '.join(argv[:3])} ... failed ({result.returncode}):\n{tail}")
    return result.stdout


__all__ = ["build_modelserver_image", "missing_python_image_prerequisite"]
