"""Acceptance: the real Segment, RudderStack and PostHog Python SDKs against the real service.

Each test starts the service under uvicorn on 127.0.0.1 (the `live_server` fixture), points an
SDK at it with a write key, sends events in the SDK's synchronous mode (or its background mode
followed by `flush()` and `shutdown()`), and then reads the rows straight from the database
(each test runs on both backends). Retries
are turned off wherever the SDK allows, and errors are collected rather than logged, so a
refused request fails the test instead of being retried or swallowed. Time checks compare
every row with the spec's skew correction, `occurred_at = received_at - (sent_at - timestamp)`,
using the times the SDK itself put on the wire.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import posthog
import pytest
import rudderstack.analytics.request as rudder_request
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from tests.helpers.live import Keys, LiveServer
from tests.helpers.stored import count_rows, stored_event_dicts, stored_links

pytestmark = [pytest.mark.sdk, pytest.mark.backends]

# The SDK and the server share a clock here, so the corrected time may differ from the
# timestamp passed only by the request's time in flight; generous for a loaded CI runner.
CLOSE_ENOUGH = timedelta(seconds=10)

Row = dict[str, Any]


def _events(server: LiveServer) -> dict[str, Row]:
    """Every stored event keyed by message_id, failing if any message_id appears twice."""
    rows = stored_event_dicts(server.storage)
    by_id = {row["message_id"]: row for row in rows}
    assert len(by_id) == len(rows), "a message_id was stored more than once"
    assert server.storage.count_events() == len(rows)
    return by_id


def _links(server: LiveServer) -> dict[str, str]:
    return {anonymous: user for anonymous, user, _ in stored_links(server.storage)}


def _rejected_count(server: LiveServer) -> int:
    return count_rows(server.storage, "rejected_events")


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _assert_time(row: Row, passed: datetime) -> None:
    """The stored time is the skew-corrected one and matches what the caller passed."""
    assert row["original_timestamp"] == _naive_utc(passed)
    assert row["sent_at"] is not None, "the SDK's sentAt was not kept"
    expected = row["received_at"] - (row["sent_at"] - row["original_timestamp"])
    assert row["occurred_at"] == expected
    assert abs(row["occurred_at"] - _naive_utc(passed)) < CLOSE_ENOUGH
    assert row["is_clamped"] is False


def _an_hour_ago(offset_ms: int = 0) -> datetime:
    # Whole milliseconds: Segment's SDK writes timestamps with millisecond precision.
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(hours=1) + timedelta(milliseconds=offset_ms)


def _stored_once(server: LiveServer, sent: dict[str, datetime]) -> list[Row]:
    """Every sent event (messageId -> time passed) stored exactly once with the right corrected
    time, and nothing else; the stored rows in the order sent."""
    stored = _events(server)
    assert set(stored) == set(sent)
    for message_id, when in sent.items():
        _assert_time(stored[message_id], when)
    return [stored[message_id] for message_id in sent]


def _sync_sender(client: Any, sent: dict[str, datetime]) -> Callable[..., None]:
    """send(kind, when, **fields): one call of a Segment-style SDK in sync mode (track,
    identify, page, ...) timestamped `when`, which must succeed; its messageId goes in `sent`."""

    def send(kind: str, when: datetime, **fields: Any) -> None:
        ok, message = getattr(client, kind)(timestamp=when, **fields)
        assert ok is True
        sent[message["messageId"]] = when

    return send


@pytest.fixture
def sdk_errors() -> list[BaseException]:
    """Errors the SDKs' background consumers report through `on_error`."""
    return []


@pytest.fixture
def on_error(sdk_errors: list[BaseException]) -> Callable[[BaseException, Any], None]:
    def record(error: BaseException, batch: Any) -> None:
        sdk_errors.append(error)

    return record


# -- Segment --------------------------------------------------------------------------------


def test_segment_sync_calls_are_stored_with_identity_and_corrected_time(
    live_server: LiveServer, keys: Keys
) -> None:
    # sync_mode posts each call before returning and raises on any non-2xx: nothing is queued
    # or retried behind the test's back.
    client = SegmentClient(keys.write, host=live_server.url, sync_mode=True, max_retries=0, timeout=10)
    at = _an_hour_ago()
    sent: dict[str, datetime] = {}
    send = _sync_sender(client, sent)
    ms = timedelta(milliseconds=1)
    send("track", at, user_id="user-1", event="Report Exported", properties={"format": "csv", "rows": 42})
    send("identify", at + ms, user_id="user-1", anonymous_id="anon-1", traits={"plan": "pro", "seats": 5})
    send(
        "page",
        at + 2 * ms,
        anonymous_id="anon-2",
        category="Docs",
        name="Pricing",
        properties={"path": "/pricing"},
    )
    send("alias", at + 3 * ms, previous_id="anon-3", user_id="user-3")
    send("screen", at + 4 * ms, user_id="user-1", name="Settings", properties={"tab": "billing"})
    send("group", at + 5 * ms, user_id="user-1", group_id="acme", traits={"employees": 40})

    rows = _stored_once(live_server, sent)
    assert [row["type"] for row in rows] == ["track", "identify", "page", "alias", "screen", "group"]
    assert {row["api"] for row in rows} == {"segment"}
    by_type = {row["type"]: row for row in rows}

    track = by_type["track"]
    assert (track["event"], track["user_id"], track["anonymous_id"]) == (
        "Report Exported",
        "user-1",
        None,
    )
    assert track["properties"] == {"format": "csv", "rows": 42}
    assert track["context"]["library"]["name"] == "analytics-python"

    identify = by_type["identify"]
    assert (identify["user_id"], identify["anonymous_id"]) == ("user-1", "anon-1")
    assert identify["traits"] == {"plan": "pro", "seats": 5}

    page = by_type["page"]
    assert (page["event"], page["user_id"], page["anonymous_id"]) == ("Pricing", None, "anon-2")
    assert page["properties"] == {"path": "/pricing"}

    alias = by_type["alias"]
    assert (alias["user_id"], alias["previous_id"]) == ("user-3", "anon-3")

    assert by_type["screen"]["event"] == "Settings"
    assert by_type["screen"]["properties"] == {"tab": "billing"}
    assert by_type["group"]["group_id"] == "acme"
    assert by_type["group"]["traits"] == {"employees": 40}

    assert _links(live_server) == {"anon-1": "user-1", "anon-3": "user-3"}
    assert _rejected_count(live_server) == 0


def test_segment_background_batches_arrive_once_each(
    live_server: LiveServer,
    keys: Keys,
    sdk_errors: list[BaseException],
    on_error: Callable[[BaseException, Any], None],
) -> None:
    # The SDK's normal mode: a consumer thread uploads batches of up to 100. max_retries=0
    # makes the first failure final, and on_error hands it to the test.
    client = SegmentClient(
        keys.write,
        host=live_server.url,
        max_retries=0,
        on_error=on_error,
        upload_size=100,
        upload_interval=0.05,
        timeout=10,
    )
    at = _an_hour_ago()
    sent: dict[str, datetime] = {}
    for index in range(250):
        when = at + timedelta(milliseconds=index)
        ok, message = client.track(
            anonymous_id=f"anon-{index % 7}",
            event="Feature Used",
            properties={"index": index},
            timestamp=when,
        )
        assert ok is True
        sent[message["messageId"]] = when
    client.flush()
    client.shutdown()

    assert sdk_errors == []
    rows = _stored_once(live_server, sent)
    for row in rows:
        assert (row["type"], row["event"], row["user_id"]) == ("track", "Feature Used", None)
        assert row["anonymous_id"] == f"anon-{row['properties']['index'] % 7}"
    # 250 events at upload_size=100 take at least three requests, each with its own sentAt.
    assert len({row["sent_at"] for row in rows}) >= 3


# -- RudderStack ----------------------------------------------------------------------------


@pytest.fixture
def rudder_bodies(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[dict[str, str], bytes]]]:
    """The headers and raw bodies the RudderStack SDK puts on the wire (still sent for real)."""
    seen: list[tuple[dict[str, str], bytes]] = []
    real_post = rudder_request._session.post

    def spying_post(url: str, **kwargs: Any) -> Any:
        seen.append((dict(kwargs["headers"]), kwargs["data"]))
        return real_post(url, **kwargs)

    monkeypatch.setattr(rudder_request._session, "post", spying_post)
    yield seen


def _rudder_payloads(bodies: list[tuple[dict[str, str], bytes]]) -> list[dict[str, Any]]:
    """Each request decoded, after checking it really went out gzip-compressed."""
    payloads = []
    for headers, body in bodies:
        assert headers.get("Content-Encoding") == "gzip"
        assert isinstance(body, bytes) and body[:2] == b"\x1f\x8b", "body is not gzip"
        payloads.append(json.loads(gzip.decompress(body)))
    return payloads


def test_rudderstack_gzip_sync_calls_are_stored(
    live_server: LiveServer, keys: Keys, rudder_bodies: list[tuple[dict[str, str], bytes]]
) -> None:
    # gzip is the SDK's default; it is left at the default on purpose and checked, because
    # that default is what real RudderStack users send.
    assert RudderClient.DefaultConfig.gzip is True
    client = RudderClient(keys.write, host=live_server.url, sync_mode=True, timeout=10)
    assert client.gzip is True
    at = datetime.now(UTC) - timedelta(minutes=30, microseconds=123)
    sent: dict[str, datetime] = {}
    send = _sync_sender(client, sent)
    second = timedelta(seconds=1)
    send("track", at, user_id="rs-user", event="Checkout Started", properties={"cart": 3})
    send(
        "identify", at + second, user_id="rs-user", anonymous_id="rs-anon", traits={"email": "a@example.com"}
    )
    send("page", at + 2 * second, anonymous_id="rs-anon", name="Home", properties={"path": "/"})
    send("alias", at + 3 * second, previous_id="rs-old", user_id="rs-user")

    # One gzip request per call, in order.
    assert [p["batch"][0]["messageId"] for p in _rudder_payloads(rudder_bodies)] == list(sent)
    track, identify, page, alias = _stored_once(live_server, sent)
    assert [row["type"] for row in (track, identify, page, alias)] == ["track", "identify", "page", "alias"]
    assert (track["event"], track["user_id"], track["properties"]) == (
        "Checkout Started",
        "rs-user",
        {"cart": 3},
    )
    # RudderStack puts identify traits under context.traits rather than at the root.
    assert identify["traits"] == {"email": "a@example.com"}
    assert (identify["user_id"], identify["anonymous_id"]) == ("rs-user", "rs-anon")
    assert (page["event"], page["anonymous_id"]) == ("Home", "rs-anon")
    assert page["properties"] == {"path": "/"}
    assert (alias["user_id"], alias["previous_id"]) == ("rs-user", "rs-old")
    assert _links(live_server) == {"rs-anon": "rs-user", "rs-old": "rs-user"}


def test_rudderstack_gzip_background_batches_arrive_once_each(
    live_server: LiveServer,
    keys: Keys,
    rudder_bodies: list[tuple[dict[str, str], bytes]],
    sdk_errors: list[BaseException],
    on_error: Callable[[BaseException, Any], None],
) -> None:
    client = RudderClient(
        keys.write,
        host=live_server.url,
        max_retries=0,
        on_error=on_error,
        upload_size=50,
        upload_interval=0.05,
        timeout=10,
    )
    assert client.gzip is True
    at = datetime.now(UTC) - timedelta(hours=2)
    sent: dict[str, datetime] = {}
    for index in range(120):
        when = at + timedelta(seconds=index)
        ok, message = client.track(
            user_id=f"rs-{index % 5}",
            event="Search",
            properties={"q": f"term {index}"},
            timestamp=when,
        )
        assert ok is True
        sent[message["messageId"]] = when
    client.flush()
    client.shutdown()

    assert sdk_errors == []
    on_wire = [e["messageId"] for p in _rudder_payloads(rudder_bodies) for e in p["batch"]]
    assert sorted(on_wire) == sorted(sent)
    assert len(rudder_bodies) >= 3
    for row in _stored_once(live_server, sent):
        assert row["event"] == "Search"
        index = int(row["properties"]["q"].removeprefix("term "))
        assert row["user_id"] == f"rs-{index % 5}"


# -- PostHog --------------------------------------------------------------------------------


def _posthog_client(server: LiveServer, key: str, **options: Any) -> posthog.Posthog:
    # debug=True makes the SDK's public methods raise instead of logging and returning None;
    # max_retries=0 keeps a refused upload from being retried.
    return posthog.Posthog(key, host=server.url, debug=True, max_retries=0, timeout=10, **options)


def test_posthog_sync_capture_set_and_identify_are_mapped(live_server: LiveServer, keys: Keys) -> None:
    client = _posthog_client(live_server, keys.write, sync_mode=True)
    at = datetime.now(UTC) - timedelta(hours=3, microseconds=7)
    capture_id = str(uuid.uuid4())
    returned = client.capture(
        "Export Clicked",
        distinct_id="ph-user",
        properties={"format": "pdf", "$set": {"plan": "team"}},
        timestamp=at,
        uuid=capture_id,
    )
    assert returned == capture_id
    identify_id = client.capture(
        "$identify",
        distinct_id="ph-user",
        properties={"$anon_distinct_id": "ph-anon", "$set": {"email": "ph@example.com"}},
        timestamp=at + timedelta(seconds=1),
    )
    set_id = client.set(
        distinct_id="ph-user", properties={"company": "Acme"}, timestamp=at + timedelta(seconds=2)
    )
    page_id = client.capture(
        "$pageview",
        distinct_id="ph-anon",
        properties={"$title": "Pricing", "$pathname": "/pricing"},
        timestamp=at + timedelta(seconds=3),
    )
    client.shutdown()
    assert identify_id is not None and set_id is not None and page_id is not None

    sent = {m: at + timedelta(seconds=i) for i, m in enumerate((capture_id, identify_id, set_id, page_id))}
    capture, identify, set_row, page = _stored_once(live_server, sent)
    assert {row["api"] for row in (capture, identify, set_row, page)} == {"posthog"}

    assert (capture["type"], capture["event"], capture["user_id"]) == (
        "track",
        "Export Clicked",
        "ph-user",
    )
    assert capture["properties"]["format"] == "pdf"
    assert "$set" not in capture["properties"]
    assert capture["properties"]["$lib"] == "posthog-python"
    assert capture["traits"] == {"plan": "team"}

    assert (identify["type"], identify["user_id"], identify["anonymous_id"]) == (
        "identify",
        "ph-user",
        "ph-anon",
    )
    assert identify["traits"] == {"email": "ph@example.com"}

    assert (set_row["event"], set_row["user_id"]) == ("$set", "ph-user")
    assert set_row["traits"] == {"company": "Acme"}

    assert (page["type"], page["event"], page["user_id"]) == ("page", "Pricing", "ph-anon")
    assert page["properties"]["path"] == "/pricing"

    assert _links(live_server) == {"ph-anon": "ph-user"}
    assert _rejected_count(live_server) == 0


def test_posthog_gzip_background_batches_arrive_once_each(live_server: LiveServer, keys: Keys) -> None:
    errors: list[BaseException] = []
    client = _posthog_client(
        live_server,
        keys.write,
        gzip=True,
        flush_at=40,
        flush_interval=0.05,
        on_error=lambda error, batch: errors.append(error),
    )
    at = datetime.now(UTC) - timedelta(days=1)
    sent: dict[str, datetime] = {}
    for index in range(100):
        when = at + timedelta(seconds=index)
        event_id = client.capture(
            "Dashboard Viewed",
            distinct_id=f"ph-{index % 3}",
            properties={"n": index},
            timestamp=when,
        )
        assert event_id is not None
        sent[event_id] = when
    client.flush()
    client.shutdown()

    assert errors == []
    for row in _stored_once(live_server, sent):
        assert (row["type"], row["event"]) == ("track", "Dashboard Viewed")
        assert row["user_id"] == f"ph-{row['properties']['n'] % 3}"
