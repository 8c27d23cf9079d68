"""The ClickHouse event store: events in through this process's single writer, deduplicated by
(source, message_id), and the report's inputs out (reads in app/storage/clickhouse_reads.py);
also counting, readiness, and the backup's export and import.

ClickHouse has no unique key to refuse a stored event, no `RETURNING` and no transaction to
rely on, so a group commit here is: dedupe within the group, look up which of its keys are
already stored (that lookup gives the reply's `inserted` and `duplicates`), then one insert per
table. The events table is a ReplacingMergeTree ordered by exactly (source, message_id) and read
with FINAL, so a copy that slips past the lookup (another replica, a retry racing its original)
is never counted; every insert carries an `insert_deduplication_token` made from what it
inserts, so the same insert sent again is stored once even before any merge. Identity links are
append-only: a link is appended only when it is earlier than the one in force.

Query text lives in `sql/clickhouse/`; values are always bound parameters. Every ClickHouse
error leaves this module as StorageUnavailable (503, retry later).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.errors import Conflict, InvalidInput, StorageUnavailable
from app.ingest import ParsedBatch, Rejected
from app.queries import query
from app.storage.arrow_tables import EVENTS_SCHEMA, rows_table
from app.storage.clickhouse_database import ClickHouseDatabase, naive_utc
from app.storage.clickhouse_reads import ClickHouseReads
from app.storage.duckdb_events import (
    IngestRequest,
    decide_import_rows_in_memory,
    earliest_links,
    rejected_row,
    rejected_table,
    split_group,
)
from app.storage.interfaces import WriteResult
from app.storage.translate import translates_errors

# Keys per lookup query: a server receives bound parameters in the request, where a few hundred
# kilobytes are fine and the whole of a 50,000-event group might not be.
LOOKUP_CHUNK = 10_000
# Known links kept in memory before the cache starts again (as the DuckDB store's).
KNOWN_LINKS_LIMIT = 1_000_000
# How often data_version looks for events stored by other replicas.
VERSION_POLL_SECONDS = 5.0
# Rows per insert when a backup is restored.
RESTORE_BATCH_ROWS = 100_000
LINKS_RECORDED_SCHEMA = pa.schema(
    [
        ("anonymous_id", pa.string()),
        ("user_id", pa.string()),
        ("linked_at", pa.timestamp("us")),
        ("recorded_at", pa.timestamp("us")),
    ]
)


class ClickHouseEventStore(ClickHouseReads):
    """Events in ClickHouse: writes through the database's single writer, reads beside it."""

    def __init__(self, database: ClickHouseDatabase) -> None:
        self.database = database
        self._data_version = 0
        # The events table's row count when last polled, and when (see data_version).
        self._written: int | None = None
        self._polled_at = -VERSION_POLL_SECONDS
        # anonymous_id -> earliest link time already stored, so known links are not looked up
        # or written again.
        self._known_links: dict[str, datetime] = {}
        # Told (events, seconds) after every group commit (see DuckDBEventStore.on_commit).
        self.on_commit: Callable[[int, float], None] | None = None

    @property
    def data_version(self) -> int:
        """Changes whenever new events are stored (for invalidating cached reports): at once for
        this process's own commits, and within VERSION_POLL_SECONDS for events another Landed
        replica stored, seen in the events table's row count (metadata, no scan)."""
        now = time.monotonic()
        if now - self._polled_at >= VERSION_POLL_SECONDS:
            self._polled_at = now
            written: int | None
            try:
                with self.database.unavailable_on_error():
                    written = int(self.database.rows("select_events_written")[0][0])
            except StorageUnavailable:
                written = self._written  # a failed poll changes nothing; reads will say 503
            # Only rows this process did not count itself (another replica's, or duplicates a
            # merge dropped) change the version; the first poll only learns the count.
            if self._written is not None and written is not None and written != self._written:
                self._data_version += 1
            self._written = written
        return self._data_version

    # -- writing -----------------------------------------------------------------------------

    def write_events(self, source: str, batch: ParsedBatch, received_at: datetime) -> Future[WriteResult]:
        """Queues one request's events for the next group commit."""
        request = IngestRequest(source, batch, received_at, rows_table(batch.rows) if batch.rows else None)
        return self.database.writer.submit_to_group(request, size=len(batch.rows), commit=self._commit_group)

    def _commit_group(self, group: list[IngestRequest]) -> list[WriteResult]:
        # Runs on the writer thread, for the requests waiting together.
        started = time.perf_counter()
        with self.database.unavailable_on_error():
            self.database.raise_fault()
            results = self._write_group(group)
        if self.on_commit is not None:
            self.on_commit(sum(len(r.batch.rows) for r in group), time.perf_counter() - started)
        return results

    def _write_group(self, group: Sequence[IngestRequest]) -> list[WriteResult]:
        """Stores several requests' events; returns each request's counts, as
        duckdb_events.write_ingest_group counts them.

        Without a transaction, the inserts run refusals first, links next and events last: a
        failure before the events insert stores no event, so the request's retry is counted
        as DuckDB counts it (inserted, not duplicates), and what was stored before the failure
        (a refusal, a link) is stored once however often the request is retried."""
        rows, owners, duplicates, rejected_rows = split_group(group)
        stored = self._stored_keys_of([row.source for row in rows], [row.message_id for row in rows])
        inserted = [0] * len(group)
        new_rows: pa.Table | None = None
        if rows:
            prebuilt = [request.staged for request in group if request.batch.rows]
            if len(rows) == sum(len(r.batch.rows) for r in group) and all(t is not None for t in prebuilt):
                staged = pa.concat_tables(prebuilt)  # nothing was dropped as a duplicate
            else:
                staged = rows_table(rows)
            keep = [(row.source, row.message_id) not in stored for row in rows]
            for row_is_new, owner in zip(keep, owners, strict=True):
                if row_is_new:
                    inserted[owner] += 1
                else:
                    duplicates[owner] += 1
            new_rows = staged if all(keep) else staged.filter(pa.array(keep, pa.bool_()))
        self._write_rejected(rejected_rows)
        # Every accepted event offers its link, duplicates too, so the links do not depend on
        # how events were grouped (an import's chunks, a client's batches).
        self._write_links(earliest_links(row for request in group for row in request.batch.rows))
        if new_rows is not None:
            self._write_new_events(new_rows)
        return [
            WriteResult(inserted=inserted[i], duplicates=duplicates[i], rejected=len(r.batch.rejected))
            for i, r in enumerate(group)
        ]

    def _write_new_events(self, rows: pa.Table) -> None:
        """Inserts events the lookup found new (EVENTS_SCHEMA), with the token of their keys."""
        if rows.num_rows:
            self.database.insert_arrow("events", rows, token=_events_token(rows))
            # Readers compare this counter to know when cached reports are stale.
            self._data_version += 1
            if self._written is not None:
                self._written += rows.num_rows

    def _write_rejected(self, rejected_rows: Sequence[tuple[str, str, datetime, str, str, str]]) -> None:
        if rejected_rows:
            table = rejected_table(rejected_rows)
            self.database.insert_arrow(
                "rejected_events", table, token=_token("rejected", table["rejected_id"].to_pylist())
            )

    def _stored_keys_of(self, sources: Sequence[str], message_ids: Sequence[str]) -> set[tuple[str, str]]:
        """Which of these (source, message_id) keys are already stored."""
        by_source: dict[str, list[str]] = {}
        for source, message_id in zip(sources, message_ids, strict=True):
            by_source.setdefault(source, []).append(message_id)
        stored: set[tuple[str, str]] = set()
        for source, message_ids in by_source.items():
            for chunk in _chunks(message_ids, LOOKUP_CHUNK):
                found = self.database.rows("select_stored_events", {"source": source, "message_ids": chunk})
                stored.update((source, str(r[0])) for r in found)
        return stored

    def _write_links(self, links: dict[str, tuple[str, datetime]]) -> None:
        """Appends each link earlier than the one in force for its anonymous_id (or the first
        one); links the cache knows to be no earlier are not looked up."""
        known = self._known_links
        links = {a: ul for a, ul in links.items() if not (a in known and known[a] <= ul[1])}
        if not links:
            return
        in_force: dict[str, datetime] = {}
        for chunk in _chunks(list(links), LOOKUP_CHUNK):
            for anonymous_id, linked_at in self.database.rows(
                "select_links_in_force", {"anonymous_ids": chunk}
            ):
                in_force[str(anonymous_id)] = _naive_utc(linked_at)
        earlier = {a: ul for a, ul in links.items() if a not in in_force or ul[1] < in_force[a]}
        if earlier:
            recorded_at = datetime.now(UTC).replace(tzinfo=None)
            table = pa.Table.from_pylist(
                [
                    {"anonymous_id": a, "user_id": u, "linked_at": t, "recorded_at": recorded_at}
                    for a, (u, t) in earlier.items()
                ],
                schema=LINKS_RECORDED_SCHEMA,
            )
            token = _token("links", [f"{a}\x1f{u}\x1f{t.isoformat()}" for a, (u, t) in earlier.items()])
            self.database.insert_arrow("identity_links", table, token=token)
        if len(known) > KNOWN_LINKS_LIMIT:
            known.clear()  # bounded memory; links are looked up again as they recur
        for anonymous_id, (_, linked_at) in links.items():
            stored_at = in_force.get(anonymous_id)
            known[anonymous_id] = linked_at if stored_at is None else min(linked_at, stored_at)

    def decide_import_rows(
        self, raw: pa.Table, *, source: str, received_at: datetime, max_event_bytes: int
    ) -> pa.Table:
        """An import chunk's rows (Segment-shaped columns, see select_import_rows.sql) as event
        rows: a pure computation on the chunk alone, run by the DuckDB store's own query on an
        in-memory DuckDB (so both stores decide every row alike); nothing is read from
        ClickHouse and the writer is not held. is_simple is false where the importer must
        parse the row itself."""
        return decide_import_rows_in_memory(
            raw, source=source, received_at=received_at, max_event_bytes=max_event_bytes
        )

    def import_events(
        self, rows: pa.Table, rejected: Sequence[Rejected], *, source: str, received_at: datetime
    ) -> Future[WriteResult]:
        """Stores an import chunk on the writer, between group commits: `rows` are its accepted
        rows (EVENTS_SCHEMA, then row_no; duplicates too, in any order), `rejected` its
        refusals. The first of each event in row_no order is inserted unless already stored,
        with the chunk's earliest links and its refusals: what the DuckDB store stores."""

        def run(client: Any) -> WriteResult:
            inserted = self._write_import(rows, rejected, source=source, received_at=received_at)
            return WriteResult(inserted=inserted, duplicates=rows.num_rows - inserted, rejected=len(rejected))

        return self.database.writer.submit(run)

    def _write_import(
        self, rows: pa.Table, rejected: Sequence[Rejected], *, source: str, received_at: datetime
    ) -> int:
        """Stores one import chunk (see import_events): refusals, links, then the new events,
        in that order for the reason _write_group gives; the number of events inserted."""
        self._write_rejected([rejected_row(source, received_at, r) for r in rejected])
        if not rows.num_rows:
            return 0
        ordered = rows.take(pc.sort_indices(rows["row_no"]))
        # The first row of each (source, message_id) in the chunk's order.
        firsts = ordered.group_by(["source", "message_id"], use_threads=False).aggregate([("row_no", "min")])
        first = ordered.filter(pc.is_in(ordered["row_no"], value_set=firsts["row_no_min"]))
        stored = self._stored_keys_of(first["source"].to_pylist(), first["message_id"].to_pylist())
        if stored:
            keys = zip(first["source"].to_pylist(), first["message_id"].to_pylist(), strict=True)
            first = first.filter(pa.array([key not in stored for key in keys], pa.bool_()))
        new_rows = first.drop_columns(["row_no"]).cast(EVENTS_SCHEMA)
        self._write_links(_earliest_import_links(ordered))
        self._write_new_events(new_rows)
        return int(new_rows.num_rows)

    def export_tables(self, files: Mapping[str, Path]) -> dict[str, int]:
        """Writes each table to its Parquet file, with exactly the DuckDB table's columns (its
        export_<table>.sql resolves versions and duplicates); returns the row counts. Each
        table is streamed to its file from one query, beside the writer, so ingestion goes on:
        ClickHouse offers no snapshot across tables, so the tables are read one after the
        other, events first (a link or refusal stored meanwhile may be in the backup while its
        event is not, never the other way round for what was there when the backup began)."""
        counts: dict[str, int] = {}
        with self.database.unavailable_on_error("the backup could not be written"):
            client = self.database.client()
            for table, path in files.items():
                counts[table] = 0
                writer: pq.ParquetWriter | None = None
                schema: pa.Schema | None = None
                try:
                    with client.query_arrow_stream(query(f"export_{table}", "clickhouse")) as stream:
                        for block in stream:
                            rows = _empty_lists_as_null(
                                naive_utc(
                                    pa.Table.from_batches([block])
                                    if isinstance(block, pa.RecordBatch)
                                    else block
                                )
                            )
                            if writer is None:
                                schema = _backup_schema(rows.schema)
                                writer = pq.ParquetWriter(path, schema)
                            assert schema is not None
                            writer.write_table(rows.cast(schema))
                            counts[table] += rows.num_rows
                    if writer is None:  # no rows: the columns still, from an empty result
                        empty = self.database.arrow(f"export_{table}")
                        pq.write_table(empty.cast(_backup_schema(empty.schema)), path)
                finally:
                    if writer is not None:
                        writer.close()
        return counts

    def import_tables(self, files: Mapping[str, Path], expected_rows: Mapping[str, int]) -> dict[str, int]:
        """Loads each table from its Parquet file into an empty database, columns by name (a
        ClickHouse table's other columns have defaults): Conflict if any table already holds
        rows, InvalidInput if a table's row count differs from `expected_rows`. ClickHouse has
        no transaction to undo a failed restore, so a failed one empties the tables it was
        filling again: nothing is restored. Runs on the writer; restore into a database other
        processes are writing to is not supported (they are refused as its tables fill)."""

        def run(client: Any) -> dict[str, int]:
            for table in files:
                if self._row_count(table, resolved=False):
                    raise Conflict(
                        f"the database already holds {table}",
                        "restore into a new, empty ClickHouse database (LANDED_CLICKHOUSE_URL)",
                    )
            attempt = uuid.uuid4().hex
            try:
                counts = {}
                for table, path in files.items():
                    for number, batch in enumerate(
                        pq.ParquetFile(path).iter_batches(batch_size=RESTORE_BATCH_ROWS)
                    ):
                        self.database.insert_arrow(
                            table, _as_stored(batch), token=f"restore-{attempt}-{table}-{number}"
                        )
                    counts[table] = self._row_count(table, resolved=True)
                    if counts[table] != expected_rows[table]:
                        raise InvalidInput(
                            f"{table}: restored {counts[table]} rows, "
                            f"the manifest says {expected_rows[table]}",
                            "the backup is incomplete; nothing was restored",
                        )
            except BaseException:
                for table in files:
                    with contextlib.suppress(StorageUnavailable), self.database.unavailable_on_error():
                        client.command("truncate table {table:Identifier}", parameters={"table": table})
                raise
            self._known_links.clear()
            self._data_version += 1
            return counts

        return self.database.write(run)

    def _row_count(self, table: str, *, resolved: bool) -> int:
        """Rows of `table`: as its backup query reads them (versions resolved), or every row
        stored (any row at all means the table is not empty)."""
        if resolved:
            sql = f"select count() from (\n{query(f'export_{table}', 'clickhouse')}\n)"
            rows = self.database.client().query(sql).result_rows
        else:
            rows = (
                self.database.client()
                .query("select count() from {table:Identifier}", parameters={"table": table})
                .result_rows
            )
        return int(rows[0][0]) if rows else 0

    def queue_depth(self) -> int:
        """Requests and jobs waiting for the writer (approximate, as any queue size)."""
        return self.database.writer.queue_depth()

    # -- service -----------------------------------------------------------------------------

    @translates_errors
    def count_events(self) -> int:
        """Distinct stored events (copies awaiting a merge are not counted)."""
        rows = self.database.rows("count_events")
        return int(rows[0][0]) if rows else 0

    def check_ready(self, timeout: float) -> None:
        """Raises StorageUnavailable unless a read answers and the writer runs an empty job
        within `timeout` seconds: what a load balancer's readiness check asks."""
        with self.database.unavailable_on_error("storage does not answer reads"):
            self.database.rows("select_ready")
        try:
            self.database.writer.submit(lambda client: None).result(timeout=timeout)
        except TimeoutError:
            raise StorageUnavailable(
                "the writer is busy", f"an empty write waited more than {timeout:g} s in its queue"
            ) from None
        except StorageUnavailable:
            raise
        except Exception as error:
            raise StorageUnavailable("storage does not accept writes", str(error)) from error


def _empty_lists_as_null(rows: pa.Table) -> pa.Table:
    """`rows` with each empty list as null, as DuckDB keeps and backs up a missing list (a key
    with no origins); ClickHouse arrays cannot be null, and an empty one means the same."""
    for index, field in enumerate(rows.schema):
        if pa.types.is_list(field.type):
            column = rows.column(index)
            empty = pc.equal(pc.list_value_length(column), 0)
            rows = rows.set_column(index, field, pc.if_else(empty, pa.scalar(None, field.type), column))
    return rows


def _backup_schema(schema: pa.Schema) -> pa.Schema:
    """The Parquet schema of a table read from ClickHouse, as DuckDB's backup writes it: every
    column nullable, dictionary columns (LowCardinality) as their values, binary as text."""
    fields = []
    for field in schema:
        kind = field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_large_string(kind):
            kind = pa.string()
        fields.append(pa.field(field.name, kind, nullable=True))
    return pa.schema(fields)


def _as_stored(batch: pa.RecordBatch) -> pa.Table:
    """A Parquet batch of a backup as ClickHouse takes it: extension types (DuckDB's JSON
    columns) as their plain storage type; columns are then inserted by name."""
    table = pa.Table.from_batches([batch])
    columns = [
        column.cast(column.type.storage_type) if isinstance(column.type, pa.ExtensionType) else column
        for column in table.columns
    ]
    return pa.table(columns, names=table.column_names)


def _earliest_import_links(rows: pa.Table) -> dict[str, tuple[str, datetime]]:
    """An import chunk's links (rows in row_no order, duplicates too): per anonymous_id (or
    alias previous_id), the earliest event linking it, ties to the first in the chunk's order
    (anonymousId before previousId), as upsert_import_links.sql (DuckDB) picks them."""
    linked = rows.filter(pc.is_valid(rows["user_id"]))
    if not linked.num_rows:
        return {}
    order = pa.array(range(linked.num_rows), pa.int64())
    candidates = pa.concat_tables(
        [
            pa.table(
                {
                    "linked_id": linked[column].cast(pa.string()),
                    "user_id": linked["user_id"].cast(pa.string()),
                    "linked_at": linked["occurred_at"].cast(pa.timestamp("us")),
                    "position": pc.add(pc.multiply(order, 2), offset),
                }
            )
            for offset, column in ((0, "anonymous_id"), (1, "previous_id"))
        ]
    )
    candidates = candidates.filter(
        pc.and_(
            pc.is_valid(candidates["linked_id"]),
            pc.not_equal(candidates["linked_id"], candidates["user_id"]),
        )
    )
    if not candidates.num_rows:
        return {}
    candidates = candidates.sort_by(
        [("linked_id", "ascending"), ("linked_at", "ascending"), ("position", "ascending")]
    )
    links: dict[str, tuple[str, datetime]] = {}
    for linked_id, user_id, linked_at in zip(
        candidates["linked_id"].to_pylist(),
        candidates["user_id"].to_pylist(),
        candidates["linked_at"].to_pylist(),
        strict=True,
    ):
        links.setdefault(linked_id, (user_id, linked_at))
    return links


def _chunks(values: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _naive_utc(value: datetime) -> datetime:
    """A time read back from ClickHouse as naive UTC (the type every time is compared as)."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _token(kind: str, parts: Iterable[Any]) -> str:
    """An insert_deduplication_token from what an insert stores: the same insert sent again is
    stored once (within the table's non_replicated_deduplication_window)."""
    digest = hashlib.sha256(kind.encode())
    for part in parts:
        digest.update(b"\x1e")
        digest.update(str(part).encode())
    return f"{kind}-{digest.hexdigest()}"


def _events_token(rows: pa.Table) -> str:
    """The token of an events insert: its keys. A later insert of exactly these events is a
    retry (the lookup would have found them stored otherwise) and keeps the first copy."""
    return _token(
        "events",
        (
            f"{s}\x1f{m}"
            for s, m in zip(rows["source"].to_pylist(), rows["message_id"].to_pylist(), strict=True)
        ),
    )
