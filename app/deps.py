"""FastAPI dependencies as `Annotated` aliases: the settings, the storage, and the caller's key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.http import key_from_headers
from app.settings import Settings
from app.storage import ApiKey, Storage

READ_SCOPES = ("read", "admin")
ADMIN_SCOPES = ("admin",)
KEY_COOKIE = "landed_key"


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]


def read_key(request: Request, storage: StorageDep) -> ApiKey:
    secret = key_from_headers(request) or request.cookies.get(KEY_COOKIE)
    return storage.authenticate(secret, READ_SCOPES)


def admin_key(request: Request, storage: StorageDep) -> ApiKey:
    return storage.authenticate(key_from_headers(request), ADMIN_SCOPES)


ReadKeyDep = Annotated[ApiKey, Depends(read_key)]
AdminKeyDep = Annotated[ApiKey, Depends(admin_key)]
