"""Signing in to the web UI, and the checks every UI request passes.

The browser sends the token once, in the sign-in form; pier checks it as the REST API
checks a bearer token (pier.api.auth) and keeps it in an HttpOnly, SameSite=Strict
cookie, so page scripts never see it and other sites' pages never send it. Every UI
request checks the cookie's token again (a revoked token signs the browser out) and the
policy table's requirement for the route, as a REST request would.

CSRF: every state change carries a token in a hidden form field or the ``X-CSRF-Token``
header (htmx sends it from the page's ``hx-headers``). For a signed-in browser it is an
HMAC of the session token's digest under a key of this process; the sign-in form, before
any session, carries a random value that must equal its own cookie's (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import parse_qsl

from fastapi import Depends, Request, Response

from pier.api.auth import PrincipalOf, check, requirement, token_principal
from pier.domain.errors import BodyTooLarge, Forbidden, Unauthorized
from pier.domain.roles import Principal
from pier.domain.tokens import token_digest
from pier.store.repository import utcnow

SESSION_COOKIE: Final = "pier_session"
SIGN_IN_COOKIE: Final = "pier_sign_in"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "x-csrf-token"
FORM_SETTING: Final = "ui.max_form_bytes (env PIER_UI__MAX_FORM_BYTES)"
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})


class SignInNeeded(Exception):
    """No cookie, or its token is no longer valid: the browser goes to the sign-in page."""


CSRF_REFUSED: Final = "the form's CSRF token is missing or wrong: reload the page and retry"


@dataclass(frozen=True, slots=True)
class UiSession:
    principal: Principal
    token: str
    csrf: str
    """What the pages put in their forms and in htmx's headers."""


class Sessions:
    def __init__(self, principal_of: PrincipalOf, *, max_form_bytes: int) -> None:
        self._principal_of = principal_of
        self._key = secrets.token_bytes(32)
        self._max_form_bytes = max_form_bytes

    def csrf_for(self, token: str) -> str:
        digest = token_digest(token).encode()
        return hmac.new(self._key, digest, hashlib.sha256).hexdigest()

    def sign_in(self, token: str) -> Principal:
        """The token's principal, or Unauthorized: the same check as a bearer token's."""
        return token_principal(token.strip(), self._principal_of, utcnow())

    def session(self, request: Request) -> UiSession:
        """The signed-in session of the request; SignInNeeded without a valid one;
        Forbidden where the policy table refuses the route to its principal."""
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            raise SignInNeeded
        try:
            principal = token_principal(token, self._principal_of, utcnow())
        except Unauthorized:
            raise SignInNeeded from None
        check(principal, requirement(request), request.path_params.get("project"))
        request.state.principal = principal
        request.state.actor = principal.name
        return UiSession(principal, token, self.csrf_for(token))

    async def form(self, request: Request, expected_csrf: str) -> dict[str, str]:
        """The request's urlencoded form, once its CSRF token matches ``expected_csrf``."""
        form = await self.read_form(request)
        sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD, "")
        if not expected_csrf or not hmac.compare_digest(sent, expected_csrf):
            raise Forbidden(CSRF_REFUSED)
        return form

    def check_header(self, request: Request, expected_csrf: str) -> None:
        """A state change whose body is no form (a file): its CSRF token is in the header."""
        sent = request.headers.get(CSRF_HEADER, "")
        if not expected_csrf or not hmac.compare_digest(sent, expected_csrf):
            raise Forbidden(CSRF_REFUSED)

    async def read_form(self, request: Request) -> dict[str, str]:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self._max_form_bytes:
                raise BodyTooLarge(self._max_form_bytes, what="the form", setting=FORM_SETTING)
        return dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))


def new_sign_in_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_ui_cookie(response: Response, name: str, value: str, *, secure: bool) -> None:
    """Set one of the UI's cookies: HttpOnly, SameSite=Strict, the whole site; Secure when
    served over HTTPS."""
    response.set_cookie(name, value, httponly=True, samesite="strict", path="/", secure=secure)


def ui_session(request: Request) -> UiSession:
    """The route's session (a FastAPI dependency of every signed-in UI route)."""
    sessions: Sessions = request.app.state.ui_sessions
    return sessions.session(request)


async def checked_form(request: Request, session: UiSession) -> dict[str, str]:
    """The form of a state change, its CSRF token checked."""
    sessions: Sessions = request.app.state.ui_sessions
    return await sessions.form(request, session.csrf)


def checked_upload(request: Request, session: UiSession) -> None:
    """A raw upload's CSRF token (``X-CSRF-Token``) checked; its body is left unread."""
    sessions: Sessions = request.app.state.ui_sessions
    sessions.check_header(request, session.csrf)


SessionDep = Annotated[UiSession, Depends(ui_session)]
