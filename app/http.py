"""HTTP plumbing shared by the routes: the one place domain errors become HTTP responses,
request-body reading under size caps (with gzip/deflate), and finding the key in a request."""

from __future__ import annotations

import base64
import binascii
import urllib.parse
import zlib
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

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


def json_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The same for routes whose success is not JSON (Markdown, HTML, Prometheus text): FastAPI
    would document a `model` under the route's own media type, but errors are always JSON."""
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {status: {"description": HTTPStatus(status).phrase, "content": content} for status in statuses}


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

    app.add_exception_handler(LandedError, landed_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


class IngestCors:
    """CORS for the ingestion paths alone, through Starlette's own middleware: browsers on any
    origin may send events (a key's origin list is checked by the route, with a 403 the page
    can read), errors and 429/503 included, with `Retry-After` readable by the SDK. Read and
    admin routes stay same-origin.

    Segment's paths answer `*` and allow no credentials. PostHog's paths echo the page's origin
    and allow credentials, as PostHog's own service does, because posthog-js before 1.2xx sends
    every request as an XHR with `withCredentials`, for which a browser refuses a `*` reply.
    This grants a page nothing: no ingestion route reads a cookie (keys come from the header or
    the body only), so a credentialed request can do exactly what an uncredentialed one can."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        wildcard_prefixes: tuple[str, ...],
        credentialed_prefixes: tuple[str, ...],
        max_age: int,
    ) -> None:
        self.app = app
        common: dict[str, Any] = {
            "allow_methods": ["GET", "POST"],
            "allow_headers": ["*"],
            "expose_headers": ["Retry-After"],
            "max_age": max_age,
        }
        self.routes = [
            (wildcard_prefixes, CORSMiddleware(app, allow_origins=["*"], **common)),
            (
                credentialed_prefixes,
                CORSMiddleware(app, allow_origin_regex=".*", allow_credentials=True, **common),
            ),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for prefixes, cors in self.routes:
                if scope["path"].startswith(prefixes):
                    await cors(scope, receive, send)
                    return
        await self.app(scope, receive, send)


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


GZIP_MAGIC = b"\x1f\x8b"
_COMPRESSIONS = {"", "gzip", "gzip-js", "base64"}


def decoded_payload(body: bytes, *, compression: str | None, max_decompressed_bytes: int) -> bytes:
    """The JSON text inside a body, however a browser SDK packed it. Decided by content, since
    the headers often say nothing (posthog-js posts raw gzip as text/plain, with no
    Content-Encoding): a form body `data=<base64>` (older posthog-js), base64 asked for with
    `?compression=base64`, and gzip recognised by its magic bytes; every step stays under
    the decompressed-size cap."""
    mode = (compression or "").strip().lower()
    if mode not in _COMPRESSIONS:
        raise UnsupportedEncoding(
            f"compression {mode[:40]!r} is not supported",
            "field: compression; send gzip, gzip-js or base64 (or no compression)",
        )
    stripped = body.lstrip()
    if stripped.startswith(b"data="):
        body = _form_data(stripped)
        mode = "base64"
    if mode == "base64" and not body.lstrip().startswith((b"{", b"[")):
        body = _base64(body)
    if body.startswith(GZIP_MAGIC):
        body = _inflate(body, 16 + zlib.MAX_WBITS, max_decompressed_bytes, "gzip")
    return body


def _form_data(body: bytes) -> bytes:
    try:
        fields = urllib.parse.parse_qs(body.decode("ascii"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "the form body is not valid", "field: data; send data=<base64 JSON>", code="invalid_encoding"
        ) from None
    values = fields.get("data")
    if not values:
        raise InvalidInput("the form body has no data field", "field: data", code="invalid_encoding")
    # A '+' of the base64 text arrives as a space when the client did not percent-encode it.
    return values[0].replace(" ", "+").encode("ascii")


def _base64(text: bytes) -> bytes:
    compact = b"".join(text.split())
    padded = compact + b"=" * (-len(compact) % 4)
    try:
        if b"-" in compact or b"_" in compact:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            "the body is not valid base64", "field: data (compression=base64)", code="invalid_encoding"
        ) from None


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
