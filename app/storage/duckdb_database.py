"""One DuckDB database file as both stores share it: the connection (opened again after a fault),
the schema, read cursors, the single writer every change goes through, and the one place a
DuckDB error becomes StorageUnavailable.

DuckDB allows one writing process, and its cost is per transaction more than per row, so every
write runs on one `SingleWriter` thread; reads use cursors of their own beside it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

import duckdb

from app.errors import StorageUnavailable
from app.queries import schema_statements
from app.storage.executor import SingleWriter

T = TypeVar("T")
P = ParamSpec("P")

UNAVAILABLE = "storage is unavailable; retry later"
Connection = duckdb.DuckDBPyConnection  # for the façade's test accessors, which name no DuckDB module


class DuckDBDatabase:
    """The database at `db_path`, with its writer thread."""

    def __init__(self, db_path: str, *, max_events_per_commit: int, checkpoint_mib: int) -> None:
        self.db_path = db_path
        # DuckDB checkpoints inside the commit that crosses this WAL size, pausing every write;
        # its default (16 MB) meant a pause of up to a second every ~25,000 events, and fewer,
        # larger checkpoints cost less in all (measured: `make bench`, ingest).
        self._config: dict[str, str | bool | int | float | list[str]] = {
            "checkpoint_threshold": f"{checkpoint_mib}MiB"
        }
        self._conn_lock = threading.Lock()
        self._closed = False
        self._conn: duckdb.DuckDBPyConnection | None = self._connect()
        self._apply_schema()
        # Fault drills and tests: while set, every write fails with this error, as storage would.
        self.fault: Exception | None = None
        self.writer: SingleWriter[duckdb.DuckDBPyConnection] = SingleWriter(
            self._in_transaction, max_group_size=max_events_per_commit, name="landed-writer"
        )

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(self.db_path, config=self._config)
        except duckdb.Error as error:
            raise StorageUnavailable(
                f"cannot open the database {self.db_path}",
                f"{error}. Is another Landed process (a running service) using it?",
            ) from error

    def _apply_schema(self) -> None:
        # Every schema file is an idempotent `create ... if not exists`, so opening an existing
        # database applies only what it lacks.
        conn = self.connection()
        conn.begin()
        for _, statement in schema_statements():
            conn.execute(statement)
        conn.commit()

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The live connection, opening the database again if a fault closed it; raises
        StorageUnavailable (503 with Retry-After) while it cannot be opened."""
        with self._conn_lock:
            if self._closed:
                # A thread still at work after close (a background refresh, say) must not
                # open the file again behind the owner's back.
                raise StorageUnavailable("the database is closed", "the service is shutting down")
            if self._conn is None:
                self._conn = self._connect()
            return self._conn

    def check_connection(self) -> None:
        """After a storage error: keep the connection if it still answers, else close it
        (DuckDB invalidates a database after some I/O failures) so the next use opens the file
        again, and the service recovers without a restart once the fault clears."""
        with self._conn_lock:
            if self._conn is None or self._closed or self.db_path == ":memory:":
                return
            try:
                self._conn.execute("select 1").fetchall()
                return
            except duckdb.Error:
                pass
            with contextlib.suppress(duckdb.Error):
                self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def unavailable_on_error(self, message: str = UNAVAILABLE) -> Iterator[None]:
        """Turns a DuckDB error inside into StorageUnavailable (503, retry later), after letting
        the connection be reopened if the error invalidated it."""
        try:
            yield
        except duckdb.Error as error:
            self.check_connection()
            raise StorageUnavailable(message, str(error)) from error

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for reads, separate from the writer's connection."""
        with self.unavailable_on_error():
            return self.connection().cursor()

    def raise_fault(self) -> None:
        """Raises the injected write fault, if any (called first by every write)."""
        if self.fault is not None:
            raise self.fault

    def write(self, job: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Runs `job` on the writer, in a transaction of its own, and returns its result."""
        return self.writer.submit(job).result()

    def _in_transaction(self, job: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        with self.unavailable_on_error():
            self.raise_fault()
            conn = self.connection()
            try:
                conn.begin()
                result = job(conn)
                conn.commit()
            except BaseException:
                # Before the connection is checked: an aborted transaction fails every statement.
                rollback_quietly(conn)
                raise
            return result

    def close(self) -> None:
        """Runs the writes already queued, then closes the database."""
        self.writer.close()
        with self._conn_lock:
            self._closed = True
            if self._conn is not None:
                _close_when_idle(self._conn)
                self._conn = None


def _close_when_idle(conn: duckdb.DuckDBPyConnection, *, seconds: float = 30) -> None:
    """Closes `conn`, waiting up to `seconds` for a call another thread is making on it to end
    (DuckDB refuses to close a busy connection rather than wait)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.close()
            return
        except duckdb.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def rollback_quietly(conn: duckdb.DuckDBPyConnection) -> None:
    """Rolls back, if there is anything to roll back and the connection still can."""
    with contextlib.suppress(duckdb.Error):
        conn.rollback()
