"""Talking to the service in tests: a key as a Bearer header, and the one shape every error
answer has (`{code, message, detail}`), checked with the status and, where given, the code and
the name the message or detail must mention."""

from __future__ import annotations

import httpx

ERROR_FIELDS = {"code", "message", "detail"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def assert_error(response: httpx.Response, status: int, *, code: str | None = None, names: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_FIELDS, body
    if code is not None:
        assert body["code"] == code, body
    if names:
        assert names in body["message"] + body["detail"], body
