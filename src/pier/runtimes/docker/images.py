"""Pulling images and pinning them by digest; the pull's progress in a few lines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

# Dotted imports only: with tests/docker/ in the tree, ruff's isort takes a bare
# `import docker` for a first-party module. `import docker.errors` binds `docker` too.
import docker.errors
import structlog
from docker.utils import parse_repository_tag

from pier.domain.errors import PierError

log = structlog.get_logger(__name__)

LAYER_ANNOUNCED: Final = frozenset({"Pulling fs layer", "Waiting", "Already exists"})
LAYER_DONE: Final = frozenset({"Pull complete", "Already exists"})
LAYER_DOWNLOADED: Final = LAYER_DONE | {"Download complete", "Extracting"}


class ImagePullFailed(PierError):
    """The registry would not give us the image: missing, wrong credentials, unreachable."""

    code: ClassVar[str] = "image_pull_failed"
    http_status: ClassVar[int] = 422

    def __init__(self, image: str, reason: str) -> None:
        super().__init__(f"cannot pull image {image!r}: {reason}")
        self.image = image
        self.reason = reason


class PullProgress:
    """Turns the engine's pull stream into a few short lines for people:
    "pulling REF: Downloading 3/4 layers", then "Extracting 1/4 layers", "Pulled 4/4 layers".

    The engine announces every layer ("Pulling fs layer", "Waiting", "Already exists")
    before any download starts, so counts are only shown after the announcements, and a
    line is emitted only when its text changes."""

    def __init__(self, ref: str, emit: Callable[[str], None] | None) -> None:
        self._ref = ref
        self._emit = emit
        self._layers: dict[str, str] = {}
        self._last = ""

    def update(self, item: Mapping[str, Any]) -> None:
        status = str(item.get("status", "")).strip()
        if not status:
            return
        if "progressDetail" not in item or "id" not in item:
            self._say(status)
            return
        self._layers[str(item["id"])] = status
        if status not in LAYER_ANNOUNCED:
            self._say(self._layer_summary())

    def _layer_summary(self) -> str:
        total = len(self._layers)
        downloaded = sum(1 for s in self._layers.values() if s in LAYER_DOWNLOADED)
        extracted = sum(1 for s in self._layers.values() if s in LAYER_DONE)
        if downloaded < total:
            return f"Downloading {downloaded}/{total} layers"
        if extracted < total:
            return f"Extracting {extracted}/{total} layers"
        return f"Pulled {total}/{total} layers"

    def _say(self, text: str) -> None:
        line = f"pulling {self._ref}: {text}"
        if line != self._last and self._emit is not None:
            self._last = line
            self._emit(line)


def in_loop_thread(on_progress: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """``on_progress`` for a pull that runs in a worker thread: each line is handed to the
    running event loop, whose thread calls ``on_progress``. Call it from that loop."""
    if on_progress is None:
        return None
    loop = asyncio.get_running_loop()

    def emit(line: str) -> None:
        loop.call_soon_threadsafe(on_progress, line)

    return emit


def same_repository(a: str, b: str) -> bool:
    """Whether two repository names are the same (docker.io/library/x == x)."""
    return _familiar(a) == _familiar(b)


def _familiar(repository: str) -> str:
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        repository = repository.removeprefix(prefix)
    return repository.removeprefix("library/")


def is_digest_ref(ref: str) -> bool:
    return "@sha256:" in ref or ref.startswith("sha256:")


class Images:
    """The engine's images, seen from pier: pull with progress, pin by digest, make sure
    one is there before a container is created from it. Blocking: call from a thread."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._auth_by_repository: dict[str, dict[str, str]] = {}
        """Credentials last used per repository, for pulls the controller did not ask for
        (an image removed from the engine between two instance starts)."""

    def resolve(
        self, ref: str, auth: dict[str, str] | None, emit: Callable[[str], None] | None
    ) -> str:
        """Pull ``ref`` and return a pinned reference (``repo@sha256:...``, or the image ID
        of an image that never came from a registry); ImagePullFailed with the registry's
        message when it cannot be pulled."""
        if auth:
            self._auth_by_repository[parse_repository_tag(ref)[0]] = dict(auth)
        if is_digest_ref(ref) and self.local(ref) is not None:
            return ref
        try:
            self.pull(ref, auth, emit)
        except ImagePullFailed as e:
            local = self.local(ref)
            if local is None or self.pinned_by_registry(ref, local) is not None:
                raise
            if emit is not None:
                emit(f"pulling {ref}: failed ({e.reason}); using the local image")
            log.info("image pull failed, using the local image", image=ref, reason=e.reason)
            return str(local["Id"])
        info = self.local(ref)
        if info is None:  # removed between pull and inspect
            raise ImagePullFailed(ref, "the image vanished from the engine after the pull")
        if is_digest_ref(ref):
            return ref
        return self.pinned_by_registry(ref, info) or str(info["Id"])

    def pull(
        self, ref: str, auth: dict[str, str] | None, emit: Callable[[str], None] | None
    ) -> None:
        repository, tag = parse_repository_tag(ref)
        progress = PullProgress(ref, emit)
        started = time.monotonic()
        try:
            stream = self._client.api.pull(
                repository, tag=tag or "latest", stream=True, decode=True, auth_config=auth
            )
            for item in stream:
                if "error" in item:
                    detail = item.get("errorDetail") or {}
                    raise ImagePullFailed(ref, str(detail.get("message") or item["error"]))
                progress.update(item)
        except docker.errors.APIError as e:
            raise ImagePullFailed(ref, str(e.explanation or e)) from None
        log.info("image pulled", image=ref, duration_s=round(time.monotonic() - started, 3))

    def local(self, ref: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self._client.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None
        return info

    @staticmethod
    def pinned_by_registry(ref: str, info: Mapping[str, Any]) -> str | None:
        """``repo@sha256:...`` of ``ref``'s repository, when the image came from its registry."""
        repository = parse_repository_tag(ref)[0]
        for repo_digest in info.get("RepoDigests") or ():
            name, _, digest = str(repo_digest).partition("@")
            if digest and same_repository(name, repository):
                return f"{repository}@{digest}"
        return None

    def ensure(self, ref: str) -> None:
        """Pull ``ref`` unless the engine has it, with the credentials last used for its
        repository."""
        if self.local(ref) is None:
            self.pull(ref, self.auth_for(ref), None)

    def auth_for(self, ref: str) -> dict[str, str] | None:
        """The credentials last used to resolve an image of ``ref``'s repository."""
        return self._auth_by_repository.get(parse_repository_tag(ref)[0])
