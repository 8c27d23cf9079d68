"""The DuckDB event store: events in, group-committed by the single writer, and the report's
inputs out as Arrow tables; also counting, readiness, and the backup's export and import.

Query text lives in `sql/`; values are always bound parameters. Every DuckDB error leaves this
module as StorageUnavailable (503, retry later).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from app.errors import Conflict, InvalidInput, StorageUnavailable
from app.ingest import EventRow, ParsedBatch, Rejected
from app.queries import query
from app.storage.arrow_tables import LINKS_SCHEMA, REJECTED_SCHEMA, rows_table
from app.storage.duckdb_database import DuckDBDatabase, rollback_quietly
from app.storage.interfaces import EventStore, WriteResult
from app.storage.translate import translates_errors
from pipelines.plan import ReportPlan


class IngestRequest(NamedTuple):
    """One request's events as the writer commits them."""

    source: str
    batch: ParsedBatch
    received_at: datetime
    # The rows as Arrow, built by the submitting thread (None: build them in the writer).
    staged: pa.Table | None


class DuckDBEventStore(EventStore):
    """Events in DuckDB: writes through the database's single writer, reads on cursors."""

    def __init__(self, database: DuckDBDatabase) -> None:
        self.database = database
        self._data_version = 0
        # anonymous_id -> earliest link time already stored, so known links are not written again.
        self._known_links: dict[str, datetime] = {}
        # Told (events, seconds) after every group commit; the app sets it to feed its metrics,
        # so storage knows nothing of how they are exported.
        self.on_commit: Callable[[int, float], None] | None = None

    @property
    def data_version(self) -> int:
        """Changes whenever new events are stored (for invalidating cached reports)."""
        return self._data_version

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.database.cursor()

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
            results = write_ingest_group(self.database.connection(), group, self._known_links)
        if any(r.inserted for r in results):
            # Readers compare this counter to know when cached reports are stale.
            self._data_version += 1
        if self.on_commit is not None:
            self.on_commit(sum(len(r.batch.rows) for r in group), time.perf_counter() - started)
        return results

    def decide_import_rows(
        self, raw: pa.Table, *, source: str, received_at: datetime, max_event_bytes: int
    ) -> pa.Table:
        """An import chunk's rows (Segment-shaped columns, see select_import_rows.sql) as event
        rows, computed by DuckDB on a cursor of its own (the writer is not held): is_simple is
        false where the importer must parse the row itself."""
        cursor = self.cursor()
        try:
            with self.database.unavailable_on_error():
                return _decide_import_rows(cursor, raw, source, received_at, max_event_bytes)
        finally:
            cursor.close()

    def import_events(
        self, rows: pa.Table, rejected: Sequence[Rejected], *, source: str, received_at: datetime
    ) -> Future[WriteResult]:
        """Stores an import chunk in one transaction on the writer, between group commits:
        `rows` are its accepted rows (EVENTS_SCHEMA, then row_no, the chunk's order; duplicates
        too), `rejected` its refusals. Dedupe and identity links are set-based SQL."""

        def run(conn: duckdb.DuckDBPyConnection) -> WriteResult:
            result = write_import(conn, rows, rejected, source=source, received_at=received_at)
            if result.inserted:
                self._data_version += 1
            return result

        return self.database.writer.submit(run)

    def queue_depth(self) -> int:
        """Requests and jobs waiting for the writer (approximate, as any queue size)."""
        return self.database.writer.queue_depth()

    # -- service -----------------------------------------------------------------------------

    @translates_errors
    def count_events(self) -> int:
        return _count(self.cursor(), "events")

    def check_ready(self, timeout: float) -> None:
        """Raises StorageUnavailable unless a read answers and the writer commits an empty
        transaction within `timeout` seconds: what a load balancer's readiness check asks."""
        with self.database.unavailable_on_error("storage does not answer reads"):
            self.cursor().execute(query("select_ready")).fetchall()
        try:
            self.database.writer.submit(lambda conn: None).result(timeout=timeout)
        except TimeoutError:
            raise StorageUnavailable(
                "the writer is busy", f"an empty write waited more than {timeout:g} s in its queue"
            ) from None
        except StorageUnavailable:
            raise
        except Exception as error:
            raise StorageUnavailable("storage does not accept writes", str(error)) from error

    def export_tables(self, files: Mapping[str, Path]) -> dict[str, int]:
        """Writes each table to its Parquet file; returns the row counts. Every table is read in
        one transaction of its own cursor: one consistent snapshot, taken without stopping the
        writer (a backup taken on the writer would hold every request while it runs)."""
        cursor = self.cursor()
        try:
            with self.database.unavailable_on_error("the backup could not be written"):
                try:
                    cursor.begin()
                    counts = {}
                    for table, path in files.items():
                        cursor.execute(query(f"export_{table}"), {"path": str(path)})
                        counts[table] = _count(cursor, table)
                    cursor.commit()
                except duckdb.Error:
                    rollback_quietly(cursor)
                    raise
        finally:
            cursor.close()
        return counts

    def import_tables(self, files: Mapping[str, Path], expected_rows: Mapping[str, int]) -> dict[str, int]:
        """Loads each table from its Parquet file into an empty database, in one transaction:
        Conflict if any table already holds rows, InvalidInput (and nothing restored) if a
        table's row count differs from `expected_rows`."""

        def run(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
            for table in files:
                if _count(conn, table):
                    raise Conflict(
                        f"the database already holds {table}",
                        "restore into a new database file (--db new.duckdb)",
                    )
            counts = {}
            for table, path in files.items():
                conn.execute(query(f"restore_{table}"), {"path": str(path)})
                counts[table] = _count(conn, table)
                if counts[table] != expected_rows[table]:
                    raise InvalidInput(
                        f"{table}: restored {counts[table]} rows, the manifest says {expected_rows[table]}",
                        "the backup is incomplete; nothing was restored",
                    )
            return counts

        return self.database.write(run)

    # -- report inputs -----------------------------------------------------------------------

    @translates_errors
    def launch_activity(self, plan: ReportPlan) -> pa.Table:
        """One row per canonical user with an event in the plan's span: is_identified, the
        first event at or after the launch, the last one before it, and the window's UTC days
        as a string of '0'/'1' (see the query's header)."""
        span = plan.span
        return self._arrow(
            "select_launch_activity",
            {
                "start": span.lookback,
                "launched": span.start,
                "end": span.end,
                "days": max(1, plan.day_count),
                "identified_only": plan.identified_only,
            },
        )

    @translates_errors
    def launch_signals(self, plan: ReportPlan) -> pa.Table:
        """Candidate signal events in the plan's span with the property values its matchers
        test, in the plan's order; with identified_only, only those of users known by a userId."""
        return self._arrow(
            "select_launch_signals",
            {
                "start": plan.span.lookback,
                "end": plan.span.end,
                "event_names": list(plan.event_names),
                "any_types": list(plan.matcher_types),
                "pointers": [json_pointer(p) for p in plan.property_names],
                "channel_pointer": json_pointer(plan.channel_property),
                "identified_only": plan.identified_only,
            },
        )

    @translates_errors
    def launch_traits(self, plan: ReportPlan) -> pa.Table:
        """Every value of the plan's traits seen before its span's end, per canonical user."""
        return self._arrow(
            "select_launch_traits",
            {
                "end": plan.span.end,
                "trait_names": list(plan.trait_names),
                "trait_pointers": [json_pointer(t) for t in plan.trait_names],
            },
        )

    @translates_errors
    def event_names(self, start: datetime, end: datetime) -> list[str]:
        """Distinct event (and page/screen) names seen in [start, end)."""
        params = {"start": start, "end": end}
        return [r[0] for r in self.cursor().execute(query("select_event_names"), params).fetchall()]

    @translates_errors
    def event_properties(
        self, event: str, start: datetime, end: datetime
    ) -> list[tuple[str, str | None, int]]:
        """(property, value, events) of events named `event` in [start, end), most common first."""
        params = {"event": event, "start": start, "end": end}
        rows = self.cursor().execute(query("select_event_properties"), params).fetchall()
        return [(str(p), None if v is None else str(v), int(n)) for p, v, n in rows]

    @translates_errors
    def trait_values(self, trait: str) -> list[tuple[str, int]]:
        """(value, users) of one trait, most common first."""
        rows = self.cursor().execute(query("select_trait_values"), {"trait": trait}).fetchall()
        return [(str(v), int(n)) for v, n in rows]

    @translates_errors
    def trait_keys(self) -> list[str]:
        """Trait names seen on events, most common first (cached until new events arrive)."""
        version = self.data_version
        cached = getattr(self, "_trait_keys", None)
        if cached is None or cached[0] != version:
            names = [r[0] for r in self.cursor().execute(query("select_trait_keys")).fetchall()]
            self._trait_keys = (version, names)
            return names
        return list(cached[1])

    def _arrow(self, name: str, params: dict[str, Any]) -> pa.Table:
        relation = self.cursor().sql(query(name), params=params)
        assert relation is not None
        return relation.to_arrow_table()


def _count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    row = conn.execute(query(f"count_{table}")).fetchone()
    return int(row[0]) if row else 0


class GroupRows(NamedTuple):
    """A group of requests' events as a store commits them (see split_group)."""

    rows: list[EventRow]  # the first of each (source, message_id), in order
    owners: list[int]  # for each row, the index of the request it came from
    duplicates: list[int]  # per request, rows dropped as a repeat within the group
    rejected: list[tuple[str, str, datetime, str, str, str]]  # every request's refusals


def split_group(group: Sequence[IngestRequest]) -> GroupRows:
    """The first of each (source, message_id) of a group of requests, whose request it came
    from, the repeats within the group per request, and the refusals as rows."""
    seen: set[tuple[str, str]] = set()
    result = GroupRows([], [], [0] * len(group), [])
    for index, request in enumerate(group):
        for row in request.batch.rows:
            key = (row.source, row.message_id)
            if key in seen:
                result.duplicates[index] += 1
                continue
            seen.add(key)
            result.rows.append(row)
            result.owners.append(index)
        result.rejected.extend(
            rejected_row(request.source, request.received_at, r) for r in request.batch.rejected
        )
    return result


def write_ingest_group(
    conn: duckdb.DuckDBPyConnection,
    group: Sequence[IngestRequest],
    known_links: dict[str, datetime] | None = None,
) -> list[WriteResult]:
    """Stores several requests' events in one transaction; returns each request's counts.

    Most groups hold only new events, so they are inserted with a plain INSERT; a group with
    an already stored event fails that statement and is written again with the slower
    statement that skips stored rows. `known_links` (anonymous_id -> earliest link time) lets
    links already recorded be skipped; it is updated after the commit."""
    rows, owners, duplicates, rejected_rows = split_group(group)
    # Every accepted event offers its link, duplicates too, so the links do not depend on how
    # events were grouped (an import's chunks, a client's batches).
    links = earliest_links(row for request in group for row in request.batch.rows)
    if known_links:
        links = {a: ul for a, ul in links.items() if not (a in known_links and known_links[a] <= ul[1])}
    prebuilt = [request.staged for request in group if request.batch.rows]
    if not rows:
        staged = None
    elif len(rows) == sum(len(r.batch.rows) for r in group) and all(t is not None for t in prebuilt):
        staged = pa.concat_tables(prebuilt)  # nothing was dropped as a duplicate
    else:
        staged = rows_table(rows)
    try:
        inserted_keys = _write_group_once(conn, staged, links, rejected_rows, fast=True)
    except duckdb.ConstraintException:
        inserted_keys = _write_group_once(conn, staged, links, rejected_rows, fast=False)
    if known_links is not None:
        if len(known_links) > 1_000_000:
            known_links.clear()  # bounded memory; links are looked up again as they recur
        known_links.update({a: t for a, (_, t) in links.items()})
    inserted = [0] * len(group)
    for row, owner in zip(rows, owners, strict=True):
        if inserted_keys is None or (row.source, row.message_id) in inserted_keys:
            inserted[owner] += 1
        else:
            duplicates[owner] += 1
    return [
        WriteResult(inserted=inserted[i], duplicates=duplicates[i], rejected=len(r.batch.rejected))
        for i, r in enumerate(group)
    ]


def decide_import_rows_in_memory(
    raw: pa.Table, *, source: str, received_at: datetime, max_event_bytes: int
) -> pa.Table:
    """select_import_rows.sql on an in-memory DuckDB of its own: the pure Arrow computation of an
    import chunk's rows, for a store kept elsewhere (the ClickHouse store stores what it returns).
    The query reads nothing but `raw`, so the result is the DuckDB store's, value for value."""
    conn = duckdb.connect(":memory:")
    try:
        return _decide_import_rows(conn, raw, source, received_at, max_event_bytes)
    finally:
        conn.close()


def _decide_import_rows(
    conn: duckdb.DuckDBPyConnection, raw: pa.Table, source: str, received_at: datetime, max_event_bytes: int
) -> pa.Table:
    staged_import = raw  # noqa: F841 - read by name in the SQL (a replacement scan)
    relation = conn.sql(
        query("select_import_rows"),
        params={"source": source, "received_at": received_at, "max_event_bytes": max_event_bytes},
    )
    assert relation is not None
    return relation.to_arrow_table()


def write_import(
    conn: duckdb.DuckDBPyConnection,
    rows: pa.Table,
    rejected: Sequence[Rejected],
    *,
    source: str,
    received_at: datetime,
) -> WriteResult:
    """Stores one import chunk (see DuckDBEventStore.import_events) in the caller's transaction:
    new events in the chunk's order, links, refusals; returns the chunk's counts."""
    staged_rows = rows  # noqa: F841 - read by name in the SQL (a replacement scan)
    inserted = 0
    if rows.num_rows:
        counted = conn.execute(query("insert_import_events")).fetchone()
        inserted = int(counted[0]) if counted else 0
        conn.execute(query("upsert_import_links"))
    if rejected:
        table = rejected_table([rejected_row(source, received_at, r) for r in rejected])
        _execute_staged(conn, query("insert_rejected_events"), _StagedTables(None, None, table))
    return WriteResult(inserted=inserted, duplicates=rows.num_rows - inserted, rejected=len(rejected))


def rejected_row(
    source: str, received_at: datetime, rejection: Rejected
) -> tuple[str, str, datetime, str, str, str]:
    """A refusal as a rejected_events row; its id hashes source, reason and payload, so a resent
    bad event is kept once (by either store)."""
    digest = hashlib.sha256("\x1f".join((source, rejection.reason, rejection.payload)).encode()).hexdigest()[
        :32
    ]
    return (digest, source, received_at, rejection.reason, rejection.detail, rejection.payload)


def rejected_table(rejected_rows: Sequence[tuple[str, str, datetime, str, str, str]]) -> pa.Table:
    """rejected_row tuples as an Arrow table (REJECTED_SCHEMA)."""
    return pa.Table.from_pylist(
        [dict(zip(REJECTED_SCHEMA.names, r, strict=True)) for r in rejected_rows], schema=REJECTED_SCHEMA
    )


def earliest_links(rows: Iterable[EventRow]) -> dict[str, tuple[str, datetime]]:
    """anonymous_id (or previous_id) -> (user_id, time) of the earliest event linking them;
    a tie goes to the first in `rows`' order (anonymousId before previousId)."""
    links: dict[str, tuple[str, datetime]] = {}
    for row in rows:
        user_id = row.user_id
        if user_id is None:
            continue
        for anonymous in (row.anonymous_id, row.previous_id):
            if anonymous is None or anonymous == user_id:
                continue
            known = links.get(anonymous)
            if known is None or row.occurred_at < known[1]:
                links[anonymous] = (user_id, row.occurred_at)
    return links


def _write_group_once(
    conn: duckdb.DuckDBPyConnection,
    staged: pa.Table | None,
    links: dict[str, tuple[str, datetime]],
    rejected_rows: list[tuple[str, str, datetime, str, str, str]],
    *,
    fast: bool,
) -> set[tuple[str, str]] | None:
    """One transaction; returns the keys inserted, or None when every staged row was."""
    inserted_keys: set[tuple[str, str]] | None = None
    tables = _StagedTables(
        staged,
        pa.Table.from_pylist(
            [{"anonymous_id": a, "user_id": u, "linked_at": t} for a, (u, t) in links.items()],
            schema=LINKS_SCHEMA,
        )
        if links
        else None,
        rejected_table(rejected_rows) if rejected_rows else None,
    )
    if fast and staged is not None and not links and not rejected_rows:
        # Events alone (the usual group once links are known): one auto-committed statement
        # is atomic on its own and saves the begin and commit round trips (about 20% of
        # the writer's time per group).
        _execute_staged(conn, query("insert_new_events"), tables)
        return None
    conn.execute("begin transaction")
    try:
        if staged is not None:
            if fast:
                _execute_staged(conn, query("insert_new_events"), tables)
            else:
                inserted = _execute_staged(conn, query("insert_events"), tables).fetchall()
                inserted_keys = {(s, m) for s, m in inserted}
        if links:
            _execute_staged(conn, query("upsert_identity_links"), tables)
        if rejected_rows:
            _execute_staged(conn, query("insert_rejected_events"), tables)
        conn.execute("commit")
    except BaseException:
        rollback_quietly(conn)
        raise
    return inserted_keys if inserted_keys is not None or staged is None else None


class _StagedTables(NamedTuple):
    """A group's Arrow tables, under the names the group-commit SQL reads them by."""

    staged_events: pa.Table | None
    staged_links: pa.Table | None
    staged_rejected: pa.Table | None


def _execute_staged(
    conn: duckdb.DuckDBPyConnection, sql: str, tables: _StagedTables
) -> duckdb.DuckDBPyConnection:
    """Runs `sql`, whose FROM names one of `tables` by its field name.

    The one use of DuckDB's replacement scans: DuckDB resolves a table name it does not know to
    the Python variable of that name in the calling frame, here the locals below. Registering
    and unregistering a view per statement, as the writer did before, cost more than the insert
    itself (measured when this was introduced, commit 8f7b56b)."""
    staged_events, staged_links, staged_rejected = tables  # noqa: RUF059 - read by name in the SQL
    return conn.execute(sql)


def json_pointer(name: str) -> str:
    """A top-level property name as an RFC 6901 JSON pointer, so names with '/', '~', dots or
    quotes address exactly that property (they are bound as parameters, never spliced)."""
    return "/" + name.replace("~", "~0").replace("/", "~1")
