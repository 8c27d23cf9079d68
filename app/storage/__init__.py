"""Storage: the service's one database, reached through `Storage`, which offers the `EventStore`
and `MetaStore` protocols (app/storage/interfaces.py) and nothing of the database behind them.

The package, by module:
- interfaces: the two protocols, the values they return, and the key scopes;
- executor: the single writer thread and its group commit, knowing nothing of DuckDB;
- arrow_tables: the Arrow schemas of what the writer stores;
- keys: making, hashing and authenticating API keys, in memory;
- duckdb_database: the DuckDB file, its connection and recovery, its schema, its writer;
- duckdb_events, duckdb_meta: the two stores on DuckDB.
Only the duckdb_* modules import DuckDB. The rest of the app imports this package only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from app.ingest import ParsedBatch, Rejected
from app.queries import Engine
from app.settings import Settings
from app.storage.arrow_tables import rows_table
from app.storage.clickhouse_database import ClickHouseDatabase, parse_clickhouse_url
from app.storage.duckdb_database import Connection, DuckDBDatabase
from app.storage.duckdb_events import DuckDBEventStore, IngestRequest, json_pointer, write_ingest_group
from app.storage.duckdb_meta import DuckDBMetaStore
from app.storage.executor import SingleWriter
from app.storage.interfaces import (
    ADMIN_SCOPES,
    READ_SCOPES,
    SCOPES,
    WRITE_SCOPES,
    AlertChange,
    AlertRecord,
    ApiKey,
    DecisionRecord,
    Delivery,
    EventStore,
    KpiAmendment,
    LaunchEvaluation,
    LaunchVersion,
    MetaStore,
    Scope,
    StaleLaunch,
    WriteResult,
)
from app.storage.keys import hash_key
from pipelines.plan import ReportPlan

__all__ = [
    "ADMIN_SCOPES",
    "READ_SCOPES",
    "SCOPES",
    "WRITE_SCOPES",
    "AlertChange",
    "AlertRecord",
    "ApiKey",
    "DecisionRecord",
    "Delivery",
    "EventStore",
    "IngestRequest",
    "KpiAmendment",
    "LaunchEvaluation",
    "LaunchVersion",
    "MetaStore",
    "Scope",
    "StaleLaunch",
    "Storage",
    "WriteResult",
    "hash_key",
    "json_pointer",
    "parse_clickhouse_url",
    "rows_table",
    "write_ingest_group",
]


class Storage(EventStore, MetaStore):
    """The database of one service: the event store and the metadata store on one database,
    sharing its single writer: a DuckDB file (the default) or a ClickHouse database
    (`clickhouse_url`). Callers use the protocols' methods; the few others here are for opening
    and closing it, fault drills, tests and benchmarks."""

    def __init__(
        self,
        db_path: str | None = None,
        *,
        clickhouse_url: str | None = None,
        max_events_per_commit: int = 50_000,
        checkpoint_mib: int = 256,
        clickhouse_insert_quorum: int = 0,
    ) -> None:
        self.database: DuckDBDatabase | ClickHouseDatabase
        if clickhouse_url is not None:
            from app.storage.clickhouse_events import ClickHouseEventStore
            from app.storage.clickhouse_meta import ClickHouseMetaStore

            quorum = {"insert_quorum": clickhouse_insert_quorum} if clickhouse_insert_quorum else {}
            self.database = ClickHouseDatabase(
                clickhouse_url, max_events_per_commit=max_events_per_commit, insert_settings=quorum
            )
            self.backend: Engine = "clickhouse"
            self.events: EventStore = ClickHouseEventStore(self.database)
            self.meta: MetaStore = ClickHouseMetaStore(self.database)
            return
        if db_path is None:
            raise ValueError("Storage needs a DuckDB db_path or a clickhouse_url")
        self.database = DuckDBDatabase(
            db_path, max_events_per_commit=max_events_per_commit, checkpoint_mib=checkpoint_mib
        )
        self.backend = "duckdb"
        # Typed as the protocols, so the façade can only pass their methods on.
        self.events = DuckDBEventStore(self.database)
        self.meta = DuckDBMetaStore(self.database)

    @classmethod
    def open(cls, settings: Settings) -> Storage:
        """The storage `settings` describe."""
        if settings.storage == "clickhouse":
            assert settings.clickhouse_url is not None  # Settings refuses clickhouse without a URL
            return cls(
                clickhouse_url=settings.clickhouse_url.get_secret_value(),
                max_events_per_commit=settings.commit_max_events,
                clickhouse_insert_quorum=settings.clickhouse_insert_quorum,
            )
        return cls(
            settings.db_path,
            max_events_per_commit=settings.commit_max_events,
            checkpoint_mib=settings.checkpoint_mib,
        )

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Commits what is queued, then closes the database."""
        self.database.close()

    @property
    def db_path(self) -> str:
        """The DuckDB file, or the ClickHouse database (its URL without the password)."""
        return self.database.db_path

    def inject_write_fault(self, error: Exception | None) -> None:
        """Fault drills and tests: make every write fail with `error` until called with None."""
        self.database.fault = error

    def check_connection(self) -> None:
        """Reopens the database on next use if the connection no longer answers."""
        self.database.check_connection()

    # -- for tests and benchmarks only: they inspect the database or time its parts ---------

    @property
    def writer(self) -> SingleWriter[Any]:
        """The writer thread; a job submitted to it gets the connection (DuckDB: in a
        transaction) or the ClickHouse client."""
        return self.database.writer

    def connection(self) -> Connection:
        """The writer's DuckDB connection."""
        return self._duckdb().connection()

    def cursor(self) -> Connection:
        """A DuckDB cursor for reads, separate from the writer's connection."""
        return self._duckdb().cursor()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Tests: the rows of a plain `select` both engines understand (`?` placeholders), as
        the stores would read them: on ClickHouse with FINAL applied to every table."""
        if isinstance(self.database, DuckDBDatabase):
            return [tuple(row) for row in self.database.cursor().execute(sql, list(params)).fetchall()]
        client = self.database.client()
        text = sql.replace("?", "%s")
        result = client.query(text, parameters=list(params) or None, settings={"final": 1})
        return [tuple(row) for row in result.result_rows]

    def _duckdb(self) -> DuckDBDatabase:
        if not isinstance(self.database, DuckDBDatabase):
            raise TypeError(f"the {self.backend} backend has no DuckDB connection; use Storage.rows")
        return self.database

    # -- EventStore --------------------------------------------------------------------------

    @property
    def data_version(self) -> int:
        """Changes whenever new events are stored (for invalidating cached reports)."""
        return self.events.data_version

    @property
    def on_commit(self) -> Callable[[int, float], None] | None:
        """Told (events, seconds) after every group commit."""
        return self.events.on_commit

    @on_commit.setter
    def on_commit(self, callback: Callable[[int, float], None] | None) -> None:
        self.events.on_commit = callback

    def write_events(self, source: str, batch: ParsedBatch, received_at: datetime) -> Future[WriteResult]:
        """Queues one request's events for the next group commit."""
        return self.events.write_events(source, batch, received_at)

    def decide_import_rows(
        self, raw: pa.Table, *, source: str, received_at: datetime, max_event_bytes: int
    ) -> pa.Table:
        return self.events.decide_import_rows(
            raw, source=source, received_at=received_at, max_event_bytes=max_event_bytes
        )

    def import_events(
        self, rows: pa.Table, rejected: Sequence[Rejected], *, source: str, received_at: datetime
    ) -> Future[WriteResult]:
        return self.events.import_events(rows, rejected, source=source, received_at=received_at)

    def count_events(self) -> int:
        return self.events.count_events()

    def queue_depth(self) -> int:
        return self.events.queue_depth()

    def check_ready(self, timeout: float) -> None:
        self.events.check_ready(timeout)

    def export_tables(self, files: Mapping[str, Path]) -> dict[str, int]:
        return self.events.export_tables(files)

    def import_tables(self, files: Mapping[str, Path], expected_rows: Mapping[str, int]) -> dict[str, int]:
        return self.events.import_tables(files, expected_rows)

    def launch_activity(self, plan: ReportPlan) -> pa.Table:
        return self.events.launch_activity(plan)

    def launch_signals(self, plan: ReportPlan) -> pa.Table:
        return self.events.launch_signals(plan)

    def launch_traits(self, plan: ReportPlan) -> pa.Table:
        return self.events.launch_traits(plan)

    def event_names(self, start: datetime, end: datetime) -> list[str]:
        return self.events.event_names(start, end)

    def trait_keys(self) -> list[str]:
        return self.events.trait_keys()

    def event_properties(
        self, event: str, start: datetime, end: datetime
    ) -> list[tuple[str, str | None, int]]:
        return self.events.event_properties(event, start, end)

    def trait_values(self, trait: str) -> list[tuple[str, int]]:
        return self.events.trait_values(trait)

    # -- MetaStore ---------------------------------------------------------------------------

    def create_key(self, name: str, scope: Scope, *, origins: Sequence[str] = ()) -> tuple[ApiKey, str]:
        return self.meta.create_key(name, scope, origins=origins)

    def revoke_key(self, key: str) -> list[str]:
        return self.meta.revoke_key(key)

    def list_keys(self) -> list[ApiKey]:
        return self.meta.list_keys()

    def reload_keys(self) -> None:
        self.meta.reload_keys()

    def authenticate(self, secret: str | None, scopes: Iterable[Scope]) -> ApiKey:
        return self.meta.authenticate(secret, scopes)

    def authenticate_id(self, key_id: str, scopes: Iterable[Scope]) -> ApiKey:
        return self.meta.authenticate_id(key_id, scopes)

    def service_secret(self, name: str) -> str:
        return self.meta.service_secret(name)

    def launch_keys(self) -> list[str]:
        return self.meta.launch_keys()

    def launch_versions(self, launch_key: str) -> list[LaunchVersion]:
        return self.meta.launch_versions(launch_key)

    def kpi_amendments(self, launch_key: str) -> list[KpiAmendment]:
        return self.meta.kpi_amendments(launch_key)

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
        source: str | None = None,
    ) -> None:
        self.meta.write_launch(
            launch_key,
            expected_version=expected_version,
            spec_json=spec_json,
            recorded_at=recorded_at,
            recorded_by=recorded_by,
            amendments=amendments,
            delete=delete,
            source=source,
        )

    # -- deliveries, alerts and decisions ----------------------------------------------------

    def claim_delivery(
        self,
        subject: str,
        channel: str,
        *,
        claimed_by: str,
        now: datetime,
        lease_until: datetime,
        retry: bool = False,
        force: bool = False,
    ) -> int | None:
        return self.meta.claim_delivery(
            subject,
            channel,
            claimed_by=claimed_by,
            now=now,
            lease_until=lease_until,
            retry=retry,
            force=force,
        )

    def record_delivery_result(
        self,
        subject: str,
        channel: str,
        *,
        claimed_by: str,
        now: datetime,
        error: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        self.meta.record_delivery_result(
            subject, channel, claimed_by=claimed_by, now=now, error=error, next_attempt_at=next_attempt_at
        )

    def deliveries(self) -> list[Delivery]:
        return self.meta.deliveries()

    def due_deliveries(self, now: datetime) -> list[tuple[str, str]]:
        return self.meta.due_deliveries(now)

    def alerts(self, launch_key: str | None = None) -> list[AlertRecord]:
        return self.meta.alerts(launch_key)

    def launch_evaluations(self) -> dict[str, str]:
        return self.meta.launch_evaluations()

    def record_alert_evaluation(
        self,
        *,
        cleared: Sequence[AlertChange],
        raised: Sequence[AlertChange],
        evaluations: Sequence[LaunchEvaluation],
        now: datetime,
    ) -> list[AlertRecord]:
        return self.meta.record_alert_evaluation(
            cleared=cleared, raised=raised, evaluations=evaluations, now=now
        )

    def record_decision(
        self,
        launch_key: str,
        *,
        decision: str,
        reason: str,
        decided_by: str,
        follow_up: str | None,
        decided_at: datetime,
        evidence: str,
    ) -> int:
        return self.meta.record_decision(
            launch_key,
            decision=decision,
            reason=reason,
            decided_by=decided_by,
            follow_up=follow_up,
            decided_at=decided_at,
            evidence=evidence,
        )

    def decisions(self, launch_key: str | None = None) -> list[DecisionRecord]:
        return self.meta.decisions(launch_key)
