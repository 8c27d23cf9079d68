"""The set-based import stores exactly what the per-event path stores.

The same files are imported twice into fresh databases holding the same already stored events:
once event by event (`per_event=True`: app/ingest.py and the HTTP API's group commit, the
reference) and once set-based (the default), with chunks small enough that duplicates fall
within and across chunks. Every table the import writes must then hold the same rows, byte for
byte, and the summaries must agree. On both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app import importer
from app.ingest import parse_events
from app.settings import Settings
from tests.helpers.import_cases import MAX_EVENT_BYTES, NOW, SOURCE, at, cases, event, ndjson, parquet
from tests.helpers.stored import close_dropping, open_another, stored_events, stored_links, stored_rejected

pytestmark = pytest.mark.backends


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(importer, "now_utc", lambda: NOW)
    # Small chunks on both paths: duplicates fall within and across chunks.
    monkeypatch.setattr(importer, "CHUNK_EVENTS", 5)
    monkeypatch.setattr(importer, "IMPORT_CHUNK_ROWS", 7)
    yield


def _tables(settings: Settings, name: str, files: list[Path], *, per_event: bool) -> dict[str, Any]:
    storage = open_another(settings, name)
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
        tables: dict[str, Any] = {
            "events": stored_events(storage),
            "identity_links": stored_links(storage),
            "rejected_events": stored_rejected(storage),
        }
    finally:
        close_dropping(storage)
    tables["summary"] = (
        summary.events,
        summary.inserted,
        summary.duplicates,
        summary.rejected,
        sorted(summary.reasons.items()),
    )
    return tables


def test_set_based_import_stores_what_the_per_event_path_stores(
    tmp_path: Path, settings: Settings, frozen: None
) -> None:
    posthog = [{"event": "Clicked", "distinct_id": "ph-9", "uuid": "pq1", "timestamp": at(300)}]
    files = [
        parquet(tmp_path / "a.parquet", cases(), posthog=posthog),
        parquet(tmp_path / "b.parquet", cases()),  # everything again: nothing new
        ndjson(tmp_path / "c.ndjson"),
    ]
    reference = _tables(settings, "per-event.duckdb", files, per_event=True)
    set_based = _tables(settings, "set-based.duckdb", files, per_event=False)
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
    tmp_path: Path, settings: Settings, frozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample generator's Parquet shape (every row set-based), imported twice."""
    monkeypatch.setattr(importer, "IMPORT_CHUNK_ROWS", 500)
    monkeypatch.setattr(importer, "CHUNK_EVENTS", 400)
    rows = [
        event(
            f"g{i % 1500}",
            userId=f"u{i % 50}" if i % 3 else None,
            anonymousId=f"a{i % 70}",
            timestamp=at(i),
            sentAt=at(i + (i % 7)),
            receivedAt=at(i + 8 + (i % 5)),
            properties='{"path":"/p/' + str(i % 9) + '","n":' + str(i % 11) + "}",
            context="{}",
        )
        for i in range(1600)
    ]
    files = [parquet(tmp_path / "g.parquet", rows)]
    assert _tables(settings, "s.duckdb", files, per_event=False) == _tables(
        settings, "p.duckdb", files, per_event=True
    )


def test_a_failing_chunk_stops_the_import_after_the_chunks_before_it_are_stored(
    tmp_path: Path, settings: Settings, frozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk n+1 is read and checked while chunk n is stored: when reading chunk 3 fails, the
    error reaches the caller only after chunks 1 and 2 are stored and counted, each once, in
    order; nothing is written after the import returns."""
    monkeypatch.setattr(importer, "IMPORT_CHUNK_ROWS", 10)
    rows = [event(f"c{i}", userId=f"u{i}", timestamp=at(i), context="{}") for i in range(30)]
    path = parquet(tmp_path / "c.parquet", rows)
    storage = open_another(settings, "chunks.duckdb")
    checked = storage.decide_import_rows

    def third_fails(raw: Any, **kwargs: Any) -> Any:
        if int(raw.column("row_no")[0].as_py()) == 20:
            raise OSError("the disk went away")
        return checked(raw, **kwargs)

    monkeypatch.setattr(storage, "decide_import_rows", third_fails)
    progress: list[int] = []
    summary = importer.ImportSummary()
    try:
        with pytest.raises(OSError, match="the disk went away"):
            importer.import_file(
                storage,
                path,
                source=SOURCE,
                max_event_bytes=MAX_EVENT_BYTES,
                summary=summary,
                on_progress=lambda _path, units: progress.append(units),
            )
        stored = sorted(int(row[1][1:]) for row in stored_events(storage))
        assert stored == list(range(20))
        assert (summary.events, summary.inserted, summary.duplicates) == (20, 20, 0)
        assert progress == [10, 10]
    finally:
        close_dropping(storage)
