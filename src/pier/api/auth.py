"""Bearer-token check for the REST API: a missing or wrong token is a 401 JSON error."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from pier.domain.errors import Unauthorized
from pier.domain.tokens import token_digest


def bearer_guard(digests: Callable[[], frozenset[str]]) -> Callable[[Request], str]:
    """A dependency that returns the caller's name ("admin") or raises Unauthorized."""

    def check(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
        if token_digest(token.strip()) not in digests():
            raise Unauthorized("invalid bearer token")
        return "admin"

    return check
