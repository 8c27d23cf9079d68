"""Backfills events from files (NDJSON in Segment or PostHog export shape, or Parquet) through
the same validation, dedupe and writer as the HTTP API, in chunks, reporting progress."""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow.parquet as pq

from app.errors import InvalidInput
from app.ingest import ParsedBatch, Rejected, now_utc, parse_events
from app.storage import Storage

CHUNK_EVENTS = 10_000
_JSON_COLUMNS = ("properties", "traits", "context")


@dataclass
class ImportSummary:
    """What an import did, file by file and in total."""

    files: int = 0
    events: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


def _is_posthog(event: Any) -> bool:
    return isinstance(event, dict) and "distinct_id" in event and "type" not in event


def _ndjson_chunks(path: Path) -> Iterator[tuple[list[Any], list[Rejected], int]]:
    raw: IO[bytes] = (
        gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # type: ignore[assignment]  # noqa: SIM115
    )
    with raw as stream:
        events: list[Any] = []
        bad: list[Rejected] = []
        consumed = 0
        for number, line in enumerate(stream, start=1):
            consumed += len(line)
            if not line.strip():
                continue
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError as error:
                bad.append(
                    Rejected(
                        "malformed_json", f"line {number}: {error}", line[:2000].decode(errors="replace")
                    )
                )
            if len(events) + len(bad) >= CHUNK_EVENTS:
                yield events, bad, consumed
                events, bad, consumed = [], [], 0
        if events or bad:
            yield events, bad, consumed


def _parquet_chunks(path: Path) -> Iterator[tuple[list[Any], list[Rejected], int]]:
    parquet = pq.ParquetFile(path)
    for record_batch in parquet.iter_batches(batch_size=CHUNK_EVENTS):
        rows = record_batch.to_pylist()
        for row in rows:
            for column in _JSON_COLUMNS:
                value = row.get(column)
                if isinstance(value, str):
                    row[column] = orjson.loads(value) if value else None
            for name in [k for k, v in row.items() if v is None]:
                del row[name]
        yield rows, [], record_batch.num_rows


def file_chunks(path: Path) -> Iterator[tuple[list[Any], list[Rejected], int]]:
    """(events, lines that were not JSON, progress units) per chunk of `path`."""
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file")
    if path.suffix == ".parquet":
        return _parquet_chunks(path)
    return _ndjson_chunks(path)


def progress_total(path: Path) -> int:
    """The unit the progress bar counts for `path`: rows for Parquet, bytes otherwise."""
    if path.suffix == ".parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    if path.suffix == ".gz":
        return 0
    return path.stat().st_size


def import_files(
    storage: Storage,
    paths: list[Path],
    *,
    source: str,
    max_event_bytes: int,
    on_progress: Callable[[Path, int], None] | None = None,
) -> ImportSummary:
    """Imports every file; events keep their own receivedAt when the export has one."""
    summary = ImportSummary()
    for path in paths:
        summary.files += 1
        for events, bad, units in file_chunks(path):
            received_at = now_utc()
            segment = [e for e in events if not _is_posthog(e)]
            posthog = [e for e in events if _is_posthog(e)]
            batch = ParsedBatch(rejected=list(bad))
            for api, group in (("import", segment), ("posthog", posthog)):
                if not group:
                    continue
                parsed = parse_events(
                    group,
                    source=source,
                    received_at=received_at,
                    max_event_bytes=max_event_bytes,
                    body_bytes=max_event_bytes + 1,
                    api=api,
                )
                batch.rows.extend(parsed.rows)
                batch.rejected.extend(parsed.rejected)
            result = storage.write_events(source, batch, received_at).result()
            summary.events += len(events) + len(bad)
            summary.inserted += result.inserted
            summary.duplicates += result.duplicates
            summary.rejected += result.rejected
            summary.reasons.update(r.reason for r in batch.rejected)
            if on_progress is not None:
                on_progress(path, units)
    return summary
