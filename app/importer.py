"""Backfills events from files (NDJSON in Segment or PostHog export shape, gzipped or not, or
Parquet) through the same validation, dedupe and writer as the HTTP API, in chunks, reporting
progress. `import_file` is the one way in: the command line calls it per file, and
`POST /api/import` calls it on the upload it spooled to disk. The format is told by the file's
first bytes (gzip and Parquet have magic numbers), so a name never decides how bytes are read.

Set-based by default: a Parquet chunk's columns go to storage whole, where the rules of
app/ingest.py, written in SQL (sql/duckdb/queries/select_import_rows.sql), decide every row they can
without Python; the rare rest (refusals, missing ids, JSON text two writers could spell
differently) is parsed here one by one by app/ingest.py itself. Every chunk is then stored in
one write: dedupe against the chunk and the table, and identity links, are SQL too. The
per-event path (`per_event=True`: every event through app/ingest.py and the group commit the
HTTP API uses) is kept as the reference the set-based one is tested against."""

from __future__ import annotations

import contextlib
import gzip
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.errors import InvalidInput
from app.ingest import EVENT_COLUMNS, EventApi, EventRow, ParsedBatch, Rejected, now_utc, parse_events
from app.storage import EventStore, rows_table

CHUNK_EVENTS = 10_000
# Rows per set-based chunk: one transaction each, holding the writer for about a second at most,
# so live ingestion waits no longer than that behind an import.
IMPORT_CHUNK_ROWS = 100_000
_TEXT_COLUMNS = ("type", "event", "name", "userId", "anonymousId", "previousId", "groupId", "messageId")
_TIME_COLUMNS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")
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


def _parquet_event(row: dict[str, Any]) -> Any:
    """A Parquet row as the event it holds, or the Rejected it is."""
    try:
        for column in _JSON_COLUMNS:
            row[column] = _json_text(row.get(column))
    except orjson.JSONDecodeError as error:
        return Rejected("malformed_json", f"column {column}: {error}", str(row)[:2000])
    return {name: _plain(value) for name, value in row.items() if value is not None}


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise InvalidInput("the file is not valid Parquet", str(error), code="invalid_encoding") from None


def _parquet_chunks(path: Path) -> Iterator[Chunk]:
    for record_batch in _parquet_file(path).iter_batches(batch_size=CHUNK_EVENTS):
        rows: list[Any] = []
        bad: list[Rejected] = []
        for row in record_batch.to_pylist():
            event = _parquet_event(row)
            (bad if isinstance(event, Rejected) else rows).append(event)
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
    per_event: bool = False,
) -> ImportSummary:
    """Imports one file into `summary` (a new one by default) and returns it. Events keep their
    own receivedAt when the export has one; each chunk is committed as it is read, so memory
    stays flat and ingestion from SDKs is interleaved with it."""
    summary = summary if summary is not None else ImportSummary()
    summary.files += 1
    fmt = fmt or (sniff_format(path) if path.is_file() else None)
    if per_event:
        _import_per_event(storage, path, source, max_event_bytes, summary, fmt, on_progress)
    elif fmt == "parquet":
        _import_parquet(storage, path, source, max_event_bytes, summary, on_progress)
    else:
        _import_ndjson(storage, path, source, max_event_bytes, summary, fmt, on_progress)
    return summary


def _add(summary: ImportSummary, entries: int, result: Any, rejected: list[Rejected]) -> None:
    summary.events += entries
    summary.inserted += result.inserted
    summary.duplicates += result.duplicates
    summary.rejected += result.rejected
    summary.reasons.update(r.reason for r in rejected)


@dataclass
class _ChunkWrites:
    """One chunk in the writer's queue while the next is read and checked: the writer stores
    chunks in the order they were queued (first wins across chunks, as when each was awaited),
    and reading and checking chunk n+1 overlaps storing chunk n (on another core). At most one
    chunk waits, so memory stays that of two chunks."""

    path: Path
    summary: ImportSummary
    on_progress: Callable[[Path, int], None] | None
    pending: tuple[Future[Any], int, list[Rejected], int] | None = None

    def queue(self, written: Future[Any], entries: int, rejected: list[Rejected], units: int) -> None:
        """Queues a chunk's write, after counting the one before it (its errors raised here)."""
        self.finish()
        self.pending = (written, entries, rejected, units)

    def finish(self) -> None:
        """Waits for the queued chunk, if any, and counts it."""
        if self.pending is None:
            return
        written, entries, rejected, units = self.pending
        self.pending = None
        _add(self.summary, entries, written.result(), rejected)
        if self.on_progress is not None:
            self.on_progress(self.path, units)

    def __enter__(self) -> _ChunkWrites:
        return self

    def __exit__(self, *exc: object) -> None:
        # On an error reading a later chunk the queued one is still stored: wait for it and
        # count it, so the summary is what was stored and nothing is written after
        # import_file returns; that error, not the queued write's, is the one raised.
        if exc[0] is None:
            self.finish()
        else:
            with contextlib.suppress(Exception):
                self.finish()


def _api_of(event: Any) -> EventApi:
    return "posthog" if _is_posthog(event) else "import"


def _parsed_one_by_one(
    events: list[tuple[int, Any]], source: str, received_at: datetime, max_event_bytes: int
) -> tuple[list[EventRow], list[int], list[Rejected]]:
    """(rows, their row numbers, refusals) of the events app/ingest.py parses one at a time."""
    rows: list[EventRow] = []
    numbers: list[int] = []
    rejected: list[Rejected] = []
    for number, event in events:
        if isinstance(event, Rejected):
            rejected.append(event)
            continue
        parsed = parse_events(
            [event],
            source=source,
            received_at=received_at,
            max_event_bytes=max_event_bytes,
            body_bytes=max_event_bytes + 1,
            api=_api_of(event),
        )
        rows.extend(parsed.rows)
        numbers.extend(number for _ in parsed.rows)
        rejected.extend(parsed.rejected)
    return rows, numbers, rejected


def _numbered(rows: list[EventRow], numbers: list[int]) -> pa.Table:
    return rows_table(rows).append_column("row_no", pa.array(numbers, pa.int64()))


def _import_ndjson(
    storage: EventStore,
    path: Path,
    source: str,
    max_event_bytes: int,
    summary: ImportSummary,
    fmt: Format | None,
    on_progress: Callable[[Path, int], None] | None,
) -> None:
    # Each line is JSON decoded and checked by app/ingest.py; dedupe and links are set-based.
    first = 0
    with _ChunkWrites(path, summary, on_progress) as writes:
        for events, bad, units in file_chunks(path, max_event_bytes=max_event_bytes, fmt=fmt):
            received_at = now_utc()
            numbered = list(enumerate(events, start=first))
            first += len(events)
            rows, numbers, rejected = _parsed_one_by_one(numbered, source, received_at, max_event_bytes)
            rejected = bad + rejected
            written = storage.import_events(
                _numbered(rows, numbers), rejected, source=source, received_at=received_at
            )
            writes.queue(written, len(events) + len(bad), rejected, units)


def _staged_columns(batch: pa.RecordBatch, first: int) -> pa.Table | None:
    """The batch as the columns select_import_rows.sql reads, or None when a column has a type
    those rules do not read (every row is then parsed one by one)."""
    n = batch.num_rows
    columns: dict[str, pa.Array] = {"row_no": pa.array(range(first, first + n), pa.int64())}
    extra = pa.array([0] * n, pa.int64())
    for column_field in batch.schema:
        column = batch.column(column_field.name)
        textual = pa.types.is_string(column_field.type) or pa.types.is_large_string(column_field.type)
        if column_field.name in _TEXT_COLUMNS or column_field.name in _JSON_COLUMNS:
            if not textual:
                return None
            columns[column_field.name] = column.cast(pa.string())
        elif column_field.name in _TIME_COLUMNS:
            if not pa.types.is_timestamp(column_field.type) or column_field.type.unit == "ns":
                return None
            # Without its zone the value is the UTC instant, as app/ingest.py reads it.
            columns[column_field.name] = column.cast(pa.timestamp(column_field.type.unit)).cast(
                pa.timestamp("us")
            )
        elif textual:
            # Another text column only adds to the event's size (escaped: 6 bytes a character).
            size = pc.add(pc.multiply(pc.binary_length(column), 6), len(column_field.name) + 6)
            extra = pc.add(extra, pc.fill_null(size, 0))
        else:
            return None
    for name in (*_TEXT_COLUMNS, *_JSON_COLUMNS):
        columns.setdefault(name, pa.nulls(n, pa.string()))
    for name in _TIME_COLUMNS:
        columns.setdefault(name, pa.nulls(n, pa.timestamp("us")))
    columns["extra_bytes"] = extra.cast(pa.int64())
    return pa.table(columns)


def _import_parquet(
    storage: EventStore,
    path: Path,
    source: str,
    max_event_bytes: int,
    summary: ImportSummary,
    on_progress: Callable[[Path, int], None] | None,
) -> None:
    first = 0
    with _ChunkWrites(path, summary, on_progress) as writes:
        for batch in _parquet_file(path).iter_batches(batch_size=IMPORT_CHUNK_ROWS):
            received_at = now_utc()
            staged = _staged_columns(batch, first)
            parts: list[pa.Table] = []
            if staged is None:
                others = pa.array(range(batch.num_rows), pa.int64())
            else:
                decided = storage.decide_import_rows(
                    staged, source=source, received_at=received_at, max_event_bytes=max_event_bytes
                )
                simple = decided.column("is_simple")
                parts.append(decided.filter(simple).select([*EVENT_COLUMNS, "row_no"]))
                others = pc.indices_nonzero(pc.invert(simple)).cast(pa.int64())
            events = [
                (first + i, _parquet_event(row))
                for i, row in zip(others.to_pylist(), batch.take(others).to_pylist(), strict=True)
            ]
            rows, numbers, rejected = _parsed_one_by_one(events, source, received_at, max_event_bytes)
            parts.append(_numbered(rows, numbers))
            written = storage.import_events(
                pa.concat_tables([p.cast(parts[-1].schema) for p in parts]),
                rejected,
                source=source,
                received_at=received_at,
            )
            writes.queue(written, batch.num_rows, rejected, batch.num_rows)
            first += batch.num_rows


def _import_per_event(
    storage: EventStore,
    path: Path,
    source: str,
    max_event_bytes: int,
    summary: ImportSummary,
    fmt: Format | None,
    on_progress: Callable[[Path, int], None] | None,
) -> None:
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


def import_files(
    storage: EventStore,
    paths: list[Path],
    *,
    source: str,
    max_event_bytes: int,
    on_progress: Callable[[Path, int], None] | None = None,
    per_event: bool = False,
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
            per_event=per_event,
        )
    return summary
