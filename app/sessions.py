"""Dashboard sign-in sessions: a signed, expiring cookie that holds the key's id and scope,
never its secret (itsdangerous, as Starlette's own sessions use).

A session is checked against the live key on every request, so revoking the key ends every
session signed in with it. The signing secret comes from `LANDED_SESSION_SECRET`, else it is
made once and kept in the database, so sessions survive restarts.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from app.settings import Settings
from app.storage import ApiKey, MetaStore

SESSION_COOKIE = "landed_session"
# Before sessions, the cookie held the read key itself; it is cleared at sign-in and sign-out.
LEGACY_KEY_COOKIE = "landed_key"
_SALT = "landed-session"


class Sessions:
    """Issues and reads session cookies."""

    def __init__(self, secret: str, *, hours: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age = max(1, int(hours * 3600))

    @classmethod
    def for_service(cls, settings: Settings, storage: MetaStore) -> Sessions:
        configured = settings.session_secret
        secret = configured.get_secret_value() if configured else storage.service_secret("session")
        return cls(secret, hours=settings.session_hours)

    def token(self, key: ApiKey) -> str:
        return self._serializer.dumps({"key_id": key.key_id, "scope": key.scope})

    def read(self, token: str | None) -> tuple[str, str] | None:
        """(key_id, scope) of a valid, unexpired session token; None otherwise."""
        if not token:
            return None
        try:
            data: Any = self._serializer.loads(token, max_age=self.max_age)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        key_id, scope = data.get("key_id"), data.get("scope")
        if not isinstance(key_id, str) or not isinstance(scope, str):
            return None
        return key_id, scope

    def sign_in(self, response: Response, request: Request, key: ApiKey) -> None:
        """Sets the session cookie: HttpOnly, SameSite=Lax, and Secure over HTTPS (uvicorn
        reports https for a proxy on this machine that sends X-Forwarded-Proto)."""
        response.set_cookie(
            SESSION_COOKIE,
            self.token(key),
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(LEGACY_KEY_COOKIE)

    @staticmethod
    def sign_out(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE)
        response.delete_cookie(LEGACY_KEY_COOKIE)
