"""The set-based import stores exactly what the per-event path stores.

The same files are imported twice into fresh databases holding the same already stored events:
once event by event (`per_event=True`: app/ingest.py and the HTTP API's group commit, the
reference) and once set-based (the default), with chunks small enough that duplicates fall
within and across chunks. Every table the import writes must then hold the same rows, byte for
byte, and the summaries must agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app import importer
from app.ingest import parse_events
from app.storage import Storage

NOW = datetime(2026, 5, 1, 12)
BASE = datetime(2026, 4, 1, 9, tzinfo=UTC)
MAX_EVENT_BYTES = 4000
SOURCE = "import"


def _at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


def _event(message_id: str | None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "track", "event": "Viewed", "messageId": message_id}
    event.update(fields)
    return event


def _cases() -> list[dict[str, Any]]:
    """Every case, in file order (times are datetimes; JSON columns JSON text)."""
    return [
        _event("m1", userId="u1", timestamp=_at(0), sentAt=_at(5), receivedAt=_at(65)),  # skewed
        _event("m2", anonymousId="a1", timestamp=_at(10), receivedAt=_at(11), properties='{"x": 1.5}'),
        _event("m1", userId="u1", timestamp=_at(0), sentAt=_at(5), receivedAt=_at(90)),  # retry
        _event("stored-1", userId="u2", timestamp=_at(20), receivedAt=_at(21)),  # already stored
        _event("m3", userId="u3", timestamp=_at(3 * 86400), receivedAt=_at(30)),  # clamped
        _event("m4", userId="u4", timestamp=_at(-86400), receivedAt=_at(40)),  # out of order
        _event("m5", timestamp=_at(50), receivedAt=_at(51)),  # no identity: rejected
        _event(None, userId="u5", timestamp=_at(60), receivedAt=_at(61)),  # content id
        _event("m6", userId="u6", receivedAt=_at(70), properties='{"s": "' + "x" * 5000 + '"}'),
        _event("m7", userId="u7", receivedAt=_at(80), properties="{not json"),
        _event("m8", userId="u8", receivedAt=_at(90), properties="5"),  # not an object
        _event("m9", userId="u9", receivedAt=_at(100), properties='{"big": 1e20, "n": 12345678901234567890}'),
        _event("m10", userId="u10", receivedAt=_at(110), properties='{"k": 1, "k": 2}'),  # key twice
        _event("m11", userId="u11", receivedAt=_at(120), context='{"traits": {"plan": "pro"}, "ip": "1"}'),
        _event("m12", userId="u12", receivedAt=_at(130), context='{"traits": 3}'),  # traits not object
        _event(
            "m13", userId="u13", receivedAt=_at(140), properties='{"t": "\\u00e9\\n", "a": [1, {"b": null}]}'
        ),
        {
            "type": "identify",
            "messageId": "m14",
            "userId": "u1",
            "anonymousId": "a1",
            "timestamp": _at(200),
            "receivedAt": _at(201),
            "traits": '{"plan": "team"}',
        },  # late link
        {
            "type": "identify",
            "messageId": "m15",
            "userId": "u1",
            "anonymousId": "a1",
            "timestamp": _at(150),
            "receivedAt": _at(151),
        },  # an earlier link for a1
        {
            "type": "alias",
            "messageId": "m16",
            "userId": "u16",
            "previousId": "a16",
            "timestamp": _at(160),
            "receivedAt": _at(161),
        },
        {"type": "alias", "messageId": "m17", "userId": "u17", "timestamp": _at(170)},  # no previousId
        {"type": "page", "messageId": "m18", "anonymousId": "a18", "name": "", "receivedAt": _at(180)},
        {"type": "nope", "messageId": "m19", "userId": "u19"},  # unknown type
        _event("m20", userId="u" * 2000, receivedAt=_at(190)),  # id too long
        _event("m2", anonymousId="a1", userId="u1", timestamp=_at(1), receivedAt=_at(2)),  # dup, earlier
        _event(
            "m21",
            userId="u21",
            timestamp=datetime(1, 1, 1, tzinfo=UTC),
            sentAt=_at(0),
            receivedAt=datetime(9999, 1, 1, tzinfo=UTC),
        ),  # far times (parsed one by one)
        _event("m22", userId="u22", receivedAt=_at(210), channel="web"),  # another column
        _event("m23", userId="u23", timestamp=_at(220), sentAt=_at(219)),  # no receivedAt: now
        _event("m1", userId="u1", timestamp=_at(0), sentAt=_at(5), receivedAt=_at(99)),  # retry, later chunk
    ]


def _parquet(path: Path, events: list[dict[str, Any]], *, posthog: Sequence[dict[str, Any]] = ()) -> Path:
    names = [
        "type",
        "event",
        "name",
        "userId",
        "anonymousId",
        "previousId",
        "messageId",
        "timestamp",
        "sentAt",
        "receivedAt",
        "properties",
        "traits",
        "context",
        "channel",
    ]
    times = {"timestamp", "sentAt", "receivedAt"}
    rows = [*events, *posthog]
    columns = {
        name: pa.array(
            [row.get(name) for row in rows], pa.timestamp("us", tz="UTC") if name in times else pa.string()
        )
        for name in names
    }
    if posthog:
        columns["distinct_id"] = pa.array([row.get("distinct_id") for row in rows], pa.string())
        columns["uuid"] = pa.array([row.get("uuid") for row in rows], pa.string())
    pq.write_table(pa.table(columns), path)
    return path


def _ndjson(path: Path) -> Path:
    lines = [
        orjson.dumps(
            {
                "type": "track",
                "event": "E",
                "userId": "n1",
                "messageId": "n1",
                "timestamp": "2026-04-01T10:00:00Z",
                "sentAt": "2026-04-01T10:00:03Z",
                "receivedAt": "2026-04-01T10:00:04Z",
            }
        ),
        b"{broken",
        orjson.dumps(
            {
                "event": "Signed Up",
                "distinct_id": "ph-1",
                "uuid": "p1",
                "timestamp": "2026-04-01T12:00:00Z",
                "properties": {"$set": {"email": "e"}},
            }
        ),
        orjson.dumps(
            {
                "event": "$identify",
                "distinct_id": "ph-1",
                "uuid": "p2",
                "timestamp": "2026-04-01T11:00:00Z",
                "properties": {"$anon_distinct_id": "ph-a"},
            }
        ),
        orjson.dumps(
            {"type": "track", "event": "E", "userId": "n1", "messageId": "n1", "timestamp": "not a time"}
        ),
        orjson.dumps(
            {
                "type": "identify",
                "userId": "n1",
                "anonymousId": "na",
                "messageId": "n2",
                "timestamp": "2026-03-01T10:00:00Z",
            }
        ),
        b"[1, 2]",
        orjson.dumps(
            {
                "type": "track",
                "event": "E",
                "userId": "n1",
                "messageId": "stored-1",
                "timestamp": "2026-04-01T10:00:00Z",
            }
        ),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(importer, "now_utc", lambda: NOW)
    # Small chunks on both paths: duplicates fall within and across chunks.
    monkeypatch.setattr(importer, "CHUNK_EVENTS", 5)
    monkeypatch.setattr(importer, "IMPORT_CHUNK_ROWS", 7)
    yield


def _tables(db: Path, files: list[Path], *, per_event: bool) -> dict[str, Any]:
    storage = Storage(str(db))
    try:
        # An event stored before the import, as the HTTP API stores it.
        stored = {
            "type": "track",
            "event": "Viewed",
            "userId": "u2",
            "messageId": "stored-1",
            "timestamp": "2026-03-31T09:00:00Z",
        }
        parsed = parse_events(
            [stored],
            source=SOURCE,
            received_at=NOW - timedelta(days=1),
            max_event_bytes=MAX_EVENT_BYTES,
            body_bytes=100,
        )
        storage.write_events(SOURCE, parsed, NOW - timedelta(days=1)).result()
        summary = importer.import_files(
            storage, files, source=SOURCE, max_event_bytes=MAX_EVENT_BYTES, per_event=per_event
        )
        cursor = storage.cursor()
        tables: dict[str, Any] = {
            table: cursor.execute(f"select * from {table} order by all").fetchall()
            for table in ("events", "identity_links", "rejected_events")
        }
    finally:
        storage.close()
    tables["summary"] = (
        summary.events,
        summary.inserted,
        summary.duplicates,
        summary.rejected,
        sorted(summary.reasons.items()),
    )
    return tables


def test_set_based_import_stores_what_the_per_event_path_stores(tmp_path: Path, frozen: None) -> None:
    posthog = [{"event": "Clicked", "distinct_id": "ph-9", "uuid": "pq1", "timestamp": _at(300)}]
    files = [
        _parquet(tmp_path / "a.parquet", _cases(), posthog=posthog),
        _parquet(tmp_path / "b.parquet", _cases()),  # everything again: nothing new
        _ndjson(tmp_path / "c.ndjson"),
    ]
    reference = _tables(tmp_path / "per-event.duckdb", files, per_event=True)
    set_based = _tables(tmp_path / "set-based.duckdb", files, per_event=False)
    assert set_based == reference
    events = {row[1]: row for row in reference["events"]}
    assert {"m1", "m2", "m9", "m10", "m11", "m13", "m14", "m21", "pq1", "p1", "n1"} <= set(events)
    assert {"m5", "m6", "m7", "m8", "m12", "m19", "m20"}.isdisjoint(events)
    reasons = dict(reference["summary"][4])
    assert reasons == {
        "event_too_large": 2,
        "field_too_long": 2,
        "invalid_event": 1,
        "invalid_field": 4,
        "invalid_timestamp": 1,
        "malformed_json": 3,
        "missing_identity": 4,
        "unknown_type": 2,
    }
    # a1's earliest link is the retry of m2 that names u1 (duplicates offer their links too).
    assert [link[:2] for link in reference["identity_links"]] == [
        ("a1", "u1"),
        ("a16", "u16"),
        ("na", "n1"),
        ("ph-a", "ph-1"),
    ]


def test_set_based_import_of_a_generated_export(
    tmp_path: Path, frozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample generator's Parquet shape (every row set-based), imported twice."""
    monkeypatch.setattr(importer, "IMPORT_CHUNK_ROWS", 500)
    monkeypatch.setattr(importer, "CHUNK_EVENTS", 400)
    rows = [
        _event(
            f"g{i % 1500}",
            userId=f"u{i % 50}" if i % 3 else None,
            anonymousId=f"a{i % 70}",
            timestamp=_at(i),
            sentAt=_at(i + (i % 7)),
            receivedAt=_at(i + 8 + (i % 5)),
            properties='{"path":"/p/' + str(i % 9) + '","n":' + str(i % 11) + "}",
            context="{}",
        )
        for i in range(1600)
    ]
    files = [_parquet(tmp_path / "g.parquet", rows)]
    assert _tables(tmp_path / "s.duckdb", files, per_event=False) == _tables(
        tmp_path / "p.duckdb", files, per_event=True
    )
