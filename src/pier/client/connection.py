"""Where the SDK finds pier: the control plane's URL and the bearer token."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pier.domain.errors import Unauthorized

DEFAULT_URL: Final = "http://127.0.0.1:8080"
DEFAULT_PROJECT: Final = "default"
DEFAULT_TIMEOUT_S: Final = 30.0


def resolve_url(url: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The control-plane URL: explicit, else $PIER_URL, else http://127.0.0.1:8080."""
    env = os.environ if env is None else env
    return (url or env.get("PIER_URL") or DEFAULT_URL).rstrip("/")


def token_path(*, env: Mapping[str, str] | None = None) -> Path:
    """Where `pier up` writes the admin token: <$PIER_DATA_DIR or ./.pier>/admin.token."""
    env = os.environ if env is None else env
    return Path(env.get("PIER_DATA_DIR") or ".pier") / "admin.token"


def resolve_token(token: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The bearer token: explicit, else $PIER_TOKEN, else the admin.token `pier up` wrote."""
    env = os.environ if env is None else env
    if token:
        return token
    if env.get("PIER_TOKEN"):
        return env["PIER_TOKEN"]
    path = token_path(env=env)
    with contextlib.suppress(OSError):
        if text := path.read_text(encoding="utf-8").strip():
            return text
    raise Unauthorized(
        f"no token: pass --token, set PIER_TOKEN, or run where `pier up` keeps its data; "
        f"`pier up` writes the admin token to {path.absolute()} on first start "
        "(set PIER_DATA_DIR if its data dir is elsewhere)"
    )
