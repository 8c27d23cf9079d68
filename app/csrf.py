"""CSRF protection of the pages' forms (the launch editor, the scorecard's decision form): a
token is an itsdangerous signature, with a secret the service keeps in its database, of a
digest of the sign-in session's cookie. A token is worth nothing with another session, a cookie
nothing without its token, and both expire together."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.deps import session_key
from app.errors import Forbidden, Unauthorized
from app.http import key_from_headers
from app.sessions import SESSION_COOKIE, Sessions
from app.storage import ADMIN_SCOPES, READ_SCOPES, ApiKey, Storage


class CsrfTokens:
    """Tokens bound to one sign-in session (a digest of its cookie), signed and expiring with it."""

    def __init__(self, secret: str, *, max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="landed-csrf")
        self.max_age = max_age

    def token(self, session_cookie: str) -> str:
        return self._serializer.dumps(_digest(session_cookie))

    def valid(self, token: str, session_cookie: str) -> bool:
        try:
            bound: Any = self._serializer.loads(token, max_age=self.max_age)
        except BadSignature:  # also SignatureExpired
            return False
        return isinstance(bound, str) and hmac.compare_digest(bound, _digest(session_cookie))


def _digest(session_cookie: str) -> str:
    return hashlib.sha256(session_cookie.encode()).hexdigest()


def csrf_tokens(request: Request, storage: Storage) -> CsrfTokens:
    """The service's CSRF tokens (made once per app, with a secret kept in the database)."""
    tokens: CsrfTokens | None = getattr(request.app.state, "csrf_tokens", None)
    if tokens is None:
        sessions: Sessions = request.app.state.sessions
        tokens = CsrfTokens(storage.service_secret("csrf"), max_age=sessions.max_age)
        request.app.state.csrf_tokens = tokens
    return tokens


def admin_key_for_form(
    request: Request, storage: Storage, token: str | None, *, doing: str, again: str
) -> ApiKey:
    """The admin key a page's form post acts for: one the caller sends itself (as the API takes
    it), or the admin sign-in session together with the form's CSRF `token`. The cookie alone
    counts for nothing (401), as on every write; a wrong or stale token is 403 `csrf_failed`.
    `doing` names the action ("changing launches"), `again` how to retry ("reload the editor
    and save again")."""
    secret = key_from_headers(request)
    if secret:
        return storage.authenticate(secret, ADMIN_SCOPES)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not token or not cookie:
        raise Unauthorized("a key is required", f"sign in with an admin key; {again}")
    key = session_key(request, storage, READ_SCOPES)
    if key.scope != "admin":
        raise Forbidden(f"{doing} needs an admin key", "sign in with an admin key")
    if not csrf_tokens(request, storage).valid(token, cookie):
        raise Forbidden(
            "the form's CSRF token is missing, stale or from another session", again, code="csrf_failed"
        )
    return key
