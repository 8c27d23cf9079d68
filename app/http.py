"""HTTP plumbing shared by the routes: the one place domain errors become HTTP responses,
request-body reading under size caps (with gzip/deflate), and finding the key in a request."""

from __future__ import annotations

import base64
import binascii
import zlib
from http import HTTPStatus
from typing import Any

import duckdb
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LandedError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StorageUnavailable,
    Unauthorized,
    UnsupportedEncoding,
)

STATUS = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedEncoding: 415,
    RateLimited: 429,
    StorageUnavailable: 503,
}


class ErrorBody(BaseModel):
    """Every error the service answers: a stable code, a sentence for people, and detail."""

    code: str
    message: str
    detail: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, all of the ErrorBody shape."""
    return {status: {"model": ErrorBody, "description": HTTPStatus(status).phrase} for status in statuses}


def error_body(code: str, message: str, detail: str = "") -> dict[str, str]:
    return {"code": code, "message": message, "detail": detail}


def status_of(error: LandedError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def install_error_handlers(app: FastAPI, *, retry_after_seconds: int) -> None:
    """Every error leaves the service as `{"code", "message", "detail"}` (some SDKs crash on
    FastAPI's default shape)."""

    async def landed_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, LandedError)
        status = status_of(error)
        headers = {"Retry-After": str(retry_after_seconds)} if status == 503 else None
        if isinstance(error, Unauthorized):
            headers = {"WWW-Authenticate": 'Basic realm="landed"'}
        if isinstance(error, RateLimited):
            headers = {"Retry-After": str(error.retry_after)}
        return JSONResponse(
            error_body(error.code, error.message, error.detail), status_code=status, headers=headers
        )

    async def validation_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = []
        for item in error.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        first = problems[0] if problems else "invalid request"
        return JSONResponse(error_body("invalid_input", first, "; ".join(problems)), status_code=422)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(error.detail)), status_code=error.status_code, headers=error.headers
        )

    async def storage_error(request: Request, error: Exception) -> JSONResponse:
        # A read that failed inside DuckDB (e.g. the database was invalidated by an I/O fault):
        # let the storage reopen it on next use, and tell the client to retry.
        storage = getattr(request.app.state, "storage", None)
        if storage is not None:
            storage.check_connection()
        return await landed_error(
            request, StorageUnavailable("storage is unavailable; retry later", str(error))
        )

    app.add_exception_handler(LandedError, landed_error)
    app.add_exception_handler(duckdb.Error, storage_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


async def read_body(request: Request, *, max_body_bytes: int, max_decompressed_bytes: int) -> bytes:
    """The request body, decompressed, refusing oversize bodies before they fill memory."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in {"", "identity", "gzip", "x-gzip", "deflate"}:
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding!r} is not supported", "send identity, gzip or deflate"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > max_body_bytes:
            raise _too_large(int(declared), max_body_bytes, "on the wire")
        # The server stops reading at Content-Length, so the declared size bounds the body.
        body = await request.body()
    else:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise _too_large(size, max_body_bytes, "on the wire")
            chunks.append(chunk)
        body = b"".join(chunks)
    if encoding in {"gzip", "x-gzip"}:
        return _inflate(body, 16 + zlib.MAX_WBITS, max_decompressed_bytes, "gzip")
    if encoding == "deflate":
        # RFC 9110 deflate is zlib-wrapped, but some clients send a raw deflate stream.
        try:
            return _inflate(body, zlib.MAX_WBITS, max_decompressed_bytes, "deflate")
        except InvalidInput:
            return _inflate(body, -zlib.MAX_WBITS, max_decompressed_bytes, "deflate")
    return body


def _too_large(size: int, limit: int, where: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is too large {where}",
        f"{size}+ bytes {where}; the limit is {limit} bytes. Send smaller batches.",
    )


_INFLATE_STEP = 256 * 1024


def _inflate(body: bytes, wbits: int, limit: int, name: str) -> bytes:
    # Decompressed in bounded steps so a gzip bomb is refused having used about `limit` bytes.
    inflater = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    size = 0
    pending = body
    try:
        while pending and not inflater.eof:
            part = inflater.decompress(pending, _INFLATE_STEP)
            size += len(part)
            if size > limit:
                raise _too_large(size, limit, "after decompression")
            parts.append(part)
            pending = inflater.unconsumed_tail
    except zlib.error as error:
        raise InvalidInput(f"the body is not valid {name}", str(error), code="invalid_encoding") from None
    if not inflater.eof:
        raise InvalidInput(f"the {name} body is truncated", "", code="invalid_encoding")
    return b"".join(parts)


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise InvalidInput("the request body is empty", "send a JSON object", code="malformed_json")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput("the body is not valid JSON", str(error), code="malformed_json") from None


def key_from_headers(request: Request) -> str | None:
    """The key from HTTP Basic (key as username) or a Bearer token, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("the Basic authorization header is not valid base64") from None
        username, _, password = decoded.partition(":")
        return username or password or None
    return None
