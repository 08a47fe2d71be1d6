"""How pier finds a Docker engine and connects to it, and what it says when none answers."""

from __future__ import annotations

import builtins
import socket
from typing import Final

# Dotted imports only: with tests/docker/ in the tree, ruff's isort takes a bare
# `import docker` for a first-party module. `import docker.errors` binds `docker` too.
import docker.constants
import docker.errors
import docker.utils
import requests

from pier.domain.errors import RuntimeUnavailable

DEFAULT_DOCKER_HOST: Final = "unix:///var/run/docker.sock"
UNIX_CONNECT_TIMEOUT_S: Final = 5.0


def probe_engine(docker_host: str | None = None) -> str | None:
    """None when a Docker engine answers at ``docker_host`` (default: DOCKER_HOST or the
    default socket), else a message that says where none answered and what to do."""
    try:
        client = connect(docker_host)
    except RuntimeUnavailable as e:
        return e.message
    client.close()
    return None


def connect(docker_host: str | None) -> docker.DockerClient:
    """A client for the engine at ``docker_host``; RuntimeUnavailable when none answers.

    The SDK leaks a socket when it cannot connect to a unix socket, so that case is
    checked first with a socket of our own. The ping goes through a client with a fixed API
    version, which does no I/O when it is built and so can be closed whatever happens; the
    client we keep then asks the engine for its API version."""
    where = docker_host or docker.utils.kwargs_from_env().get("base_url") or DEFAULT_DOCKER_HOST
    try:
        scheme, _, path = where.partition("://")
        if scheme in ("unix", "http+unix"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(UNIX_CONNECT_TIMEOUT_S)
                sock.connect(path)
        probe = _client(docker_host, docker.constants.MINIMUM_DOCKER_API_VERSION)
        try:
            probe.ping()
        finally:
            probe.close()
        return _client(docker_host, None)
    except (docker.errors.DockerException, requests.RequestException, OSError) as e:
        raise RuntimeUnavailable(
            f"no Docker engine at {where} ({short_reason(e)}); start one (e.g. `dockerd &`)"
        ) from None


def _client(docker_host: str | None, version: str | None) -> docker.DockerClient:
    """``version=None`` asks the engine; DOCKER_HOST etc. are read only by from_env()."""
    if docker_host:
        return docker.DockerClient(base_url=docker_host, version=version)
    return docker.from_env(version=version)


def short_reason(exc: BaseException) -> str:
    """The innermost OS error of a connection failure ("Connection refused"), else str()."""
    seen: set[int] = set()
    queue: builtins.list[BaseException] = [exc]
    while queue:
        error = queue.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
        linked = (error.__cause__, error.__context__, getattr(error, "reason", None), *error.args)
        queue.extend(e for e in linked if isinstance(e, BaseException))
    return str(exc)
