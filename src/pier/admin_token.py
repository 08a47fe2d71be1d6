"""The admin token: created on first start, written to <data dir>/admin.token (0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_admin_token(path: Path) -> tuple[str, bool]:
    """Return (token, created_now); the file is created with mode 0600 if missing."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token, False
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    os.chmod(path, 0o600)
    return token, True
