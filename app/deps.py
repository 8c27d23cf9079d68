"""FastAPI dependencies as `Annotated` aliases: the settings, the storage, and the caller's key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Request

from app.errors import Unauthorized
from app.http import key_from_headers
from app.sessions import SESSION_COOKIE, Sessions
from app.settings import Settings
from app.storage import ADMIN_SCOPES, READ_SCOPES, ApiKey, Scope, Storage


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]


def session_key(request: Request, storage: Storage, scopes: Iterable[Scope]) -> ApiKey:
    """The live key behind the request's sign-in session; Unauthorized without a valid one, or
    when the key was revoked since."""
    sessions: Sessions = request.app.state.sessions
    session = sessions.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise Unauthorized("a key is required", "send it as HTTP Basic username or a Bearer token")
    key_id, scope = session
    key = storage.authenticate_id(key_id, scopes)
    if key.scope != scope:
        raise Unauthorized("the session does not match its key", "sign in again")
    return key


def read_key(request: Request, storage: StorageDep) -> ApiKey:
    """A read or admin key from the headers, else from the dashboard's sign-in session (reads
    only: a cookie the browser sends by itself never authorises a change)."""
    secret = key_from_headers(request)
    if secret or SESSION_COOKIE not in request.cookies:
        return storage.authenticate(secret, READ_SCOPES)
    return session_key(request, storage, READ_SCOPES)


def admin_key(request: Request, storage: StorageDep) -> ApiKey:
    return storage.authenticate(key_from_headers(request), ADMIN_SCOPES)


ReadKeyDep = Annotated[ApiKey, Depends(read_key)]
AdminKeyDep = Annotated[ApiKey, Depends(admin_key)]
