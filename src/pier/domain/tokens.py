"""Bearer tokens are kept and compared as SHA-256 digests, never as themselves."""

from __future__ import annotations

import hashlib


def token_digest(token: str | bytes) -> str:
    """The hex SHA-256 of a token: what the store, the API and the gateway compare."""
    raw = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(raw).hexdigest()
