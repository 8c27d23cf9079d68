"""API keys apart from where they are kept: making a key, hashing its secret, checking web
origins, and `KeyRing`, the in-memory copy of every key that authenticates requests.

Only a key's hash is stored. Every request is authenticated against the ring, never the
database, so authentication costs no query and does not wait for the writer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from app.errors import Forbidden, InvalidInput, Unauthorized
from app.ingest import now_utc
from app.storage.interfaces import SCOPES, ApiKey, Scope

_KEY_PREFIX: dict[Scope, str] = {"write": "lw", "read": "lr", "admin": "la"}


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_origin(origin: str) -> str:
    """A web origin as browsers send it in `Origin` (scheme://host[:port], lower case, no
    default port, no path); InvalidInput naming what is wrong otherwise."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(
            f"origin {origin!r} is not a web origin", "field: origins; write it as https://app.example.com"
        )
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        raise InvalidInput(
            f"origin {origin!r} has more than scheme, host and port",
            "field: origins; an origin has no path, query or credentials",
        )
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput(f"origin {origin!r} has an invalid port", "field: origins") from None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in {None, default} else "")


def new_key(name: str, scope: Scope, origins: Sequence[str]) -> tuple[ApiKey, str]:
    """A new key and its secret; InvalidInput for an unknown scope or origins on a key that
    is not a write key. A write key may carry the web origins browsers may send with it."""
    if scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}", "field: scope")
    if origins and scope != "write":
        raise InvalidInput(
            "only write keys carry origins", "field: origins; read and admin keys are same-origin"
        )
    allowed = tuple(dict.fromkeys(normalise_origin(o) for o in origins))
    secret = f"{_KEY_PREFIX[scope]}_{secrets.token_urlsafe(24)}"
    return ApiKey(secrets.token_hex(6), name, scope, now_utc(), None, allowed), secret


class KeyRing:
    """Every key by the hash of its secret, replaced whole whenever the stored keys change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}

    def replace(self, keys: dict[str, ApiKey]) -> None:
        with self._lock:
            self._keys = keys

    def all_keys(self) -> list[ApiKey]:
        with self._lock:
            return sorted(self._keys.values(), key=lambda k: (k.created_at, k.key_id))

    def authenticate(self, secret: str | None, scopes: Iterable[Scope]) -> ApiKey:
        """The live key behind `secret` if its scope is one of `scopes`; Unauthorized otherwise."""
        if not secret:
            raise Unauthorized(
                "a key is required", "send it as HTTP Basic username, a Bearer token or writeKey"
            )
        digest = hash_key(secret)
        with self._lock:
            match = next((k for h, k in self._keys.items() if hmac.compare_digest(h, digest)), None)
        if match is None or match.revoked_at is not None:
            raise Unauthorized(
                "unknown or revoked key", "check the key, or create one with `landed keys create`"
            )
        return _in_scope(match, scopes)

    def authenticate_id(self, key_id: str, scopes: Iterable[Scope]) -> ApiKey:
        """The live key with id `key_id` (a signed session holds the id, never the secret),
        held to the same rules as `authenticate`: a key revoked since sign-in is refused."""
        with self._lock:
            match = next((k for k in self._keys.values() if k.key_id == key_id), None)
        if match is None or match.revoked_at is not None:
            raise Unauthorized("the session's key is unknown or revoked", "sign in again")
        return _in_scope(match, scopes)


def _in_scope(key: ApiKey, scopes: Iterable[Scope]) -> ApiKey:
    allowed = tuple(scopes)
    if key.scope not in allowed:
        raise Forbidden(
            f"a {key.scope} key cannot do this", f"this needs a key with scope {' or '.join(allowed)}"
        )
    return key
