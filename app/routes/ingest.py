"""Event ingestion endpoints compatible with the Segment HTTP Tracking API and PostHog capture.

SDKs treat any 2xx other than 200 as a reason to retry, so success is exactly 200, sent only
after the events are committed. Bodies are read raw: the key may sit inside the body, and the
size caps must hold before any JSON is parsed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from app.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge, RateLimited
from app.http import decoded_payload, error_responses, key_from_headers, parse_json, read_body
from app.ingest import EventApi, lenient_time, now_utc, parse_events
from app.ratelimit import RateLimiter
from app.settings import Settings
from app.storage import WRITE_SCOPES, ApiKey, Storage

router = APIRouter(tags=["ingestion"], responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503))

SEGMENT_KINDS = ("batch", "track", "identify", "page", "screen", "group", "alias")
# analytics-next posts to one-letter paths (/v1/t for track, /v1/b for batch), never the long names.
SEGMENT_SHORT = {
    "batch": "b",
    "track": "t",
    "identify": "i",
    "page": "p",
    "screen": "s",
    "group": "g",
    "alias": "a",
}
POSTHOG_PATHS = ("/batch", "/capture", "/e", "/i/v0/e")
POSTHOG_DECIDE_PATHS = ("/decide", "/flags")
MAX_WARNINGS = 20
# Paths browsers post events to from other origins: CORS applies to these, and only these.
SEGMENT_PATH_PREFIXES = ("/v1/",)
POSTHOG_PATH_PREFIXES = (*POSTHOG_PATHS, *POSTHOG_DECIDE_PATHS, "/array/")
log = logging.getLogger("landed.ingest")


class IngestResult(BaseModel):
    """Counts for one request: accepted = inserted + duplicates; rejected events are kept
    in rejected_events with their reason."""

    success: bool
    accepted: int
    inserted: int
    duplicates: int
    rejected: int


async def _ingest(request: Request, *, api: EventApi, kind: str) -> Response:
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
    body = decoded_payload(
        body,
        compression=request.query_params.get("compression"),
        max_decompressed_bytes=settings.max_decompressed_bytes,
    )
    payload = parse_json(body)
    secret = key_from_headers(request) or _key_in_body(payload)
    key = storage.authenticate(secret, WRITE_SCOPES)
    origin = request.headers.get("origin")
    if key.origins and origin is not None and origin not in key.origins:
        raise Forbidden(
            f"write key {key.name!r} may not be used from the origin {origin[:200]!r}",
            f"allowed origins: {', '.join(key.origins)}",
            code="origin_not_allowed",
        )
    warnings: list[str] = []
    events, batch_sent_at, default_type = _events_of(payload, api=api, kind=kind, warnings=warnings)
    if not events:
        raise InvalidInput("the batch is empty", "send at least one event", code="empty_batch")
    if len(events) > settings.max_batch_events:
        raise PayloadTooLarge(
            f"the batch has {len(events)} events; the limit is {settings.max_batch_events}",
            "send smaller batches",
        )
    _check_rate(request, key, len(events), browser=origin is not None or bool(key.origins))
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
    request.app.state.metrics.record_events(api, key.name, result)
    reply: dict[str, Any] = {
        "success": True,
        "accepted": result.accepted,
        "inserted": result.inserted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
    }
    warnings += parsed.warnings
    if warnings:
        reply["warnings"] = warnings[:MAX_WARNINGS]
        log.warning("write key %r: %d warning(s), first: %s", key.name, len(warnings), warnings[0])
    return Response(orjson.dumps(reply), media_type="application/json")


def _check_rate(request: Request, key: ApiKey, events: int, *, browser: bool) -> None:
    """The key's limit, and for requests from browsers also the client address's own limit,
    so one abusive page cannot exhaust a public browser key for everyone."""
    limits: list[tuple[RateLimiter, str, str]] = [(request.app.state.rate_limiter, key.key_id, "write key")]
    if browser and request.client is not None:
        limits.append((request.app.state.ip_rate_limiter, request.client.host, "client address"))
    for limiter, bucket, what in limits:
        wait = limiter.retry_after(bucket, events)
        if wait is not None:
            shown = repr(key.name) if what == "write key" else bucket
            raise RateLimited(
                f"{what} {shown} is over its rate limit",
                f"{limiter.rate:g} events/s with bursts of {limiter.burst:g}; retry in {wait} s",
                retry_after=wait,
            )


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


def _events_of(
    payload: Any, *, api: EventApi, kind: str, warnings: list[str]
) -> tuple[list[Any], Any, str | None]:
    """(events, batch-level sentAt, type implied by the path) of a request body."""
    if api == "posthog":
        if isinstance(payload, list):
            return payload, None, None
        if not isinstance(payload, dict):
            raise InvalidInput("the body must be a JSON object or array", code="malformed_json")
        sent_at = lenient_time(payload.get("sent_at"), "sent_at", warnings)
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
        return batch, lenient_time(payload.get("sentAt"), "sentAt", warnings), None
    return [payload], None, kind


def _segment_endpoint(kind: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return await _ingest(request, api="segment", kind=kind)

    endpoint.__name__ = f"segment_{kind}"
    endpoint.__doc__ = f"Segment HTTP Tracking API `{kind}`: store events once, reply 200 after commit."
    return endpoint


async def posthog_capture(request: Request) -> Response:
    """PostHog capture: distinct_id -> userId, uuid -> messageId, $set -> traits."""
    return await _ingest(request, api="posthog", kind="batch")


async def segment_metrics(request: Request) -> Response:
    """analytics-next's own delivery metrics (every 30 s, without a key): read and discarded,
    so the customer's page shows no failed request."""
    settings: Settings = request.app.state.settings
    await read_body(
        request,
        max_body_bytes=settings.max_body_bytes,
        max_decompressed_bytes=settings.max_decompressed_bytes,
    )
    return Response(b'{"success":true}', media_type="application/json")


# What posthog-js asks its host for on start: no feature flags, no session recording, no
# surveys or site apps, so the SDK only captures (and older versions log no error).
POSTHOG_DECIDE = {
    "config": {"enable_collect_everything": False},
    "featureFlags": {},
    "featureFlagPayloads": {},
    "flags": {},
    "errorsWhileComputingFlags": False,
    "quotaLimited": [],
    "sessionRecording": False,
    "supportedCompression": ["gzip", "gzip-js"],
    "autocapture_opt_out": True,
    "capturePerformance": False,
    "heatmaps": False,
    "surveys": False,
    "siteApps": [],
    "toolbarParams": {},
    "isAuthenticated": False,
}


async def posthog_decide(request: Request) -> Response:
    """PostHog's /decide/ and /flags/: Landed evaluates no feature flags."""
    settings: Settings = request.app.state.settings
    await read_body(
        request,
        max_body_bytes=settings.max_body_bytes,
        max_decompressed_bytes=settings.max_decompressed_bytes,
    )
    return Response(orjson.dumps(POSTHOG_DECIDE), media_type="application/json")


# posthog-js asks for its project's remote config before it captures: nothing to turn on
# beyond capture, and no feature flags, so it does not go on to ask /flags/.
POSTHOG_REMOTE_CONFIG = {
    "supportedCompression": ["gzip", "gzip-js"],
    "hasFeatureFlags": False,
    "autocapture_opt_out": True,
    "capturePerformance": False,
    "sessionRecording": False,
    "heatmaps": False,
    "surveys": False,
    "siteApps": [],
}
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{1,200}")


def _remote_config(token: str) -> dict[str, Any]:
    if _TOKEN.fullmatch(token) is None:
        raise NotFound("no such project token", "field: token")
    return {"token": token, **POSTHOG_REMOTE_CONFIG}


@router.get(
    "/array/{token}/config",
    summary="posthog-js remote config: capture only, no flags",
    responses=error_responses(404),
)
def posthog_remote_config(token: str) -> Response:
    return Response(orjson.dumps(_remote_config(token)), media_type="application/json")


@router.get(
    "/array/{token}/config.js",
    summary="posthog-js remote config as a script",
    response_class=Response,
    responses={200: {"content": {"text/javascript": {}}}, **error_responses(404)},
)
def posthog_remote_config_js(token: str) -> Response:
    config = orjson.dumps({"config": _remote_config(token), "siteApps": []}).decode()
    script = (
        "(window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {})"
        f"[{orjson.dumps(token).decode()}] = {config};\n"
    )
    return Response(script, media_type="text/javascript")


def _add_route(
    path: str, endpoint: Any, *, name: str, documented: bool = True, model: Any = IngestResult
) -> None:
    router.add_api_route(
        path, endpoint, methods=["POST"], response_model=model, name=name, include_in_schema=documented
    )


for _kind in SEGMENT_KINDS:
    _handler = _segment_endpoint(_kind)
    for _path in (f"/v1/{_kind}", f"/v1/{SEGMENT_SHORT[_kind]}"):
        _add_route(_path, _handler, name=f"segment{_path.replace('/', '_')}")
        _add_route(f"{_path}/", _handler, name=f"segment{_path.replace('/', '_')}_slash", documented=False)
for _path in POSTHOG_PATHS:
    _add_route(f"{_path}/", posthog_capture, name=f"posthog{_path.replace('/', '_')}")
    _add_route(_path, posthog_capture, name=f"posthog{_path.replace('/', '_')}_noslash", documented=False)
for _path in POSTHOG_DECIDE_PATHS:
    _add_route(f"{_path}/", posthog_decide, name=f"posthog{_path.replace('/', '_')}", model=None)
    _add_route(
        _path, posthog_decide, name=f"posthog{_path.replace('/', '_')}_noslash", documented=False, model=None
    )
_add_route("/v1/m", segment_metrics, name="segment_metrics", model=None)
_add_route("/v1/m/", segment_metrics, name="segment_metrics_slash", documented=False, model=None)
