"""Event ingestion endpoints compatible with the Segment HTTP Tracking API and PostHog capture.

SDKs treat any 2xx other than 200 as a reason to retry, so success is exactly 200, sent only
after the events are committed. Bodies are read raw: the key may sit inside the body, and the
size caps must hold before any JSON is parsed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from app.errors import InvalidInput, PayloadTooLarge, RateLimited
from app.http import error_responses, key_from_headers, parse_json, read_body
from app.ingest import EventError, now_utc, parse_events, parse_time
from app.ratelimit import RateLimiter
from app.settings import Settings
from app.storage import Storage

router = APIRouter(tags=["ingestion"], responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503))

SEGMENT_KINDS = ("batch", "track", "identify", "page", "screen", "group", "alias")
POSTHOG_PATHS = ("/batch", "/capture", "/e", "/i/v0/e")


class IngestResult(BaseModel):
    """Counts for one request: accepted = inserted + duplicates; rejected events are kept
    in rejected_events with their reason."""

    success: bool
    accepted: int
    inserted: int
    duplicates: int
    rejected: int


async def _ingest(request: Request, *, api: str, kind: str) -> Response:
    # The hot path: settings and storage come straight from app.state rather than through
    # dependencies (FastAPI runs sync dependencies on a thread pool, two hops a request), and
    # the reply is serialised once with orjson instead of being validated by a response model.
    settings: Settings = request.app.state.settings
    storage: Storage = request.app.state.storage
    received_at = now_utc()
    body = await read_body(
        request,
        max_body_bytes=settings.max_body_bytes,
        max_decompressed_bytes=settings.max_decompressed_bytes,
    )
    payload = parse_json(body)
    secret = key_from_headers(request) or _key_in_body(payload)
    key = storage.authenticate(secret, ("write",))
    events, batch_sent_at, default_type = _events_of(payload, api=api, kind=kind)
    if not events:
        raise InvalidInput("the batch is empty", "send at least one event", code="empty_batch")
    if len(events) > settings.max_batch_events:
        raise PayloadTooLarge(
            f"the batch has {len(events)} events; the limit is {settings.max_batch_events}",
            "send smaller batches",
        )
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.retry_after(key.key_id, len(events))
    if wait is not None:
        raise RateLimited(
            f"write key {key.name!r} is over its rate limit",
            f"{limiter.rate:g} events/s with bursts of {limiter.burst:g}; retry in {wait} s",
            retry_after=wait,
        )
    parsed = parse_events(
        events,
        source=key.key_id,
        received_at=received_at,
        max_event_bytes=settings.max_event_bytes,
        body_bytes=len(body),
        batch_sent_at=batch_sent_at,
        default_type=default_type,
        api=api,
    )
    result = await asyncio.wrap_future(storage.write_events(key.key_id, parsed, received_at))
    reply = {
        "success": True,
        "accepted": result.accepted,
        "inserted": result.inserted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
    }
    return Response(orjson.dumps(reply), media_type="application/json")


def _key_in_body(payload: Any) -> str | None:
    """Segment's writeKey, PostHog's api_key or token (top level, or in an event's
    properties; posthog-js posts a bare array of events carrying properties.token)."""
    candidates = payload[:1] if isinstance(payload, list) else [payload]
    for item in candidates:
        if not isinstance(item, dict):
            continue
        found = item.get("writeKey") or item.get("api_key") or item.get("token")
        if found is None and isinstance(item.get("properties"), dict):
            found = item["properties"].get("token")
        if isinstance(found, str):
            return found
    return None


def _events_of(payload: Any, *, api: str, kind: str) -> tuple[list[Any], Any, str | None]:
    """(events, batch-level sentAt, type implied by the path) of a request body."""
    if api == "posthog":
        if isinstance(payload, list):
            return payload, None, None
        if not isinstance(payload, dict):
            raise InvalidInput("the body must be a JSON object or array", code="malformed_json")
        sent_at = _batch_time(payload.get("sent_at"))
        if "batch" in payload:
            batch = payload["batch"]
            if not isinstance(batch, list):
                raise InvalidInput("batch must be a JSON array of events", "field: batch")
            return batch, sent_at, None
        return [payload], sent_at, None
    if not isinstance(payload, dict):
        raise InvalidInput("the body must be a JSON object", code="malformed_json")
    if kind == "batch":
        batch = payload.get("batch")
        if not isinstance(batch, list):
            raise InvalidInput("batch must be a JSON array of events", "field: batch")
        return batch, _batch_time(payload.get("sentAt")), None
    return [payload], None, kind


def _batch_time(value: Any) -> Any:
    try:
        return parse_time(value, "sentAt")
    except EventError as error:
        raise InvalidInput(error.detail, "field: sentAt") from None


def _segment_endpoint(kind: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return await _ingest(request, api="segment", kind=kind)

    endpoint.__name__ = f"segment_{kind}"
    endpoint.__doc__ = f"Segment HTTP Tracking API `{kind}`: store events once, reply 200 after commit."
    return endpoint


async def posthog_capture(request: Request) -> Response:
    """PostHog capture: distinct_id -> userId, uuid -> messageId, $set -> traits."""
    return await _ingest(request, api="posthog", kind="batch")


for _kind in SEGMENT_KINDS:
    _handler = _segment_endpoint(_kind)
    router.add_api_route(f"/v1/{_kind}", _handler, methods=["POST"], response_model=IngestResult)
    router.add_api_route(
        f"/v1/{_kind}/", _handler, methods=["POST"], response_model=IngestResult, include_in_schema=False
    )
for _path in POSTHOG_PATHS:
    router.add_api_route(
        f"{_path}/",
        posthog_capture,
        methods=["POST"],
        response_model=IngestResult,
        name=f"posthog{_path.replace('/', '_')}",
    )
    router.add_api_route(
        _path,
        posthog_capture,
        methods=["POST"],
        response_model=IngestResult,
        include_in_schema=False,
        name=f"posthog{_path.replace('/', '_')}_noslash",
    )
