"""What only the ClickHouse event store has to prove: exactly once without unique keys (the key
lookup, the insert deduplication token, FINAL), a retry crossing UTC midnight stored once, the
earliest identity link in force in an append-only table, failures as StorageUnavailable, times
right whatever the host's time zone, and the stored rows, the imports and the backups equal to
the DuckDB store's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.exceptions import OperationalError
from fastapi.testclient import TestClient

from app import importer
from app.errors import Conflict, InvalidInput, StorageUnavailable
from app.ingest import ParsedBatch, parse_events
from app.main import create_app
from app.settings import Settings
from app.storage import Storage
from app.storage.arrow_tables import rows_table
from app.storage.clickhouse_database import ClickHouseDatabase
from app.storage.clickhouse_events import ClickHouseEventStore
from tests.helpers.backends import chdb_url
from tests.helpers.import_cases import MAX_EVENT_BYTES, NOW, SOURCE, cases, ndjson, parquet
from tests.helpers.stored import stored_events, stored_links, stored_rejected

EVENT_TABLES = ("events", "rejected_events", "identity_links")
MIDNIGHT = datetime(2026, 3, 1)


@pytest.fixture
def ch(chdb_root: Path) -> Iterator[Storage]:
    """A ClickHouse storage (chDB) of its own."""
    storage = Storage(clickhouse_url=chdb_url(chdb_root))
    yield storage
    storage.close()
    storage.database.drop_database()  # type: ignore[union-attr]


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Storage]:
    storage = Storage(str(tmp_path / "duck.duckdb"))
    yield storage
    storage.close()


def _batch(events: list[dict[str, Any]], received_at: datetime) -> ParsedBatch:
    return parse_events(events, source="web", received_at=received_at, max_event_bytes=32_768, body_bytes=100)


def _write(storage: Storage, events: list[dict[str, Any]], received_at: datetime) -> tuple[int, int, int]:
    result = storage.write_events("web", _batch(events, received_at), received_at).result()
    return result.inserted, result.duplicates, result.rejected


def _raw_count(storage: Storage, table: str) -> int:
    """Rows stored, copies a merge has not collapsed yet included (no FINAL)."""
    client = storage.database.client()  # type: ignore[union-attr]
    return int(client.query(f"select count() from {table}").result_rows[0][0])


def _track(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Clicked", "userId": "u1", "messageId": message_id, **fields}


# -- exactly once ------------------------------------------------------------------------------


def test_a_retry_crossing_utc_midnight_is_stored_and_counted_once(ch: Storage) -> None:
    """No timestamp: the event time is the receive time, so the retry after midnight has another
    date and another occurred_at; the sort key (source, message_id) still collapses it."""
    before, after = MIDNIGHT - timedelta(microseconds=100), MIDNIGHT + timedelta(seconds=1)
    event = _track("late-retry")
    assert _write(ch, [event], before) == (1, 0, 0)
    assert _write(ch, [event], after) == (0, 1, 0)
    assert ch.count_events() == 1
    assert _raw_count(ch, "events") == 1

    # Another replica racing the original, past the lookup: stored twice until a merge, but
    # read and counted once, the first received copy kept, before and after the merge.
    retry = _batch([event], after).rows
    ch.database.insert_arrow("events", rows_table(retry), token="another-replica")  # type: ignore[union-attr]
    assert _raw_count(ch, "events") == 2
    for _ in range(2):
        assert ch.count_events() == 1
        assert ch.rows("select received_at, occurred_at from events") == [(before, before)]
        ch.database.client().command("optimize table events final")  # type: ignore[union-attr]
    assert _raw_count(ch, "events") == 1


def test_the_same_insert_retried_with_its_token_is_stored_once_before_any_merge(ch: Storage) -> None:
    rows = rows_table(_batch([_track("a"), _track("b")], MIDNIGHT).rows)
    database = ch.database
    database.insert_arrow("events", rows, token="group-1")  # type: ignore[union-attr]
    database.insert_arrow("events", rows, token="group-1")  # type: ignore[union-attr]
    assert _raw_count(ch, "events") == 2  # no merge ran: the second insert was not stored
    database.insert_arrow("events", rows, token="group-2")  # type: ignore[union-attr]
    assert _raw_count(ch, "events") == 4  # another token: stored, and only FINAL collapses it
    assert ch.count_events() == 2


def test_group_commit_tokens_are_those_of_the_rows_inserted(
    ch: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's events insert is made idempotent by a token of its keys: resending it (a
    timeout whose insert did land) stores nothing more."""
    sent: list[tuple[str, pa.Table, str | None]] = []
    database = ch.database
    real = database.insert_arrow

    def recording(table: str, rows: pa.Table, *, token: str | None = None) -> None:
        sent.append((table, rows, token))
        real(table, rows, token=token)

    monkeypatch.setattr(database, "insert_arrow", recording)
    assert _write(ch, [_track("a", anonymousId="x"), _track("b"), {"type": "bogus"}], MIDNIGHT) == (2, 0, 1)
    assert [table for table, _, _ in sent] == ["rejected_events", "identity_links", "events"]
    for table, rows, token in sent:
        assert token
        real(table, rows, token=token)  # the same insert again
    assert _raw_count(ch, "events") == 2
    assert _raw_count(ch, "rejected_events") == 1
    assert _raw_count(ch, "identity_links") == 1


def test_a_duplicate_in_a_later_request_is_reported_and_not_stored_again(ch: Storage) -> None:
    assert _write(ch, [_track("a"), _track("b"), _track("a")], MIDNIGHT) == (2, 1, 0)
    assert _write(ch, [_track("b"), _track("c")], MIDNIGHT + timedelta(hours=1)) == (1, 1, 0)
    assert _write(ch, [_track("a"), _track("b"), _track("c")], MIDNIGHT + timedelta(hours=2)) == (0, 3, 0)
    assert _raw_count(ch, "events") == 3
    assert ch.count_events() == 3
    assert ch.data_version == 2


def test_requests_grouped_in_one_commit_share_the_lookup(ch: Storage) -> None:
    """Several requests in one group commit: duplicates within the group and against the table
    are counted per request, as the DuckDB store counts them."""
    assert _write(ch, [_track("stored")], MIDNIGHT) == (1, 0, 0)
    commits: list[int] = []
    ch.on_commit = lambda events, seconds: commits.append(events)
    hold = ch.writer.submit(lambda client: __import__("time").sleep(0.3))
    futures = [
        ch.write_events("web", _batch(events, MIDNIGHT), MIDNIGHT)
        for events in (
            [_track("x"), _track("stored")],
            [_track("x"), _track("y")],
            [_track("y"), {"type": "bogus"}],
        )
    ]
    hold.result()
    results = [(r.inserted, r.duplicates, r.rejected) for r in (f.result() for f in futures)]
    assert results == [(1, 1, 0), (1, 1, 0), (0, 1, 1)]
    assert commits == [5]
    assert ch.count_events() == 3


def test_many_keys_are_looked_up_in_chunks(ch: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.storage.clickhouse_events as events_module

    monkeypatch.setattr(events_module, "LOOKUP_CHUNK", 7)
    first = [_track(f"k{i}") for i in range(30)]
    assert _write(ch, first, MIDNIGHT) == (30, 0, 0)
    again = [_track(f"k{i}") for i in range(20, 50)]
    assert _write(ch, again, MIDNIGHT) == (20, 10, 0)
    assert ch.count_events() == 50


def test_count_events_never_counts_copies_awaiting_a_merge(ch: Storage) -> None:
    rows = rows_table(_batch([_track("a")], MIDNIGHT).rows)
    for attempt in range(3):
        ch.database.insert_arrow("events", rows, token=f"copy-{attempt}")  # type: ignore[union-attr]
    assert _raw_count(ch, "events") == 3
    assert ch.count_events() == 1


def test_a_resent_refusal_is_kept_once(ch: Storage) -> None:
    bad = {"type": "bogus", "messageId": "x"}
    assert _write(ch, [bad], MIDNIGHT) == (0, 0, 1)
    assert _write(ch, [bad], MIDNIGHT + timedelta(days=1)) == (0, 0, 1)
    rejected = stored_rejected(ch)
    assert len(rejected) == 1
    assert rejected[0][2] == MIDNIGHT  # the first received


# -- identity links ------------------------------------------------------------------------------


def _identify(message_id: str, user: str, anonymous: str, at: datetime) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": user,
        "anonymousId": anonymous,
        "timestamp": at.isoformat() + "Z",
    }


def test_the_earliest_link_stays_in_force(ch: Storage, duck: Storage) -> None:
    """Later links are not appended; an earlier one arriving late is, and wins; a tie keeps the
    first recorded. The same as DuckDB's upsert, request by request."""
    t = MIDNIGHT - timedelta(days=2)
    requests = [
        [_identify("i1", "u1", "a1", t)],
        [_identify("i2", "u2", "a1", t + timedelta(hours=1))],  # later: ignored
        [_identify("i3", "u3", "a1", t - timedelta(hours=1))],  # earlier: wins
        [_identify("i4", "u4", "a1", t - timedelta(hours=1))],  # tie: the first recorded stays
        [_identify("i5", "u5", "a2", t), _identify("i6", "u6", "a2", t)],  # tie in one request
        [
            {
                "type": "alias",
                "messageId": "i7",
                "userId": "u7",
                "previousId": "a3",
                "timestamp": "2026-01-01T00:00:00Z",
            }
        ],
    ]
    for events in requests:
        assert _write(ch, events, MIDNIGHT) == _write(duck, events, MIDNIGHT)
    expected = [("a1", "u3", t - timedelta(hours=1)), ("a2", "u5", t), ("a3", "u7", datetime(2026, 1, 1))]
    assert stored_links(ch) == stored_links(duck) == expected
    # Appended only when earlier: a1 twice (u1, then u3), a2 and a3 once.
    assert _raw_count(ch, "identity_links") == 4
    assert ch.database.rows("export_identity_links") == expected  # type: ignore[union-attr]


def test_the_known_links_cache_skips_the_lookup_only_when_safe(
    ch: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = MIDNIGHT - timedelta(days=1)
    assert _write(ch, [_identify("i1", "u1", "a1", t)], MIDNIGHT)[0] == 1
    store = ch.events
    assert isinstance(store, ClickHouseEventStore)
    assert store._known_links == {"a1": t}
    lookups: list[str] = []
    real = ch.database.rows

    def counting(name: str, params: dict[str, Any] | None = None) -> Any:
        lookups.append(name)
        return real(name, params)

    monkeypatch.setattr(ch.database, "rows", counting)
    _write(ch, [_identify("i2", "u2", "a1", t + timedelta(hours=1))], MIDNIGHT)  # later: known
    assert "select_links_in_force" not in lookups
    _write(ch, [_identify("i3", "u3", "a1", t - timedelta(hours=1))], MIDNIGHT)  # earlier: looked up
    assert "select_links_in_force" in lookups
    assert store._known_links == {"a1": t - timedelta(hours=1)}
    assert stored_links(ch) == [("a1", "u3", t - timedelta(hours=1))]


# -- failures ------------------------------------------------------------------------------------


def test_an_injected_fault_fails_the_write_as_storage_unavailable(ch: Storage) -> None:
    ch.inject_write_fault(OperationalError("disk full"))
    with pytest.raises(StorageUnavailable):
        ch.write_events("web", _batch([_track("a")], MIDNIGHT), MIDNIGHT).result()
    with pytest.raises(StorageUnavailable):
        ch.check_ready(2)
    ch.inject_write_fault(None)
    assert _write(ch, [_track("a")], MIDNIGHT) == (1, 0, 0)
    ch.check_ready(2)


def test_a_failing_clickhouse_statement_is_storage_unavailable_and_recovers(ch: Storage) -> None:
    client = ch.database.client()  # type: ignore[union-attr]
    client.command("rename table events to events_away")
    try:
        with pytest.raises(StorageUnavailable):
            ch.write_events("web", _batch([_track("a")], MIDNIGHT), MIDNIGHT).result()
        with pytest.raises(StorageUnavailable):
            ch.count_events()
        assert ch.data_version == 0
    finally:
        client.command("rename table events_away to events")
    assert _write(ch, [_track("a")], MIDNIGHT) == (1, 0, 0)
    assert ch.count_events() == 1


@pytest.mark.parametrize("failing", ["rejected_events", "identity_links", "events"])
def test_a_failed_insert_fails_the_group_and_its_retry_is_counted_as_duckdb_counts_it(
    ch: Storage, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """No transaction: refusals, links and events are three inserts, events last. Whichever
    fails, the request fails (503) with no event stored, and its retry stores everything, with
    the counts DuckDB gives (its transaction stored nothing on the failure either)."""
    database = ch.database
    real = database.insert_arrow
    tried: list[str] = []

    def failing_insert(table: str, rows: pa.Table, *, token: str | None = None) -> None:
        tried.append(table)
        if table == failing:
            raise OperationalError("connection reset")
        real(table, rows, token=token)

    monkeypatch.setattr(database, "insert_arrow", failing_insert)
    events = [_identify("i1", "u1", "a1", MIDNIGHT - timedelta(hours=1)), {"type": "bogus"}]
    with pytest.raises(StorageUnavailable):
        ch.write_events("web", _batch(events, MIDNIGHT), MIDNIGHT).result()
    order = ["rejected_events", "identity_links", "events"]
    assert tried == order[: order.index(failing) + 1]
    assert ch.count_events() == 0
    assert ch.data_version == 0
    monkeypatch.setattr(database, "insert_arrow", real)
    assert _write(ch, events, MIDNIGHT) == (1, 0, 1)
    assert ch.data_version == 1
    assert stored_links(ch) == [("a1", "u1", MIDNIGHT - timedelta(hours=1))]
    assert (_raw_count(ch, "rejected_events"), _raw_count(ch, "identity_links")) == (1, 1)
    assert ch.count_events() == 1


def test_a_closed_database_is_storage_unavailable(chdb_root: Path) -> None:
    storage = Storage(clickhouse_url=chdb_url(chdb_root))
    storage.close()
    try:
        with pytest.raises(StorageUnavailable):
            storage.count_events()
        with pytest.raises(StorageUnavailable):
            storage.check_ready(1)
    finally:
        storage.database.drop_database()  # type: ignore[union-attr]


@pytest.fixture
def ch_client(ch: Storage, chdb_root: Path) -> Iterator[tuple[TestClient, str]]:
    """The service on the `ch` storage, and a write key."""
    assert isinstance(ch.database, ClickHouseDatabase)
    settings = Settings(
        storage="clickhouse", clickhouse_url=ch.database.url, db_path=str(chdb_root / "unused")
    )
    with TestClient(create_app(settings, ch)) as client:
        yield client, ch.create_key("web", "write")[1]


def test_clickhouse_failures_answer_503_with_retry_after(
    ch: Storage, ch_client: tuple[TestClient, str]
) -> None:
    """Through the HTTP API: an injected fault, then a genuine ClickHouse error (the events
    table gone), each a 503 with Retry-After; the request succeeds once ClickHouse does."""
    client, key = ch_client
    batch = {"batch": [_track("h1"), _track("h2")]}
    ch.inject_write_fault(OperationalError("Code: 243. NOT_ENOUGH_SPACE"))
    refused = client.post("/v1/batch", json=batch, auth=(key, ""))
    ch.inject_write_fault(None)
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "storage_unavailable"
    assert "NOT_ENOUGH_SPACE" in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "5"
    assert client.get("/readyz").status_code == 200

    database = ch.database
    assert isinstance(database, ClickHouseDatabase)
    database.client().command("rename table events to events_away")
    try:
        refused = client.post("/v1/batch", json=batch, auth=(key, ""))
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        assert "UNKNOWN_TABLE" in refused.json()["detail"]
        assert client.get("/readyz").status_code == 200  # reads and the writer still answer
    finally:
        database.client().command("rename table events_away to events")
    accepted = client.post("/v1/batch", json=batch, auth=(key, ""))
    assert accepted.json() == {"success": True, "accepted": 2, "inserted": 2, "duplicates": 0, "rejected": 0}
    assert ch.count_events() == 2


# -- time zones ----------------------------------------------------------------------------------

_TZ_SCRIPT = """
import json, sys
from datetime import datetime
from pathlib import Path
import pyarrow.parquet as pq
from app.ingest import parse_events
from app.storage import Storage

received = datetime(2026, 3, 1, 4, 30)  # 23:30 the day before in New York
events = [
    {"type": "track", "event": "E", "userId": "u", "messageId": "m1",
     "timestamp": "2026-02-28T23:59:59.123456Z", "sentAt": "2026-03-01T04:29:59Z"},
    {"type": "identify", "userId": "u", "anonymousId": "a", "messageId": "m2",
     "timestamp": "2026-03-01T00:00:00Z"},
]
storage = Storage(clickhouse_url=sys.argv[1])
batch = parse_events(events, source="web", received_at=received, max_event_bytes=10000, body_bytes=10)
storage.write_events("web", batch, received).result()
rows = storage.rows(
    "select message_id, original_timestamp, sent_at, received_at, occurred_at from events order by 1"
)
links = storage.rows("select anonymous_id, linked_at from identity_links")
files = {t: Path(sys.argv[2]) / f"{t}.parquet" for t in ("events", "identity_links")}
storage.export_tables(files)
exported = pq.read_table(files["events"]).sort_by("message_id")
storage.close()
out = {
    "rows": [[str(v) for v in r] for r in rows],
    "links": [[str(v) for v in r] for r in links],
    "parquet": [str(v) for v in exported.column("occurred_at").to_pylist()],
    "parquet_type": str(exported.schema.field("occurred_at").type),
    "expected": [[str(r.message_id), str(r.original_timestamp), str(r.sent_at), str(r.received_at),
                  str(r.occurred_at)] for r in batch.rows],
}
print(json.dumps(out))
"""


def test_times_are_utc_whatever_the_host_time_zone(tmp_path: Path) -> None:
    """In a process whose time zone is New York (chDB reads it when its engine starts, so a
    process of its own), what is stored and read back and backed up is the UTC instant."""
    root = tmp_path / "chdb-new-york"
    env = {"TZ": "America/New_York", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())}
    script = textwrap.dedent(_TZ_SCRIPT)
    done = subprocess.run(
        [sys.executable, "-c", script, f"chdb://{root}?database=tz", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["rows"] == out["expected"]
    assert out["rows"][0] == [
        "m1",
        "2026-02-28 23:59:59.123456",
        "2026-03-01 04:29:59",
        "2026-03-01 04:30:00",
        "2026-03-01 00:00:00.123456",
    ]
    assert out["links"] == [["a", "2026-03-01 00:00:00"]]
    assert out["parquet_type"] == "timestamp[us]"
    assert sorted(out["parquet"]) == sorted(r[4] for r in out["expected"])


# -- the same rows as DuckDB -----------------------------------------------------------------------


def test_stored_rows_equal_duckdb_request_by_request(ch: Storage, duck: Storage) -> None:
    requests = [
        [_track("a", properties={"plan": "pro", "n": 1.5}, context={"ip": "1"}), _track("a")],
        [
            {
                "type": "page",
                "name": "Home",
                "anonymousId": "x",
                "messageId": "p1",
                "sentAt": "2026-02-28T23:00:00Z",
                "timestamp": "2026-02-28T22:00:00Z",
            }
        ],
        [{"type": "bogus"}, {"type": "track", "messageId": "noid", "event": "E"}],
        [_track("b", timestamp="2030-01-01T00:00:00Z")],  # clamped
        [_track("a"), _track("c", anonymousId="x")],
    ]
    for number, events in enumerate(requests):
        received = MIDNIGHT + timedelta(minutes=number)
        assert _write(ch, events, received) == _write(duck, events, received)
    assert stored_events(ch) == stored_events(duck)
    assert stored_links(ch) == stored_links(duck)
    assert stored_rejected(ch) == stored_rejected(duck)
    assert ch.count_events() == duck.count_events() == 4
    assert ch.data_version == duck.data_version


@pytest.fixture
def frozen_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "now_utc", lambda: NOW)
    monkeypatch.setattr(importer, "CHUNK_EVENTS", 5)
    monkeypatch.setattr(importer, "IMPORT_CHUNK_ROWS", 7)


@pytest.mark.parametrize("per_event", [False, True], ids=["set-based", "per-event"])
def test_imports_store_what_duckdb_stores(
    ch: Storage, duck: Storage, tmp_path: Path, frozen_import: None, per_event: bool
) -> None:
    posthog = [
        {
            "event": "Clicked",
            "distinct_id": "ph-9",
            "uuid": "pq1",
            "timestamp": datetime(2026, 4, 1, tzinfo=UTC),
        }
    ]
    files = [
        parquet(tmp_path / "a.parquet", cases(), posthog=posthog),
        parquet(tmp_path / "b.parquet", cases()),
        ndjson(tmp_path / "c.ndjson"),
    ]
    summaries = []
    for storage in (duck, ch):
        stored = parse_events(
            [_track("stored-1", userId="u2", timestamp="2026-03-31T09:00:00Z")],
            source=SOURCE,
            received_at=NOW - timedelta(days=1),
            max_event_bytes=MAX_EVENT_BYTES,
            body_bytes=100,
        )
        storage.write_events(SOURCE, stored, NOW - timedelta(days=1)).result()
        summary = importer.import_files(
            storage, files, source=SOURCE, max_event_bytes=MAX_EVENT_BYTES, per_event=per_event
        )
        summaries.append(
            (summary.events, summary.inserted, summary.duplicates, summary.rejected, summary.reasons)
        )
    assert summaries[0] == summaries[1]
    assert stored_events(ch) == stored_events(duck)
    assert stored_links(ch) == stored_links(duck)
    assert stored_rejected(ch) == stored_rejected(duck)
    assert ch.count_events() == duck.count_events()


def test_decide_import_rows_is_duckdbs(ch: Storage, duck: Storage, tmp_path: Path) -> None:
    path = parquet(tmp_path / "a.parquet", cases())
    staged = importer._staged_columns(pq.read_table(path).to_batches()[0], 0)
    assert staged is not None
    args: dict[str, Any] = {"source": "s", "received_at": NOW, "max_event_bytes": MAX_EVENT_BYTES}
    assert ch.decide_import_rows(staged, **args).equals(duck.decide_import_rows(staged, **args))


# -- backups ---------------------------------------------------------------------------------------


def _fill(storage: Storage) -> None:
    t = MIDNIGHT - timedelta(days=1)
    _write(storage, [_track("a", properties={"k": [1, None]}), _identify("i1", "u1", "a1", t)], MIDNIGHT)
    _write(storage, [_identify("i2", "u2", "a1", t - timedelta(hours=1)), {"type": "bogus"}], MIDNIGHT)
    _write(storage, [_track("b", anonymousId="z", sentAt="2026-02-28T23:00:00Z")], MIDNIGHT)


def _files(folder: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    return {table: folder / f"{table}.parquet" for table in EVENT_TABLES}


def _all_rows(storage: Storage) -> tuple[Any, ...]:
    return stored_events(storage), stored_rejected(storage), stored_links(storage)


def test_event_tables_back_up_as_duckdb_does(ch: Storage, duck: Storage, tmp_path: Path) -> None:
    """The same Parquet files, column for column and value for value, from either store."""
    for storage in (ch, duck):
        _fill(storage)
    from_ch = ch.export_tables(_files(tmp_path / "ch"))
    from_duck = duck.export_tables(_files(tmp_path / "duck"))
    assert from_ch == from_duck == {"events": 4, "rejected_events": 1, "identity_links": 2}
    for table in EVENT_TABLES:
        ours = pq.read_table(tmp_path / "ch" / f"{table}.parquet")
        theirs = pq.read_table(tmp_path / "duck" / f"{table}.parquet")
        assert ours.column_names == theirs.column_names, table
        key = ours.column_names[:2]
        ours_rows = ours.sort_by([(k, "ascending") for k in key]).to_pylist()
        theirs_rows = theirs.sort_by([(k, "ascending") for k in key]).to_pylist()
        assert ours_rows == theirs_rows, table


def test_restore_across_backends_keeps_every_row(
    ch: Storage, duck: Storage, tmp_path: Path, chdb_root: Path
) -> None:
    _fill(duck)
    counts = duck.export_tables(_files(tmp_path / "from-duck"))
    # DuckDB -> ClickHouse.
    assert ch.import_tables(_files(tmp_path / "from-duck"), counts) == counts
    assert _all_rows(ch) == _all_rows(duck)
    assert ch.count_events() == 4
    # Writes after a restore see the restored events and links.
    assert _write(ch, [_track("a"), _track("new")], MIDNIGHT) == (1, 1, 0)
    _write(duck, [_track("a"), _track("new")], MIDNIGHT)
    # ClickHouse -> DuckDB.
    back_counts = ch.export_tables(_files(tmp_path / "from-ch"))
    back = Storage(str(tmp_path / "back.duckdb"))
    try:
        assert back.import_tables(_files(tmp_path / "from-ch"), back_counts) == back_counts
        assert _all_rows(back) == _all_rows(duck)
    finally:
        back.close()
    # ClickHouse -> ClickHouse.
    again = Storage(clickhouse_url=chdb_url(chdb_root))
    try:
        assert again.import_tables(_files(tmp_path / "from-ch"), back_counts) == back_counts
        assert _all_rows(again) == _all_rows(duck)
    finally:
        again.close()
        again.database.drop_database()  # type: ignore[union-attr]


def test_restore_refuses_a_database_with_events(ch: Storage, tmp_path: Path) -> None:
    _fill(ch)
    counts = ch.export_tables(_files(tmp_path / "b"))
    with pytest.raises(Conflict, match="already holds events"):
        ch.import_tables(_files(tmp_path / "b"), counts)
    assert ch.count_events() == 4


def test_a_restore_with_a_wrong_count_restores_nothing(
    ch: Storage, duck: Storage, tmp_path: Path, chdb_root: Path
) -> None:
    _fill(duck)
    counts = duck.export_tables(_files(tmp_path / "b"))
    wrong = {**counts, "identity_links": counts["identity_links"] + 1}
    with pytest.raises(InvalidInput, match="identity_links: restored 2 rows, the manifest says 3"):
        ch.import_tables(_files(tmp_path / "b"), wrong)
    for table in EVENT_TABLES:
        assert _raw_count(ch, table) == 0, table
    # And a second attempt with the right counts restores everything (no insert of the first
    # attempt is taken for a duplicate).
    assert ch.import_tables(_files(tmp_path / "b"), counts) == counts
    assert _all_rows(ch) == _all_rows(duck)


def test_an_empty_store_backs_up_empty_files_with_the_columns(
    ch: Storage, duck: Storage, tmp_path: Path
) -> None:
    assert ch.export_tables(_files(tmp_path / "ch")) == {t: 0 for t in EVENT_TABLES}
    duck.export_tables(_files(tmp_path / "duck"))
    for table in EVENT_TABLES:
        ours = pq.read_table(tmp_path / "ch" / f"{table}.parquet")
        assert ours.num_rows == 0
        assert ours.column_names == pq.read_table(tmp_path / "duck" / f"{table}.parquet").column_names


def test_events_another_replica_stores_change_this_ones_data_version(
    ch: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Landed processes on one ClickHouse database: each one's cached reports must go stale
    when the other stores events, which it learns by polling the table's row count."""
    import app.storage.clickhouse_events as clickhouse_events

    url = ch.database.url  # type: ignore[union-attr]
    other = Storage(clickhouse_url=url)
    try:
        monkeypatch.setattr(clickhouse_events, "VERSION_POLL_SECONDS", 0.0)
        before = ch.data_version
        assert ch.data_version == before  # nothing stored: polling alone changes nothing
        assert _write(other, [_track("from-the-other-replica")], MIDNIGHT) == (1, 0, 0)
        assert ch.data_version != before
        seen = ch.data_version
        # Polled at most every VERSION_POLL_SECONDS: within it, the version holds still.
        monkeypatch.setattr(clickhouse_events, "VERSION_POLL_SECONDS", 3600.0)
        assert _write(other, [_track("second")], MIDNIGHT) == (1, 0, 0)
        assert ch.data_version == seen
    finally:
        other.close()
