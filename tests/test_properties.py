"""Property-based tests (Hypothesis) of the two places where untrusted input first meets the
code: the ingestion parser (`app.ingest`) and the launch spec model (`pipelines.launch`).

* Any JSON value as an event gives a row or a rejection, never an exception, and every event
  of a batch ends up in exactly one of the two, in order.
* Valid generated Segment and PostHog events always become rows with the right user and event.
* The corrected event time never exceeds received_at + 23 h.
* Any dict either validates as a LaunchSpec or raises pydantic's ValidationError, and valid
  generated specs round-trip through JSON unchanged.

Event times range over the whole calendar (year 1 to 9999, with UTC offsets), where
arithmetic overflows; pinned examples keep the boundary cases found while writing this file
(an array as `type`, times and offsets beyond the calendar, non-finite numbers in specs)
covered every run. The strategies (tests/helpers/strategies.py) are shared with
tests/test_fuzz_api.py.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.ingest import (
    EVENT_COLUMNS,
    EVENT_TYPES,
    MAX_FUTURE,
    EventError,
    ParsedBatch,
    corrected_time,
    parse_events,
    posthog_as_segment,
    segment_row,
)
from pipelines.launch import DURATION_METRICS, LaunchSpec
from tests.helpers.strategies import (
    any_aware,
    eventish,
    json_scalars,
    json_values,
    launch_specs,
    mutated,
    posthog_events,
    raw_events,
    safe_naive,
    safe_times,
    segment_events,
)

PROPERTY = settings(max_examples=200, deadline=None, database=None)
"""Modest and reproducible from the printed example: no example database in the work tree."""
PINNED = settings(PROPERTY, max_examples=50)
"""For the regression properties, whose pinned @example cases carry most of the weight."""


def minimal_spec(**fields: Any) -> dict[str, Any]:
    """The smallest valid launch spec as JSON-ready data, with `fields` added or replaced."""
    return {
        "key": "k",
        "name": "n",
        "owner": "o",
        "launched_at": "2026-01-01T00:00:00Z",
        "signals": {"exposed": [{"event": "a"}], "used": [{"event": "b"}]},
        **fields,
    }


REASON = re.compile(r"^[a-z][a-z_]*$")
"""Rejection reasons are stable snake_case codes (kept in rejected_events.reason)."""
RECEIVED_AT = datetime(2026, 11, 20, 12, 0, 0)

# ----------------------------------------------------------------------------- the parser


def parse(events: list[Any], **options: Any) -> ParsedBatch:
    options.setdefault("max_event_bytes", 1 << 20)
    options.setdefault("body_bytes", 10)
    return parse_events(events, source="src", received_at=RECEIVED_AT, **options)


@PROPERTY
@given(
    events=raw_events,
    api=st.sampled_from(["segment", "posthog", "import"]),
    default_type=st.none() | st.sampled_from(sorted(EVENT_TYPES)),
    batch_sent_at=st.none() | st.datetimes(),
    max_event_bytes=st.sampled_from([64, 256, 1 << 20]),
)
def test_any_json_events_become_rows_or_rejections_never_exceptions(
    events: list[Any],
    api: str,
    default_type: str | None,
    batch_sent_at: datetime | None,
    max_event_bytes: int,
) -> None:
    options = {
        "api": api,
        "default_type": default_type,
        "batch_sent_at": batch_sent_at,
        "max_event_bytes": max_event_bytes,
        "body_bytes": max_event_bytes + 1,  # as if the body were large: each event is measured
    }
    batch = parse(events, **options)
    # Each event on its own lands in exactly one of rows and rejected, and the batch is those
    # results in order: nothing dropped, nothing duplicated, no event affecting another.
    singles = [parse([event], **options) for event in events]
    assert all(len(s.rows) + len(s.rejected) == 1 for s in singles)
    assert batch.rows == [row for s in singles for row in s.rows]
    assert batch.rejected == [r for s in singles for r in s.rejected]
    for row in batch.rows:
        assert len(row) == len(EVENT_COLUMNS)
        values = dict(zip(EVENT_COLUMNS, row, strict=True))
        assert values["type"] in EVENT_TYPES
        assert values["user_id"] is not None or values["anonymous_id"] is not None
        assert isinstance(values["message_id"], str) and values["message_id"]
        assert values["occurred_at"] <= values["received_at"] + MAX_FUTURE
        assert values["api"] == api
    for rejected in batch.rejected:
        assert REASON.match(rejected.reason), rejected.reason
        assert isinstance(rejected.detail, str) and isinstance(rejected.payload, str)


@PROPERTY
@given(event=segment_events(), default_type=st.none() | st.sampled_from(sorted(EVENT_TYPES)))
def test_valid_segment_events_become_rows_with_their_user_and_event(
    event: dict[str, Any], default_type: str | None
) -> None:
    batch = parse([event], default_type=default_type)
    assert batch.rejected == []
    [row] = batch.rows
    values = dict(zip(EVENT_COLUMNS, row, strict=True))
    assert values["type"] == event["type"]
    expected_name = event.get("event") if event["type"] == "track" else event.get("name")
    assert values["event"] == expected_name
    for field, column in (
        ("userId", "user_id"),
        ("anonymousId", "anonymous_id"),
        ("previousId", "previous_id"),
    ):
        given_id = event.get(field)
        assert values[column] == (None if given_id in (None, "") else str(given_id))
    if "messageId" in event:
        assert values["message_id"] == str(event["messageId"])
    else:
        assert values["message_id"].startswith("content:")
    assert values["source"] == "src" and values["api"] == "segment"
    # The same event parsed again (a retry) gets the same message id: it is stored once.
    assert parse([event]).rows[0][1] == values["message_id"]


@PROPERTY
@given(event=posthog_events())
def test_valid_posthog_events_become_rows_with_their_user_and_event(event: dict[str, Any]) -> None:
    with_token = {**event, "properties": {**event["properties"], "token": "lw_secret"}}
    [row] = parse([with_token], api="posthog").rows
    values = dict(zip(EVENT_COLUMNS, row, strict=True))
    assert (values["type"], values["event"]) == ("track", event["event"])
    assert values["user_id"] == str(event["distinct_id"])
    assert values["api"] == "posthog"
    assert "lw_secret" not in str(values["properties"])  # the key is never kept with the event


@PROPERTY
@given(event=json_values | eventish, batch_sent_at=st.none() | safe_naive)
def test_posthog_conversion_returns_a_segment_event_or_an_event_error(
    event: Any, batch_sent_at: datetime | None
) -> None:
    try:
        converted = posthog_as_segment(event, batch_sent_at)
    except EventError as error:
        assert REASON.match(error.reason), error.reason
        return
    assert converted["type"] in EVENT_TYPES
    assert "token" not in converted["properties"] and "$set" not in converted["properties"]
    try:
        segment_row(converted, source="src", received_at=RECEIVED_AT)
    except EventError as error:
        assert REASON.match(error.reason), error.reason


# Within 1900..2200 the skew arithmetic cannot overflow; beyond, parse_events turns the
# OverflowError into a rejection (test_times_at_the_ends_of_the_calendar_reject_only_their_event).
@PROPERTY
@given(timestamp=st.none() | safe_naive, sent_at=st.none() | safe_naive, received_at=safe_naive)
def test_corrected_time_never_exceeds_received_at_plus_23_hours(
    timestamp: datetime | None, sent_at: datetime | None, received_at: datetime
) -> None:
    occurred, clamped = corrected_time(timestamp, sent_at, received_at)
    assert occurred <= received_at + MAX_FUTURE
    if timestamp is None:
        assert (occurred, clamped) == (received_at, False)
    elif clamped:
        assert occurred == received_at
    else:
        assert occurred == (timestamp if sent_at is None else received_at - (sent_at - timestamp))


@PROPERTY
@given(
    event=segment_events(),
    timestamp=safe_times,
    sent_at=st.none() | safe_times,
)
def test_stored_event_time_never_exceeds_received_at_plus_23_hours(
    event: dict[str, Any], timestamp: datetime, sent_at: datetime | None
) -> None:
    sent = {**event, "timestamp": timestamp.isoformat()}
    if sent_at is not None:
        sent["sentAt"] = sent_at.isoformat()
    [row] = parse([sent]).rows
    values = dict(zip(EVENT_COLUMNS, row, strict=True))
    assert values["occurred_at"] <= RECEIVED_AT + MAX_FUTURE
    assert values["is_clamped"] == (values["occurred_at"] == RECEIVED_AT and values["is_clamped"])


@PINNED
@given(
    kind=st.lists(json_scalars, max_size=3) | st.dictionaries(st.text(max_size=5), json_scalars, max_size=2)
)
@example(kind=[None])
@example(kind={"a": 1})
def test_an_event_whose_type_is_not_text_is_rejected(kind: Any) -> None:
    """Found while writing this file: an array or object as `type` raised TypeError
    (unhashable) out of segment_row, failing the whole request with 500."""
    batch = parse([{"type": kind, "event": "E", "userId": "u"}])
    assert [r.reason for r in batch.rejected] == ["unknown_type"]


@PINNED
@given(
    timestamp=any_aware.map(datetime.isoformat),
    sent_at=st.none() | any_aware.map(datetime.isoformat),
    offset=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    api=st.sampled_from(["segment", "posthog"]),
)
@example(timestamp="0001-01-01T00:00:00+01:00", sent_at=None, offset=None, api="segment")
@example(timestamp="0001-01-01T00:00:00", sent_at="9999-12-31T00:00:00", offset=None, api="segment")
@example(timestamp="2026-01-01T00:00:00", sent_at=None, offset=1e20, api="posthog")
def test_times_at_the_ends_of_the_calendar_reject_only_their_event(
    timestamp: str, sent_at: str | None, offset: float | None, api: str
) -> None:
    """Found while writing this file: OverflowError escaped parse_events (parse_time's
    astimezone, the skew arithmetic, PostHog's offset), failing the whole request with 500."""
    if api == "posthog":
        event: dict[str, Any] = {"event": "E", "distinct_id": "u", "sent_at": sent_at}
        event.update({"offset": offset} if offset is not None else {"timestamp": timestamp})
        good: dict[str, Any] = {"event": "ok", "distinct_id": "u"}
    else:
        event = {"type": "track", "event": "E", "userId": "u", "timestamp": timestamp, "sentAt": sent_at}
        good = {"type": "track", "event": "ok", "userId": "u"}
    batch = parse([event, good], api=api)
    assert len(batch.rows) + len(batch.rejected) == 2
    assert batch.rows[-1][3] == "ok"  # the good event is stored whatever became of the other
    assert {r.reason for r in batch.rejected} <= {"invalid_timestamp"}


# ----------------------------------------------------------------------------- the launch spec


def validate(data: Any) -> LaunchSpec | None:
    """The spec, or None when pydantic refused it; anything else propagates."""
    try:
        return LaunchSpec.model_validate(data)
    except ValidationError:
        return None


@PROPERTY
@given(
    data=st.dictionaries(st.sampled_from(list(LaunchSpec.model_fields)) | st.text(max_size=10), json_values)
    | mutated(launch_specs(times=any_aware))
)
def test_any_dict_validates_or_raises_validation_error(data: Any) -> None:
    spec = validate(data)
    if spec is not None:
        assert LaunchSpec.model_validate(spec.model_dump()) == spec


@PROPERTY
@given(data=launch_specs())
def test_valid_specs_round_trip_through_json(data: dict[str, Any]) -> None:
    spec = LaunchSpec.model_validate(data)
    assert LaunchSpec.model_validate(spec.model_dump(mode="json")) == spec
    # The path storage takes: model_dump_json on write, model_validate_json on read.
    assert LaunchSpec.model_validate_json(spec.model_dump_json()) == spec
    assert spec.launched_at.utcoffset() == timedelta(0)


@PINNED
@given(data=launch_specs(times=any_aware))
@example(data=minimal_spec(launched_at="0001-01-01T00:00:00+05:00"))
def test_specs_at_the_ends_of_the_calendar_validate_or_raise_validation_error(data: dict[str, Any]) -> None:
    """Found while writing this file: a time that leaves the calendar in UTC raised
    OverflowError out of the model's UTC conversion (PUT /api/launches answered 500)."""
    spec = validate(data)
    if spec is not None:
        assert LaunchSpec.model_validate_json(spec.model_dump_json()) == spec


@PINNED
@given(
    data=launch_specs(),
    value=st.sampled_from([float("inf"), float("-inf"), float("nan")]),
    where_too=st.booleans(),
)
@example(
    data=minimal_spec(
        kpis=[{"id": "days", "metric": "median_days_to_adopt", "comparator": "<=", "target": 0}]
    ),
    value=float("inf"),
    where_too=False,
)
def test_every_spec_that_validates_round_trips_through_json(
    data: dict[str, Any], value: float, where_too: bool
) -> None:
    """With non-finite numbers put in. Found while writing this file: NaN and Infinity were
    accepted, written as null and then unreadable (every launch listing answered 500)."""
    for kpi in data["kpis"]:
        if kpi["metric"] in DURATION_METRICS:
            kpi["target"] = value
    if where_too or not any(k["metric"] in DURATION_METRICS for k in data["kpis"]):
        data["signals"]["exposed"][0]["where"]["x"] = value
    spec = validate(data)
    if spec is not None:
        assert LaunchSpec.model_validate_json(spec.model_dump_json()) == spec
