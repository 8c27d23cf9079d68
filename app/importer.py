"""Backfills events from files (NDJSON in Segment or PostHog export shape, gzipped or not, or
Parquet) through the same validation, dedupe and writer as the HTTP API, in chunks, reporting
progress. `import_file` is the one way in: the command line calls it per file, and
`POST /api/import` calls it on the upload it spooled to disk. The format is told by the file's
first bytes (gzip and Parquet have magic numbers), so a name never decides how bytes are read."""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from app.errors import InvalidInput
from app.ingest import EventApi, ParsedBatch, Rejected, now_utc, parse_events
from app.storage import EventStore

CHUNK_EVENTS = 10_000
DEFAULT_SOURCE = "import"
_JSON_COLUMNS = ("properties", "traits", "context")
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
# An NDJSON line is read at most this much past the event size limit: a file without line
# breaks must not be read into memory whole.
_LINE_SLACK = 2

Format = Literal["ndjson", "ndjson.gz", "parquet"]
Chunk = tuple[list[Any], list[Rejected], int]


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


def sniff_format(path: Path) -> Format:
    """The file's format from its first bytes: gzip (NDJSON inside), Parquet, else NDJSON."""
    with path.open("rb") as stream:
        head = stream.read(4)
    if head.startswith(GZIP_MAGIC):
        return "ndjson.gz"
    if head == PARQUET_MAGIC:
        return "parquet"
    return "ndjson"


def _lines(stream: IO[bytes], limit: int) -> Iterator[tuple[bytes, bool]]:
    """(line, whole) for each line; a line longer than `limit` comes back cut (whole False) and
    the rest of it is skipped without being held in memory."""
    while True:
        line = stream.readline(limit)
        if not line:
            return
        if len(line) < limit or line.endswith(b"\n"):
            yield line, True
            continue
        skipped = line
        while skipped and not skipped.endswith(b"\n"):
            skipped = stream.readline(limit)
        yield line, False


def _ndjson_chunks(path: Path, *, compressed: bool, max_event_bytes: int) -> Iterator[Chunk]:
    raw: IO[bytes] = (
        gzip.open(path, "rb") if compressed else path.open("rb")  # type: ignore[assignment]  # noqa: SIM115
    )
    with raw as stream:
        events: list[Any] = []
        bad: list[Rejected] = []
        consumed = 0
        try:
            for number, (line, whole) in enumerate(_lines(stream, max_event_bytes + _LINE_SLACK), start=1):
                consumed += len(line)
                if not whole:
                    bad.append(
                        Rejected(
                            "event_too_large",
                            f"line {number}: longer than the limit of {max_event_bytes} bytes",
                            line[:2000].decode(errors="replace"),
                        )
                    )
                elif not line.strip():
                    continue
                else:
                    try:
                        events.append(orjson.loads(line))
                    except orjson.JSONDecodeError as error:
                        bad.append(
                            Rejected(
                                "malformed_json",
                                f"line {number}: {error}",
                                line[:2000].decode(errors="replace"),
                            )
                        )
                if len(events) + len(bad) >= CHUNK_EVENTS:
                    yield events, bad, consumed
                    events, bad, consumed = [], [], 0
        except (OSError, EOFError) as error:
            # A corrupt or truncated gzip stream; the chunks before it are already stored, and
            # importing the file again once repaired adds only what is missing (dedupe).
            raise InvalidInput(
                "the gzip data is corrupt or truncated",
                f"{error}; events before the fault were imported, a repaired file can be imported again",
                code="invalid_encoding",
            ) from None
        if events or bad:
            yield events, bad, consumed


def _json_text(value: Any) -> Any:
    # Parquet exports keep nested objects as JSON text; a dict (a struct column) is taken as is.
    if isinstance(value, str):
        return orjson.loads(value) if value else None
    return value


def _plain(value: Any) -> Any:
    # Timestamp columns arrive as datetimes: events carry ISO 8601 text (naive means UTC).
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _parquet_chunks(path: Path) -> Iterator[Chunk]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise InvalidInput("the file is not valid Parquet", str(error), code="invalid_encoding") from None
    for record_batch in parquet.iter_batches(batch_size=CHUNK_EVENTS):
        rows: list[Any] = []
        bad: list[Rejected] = []
        for row in record_batch.to_pylist():
            try:
                for column in _JSON_COLUMNS:
                    row[column] = _json_text(row.get(column))
            except orjson.JSONDecodeError as error:
                bad.append(Rejected("malformed_json", f"column {column}: {error}", str(row)[:2000]))
                continue
            rows.append({name: _plain(value) for name, value in row.items() if value is not None})
        yield rows, bad, record_batch.num_rows


def file_chunks(path: Path, *, max_event_bytes: int = 1 << 20, fmt: Format | None = None) -> Iterator[Chunk]:
    """(events, entries that were not events, progress units) per chunk of `path`."""
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file")
    fmt = fmt or sniff_format(path)
    if fmt == "parquet":
        return _parquet_chunks(path)
    return _ndjson_chunks(path, compressed=fmt == "ndjson.gz", max_event_bytes=max_event_bytes)


def progress_total(path: Path) -> int:
    """The unit the progress bar counts for `path`: rows for Parquet, bytes of plain NDJSON,
    0 (unknown) for gzip."""
    fmt = sniff_format(path)
    if fmt == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    if fmt == "ndjson.gz":
        return 0
    return path.stat().st_size


def import_file(
    storage: EventStore,
    path: Path,
    *,
    source: str,
    max_event_bytes: int,
    summary: ImportSummary | None = None,
    fmt: Format | None = None,
    on_progress: Callable[[Path, int], None] | None = None,
) -> ImportSummary:
    """Imports one file into `summary` (a new one by default) and returns it. Events keep their
    own receivedAt when the export has one; each chunk of CHUNK_EVENTS is committed as it is
    read, so memory stays flat and ingestion from SDKs is interleaved with it."""
    summary = summary if summary is not None else ImportSummary()
    summary.files += 1
    for events, bad, units in file_chunks(path, max_event_bytes=max_event_bytes, fmt=fmt):
        received_at = now_utc()
        segment = [e for e in events if not _is_posthog(e)]
        posthog = [e for e in events if _is_posthog(e)]
        batch = ParsedBatch(rejected=list(bad))
        groups: tuple[tuple[EventApi, list[Any]], ...] = (("import", segment), ("posthog", posthog))
        for api, group in groups:
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


def import_files(
    storage: EventStore,
    paths: list[Path],
    *,
    source: str,
    max_event_bytes: int,
    on_progress: Callable[[Path, int], None] | None = None,
) -> ImportSummary:
    """Imports every file (see `import_file`) and returns the total."""
    summary = ImportSummary()
    for path in paths:
        import_file(
            storage,
            path,
            source=source,
            max_event_bytes=max_event_bytes,
            summary=summary,
            on_progress=on_progress,
        )
    return summary
