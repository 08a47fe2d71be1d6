"""A Triton test image: the model server test image (tests/docker/python_image.py) plus
NVIDIA's tritonserver from the nvidia-pytriton wheel that ``make triton`` puts in
``.venv/triton``, as a user's "official Triton image plus ``pip install pier``" would be.

The official image cannot be pulled here, so the image is assembled from what this
machine has:

- under ``/opt/pier/site`` (on the image's PYTHONPATH, so pier's launcher finds it as it
  finds ``.venv/triton``): ``pytriton/tritonserver`` (the binary, the Python backend and
  the backend's stub for the image's Python only), ``nvidia_pytriton.libs`` (the
  libraries the binary and the stub link) and ``stub-numpy`` (numpy 1, which the stub
  is built against);
- Debian's ``libpython3.X`` of the base's exact Python version (the stub links
  ``libpython3.X.so.1.0``, which the minimal base lacks), fetched with ``apt-get
  download`` and unpacked with ``dpkg -x``. The rest of what ``ldd`` lists for the
  binary, the backend and the stub is in the base or in the wheel's libraries.

The image is tagged with a hash of its inputs (the model server image, this context,
the wheel's files, the libpython version), built only when one of them changed and
pushed to the local registry like the other test images.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Final

import docker
from tests.docker.images import IMAGES_DIR, ImageBuildFailed, build_image, image_ref, push_image
from tests.docker.python_image import (
    PYTHON_LABEL,
    build_modelserver_image,
    has_image,
    missing_python_image_prerequisite,
    run_command,
)

TRITON_SOURCE: Final = Path(sys.prefix) / "triton"
"""Where ``make triton`` installs the nvidia-pytriton wheel (and numpy 1 beside it)."""
CONTEXT_SOURCE: Final = IMAGES_DIR / "triton"
SERVER: Final = "pytriton/tritonserver"
COPIED: Final = (SERVER, "nvidia_pytriton.libs", "stub-numpy")

_lock = threading.Lock()
_built: list[str] = []


def build_triton_image() -> str:
    """Build (or reuse) the image, push it, return its reference in the local registry."""
    with _lock:
        if not _built:
            _built.append(_build())
        return _built[0]


def missing_triton_image_prerequisite() -> str | None:
    """Why the image cannot be built here, else None."""
    if not (TRITON_SOURCE / SERVER / "bin" / "tritonserver").is_file():
        return f"no tritonserver in {TRITON_SOURCE}: run `make triton`"
    if not (TRITON_SOURCE / "stub-numpy" / "numpy").is_dir():
        return f"no numpy 1 in {TRITON_SOURCE}/stub-numpy: run `make triton`"
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return "apt-get and dpkg are needed to fetch the image's libpython"
    return missing_python_image_prerequisite()


def _build() -> str:
    problem = missing_triton_image_prerequisite()
    if problem is not None:
        raise ImageBuildFailed(problem)
    base = build_modelserver_image()
    client = docker.from_env()
    try:
        python = client.images.get(base).labels.get(PYTHON_LABEL) or ""
        version = _package_version(client, base, f"python{python}-minimal")
        ref = image_ref(f"triton:{_inputs_digest(base, python, version)}")
        if not has_image(client, ref):
            with tempfile.TemporaryDirectory(prefix="pier-image-triton-") as tmp:
                context = Path(tmp)
                shutil.copytree(CONTEXT_SOURCE, context, dirs_exist_ok=True)
                _copy_server(context / "site", python)
                _unpack_libpython(context / "rootfs", python, version)
                build_image(client, context, ref, {"BASE": base})
        push_image(client, ref)
        return ref
    finally:
        client.close()


def _copy_server(site: Path, python: str) -> None:
    """The wheel's server, libraries and numpy 1, the stub for ``python`` alone."""
    stubs = f"{SERVER}/python_backend_stubs"
    for relative in COPIED:
        shutil.copytree(
            TRITON_SOURCE / relative, site / relative, symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )  # fmt: skip
    for stub in (site / stubs).iterdir():
        if stub.name != python:
            shutil.rmtree(stub)


def _unpack_libpython(rootfs: Path, python: str, version: str) -> None:
    with tempfile.TemporaryDirectory(prefix="pier-libpython-") as tmp:
        result = subprocess.run(
            ["apt-get", "download", f"libpython{python}={version}"],
            cwd=tmp, capture_output=True, text=True, check=False,
        )  # fmt: skip
        [deb] = list(Path(tmp).glob("*.deb")) or [None]
        if deb is None:
            raise ImageBuildFailed(
                f"apt-get download libpython{python}={version} failed: {result.stderr[-500:]}"
            )
        run_command("dpkg", "-x", str(deb), str(rootfs))
    for relative in ("usr/share/doc", "usr/share/lintian"):
        shutil.rmtree(rootfs / relative, ignore_errors=True)


def _package_version(client: docker.DockerClient, image: str, package: str) -> str:
    """The version of ``package`` installed in ``image``, read from its dpkg status (no
    container is run: a quick one's output can come back empty from this engine)."""
    container = client.containers.create(image, ["true"])
    try:
        chunks, _ = container.get_archive("/var/lib/dpkg/status")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            member = archive.extractfile("status")
            status = member.read().decode() if member is not None else ""
    finally:
        container.remove(force=True)
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        if fields.get("Package") == package:
            return fields["Version"]
    raise ImageBuildFailed(f"{image} has no {package} installed")


def _inputs_digest(base: str, python: str, version: str) -> str:
    digest = hashlib.sha256(f"{base} {python} {version}".encode())
    for path in sorted(CONTEXT_SOURCE.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    for relative in COPIED:
        for path in sorted((TRITON_SOURCE / relative).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(f"{path.relative_to(TRITON_SOURCE)} {path.stat().st_size}".encode())
    return digest.hexdigest()[:16]


__all__ = ["build_triton_image", "missing_triton_image_prerequisite"]
