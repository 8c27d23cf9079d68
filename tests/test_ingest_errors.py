"""The ingestion API's edges through TestClient: every error code, per-event rejection, dedupe,
paths, where the key may sit, event-time correction, identity links and the PostHog mapping.

Every refusal must leave as exactly `{"code", "message", "detail"}` (SDKs parse that shape), and
every success must be exactly 200 (SDKs retry other 2xx and do not all follow redirects). Each
test reads the database afterwards, since a right status with wrong rows is still a failure;
every test runs on both backends.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import orjson
import pytest
from clickhouse_connect.driver.exceptions import OperationalError
from fastapi.testclient import TestClient
from httpx2 import Response

import app.storage.duckdb_events
from app.ingest import EVENT_COLUMNS
from app.main import create_app
from app.queries import query
from app.settings import MiB, Settings
from app.storage import IngestRequest, Storage, WriteResult
from tests.helpers.live import Keys
from tests.helpers.stored import count_rows, stored_links

pytestmark = pytest.mark.backends

Event = dict[str, Any]


# -- helpers --------------------------------------------------------------------------------


def _track(message_id: str, **extra: Any) -> Event:
    return {
        "type": "track",
        "event": "Feature Used",
        "userId": "u1",
        "messageId": message_id,
        **extra,
    }


def _assert_error(response: Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "detail"}
    assert all(isinstance(value, str) for value in body.values())
    assert body["code"] == code
    assert body["message"]
    return dict(body)


def _assert_ok(response: Response, **counts: int) -> None:
    assert response.status_code == 200, response.text
    assert response.history == []
    body = response.json()
    assert body["success"] is True
    for name, value in counts.items():
        assert body[name] == value, (name, body)


def _rows(storage: Storage, columns: str, rest: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """`select {columns} {rest}` as dicts by column name (on either backend)."""
    names = [name.strip() for name in columns.split(",")]
    rows = storage.rows(f"select {columns} {rest}", params)
    return [dict(zip(names, values, strict=True)) for values in rows]


def _event(storage: Storage, message_id: str) -> dict[str, Any]:
    rows = _rows(storage, ", ".join(EVENT_COLUMNS), "from events where message_id = ?", [message_id])
    assert len(rows) == 1, rows
    row = rows[0]
    for column in ("properties", "traits", "context"):
        row[column] = None if row[column] is None else json.loads(row[column])
    return row


def _count(storage: Storage, table: str) -> int:
    return count_rows(storage, table)


def _links(storage: Storage) -> dict[str, tuple[str, datetime]]:
    return {anonymous: (user, linked_at) for anonymous, user, linked_at in stored_links(storage)}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _basic(key: str) -> tuple[str, str]:
    return (key, "")


def _post(client: TestClient, path: str, body: Any, key: str | None, **kwargs: Any) -> Response:
    if key is None:
        return client.post(path, json=body, **kwargs)
    return client.post(path, json=body, auth=_basic(key), **kwargs)


@pytest.fixture
def small_client(settings: Settings, storage: Storage) -> Iterator[TestClient]:
    """A service with tiny size caps, sharing the test's storage."""
    small = settings.model_copy(update={"max_body_bytes": 2048, "max_decompressed_bytes": 4096})
    with TestClient(create_app(small, storage)) as test_client:
        yield test_client


# -- request-level errors -------------------------------------------------------------------


@pytest.mark.parametrize("body", [b'{"batch": [', b"not json", b"\xff\xfe", b"", b"   "], ids=repr)
def test_malformed_json_is_400(client: TestClient, keys: Keys, body: bytes) -> None:
    response = client.post(
        "/v1/batch",
        content=body,
        auth=_basic(keys.write),
        headers={"Content-Type": "application/json"},
    )
    _assert_error(response, 400, "malformed_json")


def test_a_json_value_that_is_not_an_object_is_400(client: TestClient, keys: Keys) -> None:
    _assert_error(_post(client, "/v1/batch", [_track("m1")], keys.write), 400, "malformed_json")


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/batch", {"batch": []}), ("/batch/", {"batch": []}), ("/batch/", [])],
)
def test_empty_batch_is_400(client: TestClient, keys: Keys, storage: Storage, path: str, body: Any) -> None:
    _assert_error(_post(client, path, body, keys.write), 400, "empty_batch")
    assert _count(storage, "events") == 0


def test_batch_that_is_not_a_list_is_400(client: TestClient, keys: Keys) -> None:
    _assert_error(_post(client, "/v1/batch", {"batch": {}}, keys.write), 400, "invalid_input")


def test_an_unparseable_sent_at_costs_no_event(client: TestClient, keys: Keys, storage: Storage) -> None:
    # PostHog's, RudderStack's and Snowplow's own test vectors: the sentAt is ignored with a
    # warning, and the event keeps its own timestamp, uncorrected.
    body = {
        "batch": [
            _track("batch-level", timestamp="2026-03-01T12:00:00Z"),
            _track("own", timestamp="2026-03-01T12:00:00Z", sentAt="0001-01-01T00:00:00+01:00"),
        ],
        "sentAt": "half past nine",
    }
    response = _post(client, "/v1/batch", body, keys.write)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2
    assert response.json()["warnings"] == [
        "sentAt 'half past nine' is not an ISO 8601 time; it was ignored and the event's own timestamp kept",
        "sentAt is outside the supported range; it was ignored and the event's own timestamp kept",
    ]
    for message_id in ("batch-level", "own"):
        row = _event(storage, message_id)
        assert (row["sent_at"], row["occurred_at"]) == (None, datetime(2026, 3, 1, 12, 0))


def test_iso_8601_ordinal_dates_are_accepted(client: TestClient, keys: Keys, storage: Storage) -> None:
    batch = {
        "batch": [
            _track("ordinal", timestamp="2021-302T10:00:00Z"),
            _track("ordinal-basic", timestamp="2021302T10:00:00+02:00"),
            _track("date-only", timestamp="2024-060"),
        ]
    }
    _assert_ok(_post(client, "/v1/batch", batch, keys.write), inserted=3)
    assert _event(storage, "ordinal")["occurred_at"] == datetime(2021, 10, 29, 10, 0)
    assert _event(storage, "ordinal-basic")["occurred_at"] == datetime(2021, 10, 29, 8, 0)
    assert _event(storage, "date-only")["occurred_at"] == datetime(2024, 2, 29)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/batch", 405, "method_not_allowed"),
        ("POST", "/v1/nothing-here", 404, "not_found"),
    ],
)
def test_routing_errors_have_the_same_shape(
    client: TestClient, method: str, path: str, status: int, code: str
) -> None:
    _assert_error(client.request(method, path), status, code)


def test_missing_key_is_401(client: TestClient, keys: Keys, storage: Storage) -> None:
    response = _post(client, "/v1/batch", {"batch": [_track("m1")]}, None)
    _assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert _count(storage, "events") == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer lw_not-a-real-key"},
        {"Authorization": "Basic bHdfbm9wZTo="},  # "lw_nope:"
        {"Authorization": "Basic !!!not-base64"},
    ],
    ids=["unknown-bearer", "unknown-basic", "garbled-basic"],
)
def test_unknown_key_is_401(
    client: TestClient, keys: Keys, storage: Storage, headers: dict[str, str]
) -> None:
    response = client.post("/v1/batch", json={"batch": [_track("m1")]}, headers=headers)
    _assert_error(response, 401, "unauthorized")
    assert _count(storage, "events") == 0


def test_unknown_write_key_in_body_is_401(client: TestClient, keys: Keys) -> None:
    body = {"batch": [_track("m1")], "writeKey": "lw_guess"}
    _assert_error(_post(client, "/v1/batch", body, None), 401, "unauthorized")


@pytest.mark.parametrize("scope", ["read", "admin"])
def test_non_write_key_posting_events_is_403(
    client: TestClient, keys: Keys, storage: Storage, scope: str
) -> None:
    secret = keys.read if scope == "read" else keys.admin
    response = _post(client, "/v1/batch", {"batch": [_track("m1")]}, secret)
    _assert_error(response, 403, "forbidden")
    assert _count(storage, "events") == 0


def test_body_too_large_on_the_wire_is_413(small_client: TestClient, keys: Keys) -> None:
    big = {"batch": [_track(f"m{i}", properties={"pad": "x" * 100}) for i in range(30)]}
    body = orjson.dumps(big)
    assert len(body) > 2048
    response = small_client.post(
        "/v1/batch",
        content=body,
        auth=_basic(keys.write),
        headers={"Content-Type": "application/json"},
    )
    error = _assert_error(response, 413, "payload_too_large")
    assert "2048" in error["detail"]


def test_chunked_body_too_large_is_413_without_content_length(small_client: TestClient, keys: Keys) -> None:
    # No Content-Length: the cap must hold while streaming, not only on the declared size.
    def chunks() -> Iterator[bytes]:
        yield b'{"batch": ['
        for index in range(40):
            yield orjson.dumps(_track(f"m{index}")) + b","
        yield orjson.dumps(_track("last")) + b"]}"

    response = small_client.post(
        "/v1/batch",
        content=chunks(),
        auth=_basic(keys.write),
        headers={"Content-Type": "application/json"},
    )
    _assert_error(response, 413, "payload_too_large")


def test_body_just_under_the_cap_is_accepted(small_client: TestClient, keys: Keys, storage: Storage) -> None:
    body = orjson.dumps({"batch": [_track(f"m{i}") for i in range(10)]})
    assert len(body) < 2048
    response = small_client.post("/v1/batch", content=body, auth=_basic(keys.write))
    _assert_ok(response, inserted=10)
    assert _count(storage, "events") == 10


def test_gzip_over_the_decompressed_cap_is_413(small_client: TestClient, keys: Keys) -> None:
    body = gzip.compress(orjson.dumps({"batch": [_track(f"m{i}") for i in range(80)]}))
    assert len(body) < 2048
    response = small_client.post(
        "/v1/batch", content=body, auth=_basic(keys.write), headers={"Content-Encoding": "gzip"}
    )
    _assert_error(response, 413, "payload_too_large")


def _gzip_zeros(total: int) -> bytes:
    # Compressed piece by piece so the test itself never holds the inflated bytes.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MiB)
    parts = [compressor.compress(block) for _ in range(total // MiB)]
    parts.append(compressor.flush())
    return b"".join(parts)


def test_gzip_bomb_is_413_quickly_without_inflating_it_all(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    bomb = _gzip_zeros(50 * MiB)
    assert len(bomb) < 100_000
    tracemalloc.start()
    started = time.monotonic()
    try:
        response = client.post(
            "/v1/batch",
            content=bomb,
            auth=_basic(keys.write),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _assert_error(response, 413, "payload_too_large")
    assert elapsed < 5
    # Refusing the bomb may cost at most about the decompression cap, and must never cost
    # what inflating all of it would (50 MiB).
    assert settings.max_decompressed_bytes < 50 * MiB
    assert peak < settings.max_decompressed_bytes + 8 * MiB, (
        f"refusing a {len(bomb)}-byte gzip bomb peaked at {peak / MiB:.1f} MiB"
    )


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
def test_unsupported_content_encoding_is_415(client: TestClient, keys: Keys, encoding: str) -> None:
    response = client.post(
        "/v1/batch",
        content=b"\x00\x01\x02",
        auth=_basic(keys.write),
        headers={"Content-Encoding": encoding},
    )
    _assert_error(response, 415, "unsupported_encoding")


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b'{"batch": []}'),
        ("gzip", gzip.compress(orjson.dumps({"batch": [_track("m1")]}))[:-12]),
        ("deflate", b"definitely not deflate"),
    ],
    ids=["gzip-plain-text", "gzip-truncated", "deflate-garbage"],
)
def test_invalid_compressed_body_is_400(
    client: TestClient, keys: Keys, storage: Storage, encoding: str, body: bytes
) -> None:
    response = client.post(
        "/v1/batch", content=body, auth=_basic(keys.write), headers={"Content-Encoding": encoding}
    )
    _assert_error(response, 400, "invalid_encoding")
    assert _count(storage, "events") == 0


@pytest.mark.parametrize(
    ("encoding", "wbits"),
    [
        ("gzip", 16 + zlib.MAX_WBITS),
        ("x-gzip", 16 + zlib.MAX_WBITS),
        ("deflate", zlib.MAX_WBITS),
        ("deflate", -zlib.MAX_WBITS),
    ],
    ids=["gzip", "x-gzip", "deflate-zlib", "deflate-raw"],
)
def test_compressed_bodies_are_accepted(
    client: TestClient, keys: Keys, storage: Storage, encoding: str, wbits: int
) -> None:
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    raw = orjson.dumps({"batch": [_track("z1"), _track("z2")]})
    body = compressor.compress(raw) + compressor.flush()
    response = client.post(
        "/v1/batch", content=body, auth=_basic(keys.write), headers={"Content-Encoding": encoding}
    )
    _assert_ok(response, inserted=2)
    assert _event(storage, "z2")["event"] == "Feature Used"


# -- storage unavailable --------------------------------------------------------------------


def _break_writes(
    storage: Storage, backend: str, monkeypatch: pytest.MonkeyPatch, *, table: str = "events"
) -> None:
    """Makes storing into `table` fail as a full disk would, until monkeypatch.undo(): on
    DuckDB inside the group's transaction, on ClickHouse at that table's insert."""
    if backend == "clickhouse":
        database = storage.database
        real = database.insert_arrow

        def insert(name: str, rows: Any, *, token: str | None = None) -> None:
            if name == table:
                raise OperationalError("could not write: disk full")
            real(name, rows, token=token)

        monkeypatch.setattr(database, "insert_arrow", insert)
        return
    if table == "events":

        def broken(conn: duckdb.DuckDBPyConnection, group: Any, *known: Any) -> list[WriteResult]:
            raise duckdb.IOException("could not write: disk full")

        monkeypatch.setattr(app.storage.duckdb_events, "write_ingest_group", broken)
        return
    real_group = app.storage.duckdb_events.write_ingest_group

    def half_broken(
        conn: duckdb.DuckDBPyConnection,
        group: Sequence[IngestRequest],
        known_links: dict[str, datetime] | None = None,
    ) -> list[WriteResult]:
        return real_group(_FailsOnInsert(conn, f"insert_{table}"), group, known_links)  # type: ignore[arg-type]

    monkeypatch.setattr(app.storage.duckdb_events, "write_ingest_group", half_broken)


class _FailsOnInsert:
    """A DuckDB connection that breaks on one statement, inside the group's transaction."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, statement: str) -> None:
        self._conn = conn
        self._statement = statement

    def execute(self, sql: str, *args: Any) -> duckdb.DuckDBPyConnection:
        if sql == query(self._statement):
            raise duckdb.IOException("could not write: disk full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_storage_failure_is_503_with_retry_after(
    client: TestClient,
    keys: Keys,
    storage: Storage,
    settings: Settings,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _break_writes(storage, backend, monkeypatch)
    batch = {"batch": [_track("m1"), _track("m2")]}
    response = _post(client, "/v1/batch", batch, keys.write)
    error = _assert_error(response, 503, "storage_unavailable")
    assert response.headers["Retry-After"] == str(settings.retry_after_seconds)
    assert "disk full" in error["detail"]

    monkeypatch.undo()
    _assert_ok(_post(client, "/v1/batch", batch, keys.write), inserted=2, duplicates=0)
    assert _count(storage, "events") == 2


def test_storage_failure_mid_write_stores_nothing_and_a_retry_stores_all(
    client: TestClient, keys: Keys, storage: Storage, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB: the refusals' insert fails inside the transaction. ClickHouse has no transaction:
    its refusals are inserted first and its events last, so a failure stores no event."""
    _break_writes(storage, backend, monkeypatch, table="rejected_events")
    batch = {
        "batch": [
            _track("m1"),
            {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m2"},
            {"type": "track", "userId": "u1", "messageId": "bad"},  # no event name: rejected
        ]
    }
    response = _post(client, "/v1/batch", batch, keys.write)
    _assert_error(response, 503, "storage_unavailable")
    assert "Retry-After" in response.headers
    assert (
        _count(storage, "events"),
        _count(storage, "identity_links"),
        _count(storage, "rejected_events"),
    ) == (0, 0, 0)

    monkeypatch.undo()
    _assert_ok(_post(client, "/v1/batch", batch, keys.write), inserted=2, rejected=1)
    assert (
        _count(storage, "events"),
        _count(storage, "identity_links"),
        _count(storage, "rejected_events"),
    ) == (2, 1, 1)


def test_a_failed_event_insert_after_the_links_still_counts_the_retry_as_inserted(
    client: TestClient, keys: Keys, storage: Storage, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last insert fails (ClickHouse: the events, after refusals and links were stored):
    the request is a 503, and its retry is counted and stored exactly as on DuckDB."""
    _break_writes(storage, backend, monkeypatch, table="events")
    batch = {
        "batch": [
            {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m2"},
            {"type": "track", "userId": "u1", "messageId": "bad"},
        ]
    }
    _assert_error(_post(client, "/v1/batch", batch, keys.write), 503, "storage_unavailable")
    assert _count(storage, "events") == 0
    monkeypatch.undo()
    _assert_ok(_post(client, "/v1/batch", batch, keys.write), inserted=1, duplicates=0, rejected=1)
    _assert_ok(_post(client, "/v1/batch", batch, keys.write), inserted=0, duplicates=1, rejected=1)
    assert (
        _count(storage, "events"),
        _count(storage, "identity_links"),
        _count(storage, "rejected_events"),
    ) == (1, 1, 1)
    assert set(_links(storage)) == {"a1"}


# -- per-event rejection --------------------------------------------------------------------


def test_bad_events_are_rejected_one_by_one_and_kept_once(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    bad: dict[str, Event] = {
        "unknown_type": {"type": "purchase", "userId": "u1", "messageId": "b1"},
        "missing_identity": {"type": "track", "event": "Clicked", "messageId": "b2"},
        "missing_event": {"type": "track", "userId": "u1", "messageId": "b3"},
        "event_too_large": _track("b4", properties={"blob": "x" * (MiB + 16)}),
        "invalid_timestamp": _track("b5", timestamp="the day before yesterday"),
    }
    good = [
        _track("g1"),
        _track("g2", userId="u2"),
        {"type": "page", "anonymousId": "a", "messageId": "g3"},
    ]
    batch = {"batch": [good[0], *bad.values(), *good[1:]]}
    body = orjson.dumps(batch)
    assert len(body) > MiB  # so the per-event size check runs at all

    response = client.post("/v1/batch", content=body, auth=_basic(keys.write))
    _assert_ok(response, accepted=3, inserted=3, duplicates=0, rejected=5)
    assert {row["message_id"] for row in _rows(storage, "message_id", "from events")} == {
        "g1",
        "g2",
        "g3",
    }
    rejected = _rows(
        storage, "rejected_id, source, received_at, reason, detail, payload", "from rejected_events"
    )
    by_reason = {row["reason"]: row for row in rejected}
    assert len(rejected) == len(by_reason) == 5
    assert set(by_reason) == set(bad)
    source = _rows(storage, "source", "from events limit 1")[0]["source"]
    for reason, event in bad.items():
        row = by_reason[reason]
        assert json.loads(row["payload"]) == event
        assert row["detail"]
        assert row["source"] == source

    again = client.post("/v1/batch", content=body, auth=_basic(keys.write))
    _assert_ok(again, accepted=3, inserted=0, duplicates=3, rejected=5)
    assert _count(storage, "rejected_events") == 5
    assert _count(storage, "events") == 3


def test_single_event_endpoint_rejects_without_failing_the_request(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    # One bad event on /v1/track is still a 200: the SDK must not retry it forever.
    response = _post(client, "/v1/track", {"userId": "u1", "messageId": "t1"}, keys.write)
    _assert_ok(response, accepted=0, rejected=1)
    assert _rows(storage, "reason", "from rejected_events") == [{"reason": "missing_event"}]


# -- dedupe ---------------------------------------------------------------------------------


def test_dedupe_inside_one_batch_and_across_batches(client: TestClient, keys: Keys, storage: Storage) -> None:
    first = {"batch": [_track("d1"), _track("d2"), _track("d1", event="Changed Name")]}
    _assert_ok(_post(client, "/v1/batch", first, keys.write), accepted=3, inserted=2, duplicates=1)
    # The first copy wins: a retry must never rewrite what was already stored.
    assert _event(storage, "d1")["event"] == "Feature Used"
    second = {"batch": [_track("d2"), _track("d3")]}
    _assert_ok(_post(client, "/v1/batch", second, keys.write), accepted=2, inserted=1, duplicates=1)
    assert _count(storage, "events") == 3


def test_events_without_message_id_are_deduped_by_content(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    event = {"type": "track", "event": "No Id", "userId": "u9", "timestamp": "2026-01-01T00:00:00Z"}
    _assert_ok(_post(client, "/v1/batch", {"batch": [event]}, keys.write), inserted=1)
    _assert_ok(_post(client, "/v1/batch", {"batch": [event]}, keys.write), inserted=0, duplicates=1)
    other = {**event, "timestamp": "2026-01-01T00:00:01Z"}
    _assert_ok(_post(client, "/v1/batch", {"batch": [other]}, keys.write), inserted=1)
    assert _count(storage, "events") == 2


def test_same_message_id_from_two_write_keys_is_two_events(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    ios_key, ios_secret = storage.create_key("ios", "write")
    _assert_ok(_post(client, "/v1/batch", {"batch": [_track("shared")]}, keys.write), inserted=1)
    _assert_ok(_post(client, "/v1/batch", {"batch": [_track("shared")]}, ios_secret), inserted=1)
    rows = _rows(storage, "source", "from events where message_id = 'shared'")
    sources = {row["source"] for row in rows}
    assert len(rows) == 2 and len(sources) == 2
    assert ios_key.key_id in sources


# -- paths ----------------------------------------------------------------------------------


SEGMENT_BODIES: dict[str, Event] = {
    "track": {"userId": "u1", "event": "Clicked"},
    "identify": {"userId": "u1", "traits": {"plan": "pro"}},
    "page": {"anonymousId": "a1", "name": "Home"},
    "screen": {"userId": "u1", "name": "Settings"},
    "group": {"userId": "u1", "groupId": "acme"},
    "alias": {"userId": "u1", "previousId": "a1"},
}


@pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])
@pytest.mark.parametrize("kind", [*SEGMENT_BODIES, "batch"])
def test_every_segment_path_answers_200(
    client: TestClient, keys: Keys, storage: Storage, kind: str, slash: str
) -> None:
    message_id = f"{kind}{slash}"
    if kind == "batch":
        body: Event = {"batch": [_track(message_id)]}
        expected_type = "track"
    else:
        body = {**SEGMENT_BODIES[kind], "messageId": message_id}
        expected_type = kind
    response = _post(client, f"/v1/{kind}{slash}", body, keys.write, follow_redirects=False)
    _assert_ok(response, inserted=1)
    row = _event(storage, message_id)
    assert (row["type"], row["api"]) == (expected_type, "segment")


@pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])
@pytest.mark.parametrize("path", ["/batch", "/capture", "/e", "/i/v0/e"])
def test_every_posthog_path_answers_200(
    client: TestClient, keys: Keys, storage: Storage, path: str, slash: str
) -> None:
    event = {"event": "Clicked", "distinct_id": "d1", "uuid": f"ph{path}{slash}", "properties": {}}
    body = {"api_key": keys.write, **({"batch": [event]} if path == "/batch" else event)}
    response = client.post(f"{path}{slash}", json=body, follow_redirects=False)
    _assert_ok(response, inserted=1)
    row = _event(storage, f"ph{path}{slash}")
    assert (row["api"], row["user_id"], row["event"]) == ("posthog", "d1", "Clicked")


# -- where the key comes from ---------------------------------------------------------------


def _key_request(way: str, secret: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(path, body, headers) carrying `secret` the given way."""
    segment: dict[str, Any] = {"batch": [_track(way)]}
    posthog_event = {"event": "Clicked", "distinct_id": "d1", "uuid": way}
    if way == "basic":
        return "/v1/batch", segment, {"Authorization": "Basic " + _b64(f"{secret}:")}
    if way == "basic-password":
        return "/v1/batch", segment, {"Authorization": "Basic " + _b64(f":{secret}")}
    if way == "bearer":
        return "/v1/batch", segment, {"Authorization": f"Bearer {secret}"}
    if way == "writeKey":
        return "/v1/batch", {**segment, "writeKey": secret}, {}
    if way == "api_key":
        return "/batch/", {"api_key": secret, "batch": [posthog_event]}, {}
    if way == "token":
        return "/e/", {"token": secret, **posthog_event}, {}
    assert way == "properties.token"
    return "/capture/", {**posthog_event, "properties": {"token": secret}}, {}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "way", ["basic", "basic-password", "bearer", "writeKey", "api_key", "token", "properties.token"]
)
def test_key_is_found_wherever_sdks_put_it(
    client: TestClient, keys: Keys, storage: Storage, way: str
) -> None:
    path, body, headers = _key_request(way, keys.write)
    _assert_ok(client.post(path, json=body, headers=headers), inserted=1)
    assert _count(storage, "events") == 1
    wrong_path, wrong_body, wrong_headers = _key_request(way, keys.write + "x")
    wrong = client.post(wrong_path, json=wrong_body, headers=wrong_headers)
    _assert_error(wrong, 401, "unauthorized")


# -- event time -----------------------------------------------------------------------------


def test_event_time_correction_rules(client: TestClient, keys: Keys, storage: Storage) -> None:
    stamp = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    skewed_sent = stamp + timedelta(hours=2, seconds=7)
    batch = {
        "batch": [
            _track("both", timestamp=_iso(stamp), sentAt=_iso(skewed_sent)),
            _track("no-sent", timestamp=_iso(stamp)),
            _track("no-time"),
            _track("offset", timestamp="2026-03-01T13:00:00+01:00", sentAt="2026-03-01T12:30:00Z"),
        ]
    }
    _assert_ok(_post(client, "/v1/batch", batch, keys.write), inserted=4)

    both = _event(storage, "both")
    assert both["original_timestamp"] == _naive(stamp)
    assert both["sent_at"] == _naive(skewed_sent)
    assert both["occurred_at"] == both["received_at"] - timedelta(hours=2, seconds=7)
    assert both["is_clamped"] is False

    no_sent = _event(storage, "no-sent")
    assert no_sent["sent_at"] is None
    assert no_sent["occurred_at"] == _naive(stamp)

    no_time = _event(storage, "no-time")
    assert no_time["original_timestamp"] is None
    assert no_time["occurred_at"] == no_time["received_at"]

    offset = _event(storage, "offset")  # 13:00+01:00 is 12:00Z, sent half an hour later
    assert offset["original_timestamp"] == datetime(2026, 3, 1, 12, 0)
    assert offset["occurred_at"] == offset["received_at"] - timedelta(minutes=30)


def test_batch_sent_at_applies_to_events_without_their_own(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    batch = {
        "sentAt": "2026-03-01T12:10:00Z",
        "batch": [
            _track("inherits", timestamp="2026-03-01T12:00:00Z"),
            _track("own", timestamp="2026-03-01T12:00:00Z", sentAt="2026-03-01T12:00:05Z"),
        ],
    }
    _assert_ok(_post(client, "/v1/batch", batch, keys.write), inserted=2)
    inherits = _event(storage, "inherits")
    assert inherits["occurred_at"] == inherits["received_at"] - timedelta(minutes=10)
    own = _event(storage, "own")
    assert own["occurred_at"] == own["received_at"] - timedelta(seconds=5)


def test_far_future_time_is_clamped_and_flagged(client: TestClient, keys: Keys, storage: Storage) -> None:
    now = datetime.now(UTC)
    batch = {
        "batch": [
            _track("future", timestamp=_iso(now + timedelta(hours=30))),
            _track("future-skew", timestamp=_iso(now + timedelta(hours=25)), sentAt=_iso(now)),
            _track("near-future", timestamp=_iso(now + timedelta(hours=22))),
        ]
    }
    _assert_ok(_post(client, "/v1/batch", batch, keys.write), inserted=3)
    for message_id in ("future", "future-skew"):
        row = _event(storage, message_id)
        assert row["is_clamped"] is True
        assert row["occurred_at"] == row["received_at"]
    near = _event(storage, "near-future")
    assert near["is_clamped"] is False
    assert near["occurred_at"] == _naive(now + timedelta(hours=22))


# -- identity links -------------------------------------------------------------------------


def test_identify_and_alias_create_identity_links(client: TestClient, keys: Keys, storage: Storage) -> None:
    batch = {
        "batch": [
            {
                "type": "identify",
                "userId": "user-a",
                "anonymousId": "anon-a",
                "messageId": "i1",
                "timestamp": "2026-02-01T10:00:00Z",
            },
            {
                "type": "alias",
                "userId": "user-b",
                "previousId": "anon-b",
                "messageId": "i2",
                "timestamp": "2026-02-01T11:00:00Z",
            },
            {"type": "identify", "userId": "user-c", "messageId": "i3"},  # nothing to link
            {"type": "track", "event": "Anon", "anonymousId": "anon-z", "messageId": "i4"},
        ]
    }
    _assert_ok(_post(client, "/v1/batch", batch, keys.write), inserted=4)
    assert _links(storage) == {
        "anon-a": ("user-a", datetime(2026, 2, 1, 10)),
        "anon-b": ("user-b", datetime(2026, 2, 1, 11)),
    }


def _identify(message_id: str, user: str, anonymous: str, at: str) -> Event:
    return {
        "type": "identify",
        "userId": user,
        "anonymousId": anonymous,
        "messageId": message_id,
        "timestamp": at,
    }


def test_earliest_identity_link_wins(client: TestClient, keys: Keys, storage: Storage) -> None:
    late = {"batch": [_identify("l1", "user-late", "anon-c", "2026-02-01T10:00:00Z")]}
    _assert_ok(_post(client, "/v1/batch", late, keys.write), inserted=1)
    assert _links(storage)["anon-c"] == ("user-late", datetime(2026, 2, 1, 10))

    # Arrives later but happened earlier: it replaces the link.
    early = {"batch": [_identify("l2", "user-early", "anon-c", "2026-02-01T09:00:00Z")]}
    _assert_ok(_post(client, "/v1/batch", early, keys.write), inserted=1)
    assert _links(storage)["anon-c"] == ("user-early", datetime(2026, 2, 1, 9))

    # Happened later than the stored link: ignored.
    later = {"batch": [_identify("l3", "user-later", "anon-c", "2026-02-01T11:00:00Z")]}
    _assert_ok(_post(client, "/v1/batch", later, keys.write), inserted=1)
    assert _links(storage)["anon-c"] == ("user-early", datetime(2026, 2, 1, 9))

    # Inside one batch, order on the wire does not matter either.
    mixed = {
        "batch": [
            _identify("m1", "user-2", "anon-d", "2026-02-02T12:00:00Z"),
            _identify("m2", "user-1", "anon-d", "2026-02-02T08:00:00Z"),
        ]
    }
    _assert_ok(_post(client, "/v1/batch", mixed, keys.write), inserted=2)
    assert _links(storage)["anon-d"] == ("user-1", datetime(2026, 2, 2, 8))
    assert _count(storage, "identity_links") == 2


# -- PostHog mapping ------------------------------------------------------------------------


def test_posthog_fields_map_to_the_segment_columns(client: TestClient, keys: Keys, storage: Storage) -> None:
    capture_uuid = "0190f3c0-0000-7000-8000-000000000001"
    identify_uuid = "0190f3c0-0000-7000-8000-000000000002"
    body = {
        "api_key": keys.write,
        "sent_at": "2026-04-01T10:00:30Z",
        "batch": [
            {
                "event": "Signed Up",
                "distinct_id": "ph-user",
                "uuid": capture_uuid,
                "timestamp": "2026-04-01T10:00:00Z",
                "properties": {"plan": "team", "$set": {"email": "x@example.com"}},
            },
            {
                "event": "$identify",
                "distinct_id": "ph-user",
                "uuid": identify_uuid,
                "timestamp": "2026-04-01T09:00:00Z",
                "$set": {"name": "X"},
                "properties": {"$anon_distinct_id": "ph-anon"},
            },
            {"event": "No Time", "distinct_id": "ph-user", "uuid": "ph-offset", "offset": 1500},
        ],
    }
    _assert_ok(client.post("/batch/", json=body), inserted=3)

    capture = _event(storage, capture_uuid)
    assert (capture["type"], capture["event"], capture["user_id"], capture["api"]) == (
        "track",
        "Signed Up",
        "ph-user",
        "posthog",
    )
    assert capture["properties"] == {"plan": "team"}
    assert capture["traits"] == {"email": "x@example.com"}
    # The batch's sent_at drives the skew correction for events without their own.
    assert capture["sent_at"] == datetime(2026, 4, 1, 10, 0, 30)
    assert capture["occurred_at"] == capture["received_at"] - timedelta(seconds=30)

    identify = _event(storage, identify_uuid)
    assert (identify["type"], identify["user_id"], identify["anonymous_id"]) == (
        "identify",
        "ph-user",
        "ph-anon",
    )
    assert identify["traits"] == {"name": "X"}
    assert _links(storage) == {"ph-anon": ("ph-user", identify["occurred_at"])}

    offset = _event(storage, "ph-offset")
    assert offset["original_timestamp"] is None
    assert offset["occurred_at"] == offset["received_at"]
    # `offset` is how long before sending the event happened: it moves the receive time back.
    assert offset["received_at"] == capture["received_at"] - timedelta(milliseconds=1500)


def test_posthog_array_body_takes_the_token_from_the_events(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    # posthog-js posts a bare JSON array to /e/, each event carrying the project token in
    # its properties; there is no header and no top-level api_key.
    body = [
        {"event": "A", "distinct_id": "d1", "uuid": "arr-1", "properties": {"token": keys.write}},
        {"event": "B", "distinct_id": "d1", "uuid": "arr-2", "properties": {"token": keys.write}},
    ]
    _assert_ok(client.post("/e/", json=body), inserted=2)
    assert _count(storage, "events") == 2


def test_posthog_alias_links_the_previous_id_to_the_new_one(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    # posthog-python's alias(previous_id="anon-old", distinct_id="user-new") sends this:
    # the event's distinct_id is the previous id and properties.alias is the new one.
    event = {
        "event": "$create_alias",
        "distinct_id": "anon-old",
        "uuid": "al-1",
        "timestamp": "2026-02-01T10:00:00Z",
        "properties": {"distinct_id": "anon-old", "alias": "user-new"},
    }
    _assert_ok(client.post("/batch/", json={"api_key": keys.write, "batch": [event]}), inserted=1)
    row = _event(storage, "al-1")
    assert (row["type"], row["user_id"], row["previous_id"]) == ("alias", "user-new", "anon-old")
    assert _links(storage) == {"anon-old": ("user-new", datetime(2026, 2, 1, 10))}


def test_posthog_event_without_name_is_rejected(client: TestClient, keys: Keys, storage: Storage) -> None:
    body = {
        "api_key": keys.write,
        "batch": [
            {"distinct_id": "d1", "uuid": "x1", "properties": {}},
            {"event": "Fine", "distinct_id": "d1", "uuid": "x2"},
        ],
    }
    _assert_ok(client.post("/batch/", json=body), inserted=1, rejected=1)
    assert _rows(storage, "reason", "from rejected_events") == [{"reason": "missing_event"}]
