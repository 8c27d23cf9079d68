"""The report's inputs as storage selects them (sql/<engine>/queries/select_launch_*.sql), on
both backends: activity is one row per canonical user, the launch day split at launched_at,
identity links applied; signal and trait values are read by their exact top-level name, as
text, null when missing, exactly as DuckDB's json_extract_string reads them (also for any
generated object); a retried event counts once."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.ingest import parse_events
from app.storage import Storage, json_pointer
from pipelines.launch import LaunchSpec
from pipelines.plan import ReportPlan, plan_report
from tests.helpers.builders import launch_spec

pytestmark = pytest.mark.backends

LAUNCH = datetime(2024, 3, 1, 12)  # noon: the launch day is split at 12:00
END = LAUNCH + timedelta(days=3)
START = LAUNCH - (END - LAUNCH)


def at(days: float = 0, hours: float = 0) -> datetime:
    return LAUNCH + timedelta(days=days, hours=hours)


RECEIVED = at(10)  # when store() receives events, unless told otherwise


def store(storage: Storage, events: list[dict[str, Any]], received_at: datetime = RECEIVED) -> None:
    for i, event in enumerate(events):
        event.setdefault("messageId", f"m{i}")
        event["timestamp"] = event["timestamp"].isoformat() + "Z"
    parsed = parse_events(
        events, source="s", received_at=received_at, max_event_bytes=1 << 20, body_bytes=1000
    )
    assert not parsed.rejected
    storage.write_events("s", parsed, received_at).result()


def plan(*, identified_only: bool = True, window_days: int = 3, as_of: datetime = END) -> ReportPlan:
    # By default a 3-day window from LAUNCH, reported at its end: the span [START, END), 4 UTC days.
    spec = launch_spec("k", LAUNCH.replace(tzinfo=UTC)) | {
        "window_days": window_days,
        "audience": {"identified_only": identified_only},
        "kpis": [],
    }
    return plan_report(LaunchSpec.model_validate(spec), as_of)


def activity(storage: Storage, *, identified_only: bool, **options: Any) -> dict[str, tuple[Any, ...]]:
    table = storage.launch_activity(plan(identified_only=identified_only, **options))
    return {
        row["user_id"]: (
            row["is_identified"],
            row["first_event_at"],
            row["last_event_before"],
            row["active_days"],
        )
        for row in table.to_pylist()
    }


def test_activity_is_one_row_per_canonical_user(storage: Storage) -> None:
    track = {"type": "track", "event": "Clicked"}
    store(
        storage,
        [
            # Active before noon on the launch day only: in the baseline, not the window.
            {**track, "userId": "morning", "timestamp": at(hours=-3)},
            # Before and after noon on the launch day, then on day 2 (the window's third day).
            {**track, "userId": "both", "timestamp": at(hours=-3)},
            {**track, "userId": "both", "timestamp": at(hours=1)},
            {**track, "userId": "both", "timestamp": at(days=2)},
            {**track, "userId": "both", "timestamp": at(days=2, hours=1)},
            # Anonymous before its link, linked by an identify later: all one user.
            {**track, "anonymousId": "a1", "timestamp": at(days=-1)},
            {**track, "anonymousId": "a1", "timestamp": at(days=1)},
            {"type": "identify", "userId": "linked", "anonymousId": "a1", "timestamp": at(days=2, hours=3)},
            # Never linked.
            {**track, "anonymousId": "a2", "timestamp": at(days=1)},
            # Outside the span on both sides, and exactly at its end.
            {**track, "userId": "outside", "timestamp": START - timedelta(seconds=1)},
            {**track, "userId": "outside", "timestamp": END},
        ],
    )
    assert activity(storage, identified_only=True) == {
        "morning": (True, None, at(hours=-3), None),
        "both": (True, at(hours=1), at(hours=-3), "1010"),
        "linked": (True, at(days=1), at(days=-1), "0110"),
    }
    with_anonymous = activity(storage, identified_only=False)
    assert with_anonymous["anon:a2"] == (False, at(days=1), None, "0100")
    assert len(with_anonymous) == 4


def test_activity_is_the_same_in_a_time_zone_that_is_not_utc(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Times are UTC whatever the host's zone: the same rows with TZ set to New York (the days
    of active_days would shift by five hours if either side used the host's zone)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        test_activity_is_one_row_per_canonical_user(storage)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_activity_marks_every_day_of_a_366_day_window(storage: Storage) -> None:
    """Windows reach 366 days: one character per day, the last day included."""
    last = at(days=365, hours=1)
    track = {"type": "track", "event": "Clicked", "userId": "long"}
    store(storage, [{**track, "timestamp": at(hours=1)}, {**track, "timestamp": last}], at(400))
    days = "1" + "0" * 364 + "1" + "0"  # launched at noon: the window touches 367 UTC days
    got = activity(storage, identified_only=True, window_days=366, as_of=LAUNCH + timedelta(days=366))
    assert got == {"long": (True, at(hours=1), None, days)}


def test_a_retried_event_and_a_second_link_count_once(storage: Storage) -> None:
    """The same messageId sent again later (another received time) is one event; an
    anonymousId keeps its earliest link."""
    first = {"type": "track", "event": "Clicked", "anonymousId": "a1", "timestamp": at(hours=1)}
    store(storage, [dict(first, messageId="retried")])
    store(storage, [dict(first, messageId="retried")], at(11))
    store(
        storage,
        [
            {"type": "identify", "userId": "late", "anonymousId": "a1", "timestamp": at(days=2)},
            {"type": "identify", "userId": "early", "anonymousId": "a1", "timestamp": at(days=1)},
        ],
    )
    assert storage.rows("select count(*) from events where message_id = ?", ["retried"]) == [(1,)]
    signals = storage.launch_signals(replace(plan(), event_names=("Clicked",)))
    assert [(r["user_id"], r["is_identified"], r["occurred_at"]) for r in signals.to_pylist()] == [
        ("early", True, at(hours=1))
    ]
    got = activity(storage, identified_only=True)
    assert got["early"] == (True, at(hours=1), None, "1100")


# Property and trait names as written, each addressing exactly that top-level name.
NAMES = ("a/b", "a~b", "a~1b", "a.b", 'q"uote', "", "é", "$set", "a")
VALUES: dict[str, Any] = {
    "a/b": "slash",
    "a~b": "tilde",
    "a~1b": "tilde one",
    "a.b": "dot",
    'q"uote': 'say "hi"',
    "": "empty name",
    "é": "accent",
    "$set": {"nested": [1, "x", None, True]},
    "b": {"a": "not top-level"},
}
KINDS = ("int", "float", "whole float", "exponent", "true", "false", "null", "empty text", "missing")
KIND_VALUES: dict[str, Any] = {
    "int": 42,
    "float": 2.5,
    "whole float": 3.0,
    "exponent": 1e-7,
    "true": True,
    "false": False,
    "null": None,
    "empty text": "",
}


def test_signal_and_trait_values_are_read_by_their_exact_name_as_text(storage: Storage) -> None:
    """Names with '/', '~', dots, quotes, or empty address exactly that top-level value; values
    come back as text (whole floats keep '.0', JSON is compact), and a missing value or a JSON
    null is null, never ''. An event without properties has null props."""
    channel = {"campaign": {"source": "newsletter"}}
    store(
        storage,
        [
            {"type": "track", "event": "Named", "userId": "u", "timestamp": at(hours=1),
             "properties": VALUES | {"channel": 7}, "context": channel},
            {"type": "track", "event": "Kinds", "userId": "u", "timestamp": at(hours=2),
             "properties": KIND_VALUES, "context": channel},
            {"type": "track", "event": "Bare", "userId": "u", "timestamp": at(hours=3), "context": channel},
            {"type": "identify", "userId": "u", "timestamp": at(hours=4), "traits": VALUES | KIND_VALUES},
        ],
    )
    names = NAMES + KINDS
    chosen = replace(plan(), event_names=("Named", "Kinds", "Bare"), property_names=names, trait_names=names)
    signals = {r["event"]: r for r in storage.launch_signals(chosen).to_pylist()}
    expected = {
        "a/b": "slash", "a~b": "tilde", "a~1b": "tilde one", "a.b": "dot", 'q"uote': 'say "hi"',
        "": "empty name", "é": "accent", "$set": '{"nested":[1,"x",null,true]}', "a": None,
    }
    kinds = {
        "int": "42", "float": "2.5", "whole float": "3.0", "exponent": "1e-7", "true": "true",
        "false": "false", "null": None, "empty text": "", "missing": None,
    }
    assert dict(zip(names, signals["Named"]["props"], strict=True)) == expected | dict.fromkeys(KINDS)
    assert dict(zip(names, signals["Kinds"]["props"], strict=True)) == dict.fromkeys(NAMES) | kinds
    assert signals["Bare"]["props"] is None
    # The channel property when present (as text), else context.campaign.source.
    assert [signals[e]["channel"] for e in ("Named", "Kinds", "Bare")] == ["7", "newsletter", "newsletter"]
    traits = storage.launch_traits(chosen)
    carried = {r["trait"]: r["value"] for r in traits.to_pylist()}
    assert carried == {k: v for k, v in (expected | kinds).items() if v is not None}
    assert traits.schema == pa.schema(
        [("user_id", pa.string()), ("occurred_at", pa.timestamp("us")), ("trait", pa.string()),
         ("value", pa.string())]
    )


# Values as orjson stores them. Inside an object or array no floats and no U+2028/U+2029: there
# ClickHouse writes a whole double as 1 where DuckDB writes 1.0, and escapes those two
# characters (the one known difference, documented in select_launch_signals.sql).
_text = st.text(max_size=12)
_plain_text = st.text(max_size=12).filter(lambda t: "\u2028" not in t and "\u2029" not in t)
_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
_nested = st.recursive(
    st.none() | st.booleans() | _ints | _plain_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_plain_text, inner, max_size=3),
    max_leaves=6,
)
_values = st.none() | st.booleans() | _ints | st.floats(allow_nan=False, allow_infinity=False) | _text
_objects = st.dictionaries(_text, _values | _nested.filter(lambda v: isinstance(v, list | dict)), max_size=6)
_batches = itertools.count()
DUCKDB_READS = "select json_extract_string(?::json, ?)"  # how DuckDB reads values at pointers


@settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(objects=st.lists(_objects, min_size=1, max_size=6), absent=st.lists(_text, max_size=2))
@example(objects=[{"n": 1.0, "z": -0.0, "e": 1e20, "s": "\u2028", "a/b~": {"x": [None]}}, {}], absent=["a"])
def test_values_are_read_as_duckdb_reads_them(
    storage: Storage, objects: list[dict[str, Any]], absent: list[str]
) -> None:
    """Every name of generated objects, and a few they lack, read through the report's inputs
    (props and trait values) equals DuckDB's json_extract_string at the name's pointer."""
    batch = next(_batches)
    users = [f"generated {batch}.{i}" for i in range(len(objects))]
    events = []
    for user, properties in zip(users, objects, strict=True):
        events.append({"type": "track", "event": user, "userId": user, "timestamp": at(hours=1),
                       "properties": properties, "messageId": f"{user} track"})
        events.append({"type": "identify", "userId": user, "timestamp": at(hours=1), "traits": properties,
                       "messageId": f"{user} identify"})
    store(storage, events)
    names = tuple(dict.fromkeys([*(n for o in objects for n in o), *absent]))
    pointers = [json_pointer(n) for n in names]
    expected = {}
    with duckdb.connect() as oracle:
        for user, properties in zip(users, objects, strict=True):
            stored = orjson.dumps(properties).decode()
            [(values,)] = oracle.execute(DUCKDB_READS, [stored, pointers]).fetchall()
            expected[user] = dict(zip(names, values, strict=True))
    chosen = replace(plan(), event_names=tuple(users), property_names=names, trait_names=names)
    signals = storage.launch_signals(chosen).to_pylist()
    assert {r["user_id"]: dict(zip(names, r["props"], strict=True)) for r in signals} == expected
    traits: dict[str, dict[str, str]] = {user: {} for user in users}
    for row in storage.launch_traits(chosen).to_pylist():
        if row["user_id"] in traits:
            traits[row["user_id"]][row["trait"]] = row["value"]
    carried = {user: {n: v for n, v in values.items() if v is not None} for user, values in expected.items()}
    assert traits == carried
