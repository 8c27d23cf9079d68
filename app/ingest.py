"""Turns Segment and PostHog payloads into rows for the events table, one event at a time.

Pure functions: no I/O and no clock (the receive time is a parameter). Each event is checked on
its own, so one bad event is rejected with a reason while the rest of its batch is stored.
Event time follows the metric spec: `received_at - (sent_at - timestamp)` when the client sent
both, clamped to `received_at` (and flagged) when that lands more than 23 hours in the future.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import orjson

# now_utc, the receive time, is defined with the other naive-UTC helpers; importable from here too.
from pipelines.times import naive_utc
from pipelines.times import now_utc as now_utc

EVENT_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
MAX_FUTURE = timedelta(hours=23)
# Limits on what a client controls inside an event (each breach rejects that event only).
MAX_ID_LENGTH = 1024
MAX_NAME_LENGTH = 1024
MAX_DEPTH = 16
MAX_KEYS = 1000
MAX_STRING_LENGTH = 65_536


# Which API an event came in through: Segment's HTTP API, PostHog's capture API, or an import.
EventApi = Literal["segment", "posthog", "import"]


class EventRow(NamedTuple):
    """One row of the events table, fields in column order (sql/duckdb/schema/001_create_events.sql)."""

    source: str
    message_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    group_id: str | None
    properties: str | None  # JSON text, like traits and context
    traits: str | None
    context: str | None
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    occurred_at: datetime
    is_clamped: bool
    api: EventApi


EVENT_COLUMNS: tuple[str, ...] = EventRow._fields


@dataclass(frozen=True, slots=True)
class Rejected:
    """One event refused, with a stable reason code, a human sentence and the raw payload."""

    reason: str
    detail: str
    payload: str


@dataclass(slots=True)
class ParsedBatch:
    """The valid rows and the rejected events of one request or import chunk."""

    rows: list[EventRow] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    # Problems that did not cost the event (an unreadable sentAt), for the reply and the log.
    warnings: list[str] = field(default_factory=list)


class EventError(ValueError):
    """An event that cannot be stored; `reason` is the code kept in rejected_events."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_time(value: Any, field_name: str) -> datetime | None:
    """ISO 8601 text (or a datetime) as a naive UTC datetime; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(_calendar_date(value))
        except ValueError:
            raise EventError(
                "invalid_timestamp", f"{field_name} {value[:64]!r} is not an ISO 8601 time"
            ) from None
    else:
        raise EventError("invalid_timestamp", f"{field_name} must be an ISO 8601 string")
    if parsed.tzinfo is not None:
        try:
            parsed = naive_utc(parsed)
        except OverflowError:
            raise EventError("invalid_timestamp", f"{field_name} is outside the supported range") from None
    return parsed


# ISO 8601 ordinal dates (2021-302, 2021302T10:00Z), which datetime.fromisoformat does not read.
_ORDINAL_DATE = re.compile(r"(\d{4})-?(\d{3})(?=$|T)")


def _calendar_date(text: str) -> str:
    """`text` with an ordinal date part rewritten as a calendar date, else unchanged."""
    match = _ORDINAL_DATE.match(text)
    if match is None:
        return text
    day = datetime.strptime(f"{match[1]}-{match[2]}", "%Y-%j").date()
    return day.isoformat() + text[match.end() :]


def lenient_time(value: Any, field_name: str, warnings: list[str] | None) -> datetime | None:
    """A `sentAt` that cannot be read must not cost the event (as PostHog, RudderStack and
    Snowplow treat it): it is ignored, with a warning, and the event keeps its own timestamp."""
    try:
        return parse_time(value, field_name)
    except (EventError, OverflowError) as error:
        if warnings is not None:
            warnings.append(f"{error}; it was ignored and the event's own timestamp kept")
        return None


def corrected_time(
    timestamp: datetime | None, sent_at: datetime | None, received_at: datetime
) -> tuple[datetime, bool]:
    """The event's time after clock-skew correction, and whether it had to be clamped."""
    if timestamp is None:
        return received_at, False
    occurred = timestamp if sent_at is None else received_at - (sent_at - timestamp)
    if occurred - received_at > MAX_FUTURE:
        return received_at, True
    return occurred, False


def _text_id(value: Any, field_name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if len(value) > MAX_ID_LENGTH:
            raise EventError("field_too_long", f"{field_name} is longer than {MAX_ID_LENGTH} characters")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise EventError("invalid_identity", f"{field_name} must be a string or a number")


def _object_json(value: Any, field_name: str) -> str | None:
    """The object as stored (JSON text), after the depth, key count and string length limits."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EventError("invalid_field", f"{field_name} must be a JSON object")
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # Nested past what orjson writes (hundreds of levels): the walk names the breach.
        _check_shape(value, field_name, 1)
        raise
    # Cheap bounds from the text decide almost every object without walking it: nesting
    # needs a bracket per level, a container's entries need commas between them, and a
    # string is never longer than the text holding it. Only objects that could break a
    # limit are walked.
    if (
        text.count("{") + text.count("[") > MAX_DEPTH
        or text.count(",") >= MAX_KEYS
        or len(text) > MAX_STRING_LENGTH
    ):
        _check_shape(value, field_name, 1)
    return text


def _check_shape(value: Any, where: str, depth: int) -> None:
    """Depth, key count and string length limits, walked only where there is nesting or text
    long enough to matter, since most properties are a few flat values."""
    if depth > MAX_DEPTH:
        raise EventError("too_deep", f"{where} nests deeper than {MAX_DEPTH} levels")
    items = value.items() if isinstance(value, dict) else enumerate(value)
    if len(value) > MAX_KEYS:
        raise EventError("too_many_keys", f"{where} has more than {MAX_KEYS} entries")
    for key, item in items:
        if isinstance(item, str):
            if len(item) > MAX_STRING_LENGTH:
                raise EventError(
                    "field_too_long", f"{where}.{key} is longer than {MAX_STRING_LENGTH} characters"
                )
        elif isinstance(item, dict | list):
            _check_shape(item, f"{where}.{key}", depth + 1)


def _content_message_id(event: dict[str, Any]) -> str:
    # Without a messageId a retry could not be recognised, so the id is derived from the
    # content: the same event sent twice gets the same id and is stored once.
    digest = hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return "content:" + digest[:32]


def _check_size(event: dict[str, Any], max_event_bytes: int) -> None:
    size = len(orjson.dumps(event))
    if size > max_event_bytes:
        raise EventError(
            "event_too_large", f"the event is {size} bytes; the limit is {max_event_bytes} bytes"
        )


def segment_row(
    event: Any,
    *,
    source: str,
    received_at: datetime,
    batch_sent_at: datetime | None = None,
    default_type: str | None = None,
    api: EventApi = "segment",
    warnings: list[str] | None = None,
) -> EventRow:
    """One Segment-spec event as an events-table row, or EventError saying why not. Problems
    that do not cost the event are appended to `warnings`."""
    if not isinstance(event, dict):
        raise EventError("invalid_event", "each event must be a JSON object")
    event_type = event.get("type") or default_type
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        shown = "missing" if event_type is None else repr(str(event_type)[:40])
        raise EventError(
            "unknown_type",
            f"type is {shown}; expected one of {', '.join(sorted(EVENT_TYPES))}",
        )
    user_id = _text_id(event.get("userId"), "userId")
    anonymous_id = _text_id(event.get("anonymousId"), "anonymousId")
    previous_id = _text_id(event.get("previousId"), "previousId")
    if user_id is None and anonymous_id is None:
        raise EventError("missing_identity", "the event has neither userId nor anonymousId")
    if event_type == "alias" and (previous_id is None or user_id is None):
        raise EventError("missing_identity", "an alias needs both previousId and userId")
    name = event.get("event") if event_type == "track" else event.get("name")
    if event_type == "track" and (not isinstance(name, str) or not name):
        raise EventError("missing_event", "a track event needs a non-empty event name")
    if name is not None and not isinstance(name, str):
        raise EventError("invalid_field", "event and name must be strings")
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise EventError("field_too_long", f"the event name is longer than {MAX_NAME_LENGTH} characters")
    properties = _object_json(event.get("properties"), "properties")
    raw_context = event.get("context")
    context = _object_json(raw_context, "context")
    traits = _object_json(event.get("traits"), "traits")
    if traits is None and isinstance(raw_context, dict):
        traits = _object_json(raw_context.get("traits"), "context.traits")
    timestamp = parse_time(event.get("timestamp") or event.get("originalTimestamp"), "timestamp")
    sent_at = lenient_time(event.get("sentAt"), "sentAt", warnings) or batch_sent_at
    stated_received = parse_time(event.get("receivedAt"), "receivedAt") if api == "import" else None
    received = stated_received or received_at
    occurred, clamped = corrected_time(timestamp, sent_at, received)
    message_id = _text_id(event.get("messageId"), "messageId") or _content_message_id(event)
    group_id = _text_id(event.get("groupId"), "groupId")
    return EventRow(
        source,
        message_id,
        event_type,
        name,
        user_id,
        anonymous_id,
        previous_id,
        group_id,
        properties,
        traits,
        context,
        timestamp,
        sent_at,
        received,
        occurred,
        clamped,
        api,
    )


_POSTHOG_TYPES = {"$identify": "identify", "$create_alias": "alias", "$pageview": "page", "$screen": "screen"}


def posthog_as_segment(event: Any, batch_sent_at: Any = None) -> dict[str, Any]:
    """A PostHog capture event in Segment's shape: distinct_id -> userId, uuid -> messageId,
    $set -> traits, $identify/$create_alias/$pageview/$screen -> identify/alias/page/screen."""
    if not isinstance(event, dict):
        raise EventError("invalid_event", "each event must be a JSON object")
    properties = event.get("properties")
    properties = dict(properties) if isinstance(properties, dict) else {}
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise EventError("missing_event", "a PostHog event needs a non-empty event name")
    distinct_id = event.get("distinct_id", properties.pop("distinct_id", None))
    # The key must not be stored with the event's properties.
    properties.pop("token", None)
    nested_set = properties.pop("$set", None)
    traits = event.get("$set") or nested_set
    event_type = _POSTHOG_TYPES.get(name, "track")
    # posthog-js marks events sent before identify() with $is_identified false: their
    # distinct_id is the browser's anonymous id, linked to the user by the later $identify.
    anonymous = properties.get("$is_identified") is False and event_type != "identify"
    converted: dict[str, Any] = {
        "type": event_type,
        "anonymousId" if anonymous else "userId": distinct_id,
        "messageId": event.get("uuid"),
        "timestamp": event.get("timestamp"),
        "sentAt": event.get("sent_at") or batch_sent_at,
        "properties": properties,
    }
    context = _posthog_context(properties)
    if context:
        converted["context"] = context
    if traits is not None:
        converted["traits"] = traits
    if event_type == "track":
        converted["event"] = name
    elif event_type == "identify":
        converted["anonymousId"] = properties.get("$anon_distinct_id")
    elif event_type == "alias":
        # posthog-python's alias(previous_id, distinct_id) sends distinct_id = the previous id
        # and properties.alias = the id it becomes.
        converted["previousId"] = distinct_id
        converted["userId"] = properties.get("alias")
    elif event_type == "page":
        converted["name"] = properties.get("$title") or properties.get("title")
        if "path" not in properties and isinstance(properties.get("$pathname"), str):
            properties["path"] = properties["$pathname"]
    else:
        converted["name"] = properties.get("$screen_name")
    return converted


# Where the channel report and the pages look for what posthog-js records of the page.
_UTM_CAMPAIGN = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}
_PAGE_CONTEXT = {"$current_url": "url", "$pathname": "path", "$referrer": "referrer", "$title": "title"}


def _posthog_context(properties: dict[str, Any]) -> dict[str, Any]:
    """Segment's context from posthog-js properties: `utm_*` as `campaign` (where the channel
    report looks), the page's URL, path, referrer and title as `page`, and the user agent."""
    context: dict[str, Any] = {}
    campaign = {
        field: properties[utm] for utm, field in _UTM_CAMPAIGN.items() if isinstance(properties.get(utm), str)
    }
    if campaign:
        context["campaign"] = campaign
    page = {
        field: properties[key] for key, field in _PAGE_CONTEXT.items() if isinstance(properties.get(key), str)
    }
    if "title" not in page and isinstance(properties.get("title"), str):
        page["title"] = properties["title"]
    if page:
        context["page"] = page
    user_agent = properties.get("$raw_user_agent")
    if isinstance(user_agent, str):
        context["userAgent"] = user_agent
    return context


def posthog_received_at(event: dict[str, Any], received_at: datetime) -> datetime:
    """PostHog clients may send `offset` (ms before sending) instead of a timestamp."""
    offset = event.get("offset")
    if event.get("timestamp") is None and isinstance(offset, int | float):
        return received_at - timedelta(milliseconds=float(offset))
    return received_at


def parse_events(
    events: list[Any],
    *,
    source: str,
    received_at: datetime,
    max_event_bytes: int,
    body_bytes: int,
    batch_sent_at: datetime | None = None,
    default_type: str | None = None,
    api: EventApi = "segment",
) -> ParsedBatch:
    """Split a list of raw events into rows to store and rejections to record."""
    parsed = ParsedBatch()
    check_each = body_bytes > max_event_bytes
    for raw in events:
        try:
            if check_each and isinstance(raw, dict):
                _check_size(raw, max_event_bytes)
            if api == "posthog":
                event = posthog_as_segment(raw)
                at = posthog_received_at(raw, received_at)
                sent = lenient_time(event.pop("sentAt", None), "sent_at", parsed.warnings) or batch_sent_at
                row = segment_row(
                    event,
                    source=source,
                    received_at=at,
                    batch_sent_at=sent,
                    api="posthog",
                    warnings=parsed.warnings,
                )
            else:
                row = segment_row(
                    raw,
                    source=source,
                    received_at=received_at,
                    batch_sent_at=batch_sent_at,
                    default_type=default_type,
                    api=api,
                    warnings=parsed.warnings,
                )
            parsed.rows.append(row)
        except OverflowError:
            # Times near the ends of the representable range (year 1 or 9999 with an offset).
            kept = _without_secrets(raw)
            payload = orjson.dumps(kept).decode() if _serialisable(kept) else repr(kept)
            parsed.rejected.append(
                Rejected("invalid_timestamp", "a time is outside the supported range", payload)
            )
        except EventError as error:
            kept = _without_secrets(raw)
            payload = orjson.dumps(kept).decode() if _serialisable(kept) else repr(kept)
            parsed.rejected.append(Rejected(error.reason, error.detail, payload))
    return parsed


_SECRET_FIELDS = ("writeKey", "api_key", "token")


def _without_secrets(event: Any) -> Any:
    """The raw event as kept for diagnosis, minus any write key it carried (Segment writeKey,
    PostHog api_key/token, posthog-js properties.token): keys are stored hashed only."""
    if not isinstance(event, dict):
        return event
    cleaned = {k: v for k, v in event.items() if k not in _SECRET_FIELDS}
    properties = cleaned.get("properties")
    if isinstance(properties, dict) and "token" in properties:
        cleaned["properties"] = {k: v for k, v in properties.items() if k != "token"}
    return cleaned


def _serialisable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True
