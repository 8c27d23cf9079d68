"""One ClickHouse database as both ClickHouse stores share it: the client (clickhouse-connect,
ClickHouse's official Python client, over HTTP to a server or cluster, or to chDB's engine in
this process), the schema, the single writer every change of this process goes through, and the
one place a ClickHouse error becomes StorageUnavailable.

`LANDED_CLICKHOUSE_URL` names the database:
- `clickhouse://user:password@host:8123/database` (`clickhouses://` for TLS) for a server;
- `chdb:///path/to/dir` or `chdb://memory` for the embedded engine (the database is `landed`
  unless `?database=name` says otherwise; chDB allows one engine path per process).

ClickHouse has no unique keys, no `ON CONFLICT` and no transactions one may rely on: every
table is append-only with versioned rows (ReplacingMergeTree), read with FINAL or resolved with
argMin/argMax, and the stores write each change as one insert (sql/clickhouse/).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa

from app.errors import StorageUnavailable
from app.queries import query, schema_statements
from app.storage.executor import SingleWriter

try:  # the optional extra: pip install 'landed[clickhouse]'
    import clickhouse_connect
    from clickhouse_connect.driver.client import Client
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError
except ImportError:  # pragma: no cover - exercised only without the extra
    clickhouse_connect = None  # type: ignore[assignment]
    Client = Any  # type: ignore[misc,assignment]
    ClickHouseError = Exception  # type: ignore[misc,assignment]

T = TypeVar("T")
P = ParamSpec("P")

UNAVAILABLE = "storage is unavailable; retry later"
DEFAULT_DATABASE = "landed"
_DATABASE_NAME = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"


@dataclass(frozen=True, slots=True)
class ClickHouseTarget:
    """Where a `LANDED_CLICKHOUSE_URL` points: a server (host, port, user, password, secure) or
    chDB (path: a directory, or ':memory:'), and the database."""

    database: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    username: str = "default"
    password: str = ""
    secure: bool = False

    @property
    def embedded(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        """The URL without its password, for messages and logs."""
        if self.embedded:
            return f"chdb://{self.path} (database {self.database})"
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{self.database}"


def parse_clickhouse_url(url: str) -> ClickHouseTarget:
    """The target of a `clickhouse://`, `clickhouses://` or `chdb://` URL; ValueError naming
    what is wrong."""
    parts = urlsplit(url)
    options = parse_qs(parts.query)
    database = options.get("database", [""])[0]
    if parts.scheme == "chdb":
        if parts.netloc in ("memory", ":memory:") and parts.path in ("", "/"):
            path = ":memory:"
        elif parts.netloc:
            raise ValueError("chdb URLs are chdb:///absolute/dir or chdb://memory")
        elif not parts.path or parts.path == "/":
            raise ValueError("a chdb URL needs a directory: chdb:///path/to/dir (or chdb://memory)")
        else:
            path = unquote(parts.path)
        return ClickHouseTarget(database=_database_name(database or DEFAULT_DATABASE), path=path)
    if parts.scheme not in ("clickhouse", "clickhouses"):
        raise ValueError(f"the URL must start with clickhouse://, clickhouses:// or chdb://, not {parts.scheme}://")
    if not parts.hostname:
        raise ValueError("a clickhouse URL needs a host: clickhouse://user:password@host:8123/database")
    secure = parts.scheme == "clickhouses"
    database = database or parts.path.strip("/") or DEFAULT_DATABASE
    return ClickHouseTarget(
        database=_database_name(database),
        host=parts.hostname,
        port=parts.port or (8443 if secure else 8123),
        username=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        secure=secure,
    )


def _database_name(name: str) -> str:
    if not name or any(c not in _DATABASE_NAME for c in name):
        raise ValueError(f"database name {name!r}: use letters, digits and underscores only")
    return name


class ClickHouseDatabase:
    """The database a ClickHouse URL names, with this process's writer thread.

    `insert_settings` go with every insert the stores make: `insert_quorum` on a replicated
    cluster (see docs/scale.md); the tables themselves carry `fsync_after_insert` and the
    deduplication window (sql/clickhouse/schema/)."""

    def __init__(
        self,
        url: str,
        *,
        max_events_per_commit: int = 50_000,
        insert_settings: dict[str, Any] | None = None,
    ) -> None:
        if clickhouse_connect is None:
            raise StorageUnavailable(
                "ClickHouse storage needs the clickhouse extra", "pip install 'landed[clickhouse]'"
            )
        self.url = url
        self.target = parse_clickhouse_url(url)
        self.insert_settings: dict[str, Any] = dict(insert_settings or {})
        self._lock = threading.Lock()
        self._closed = False
        self._client: Client | None = None
        self.fault: Exception | None = None
        with self.unavailable_on_error(f"cannot open ClickHouse at {self.target.describe()}"):
            self._create_database()
            self._apply_schema()
        self.writer: SingleWriter[Client] = SingleWriter(
            self._run_write, max_group_size=max_events_per_commit, name="landed-clickhouse-writer"
        )

    @property
    def db_path(self) -> str:
        """What the database is, for messages (the URL without its password)."""
        return self.target.describe()

    # -- the client ----------------------------------------------------------------------------

    def _connect(self, database: str) -> Client:
        assert clickhouse_connect is not None
        target = self.target
        if target.embedded:
            return clickhouse_connect.get_client(dsn=f"chdb://{target.path}", database=database)
        return clickhouse_connect.get_client(
            host=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            database=database,
            secure=target.secure,
            # No server session: the service's threads query at the same time, which one
            # session refuses.
            autogenerate_session_id=False,
        )

    def _create_database(self) -> None:
        bootstrap = self._connect("default")
        try:
            bootstrap.command(f"create database if not exists {self.target.database}")
            # Connected before the bootstrap client closes: an in-memory chDB engine ends with
            # its last client, and the database with it.
            self._client = self._connect(self.target.database)
        finally:
            bootstrap.close()

    def _apply_schema(self) -> None:
        # Every schema file is an idempotent `create ... if not exists`.
        client = self.client()
        for _, statement in schema_statements("clickhouse"):
            client.command(statement)

    def client(self) -> Client:
        """The client, connected again if a fault closed it."""
        with self._lock:
            if self._closed:
                raise StorageUnavailable("the database is closed", "the service is shutting down")
            if self._client is None:
                self._client = self._connect(self.target.database)
            return self._client

    def check_connection(self) -> None:
        """After a storage error: keep the client if the server still answers, else drop it so
        the next use connects again."""
        with self._lock:
            if self._client is None or self._closed or self.target.embedded:
                return
            try:
                self._client.query("select 1")
                return
            except ClickHouseError:
                pass
            with contextlib.suppress(ClickHouseError):
                self._client.close()
            self._client = None

    @contextlib.contextmanager
    def unavailable_on_error(self, message: str = UNAVAILABLE) -> Iterator[None]:
        """Turns a ClickHouse error inside into StorageUnavailable (503, retry later)."""
        try:
            yield
        except ClickHouseError as error:
            self.check_connection()
            raise StorageUnavailable(message, str(error).strip().splitlines()[0][:500]) from error

    # -- running statements ----------------------------------------------------------------------

    def arrow(self, name: str, params: dict[str, Any] | None = None) -> pa.Table:
        """The result of `sql/clickhouse/queries/<name>.sql` as an Arrow table, with
        timestamps as naive UTC (as the DuckDB store returns them)."""
        table = self.client().query_arrow(query(name, "clickhouse"), parameters=params or {})
        return naive_utc(table)

    def rows(self, name: str, params: dict[str, Any] | None = None) -> Sequence[Sequence[Any]]:
        """The rows of `sql/clickhouse/queries/<name>.sql` (timestamps naive UTC)."""
        return self.client().query(query(name, "clickhouse"), parameters=params or {}).result_rows

    def command(self, name: str, params: dict[str, Any] | None = None) -> None:
        self.client().command(query(name, "clickhouse"), parameters=params or {})

    def insert_arrow(self, table_name: str, rows: pa.Table, *, token: str | None = None) -> None:
        """Inserts `rows` (columns by name) into `table_name`; with `token`, an insert retried
        with the same token is stored once (insert_deduplication_token)."""
        if rows.num_rows == 0:
            return
        settings = dict(self.insert_settings)
        if token is not None:
            settings["insert_deduplication_token"] = token
        self.client().insert_arrow(table_name, rows, settings=settings)

    # -- the writer ------------------------------------------------------------------------------

    def raise_fault(self) -> None:
        """Raises the injected write fault, if any (called first by every write)."""
        if self.fault is not None:
            raise self.fault

    def write(self, job: Callable[[Client], T]) -> T:
        """Runs `job` on the writer and returns its result."""
        return self.writer.submit(job).result()

    def _run_write(self, job: Callable[[Client], T]) -> T:
        # No transaction: each job's changes are inserts that are correct if retried.
        with self.unavailable_on_error():
            self.raise_fault()
            return job(self.client())

    def close(self) -> None:
        """Runs the writes already queued, then closes the client."""
        self.writer.close()
        with self._lock:
            self._closed = True
            if self._client is not None:
                with contextlib.suppress(ClickHouseError):
                    self._client.close()
                self._client = None

    def drop_database(self) -> None:
        """Tests: removes the whole database (after close)."""
        bootstrap = self._connect("default")
        try:
            bootstrap.command(f"drop database if exists {self.target.database} sync")
        finally:
            bootstrap.close()


def naive_utc(table: pa.Table) -> pa.Table:
    """`table` with every time-zoned timestamp column as naive UTC, the DuckDB store's type."""
    fields = []
    changed = False
    for field in table.schema:
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            fields.append(field.with_type(pa.timestamp(field.type.unit)))
            changed = True
        else:
            fields.append(field)
    if not changed:
        return table
    columns = [
        column.cast(target.type) if column.type != target.type else column
        for column, target in zip(table.columns, fields, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))
