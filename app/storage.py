"""The one module that talks to DuckDB: schema, the single writer, and every query.

DuckDB allows one writing process, and many small transactions are slow, so every write goes
through `Writer`, a thread that gathers the ingest requests waiting at that moment into one
transaction (group commit) and answers each request only after that transaction committed.
Reads use their own cursors. Query text lives in `sql/`; values are always bound parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa

from app.errors import Forbidden, InvalidInput, NotFound, StorageUnavailable, Unauthorized
from app.ingest import EVENT_COLUMNS, EventRow, ParsedBatch, now_utc
from app.queries import query, schema_statements
from app.settings import Settings

T = TypeVar("T")

SCOPES = ("write", "read", "admin")
_KEY_PREFIX = {"write": "lw", "read": "lr", "admin": "la"}

_TS = pa.timestamp("us")
EVENTS_SCHEMA = pa.schema(
    [
        (
            name,
            _TS
            if name in {"original_timestamp", "sent_at", "received_at", "occurred_at"}
            else pa.bool_()
            if name == "is_clamped"
            else pa.string(),
        )
        for name in EVENT_COLUMNS
    ]
)
REJECTED_SCHEMA = pa.schema(
    [
        ("rejected_id", pa.string()),
        ("source", pa.string()),
        ("received_at", _TS),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("payload", pa.string()),
    ]
)
LINKS_SCHEMA = pa.schema([("anonymous_id", pa.string()), ("user_id", pa.string()), ("linked_at", _TS)])


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What became of one request's events."""

    inserted: int
    duplicates: int
    rejected: int

    @property
    def accepted(self) -> int:
        return self.inserted + self.duplicates


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None
    # Web origins a browser may send with this write key from; empty means any origin.
    origins: tuple[str, ...] = ()


@dataclass(slots=True)
class _IngestJob:
    source: str
    batch: ParsedBatch
    received_at: datetime
    # The rows as Arrow, built by the submitting thread: the writer is the service's
    # bottleneck, so it should spend its time in DuckDB rather than converting Python values.
    staged: pa.Table | None
    future: Future[WriteResult] = field(default_factory=Future)


@dataclass(slots=True)
class _Job:
    run: Callable[[duckdb.DuckDBPyConnection], Any]
    future: Future[Any] = field(default_factory=Future)


_STOP = object()


def rows_table(rows: Sequence[EventRow]) -> pa.Table:
    """Event rows as an Arrow table in events-table column order."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in EVENT_COLUMNS]
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, EVENTS_SCHEMA, strict=True)],
        schema=EVENTS_SCHEMA,
    )


def _earliest_links(rows: Iterable[EventRow]) -> dict[str, tuple[str, datetime]]:
    # column positions: 4 user_id, 5 anonymous_id, 6 previous_id, 14 occurred_at
    links: dict[str, tuple[str, datetime]] = {}
    for row in rows:
        user_id = row[4]
        if user_id is None:
            continue
        for anonymous in (row[5], row[6]):
            if anonymous is None or anonymous == user_id:
                continue
            known = links.get(anonymous)
            if known is None or row[14] < known[1]:
                links[anonymous] = (user_id, row[14])
    return links


class Writer:
    """The single writer thread: group-commits ingest requests, runs other writes one by one."""

    def __init__(
        self,
        connection: Callable[[], duckdb.DuckDBPyConnection],
        *,
        max_events: int,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        # The live connection is asked for at every write: after a fault the storage may have
        # replaced it, or have none until the database can be opened again.
        self._connection = connection
        self._on_error = on_error
        self._max_events = max_events
        # Fault drills: while set, every write fails with this error, as storage would.
        self.fault: Exception | None = None
        self._queue: queue.Queue[Any] = queue.Queue()
        self.data_version = 0
        # Told (events, seconds) after every group commit; the app sets it to feed its metrics,
        # so storage knows nothing of how they are exported.
        self.on_commit: Callable[[int, float], None] | None = None
        self._known_links: dict[str, datetime] = {}
        self._thread = threading.Thread(target=self._loop, name="landed-writer", daemon=True)
        self._thread.start()

    def submit_batch(self, source: str, batch: ParsedBatch, received_at: datetime) -> Future[WriteResult]:
        job = _IngestJob(source, batch, received_at, rows_table(batch.rows) if batch.rows else None)
        self._queue.put(job)
        return job.future

    def submit(self, run: Callable[[duckdb.DuckDBPyConnection], T]) -> Future[T]:
        job = _Job(run)
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()

    def queue_depth(self) -> int:
        """Requests and jobs waiting for the writer (approximate, as any queue size)."""
        return self._queue.qsize()

    def _loop(self) -> None:
        carried: Any = None
        while True:
            item = carried if carried is not None else self._queue.get()
            carried = None
            if item is _STOP:
                return
            if isinstance(item, _Job):
                self._run_job(item)
                continue
            group = [item]
            size = len(item.batch.rows)
            while size < self._max_events:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(nxt, _IngestJob):
                    carried = nxt
                    break
                group.append(nxt)
                size += len(nxt.batch.rows)
            self._write_group(group)

    def _run_job(self, job: _Job) -> None:
        conn: duckdb.DuckDBPyConnection | None = None
        try:
            if self.fault is not None:
                raise self.fault
            conn = self._connection()
            conn.begin()
            result = job.run(conn)
            conn.commit()
        except BaseException as error:
            if conn is not None:
                _rollback(conn)
            if isinstance(error, duckdb.Error):
                self._on_error()
                error = StorageUnavailable("storage is unavailable; retry later", str(error))
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    def _write_group(self, group: list[_IngestJob]) -> None:
        started = time.perf_counter()
        try:
            if self.fault is not None:
                raise self.fault
            results = write_ingest_group(
                self._connection(),
                [(j.source, j.batch, j.received_at, j.staged) for j in group],
                self._known_links,
            )
        except duckdb.Error as error:
            self._on_error()
            failure: BaseException = StorageUnavailable("storage is unavailable; retry later", str(error))
            for job in group:
                job.future.set_exception(failure)
            return
        except Exception as error:
            for job in group:
                job.future.set_exception(error)
            return
        if any(r.inserted for r in results):
            # Readers compare this counter to know when cached reports are stale.
            self.data_version += 1
        for job, result in zip(group, results, strict=True):
            job.future.set_result(result)
        if self.on_commit is not None:
            self.on_commit(sum(len(j.batch.rows) for j in group), time.perf_counter() - started)


def _rollback(conn: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        conn.rollback()


IngestRequest = tuple[str, ParsedBatch, datetime, pa.Table | None]


def write_ingest_group(
    conn: duckdb.DuckDBPyConnection,
    group: Sequence[IngestRequest],
    known_links: dict[str, datetime] | None = None,
) -> list[WriteResult]:
    """Stores several requests' events in one transaction; returns each request's counts.

    Each request is (source, parsed batch, received_at, its rows as Arrow or None to build
    them here).
    Most groups hold only new events, so they are inserted with a plain INSERT; a group with
    an already stored event fails that statement and is written again with the slower
    statement that skips stored rows. `known_links` (anonymous_id -> earliest link time) lets
    links already recorded be skipped; it is updated after the commit."""
    seen: set[tuple[str, str]] = set()
    rows: list[EventRow] = []
    owners: list[int] = []
    duplicates = [0] * len(group)
    rejected_rows: list[tuple[str, str, datetime, str, str, str]] = []
    for index, (source, batch, received_at, _) in enumerate(group):
        for row in batch.rows:
            key = (row[0], row[1])
            if key in seen:
                duplicates[index] += 1
                continue
            seen.add(key)
            rows.append(row)
            owners.append(index)
        for rejection in batch.rejected:
            digest = hashlib.sha256(
                "\x1f".join((source, rejection.reason, rejection.payload)).encode()
            ).hexdigest()[:32]
            rejected_rows.append(
                (digest, source, received_at, rejection.reason, rejection.detail, rejection.payload)
            )
    links = _earliest_links(rows)
    if known_links:
        links = {a: ul for a, ul in links.items() if not (a in known_links and known_links[a] <= ul[1])}
    prebuilt = [request[3] for request in group if request[1].rows]
    if not rows:
        staged = None
    elif len(rows) == sum(len(b.rows) for _, b, _, _ in group) and all(t is not None for t in prebuilt):
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
        if inserted_keys is None or (row[0], row[1]) in inserted_keys:
            inserted[owner] += 1
        else:
            duplicates[owner] += 1
    return [
        WriteResult(inserted=inserted[i], duplicates=duplicates[i], rejected=len(b.rejected))
        for i, (_, b, _, _) in enumerate(group)
    ]


def _write_group_once(
    conn: duckdb.DuckDBPyConnection,
    staged: pa.Table | None,
    links: dict[str, tuple[str, datetime]],
    rejected_rows: list[tuple[str, str, datetime, str, str, str]],
    *,
    fast: bool,
) -> set[tuple[str, str]] | None:
    """One transaction; returns the keys inserted, or None when every staged row was.

    The SQL reads the Arrow tables through DuckDB's replacement scans of this function's
    local variables (staged_events, staged_links, staged_rejected): registering and
    unregistering a view per statement costs more than the insert itself."""
    inserted_keys: set[tuple[str, str]] | None = None
    staged_events = staged  # noqa: F841 - read by name in the SQL
    staged_links = links and pa.Table.from_pylist(  # noqa: F841 - read by name in the SQL
        [{"anonymous_id": a, "user_id": u, "linked_at": t} for a, (u, t) in links.items()],
        schema=LINKS_SCHEMA,
    )
    staged_rejected = rejected_rows and pa.Table.from_pylist(  # noqa: F841 - read by name in the SQL
        [dict(zip(REJECTED_SCHEMA.names, r, strict=True)) for r in rejected_rows],
        schema=REJECTED_SCHEMA,
    )
    if fast and staged is not None and not links and not rejected_rows:
        # Events alone (the usual group once links are known): one auto-committed statement
        # is atomic on its own and saves the begin and commit round trips (about 20% of
        # the writer's time per group).
        conn.execute(query("insert_new_events"))
        return None
    conn.execute("begin transaction")
    try:
        if staged is not None:
            if fast:
                conn.execute(query("insert_new_events"))
            else:
                inserted_keys = {(s, m) for s, m in conn.execute(query("insert_events")).fetchall()}
        if links:
            conn.execute(query("upsert_identity_links"))
        if rejected_rows:
            conn.execute(query("insert_rejected_events"))
        conn.execute("commit")
    except BaseException:
        _rollback(conn)
        raise
    return inserted_keys if inserted_keys is not None or staged is None else None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_origin(origin: str) -> str:
    """A web origin as browsers send it in `Origin` (scheme://host[:port], lower case, no
    default port, no path); InvalidInput naming what is wrong otherwise."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(
            f"origin {origin!r} is not a web origin", "field: origins; write it as https://app.example.com"
        )
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        raise InvalidInput(
            f"origin {origin!r} has more than scheme, host and port",
            "field: origins; an origin has no path, query or credentials",
        )
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput(f"origin {origin!r} has an invalid port", "field: origins") from None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in {None, default} else "")


class Storage:
    """The database of one service: schema on open, the writer, keys, and every query."""

    def __init__(
        self, db_path: str, *, max_events_per_commit: int = 50_000, checkpoint_mib: int = 256
    ) -> None:
        self.db_path = db_path
        # DuckDB checkpoints inside the commit that crosses this WAL size, pausing every write;
        # its default (16 MB) meant a pause of up to a second every ~25,000 events, and fewer,
        # larger checkpoints cost less in all (measured: `make bench`, ingest).
        self._config: dict[str, str | bool | int | float | list[str]] = {
            "checkpoint_threshold": f"{checkpoint_mib}MiB"
        }
        self._conn_lock = threading.Lock()
        self._conn: duckdb.DuckDBPyConnection | None = self._connect()
        self._apply_schema()
        self._keys_lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._load_keys()
        self.writer = Writer(
            self.connection, max_events=max_events_per_commit, on_error=self.check_connection
        )

    @classmethod
    def open(cls, settings: Settings) -> Storage:
        """The storage `settings` describe."""
        return cls(
            settings.db_path,
            max_events_per_commit=settings.commit_max_events,
            checkpoint_mib=settings.checkpoint_mib,
        )

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(self.db_path, config=self._config)
        except duckdb.Error as error:
            raise StorageUnavailable(
                f"cannot open the database {self.db_path}",
                f"{error}. Is another Landed process (a running service) using it?",
            ) from error

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The live connection, opening the database again if a fault closed it; raises
        StorageUnavailable (503 with Retry-After) while it cannot be opened."""
        with self._conn_lock:
            if self._conn is None:
                self._conn = self._connect()
            return self._conn

    def check_connection(self) -> None:
        """After a storage error: keep the connection if it still answers, else close it
        (DuckDB invalidates a database after some I/O failures) so the next use opens the file
        again, and the service recovers without a restart once the fault clears."""
        with self._conn_lock:
            if self._conn is None or self.db_path == ":memory:":
                return
            try:
                self._conn.execute("select 1").fetchall()
                return
            except duckdb.Error:
                pass
            with contextlib.suppress(duckdb.Error):
                self._conn.close()
            self._conn = None

    def inject_write_fault(self, error: Exception | None) -> None:
        """Fault drills and tests: make every write fail with `error` until called with None."""
        self.writer.fault = error

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.writer.close()
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for reads, separate from the writer's connection."""
        try:
            return self.connection().cursor()
        except duckdb.Error as error:
            self.check_connection()
            raise StorageUnavailable("storage is unavailable; retry later", str(error)) from error

    def _apply_schema(self) -> None:
        # Every schema file is an idempotent `create ... if not exists`, so opening an existing
        # database applies only what it lacks.
        conn = self.connection()
        conn.begin()
        for _, statement in schema_statements():
            conn.execute(statement)
        conn.commit()

    # -- ingestion ---------------------------------------------------------------------------

    def write_events(self, source: str, batch: ParsedBatch, received_at: datetime) -> Future[WriteResult]:
        """Queues one request's events for the next group commit."""
        return self.writer.submit_batch(source, batch, received_at)

    @property
    def data_version(self) -> int:
        """Changes whenever new events are stored (for invalidating cached reports)."""
        return self.writer.data_version

    def count_events(self) -> int:
        row = self.cursor().execute(query("count_events")).fetchone()
        return int(row[0]) if row else 0

    # -- keys --------------------------------------------------------------------------------

    def _load_keys(self) -> None:
        rows = self.cursor().execute(query("select_api_keys")).fetchall()
        keys = {
            key_hash: ApiKey(key_id, name, scope, created_at, revoked_at, tuple(origins or ()))
            for key_id, name, scope, key_hash, created_at, revoked_at, origins in rows
        }
        with self._keys_lock:
            self._keys = keys

    def reload_keys(self) -> None:
        """Re-reads the keys (after a restore)."""
        self._load_keys()

    def create_key(self, name: str, scope: str, *, origins: Sequence[str] = ()) -> tuple[ApiKey, str]:
        """A new key and its secret, which is not stored and cannot be shown again. A write key
        may carry the web origins browsers may send with it (none: any origin)."""
        if scope not in SCOPES:
            raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}", "field: scope")
        if origins and scope != "write":
            raise InvalidInput(
                "only write keys carry origins", "field: origins; read and admin keys are same-origin"
            )
        allowed = tuple(dict.fromkeys(normalise_origin(o) for o in origins))
        secret = f"{_KEY_PREFIX[scope]}_{secrets.token_urlsafe(24)}"
        key = ApiKey(secrets.token_hex(6), name, scope, now_utc(), None, allowed)
        params = {
            "key_id": key.key_id,
            "name": name,
            "scope": scope,
            "key_hash": hash_key(secret),
            "created_at": key.created_at,
            "origins": list(allowed) or None,
        }
        self.writer.submit(lambda conn: conn.execute(query("insert_api_key"), params)).result()
        self._load_keys()
        return key, secret

    def revoke_key(self, key: str) -> list[str]:
        params = {"key": key, "revoked_at": now_utc()}
        revoked = self.writer.submit(
            lambda conn: [r[0] for r in conn.execute(query("revoke_api_key"), params).fetchall()]
        ).result()
        if not revoked:
            raise NotFound(f"no active key with id or name {key!r}")
        self._load_keys()
        return list(revoked)

    def list_keys(self) -> list[ApiKey]:
        with self._keys_lock:
            return sorted(self._keys.values(), key=lambda k: (k.created_at, k.key_id))

    def authenticate(self, secret: str | None, scopes: Iterable[str]) -> ApiKey:
        """The live key behind `secret` if its scope is one of `scopes`; Unauthorized otherwise."""
        if not secret:
            raise Unauthorized(
                "a key is required", "send it as HTTP Basic username, a Bearer token or writeKey"
            )
        digest = hash_key(secret)
        with self._keys_lock:
            match = next((k for h, k in self._keys.items() if hmac.compare_digest(h, digest)), None)
        if match is None or match.revoked_at is not None:
            raise Unauthorized(
                "unknown or revoked key", "check the key, or create one with `landed keys create`"
            )
        if match.scope not in scopes:
            raise Forbidden(
                f"a {match.scope} key cannot do this",
                f"this needs a key with scope {' or '.join(scopes)}",
            )
        return match

    def authenticate_id(self, key_id: str, scopes: Iterable[str]) -> ApiKey:
        """The live key with id `key_id` (a signed session holds the id, never the secret),
        held to the same rules as `authenticate`: a key revoked since sign-in is refused."""
        with self._keys_lock:
            match = next((k for k in self._keys.values() if k.key_id == key_id), None)
        if match is None or match.revoked_at is not None:
            raise Unauthorized("the session's key is unknown or revoked", "sign in again")
        if match.scope not in scopes:
            raise Forbidden(
                f"a {match.scope} key cannot do this", f"this needs a key with scope {' or '.join(scopes)}"
            )
        return match

    # -- service -----------------------------------------------------------------------------

    def service_secret(self, name: str) -> str:
        """A random secret the service keeps in its database (the key that signs sessions), made
        on first use so it survives restarts. Backups leave it out: a restored copy makes its own."""
        candidate = secrets.token_urlsafe(32)

        def run(conn: duckdb.DuckDBPyConnection) -> str:
            params = {"name": name, "value": candidate, "created_at": now_utc()}
            conn.execute(query("insert_service_secret"), params)
            row = conn.execute(query("select_service_secret"), {"name": name}).fetchone()
            assert row is not None
            return str(row[0])

        return self.writer.submit(run).result()

    def check_ready(self, timeout: float) -> None:
        """Raises StorageUnavailable unless a read answers and the writer commits an empty
        transaction within `timeout` seconds: what a load balancer's readiness check asks."""
        try:
            self.cursor().execute(query("select_ready")).fetchall()
        except duckdb.Error as error:
            self.check_connection()
            raise StorageUnavailable("storage does not answer reads", str(error)) from error
        try:
            self.writer.submit(lambda conn: None).result(timeout=timeout)
        except TimeoutError:
            raise StorageUnavailable(
                "the writer is busy", f"an empty write waited more than {timeout:g} s in its queue"
            ) from None
        except StorageUnavailable:
            raise
        except Exception as error:
            raise StorageUnavailable("storage does not accept writes", str(error)) from error

    # -- launches ----------------------------------------------------------------------------

    def launch_keys(self) -> list[str]:
        return [r[0] for r in self.cursor().execute(query("select_launch_keys")).fetchall()]

    def launch_versions(self, launch_key: str) -> list[tuple[int, str, datetime, str]]:
        """(version, spec JSON, recorded_at, recorded_by) of every version, oldest first."""
        rows = self.cursor().execute(query("select_launch_versions"), {"launch_key": launch_key})
        return [(int(v), s, at, by) for v, s, at, by in rows.fetchall()]

    def kpi_amendments(
        self, launch_key: str
    ) -> list[tuple[int, str, str, str | None, str | None, datetime, str, str]]:
        rows = self.cursor().execute(query("select_kpi_amendments"), {"launch_key": launch_key})
        return [tuple(r) for r in rows.fetchall()]

    def write_launch(
        self,
        launch_key: str,
        *,
        expected_version: int,
        spec_json: str | None,
        recorded_at: datetime,
        recorded_by: str,
        amendments: Sequence[dict[str, Any]] = (),
        delete: bool = False,
    ) -> None:
        """One atomic change to a launch: a new version, amendments, or deletion. Fails with
        a Conflict-worthy StaleLaunch if another change landed since `expected_version` was read."""

        def run(conn: duckdb.DuckDBPyConnection) -> None:
            rows = conn.execute(query("select_launch_versions"), {"launch_key": launch_key}).fetchall()
            current = int(rows[-1][0]) if rows else 0
            if current != expected_version:
                raise StaleLaunch(launch_key)
            if delete:
                conn.execute(query("delete_launch_versions"), {"launch_key": launch_key})
                return
            if spec_json is not None:
                conn.execute(
                    query("insert_launch_version"),
                    {
                        "launch_key": launch_key,
                        "version": current + 1,
                        "spec": spec_json,
                        "recorded_at": recorded_at,
                        "recorded_by": recorded_by,
                    },
                )
            for row in amendments:
                conn.execute(query("insert_kpi_amendment"), {"launch_key": launch_key, **row})

        self.writer.submit(run).result()

    # -- report inputs -----------------------------------------------------------------------

    def launch_activity(
        self, start: datetime, launched_at: datetime, end: datetime, *, days: int, identified_only: bool
    ) -> pa.Table:
        """One row per canonical user with an event in [start, end): is_identified, the first
        event at or after launched_at, the last one before it, and the window's `days` UTC days
        as a string of '0'/'1' (see the query's header)."""
        return self._arrow(
            "select_launch_activity",
            {
                "start": start,
                "launched": launched_at,
                "end": end,
                "days": max(1, days),
                "identified_only": identified_only,
            },
        )

    def launch_signals(
        self,
        start: datetime,
        end: datetime,
        *,
        event_names: list[str],
        any_types: list[str],
        property_names: list[str],
        channel_property: str,
        identified_only: bool = False,
    ) -> pa.Table:
        """Candidate signal events in [start, end) with the property values matchers test;
        with `identified_only`, only those of users known by a userId."""
        return self._arrow(
            "select_launch_signals",
            {
                "start": start,
                "end": end,
                "event_names": event_names,
                "any_types": any_types,
                "pointers": [json_pointer(p) for p in property_names],
                "channel_pointer": json_pointer(channel_property),
                "identified_only": identified_only,
            },
        )

    def launch_traits(self, end: datetime, trait_names: list[str]) -> pa.Table:
        """Every value of the named traits seen before `end`, per canonical user."""
        return self._arrow(
            "select_launch_traits",
            {
                "end": end,
                "trait_names": trait_names,
                "trait_pointers": [json_pointer(t) for t in trait_names],
            },
        )

    def event_names(self, end: datetime) -> list[str]:
        """Distinct event (and page/screen) names seen before `end`."""
        return [r[0] for r in self.cursor().execute(query("select_event_names"), {"end": end}).fetchall()]

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


class StaleLaunch(Exception):
    """Another change to the launch committed between reading and writing it."""


def json_pointer(name: str) -> str:
    """A top-level property name as an RFC 6901 JSON pointer, so names with '/', '~', dots or
    quotes address exactly that property (they are bound as parameters, never spliced)."""
    return "/" + name.replace("~", "~0").replace("/", "~1")
