"""What the rest of the service may ask of storage: the `EventStore` and `MetaStore` protocols,
the values they hand back, and the key scopes.

Nothing here names a database: the protocols take and return plain types, pyarrow tables and
the dataclasses below, so the app reads like a client of two small services, and a store kept
elsewhere than DuckDB would only have to offer these methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, get_args

import pyarrow as pa

from app.ingest import ParsedBatch, Rejected
from pipelines.plan import ReportPlan

Scope = Literal["write", "read", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
# Who may do what: sending events needs a write key; reading reports a read or admin key.
WRITE_SCOPES: tuple[Scope, ...] = ("write",)
READ_SCOPES: tuple[Scope, ...] = ("read", "admin")
ADMIN_SCOPES: tuple[Scope, ...] = ("admin",)


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
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None
    # Web origins a browser may send with this write key from; empty means any origin.
    origins: tuple[str, ...] = ()


class LaunchVersion(NamedTuple):
    """One recorded version of a launch's spec."""

    version: int
    spec: str  # the LaunchSpec as JSON
    recorded_at: datetime
    recorded_by: str
    source: str | None = None  # 'git' (spec files), 'editor' (the browser), None (the API)


class KpiAmendment(NamedTuple):
    """One changed field of one KPI; old and new values are JSON text (None: not set)."""

    amendment_id: int
    kpi_id: str
    field: str
    old_value: str | None
    new_value: str | None
    amended_at: datetime
    amended_by: str
    reason: str


class StaleLaunch(Exception):
    """Another change to the launch committed between reading and writing it."""


class EventStore(Protocol):
    """Where events go, and where reports read them from as Arrow tables.

    Every method raises app.errors.StorageUnavailable (503, retry later) when the backend fails,
    never a backend's own error."""

    @property
    def data_version(self) -> int:
        """Changes whenever new events are stored (for invalidating cached reports)."""
        ...

    # Told (events, seconds) after every group commit, to feed metrics; None: nobody listens.
    on_commit: Callable[[int, float], None] | None

    def write_events(self, source: str, batch: ParsedBatch, received_at: datetime) -> Future[WriteResult]:
        """Queues one request's events; the future resolves once they are committed."""
        ...

    def decide_import_rows(
        self, raw: pa.Table, *, source: str, received_at: datetime, max_event_bytes: int
    ) -> pa.Table:
        """An import chunk's Segment-shaped columns as event rows, set-based: every column of
        EVENTS_SCHEMA, then row_no and is_simple (false: the importer must parse that row)."""
        ...

    def import_events(
        self, rows: pa.Table, rejected: Sequence[Rejected], *, source: str, received_at: datetime
    ) -> Future[WriteResult]:
        """Stores an import chunk's accepted rows (with row_no, duplicates included) and its
        refusals in one write: the first of each event not yet stored, the earliest links."""
        ...

    def count_events(self) -> int: ...

    def queue_depth(self) -> int:
        """Writes waiting for the writer (approximate)."""
        ...

    def check_ready(self, timeout: float) -> None:
        """StorageUnavailable unless reads answer and a write commits within `timeout` s."""
        ...

    def launch_activity(self, plan: ReportPlan) -> pa.Table:
        """One row per canonical user active in the plan's span (pipelines.report.ReportInputs)."""
        ...

    def launch_signals(self, plan: ReportPlan) -> pa.Table:
        """The plan's candidate signal events, with its properties' values in its order."""
        ...

    def launch_traits(self, plan: ReportPlan) -> pa.Table:
        """Every value of the plan's traits seen before its span's end, per canonical user."""
        ...

    def event_names(self, start: datetime, end: datetime) -> list[str]: ...

    def trait_keys(self) -> list[str]: ...

    def event_properties(
        self, event: str, start: datetime, end: datetime
    ) -> list[tuple[str, str | None, int]]:
        """(property, value, events) of events named `event` in [start, end), most common first."""
        ...

    def trait_values(self, trait: str) -> list[tuple[str, int]]:
        """(value, users) of one trait, most common first."""
        ...

    def export_tables(self, files: Mapping[str, Path]) -> dict[str, int]:
        """Writes each named table to its Parquet file, all from one consistent snapshot taken
        beside the writer; the row counts."""
        ...

    def import_tables(self, files: Mapping[str, Path], expected_rows: Mapping[str, int]) -> dict[str, int]:
        """Loads each named table from its Parquet file into an empty database, all or nothing,
        checking its row count against `expected_rows`; the row counts."""
        ...


class MetaStore(Protocol):
    """Keys, launch versions with their KPI amendments, and the service's own secrets."""

    def create_key(self, name: str, scope: Scope, *, origins: Sequence[str] = ()) -> tuple[ApiKey, str]:
        """A new key and its secret, which is not stored and cannot be shown again."""
        ...

    def revoke_key(self, key: str) -> list[str]:
        """Revokes the live keys with this id or name; their ids (NotFound if none)."""
        ...

    def list_keys(self) -> list[ApiKey]: ...

    def reload_keys(self) -> None:
        """Re-reads the keys (after a restore)."""
        ...

    def authenticate(self, secret: str | None, scopes: Iterable[Scope]) -> ApiKey:
        """The live key behind `secret` if its scope is one of `scopes`."""
        ...

    def authenticate_id(self, key_id: str, scopes: Iterable[Scope]) -> ApiKey:
        """The live key with id `key_id` (a signed session holds the id, never the secret)."""
        ...

    def service_secret(self, name: str) -> str:
        """A random secret kept in the store, made on first use."""
        ...

    def launch_keys(self) -> list[str]: ...

    def launch_versions(self, launch_key: str) -> list[LaunchVersion]:
        """Every version, oldest first."""
        ...

    def kpi_amendments(self, launch_key: str) -> list[KpiAmendment]:
        """Every amendment, in the order made."""
        ...

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
        """One atomic change to a launch: a new version, amendments, or deletion; StaleLaunch
        if another change landed since `expected_version` was read. A new version records
        `source`; without one, a `source` marks the current version."""
        ...

    # -- deliveries, alerts and decisions (app/delivery.py, app/alerts.py, app/decisions.py) --

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
        """Claims the delivery of `subject` on `channel` before it is sent: the attempt number,
        or None when it is taken (sent, being sent, or claimed by another process). With
        `retry`, also a failed one that is due (any failed one with `force`) and one whose
        sender's lease ran out."""
        ...

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
        """How the claimed attempt went: sent (error None) or failed, retried at `next_attempt_at`."""
        ...

    def deliveries(self) -> list[Delivery]:
        """Every delivery, newest first."""
        ...

    def due_deliveries(self, now: datetime) -> list[tuple[str, str]]:
        """(subject, channel) of the failed deliveries due for a retry, and of lapsed sends."""
        ...

    def alerts(self, launch_key: str | None = None) -> list[AlertRecord]:
        """Alerts, newest first, of one launch or of all."""
        ...

    def launch_evaluations(self) -> dict[str, str]:
        """Each launch's verdicts (JSON text) at its latest alert evaluation."""
        ...

    def record_alert_evaluation(
        self,
        *,
        cleared: Sequence[AlertChange],
        raised: Sequence[AlertChange],
        evaluations: Sequence[LaunchEvaluation],
        now: datetime,
    ) -> list[AlertRecord]:
        """In one transaction: clears the open alerts `cleared` names, raises `raised` (each
        unless one of its launch, kind and subject is still open), keeps the evaluated
        verdicts; the alerts actually raised."""
        ...

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
        """Records a decision (evidence as JSON text) after the launch's others; its id."""
        ...

    def decisions(self, launch_key: str | None = None) -> list[DecisionRecord]:
        """Decisions, oldest first, of one launch or of all."""
        ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """One subject ('review:2026-W47', 'alert:...') on one channel ('email', 'webhook').
    status: sending, sent or failed; a failed one with no next_attempt_at is no longer retried."""

    subject: str
    channel: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as stored: raised when its condition started to hold, cleared when it stopped."""

    launch_key: str
    kind: str
    subject: str
    occurrence: int
    state: str
    message: str
    raised_at: datetime
    as_of: datetime
    cleared_at: datetime | None
    cleared_message: str | None


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert to raise (with its state, message and as_of) or to clear (with why)."""

    launch_key: str
    kind: str
    subject: str
    state: str = ""
    message: str = ""
    as_of: datetime | None = None


class LaunchEvaluation(NamedTuple):
    launch_key: str
    verdicts: str  # JSON text
    as_of: datetime


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A decision as stored; evidence is JSON text."""

    launch_key: str
    decision_id: int
    decision: str
    reason: str
    decided_by: str
    follow_up: str | None
    decided_at: datetime
    evidence: str
