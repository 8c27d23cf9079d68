"""Domain errors with stable codes. Routes and services raise these; `app.http` maps them to
HTTP statuses and the JSON error shape `{"code", "message", "detail"}` in one place."""

from __future__ import annotations


class LandedError(Exception):
    """Base of every error a client may see. `code` is stable; `message` is for people."""

    code = "error"

    def __init__(self, message: str, detail: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code is not None:
            self.code = code


class InvalidInput(LandedError):
    code = "invalid_input"


class Unauthorized(LandedError):
    code = "unauthorized"


class Forbidden(LandedError):
    code = "forbidden"


class NotFound(LandedError):
    code = "not_found"


class Conflict(LandedError):
    code = "conflict"


class PayloadTooLarge(LandedError):
    code = "payload_too_large"


class UnsupportedEncoding(LandedError):
    code = "unsupported_encoding"


class RateLimited(LandedError):
    code = "rate_limited"

    def __init__(self, message: str, detail: str = "", *, retry_after: int) -> None:
        super().__init__(message, detail)
        self.retry_after = retry_after


class StorageUnavailable(LandedError):
    code = "storage_unavailable"
