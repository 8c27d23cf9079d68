"""The ClickHouse metadata store: API keys, launch versions with their KPI amendments,
deliveries, alerts, decisions and the service's secrets, as versioned rows, with the behaviour
of the DuckDB store (app/storage/duckdb_meta.py) for several Landed processes on one database.

ClickHouse has no unique key, `ON CONFLICT`, `RETURNING`, `UPDATE` or transaction one may rely
on, so every table here is append-only (sql/clickhouse/schema/004 onwards) and read resolved:
a change is a new row, and the queries pick the row that stands. Where DuckDB relied on a
primary key to let one of two writers win (a launch's next version, a delivery's claim, an
alert's occurrence, a decision's number, a service secret), the writer here inserts a *claim*
for that slot, a row carrying a fresh random token, and reads back which claim won: the first
inserted. It acts only if the token read back is its own; otherwise it lost (StaleLaunch for a
launch, None for a delivery, not raised for an alert, the next number for a decision, the
winner's value for a secret).

How "the first inserted" is decided, by the database and not by this process:
- every claim is inserted with an `insert_deduplication_token` naming its slot (table, key,
  number). The server stores the first insert of a token and drops any later one while the
  token is in the table's deduplication window (`non_replicated_deduplication_window` = 1000
  inserts on one node; `replicated_deduplication_window` on a replicated table, kept in
  Keeper): two racing claims leave one row, whichever reached the server first;
- past that window (a claimant that stalled for 1000 inserts) a second row of a slot may be
  stored; readers then take the row with the smallest `_block_number`, which the tables keep
  through merges (`enable_block_number_column`). On one node the block number is allocated
  and the part made visible under one lock, so the rows a reader sees are always a prefix in
  block order: once a claimant sees its row first, no row seen later can come before it. The
  decision never changes after it is read.

The read-after-insert race: on one node an insert is visible to every reader once it returns,
and a dropped duplicate returns only after the row it duplicates is visible, so the read-back
after an insert always sees the winner. On a replicated cluster the read may reach a replica
that has not fetched the winning part yet: the read-back then waits for a claim to appear
(`CLAIM_VISIBLE_SECONDS`), and with `insert_quorum` configured (LANDED_CLICKHOUSE_INSERT_QUORUM)
it reads with `select_sequential_consistency = 1`, so a replica that lacks a quorum-written
part refuses rather than answers. What a cluster guarantees: deduplication of a token through
Keeper is linearizable, so two replicas never both keep a claim of one slot within the window;
block numbers, though, are allocated in Keeper before a part is committed, so past the window
the "smallest block number" rule is deterministic on every replica but is no longer the
order inserts became visible. Configure `insert_quorum` (a majority) with
`insert_quorum_parallel = 0` on a cluster (docs/scale.md), or keep the metadata tables on one
replicated shard written through one replica.

A launch change writes its rows first (launch_versions, kpi_amendments, tagged with the change
number `seq` and its claim token) and then claims the number in launch_claims: the claim is the
change's commit record. Rows of a lost claim, or of a process that died before claiming, are
never read, so a change is all or nothing without a transaction, and amendments are recorded
with the version that wins only. The number claimed is one past the last one claimed when the
change read the launch; a change that landed meanwhile took that number, so the late one loses.

Keys are held in a `KeyRing` as in the DuckDB store, so authenticating queries nothing; another
process's keys appear when an unknown key is presented (a reload at most once a second) and
every `KEY_REFRESH_SECONDS` (which also brings revocations made elsewhere).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from app.errors import NotFound, StorageUnavailable, Unauthorized
from app.ingest import now_utc
from app.queries import query
from app.storage.clickhouse_database import ClickHouseDatabase
from app.storage.interfaces import (
    AlertChange,
    AlertRecord,
    ApiKey,
    DecisionRecord,
    Delivery,
    KpiAmendment,
    LaunchEvaluation,
    LaunchVersion,
    MetaStore,
    Scope,
    StaleLaunch,
)
from app.storage.keys import KeyRing, hash_key, new_key
from app.storage.translate import translates_errors

logger = logging.getLogger(__name__)

# Keys created or revoked by another process are seen within this many seconds.
KEY_REFRESH_SECONDS = 5.0
# An unknown key makes the ring be read again, at most this often.
UNKNOWN_KEY_RELOAD_SECONDS = 1.0
# How long a read-back waits for the winning claim to reach the replica it reads.
CLAIM_VISIBLE_SECONDS = 5.0
# Decision numbers tried before giving up when other processes keep taking them first.
DECISION_ATTEMPTS = 100

_TIME = pa.timestamp("us")
API_KEYS_SCHEMA = pa.schema(
    [
        ("key_id", pa.string()),
        ("name", pa.string()),
        ("scope", pa.string()),
        ("key_hash", pa.string()),
        ("created_at", _TIME),
        ("revoked_at", _TIME),
        ("origins", pa.list_(pa.string())),
    ]
)
SERVICE_SECRETS_SCHEMA = pa.schema([("name", pa.string()), ("value", pa.string()), ("created_at", _TIME)])
LAUNCH_VERSIONS_SCHEMA = pa.schema(
    [
        ("launch_key", pa.string()),
        ("version", pa.int32()),
        ("spec", pa.string()),
        ("recorded_at", _TIME),
        ("recorded_by", pa.string()),
        ("source", pa.string()),
        ("seq", pa.uint64()),
        ("claim", pa.string()),
    ]
)
KPI_AMENDMENTS_SCHEMA = pa.schema(
    [
        ("launch_key", pa.string()),
        ("amendment_id", pa.int32()),
        ("kpi_id", pa.string()),
        ("field", pa.string()),
        ("old_value", pa.string()),
        ("new_value", pa.string()),
        ("amended_at", _TIME),
        ("amended_by", pa.string()),
        ("reason", pa.string()),
        ("seq", pa.uint64()),
        ("claim", pa.string()),
    ]
)
LAUNCH_CLAIMS_SCHEMA = pa.schema(
    [
        ("launch_key", pa.string()),
        ("seq", pa.uint64()),
        ("claim", pa.string()),
        ("kind", pa.string()),
        ("claimed_at", _TIME),
    ]
)
DELIVERIES_SCHEMA = pa.schema(
    [
        ("subject", pa.string()),
        ("channel", pa.string()),
        ("status", pa.string()),
        ("attempts", pa.int32()),
        ("claimed_by", pa.string()),
        ("lease_until", _TIME),
        ("next_attempt_at", _TIME),
        ("created_at", _TIME),
        ("updated_at", _TIME),
        ("sent_at", _TIME),
        ("last_error", pa.string()),
        ("revision", pa.uint64()),
        ("claim", pa.string()),
    ]
)
ALERTS_SCHEMA = pa.schema(
    [
        ("launch_key", pa.string()),
        ("kind", pa.string()),
        ("subject", pa.string()),
        ("occurrence", pa.int32()),
        ("state", pa.string()),
        ("message", pa.string()),
        ("raised_at", _TIME),
        ("as_of", _TIME),
        ("cleared_at", _TIME),
        ("cleared_message", pa.string()),
        ("claim", pa.string()),
    ]
)
LAUNCH_EVALUATIONS_SCHEMA = pa.schema(
    [("launch_key", pa.string()), ("verdicts", pa.string()), ("as_of", _TIME), ("evaluated_at", _TIME)]
)
DECISIONS_SCHEMA = pa.schema(
    [
        ("launch_key", pa.string()),
        ("decision_id", pa.int32()),
        ("decision", pa.string()),
        ("reason", pa.string()),
        ("decided_by", pa.string()),
        ("follow_up", pa.string()),
        ("decided_at", _TIME),
        ("evidence", pa.string()),
        ("claim", pa.string()),
    ]
)


class _DeliveryRow(NamedTuple):
    """A delivery as it stands (select_delivery)."""

    revision: int
    status: str
    attempts: int
    claimed_by: str
    lease_until: datetime | None
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class _Occurrence(NamedTuple):
    """One occurrence of an alert as it stands (select_alert_occurrences)."""

    occurrence: int
    state: str
    message: str
    raised_at: datetime
    as_of: datetime
    cleared_at: datetime | None


class ClickHouseMetaStore(MetaStore):
    """Keys, launches and the rest of the metadata in ClickHouse, as versioned rows."""

    def __init__(self, database: ClickHouseDatabase) -> None:
        self.database = database
        self._keys = KeyRing()
        self._reload_lock = threading.Lock()
        self._keys_read_at = 0.0  # time.monotonic() of the last reading of the keys
        self.reload_keys()

    # -- writing and claiming ----------------------------------------------------------------

    def _insert(self, table: str, schema: pa.Schema, rows: Sequence[dict[str, Any]], token: str) -> None:
        """Inserts `rows` into `table` as one block. The token names what the rows are: a slot's
        claim (a second insert of it is dropped) or a fresh one (never dropped as a copy of
        another insert's data)."""
        self.database.insert_arrow(table, pa.Table.from_pylist(list(rows), schema=schema), token=token)

    def _winner(self, sql: str, params: dict[str, Any]) -> str:
        """The first column of the first row of `sql`, a read-back of the claim (or value) that
        won a slot: waits for it to reach the replica read, as a claim just inserted or dropped
        as a duplicate of another is there on one node but maybe not yet on another replica."""
        settings = (
            {"select_sequential_consistency": 1} if self.database.insert_settings.get("insert_quorum") else {}
        )
        deadline = time.monotonic() + CLAIM_VISIBLE_SECONDS
        while True:
            rows = self.database.client().query(sql, parameters=params, settings=settings).result_rows
            if rows:
                return str(rows[0][0])
            if time.monotonic() > deadline:
                raise StorageUnavailable(
                    "a change was written but cannot be read back", "the replica read is behind; retry later"
                )
            time.sleep(0.05)

    # -- keys --------------------------------------------------------------------------------

    @translates_errors
    def reload_keys(self) -> None:
        """Re-reads the keys (after a change here, a restore, or when another process may have
        changed them)."""
        rows = self.database.rows("select_api_keys")
        self._keys.replace(
            {
                key_hash: ApiKey(key_id, name, scope, created_at, revoked_at, tuple(origins or ()))
                for key_id, name, scope, key_hash, created_at, revoked_at, origins in rows
            }
        )
        self._keys_read_at = time.monotonic()

    def _refresh_keys(self, *, unknown: bool = False) -> bool:
        """Reads the keys again if they are older than KEY_REFRESH_SECONDS, or, for an unknown
        key, older than UNKNOWN_KEY_RELOAD_SECONDS; whether they were read. A periodic refresh
        that fails keeps the keys held (authentication goes on); an unknown key's fails."""
        age = UNKNOWN_KEY_RELOAD_SECONDS if unknown else KEY_REFRESH_SECONDS
        if time.monotonic() - self._keys_read_at < age:
            return False
        if not self._reload_lock.acquire(blocking=unknown):
            return False  # another thread is reading them now
        try:
            if time.monotonic() - self._keys_read_at < age:
                return unknown  # read by another thread while this one waited
            try:
                self.reload_keys()
            except StorageUnavailable:
                if unknown:
                    raise
                self._keys_read_at = time.monotonic()  # try again after another period
                logger.warning("could not refresh the API keys; using the ones held", exc_info=True)
                return False
            return True
        finally:
            self._reload_lock.release()

    def create_key(self, name: str, scope: Scope, *, origins: Sequence[str] = ()) -> tuple[ApiKey, str]:
        """A new key and its secret, which is not stored and cannot be shown again. A write key
        may carry the web origins browsers may send with it (none: any origin)."""
        key, secret = new_key(name, scope, origins)
        row = {
            "key_id": key.key_id,
            "name": name,
            "scope": scope,
            "key_hash": hash_key(secret),
            "created_at": key.created_at,
            "revoked_at": None,
            "origins": list(key.origins),
        }
        token = _token("api_keys", key.key_id, "created")
        self.database.write(lambda client: self._insert("api_keys", API_KEYS_SCHEMA, [row], token))
        self.reload_keys()
        return key, secret

    def revoke_key(self, key: str) -> list[str]:
        """Revokes the live keys with this id or name: a copy of each with revoked_at set (of
        two processes revoking a key at once, the first revocation stands)."""
        revoked_at = now_utc()

        def run(client: Any) -> list[str]:
            live = self.database.rows("select_live_api_keys", {"key": key})
            for key_id, name, scope, key_hash, created_at, origins in live:
                row = {
                    "key_id": key_id,
                    "name": name,
                    "scope": scope,
                    "key_hash": key_hash,
                    "created_at": created_at,
                    "revoked_at": revoked_at,
                    "origins": list(origins),
                }
                self._insert("api_keys", API_KEYS_SCHEMA, [row], _token("api_keys", key_id, "revoked"))
            return [str(row[0]) for row in live]

        revoked = self.database.write(run)
        if not revoked:
            raise NotFound(f"no active key with id or name {key!r}")
        self.reload_keys()
        return revoked

    def list_keys(self) -> list[ApiKey]:
        """Every key, as stored now (another process may have changed them)."""
        self.reload_keys()
        return self._keys.all_keys()

    def authenticate(self, secret: str | None, scopes: Iterable[Scope]) -> ApiKey:
        """The live key behind `secret` if its scope is one of `scopes`; Unauthorized otherwise.
        A key this process has not seen (made by another one) is looked up once more."""
        allowed = tuple(scopes)
        self._refresh_keys()
        try:
            return self._keys.authenticate(secret, allowed)
        except Unauthorized:
            if secret and self._refresh_keys(unknown=True):
                return self._keys.authenticate(secret, allowed)
            raise

    def authenticate_id(self, key_id: str, scopes: Iterable[Scope]) -> ApiKey:
        """The live key with id `key_id`, held to the same rules as `authenticate`."""
        allowed = tuple(scopes)
        self._refresh_keys()
        try:
            return self._keys.authenticate_id(key_id, allowed)
        except Unauthorized:
            if key_id and self._refresh_keys(unknown=True):
                return self._keys.authenticate_id(key_id, allowed)
            raise

    # -- service -----------------------------------------------------------------------------

    def service_secret(self, name: str) -> str:
        """A random secret the service keeps in its database (the key that signs sessions), made
        on first use so it survives restarts; every process gets the first one stored. Backups
        leave it out: a restored copy makes its own."""
        candidate = secrets.token_urlsafe(32)
        sql = query("select_service_secret", "clickhouse")

        def run(client: Any) -> str:
            stored = self.database.rows("select_service_secret", {"name": name})
            if stored:
                return str(stored[0][0])
            row = {"name": name, "value": candidate, "created_at": now_utc()}
            self._insert("service_secrets", SERVICE_SECRETS_SCHEMA, [row], _token("service_secrets", name))
            return self._winner(sql, {"name": name})

        return self.database.write(run)

    # -- launches ----------------------------------------------------------------------------

    @translates_errors
    def launch_keys(self) -> list[str]:
        return [str(r[0]) for r in self.database.rows("select_launch_keys")]

    @translates_errors
    def launch_versions(self, launch_key: str) -> list[LaunchVersion]:
        """Every recorded version, oldest first."""
        rows = self.database.rows("select_launch_versions", {"launch_key": launch_key})
        return [LaunchVersion(int(v), s, at, by, src) for v, s, at, by, src in rows]

    @translates_errors
    def kpi_amendments(self, launch_key: str) -> list[KpiAmendment]:
        """Every KPI amendment of the launch, in the order made."""
        rows = self.database.rows("select_kpi_amendments", {"launch_key": launch_key})
        return [KpiAmendment(int(r[0]), *r[1:]) for r in rows]

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
        """One atomic change to a launch: a new version, amendments, or deletion. Fails with
        a Conflict-worthy StaleLaunch if another change landed since `expected_version` was read
        (here or in another process), or if an amendment's number is already on record. A new
        version records `source`; without one, a `source` marks the current version.

        The change's rows are written first, tagged with the next change number and a fresh
        claim; then the number is claimed. Only the first claim of a number counts, so of two
        changes made from the same reading one lands and the other raises StaleLaunch."""
        claim = uuid.uuid4().hex

        def run(client: Any) -> None:
            # The number first, then the launch: a change landing between the two reads took
            # the number this one will claim, so this one loses rather than overwrite it.
            rows = self.database.rows("select_launch_seq", {"launch_key": launch_key})
            seq = int(rows[0][0]) + 1 if rows else 1
            versions = self.launch_versions(launch_key)
            current = versions[-1].version if versions else 0
            if current != expected_version:
                raise StaleLaunch(launch_key)
            taken = {a.amendment_id for a in self.kpi_amendments(launch_key)}
            if any(int(row["amendment_id"]) in taken for row in amendments):
                raise StaleLaunch(launch_key)
            kind = "amend"
            version_rows: list[dict[str, Any]] = []
            if delete:
                kind = "delete"
            elif spec_json is not None:
                kind = "version"
                version_rows.append(
                    {
                        "launch_key": launch_key,
                        "version": current + 1,
                        "spec": spec_json,
                        "recorded_at": recorded_at,
                        "recorded_by": recorded_by,
                        "source": source,
                    }
                )
            elif source is not None and versions:
                kind = "source"
                latest = versions[-1]
                version_rows.append(
                    {
                        "launch_key": launch_key,
                        "version": latest.version,
                        "spec": latest.spec,
                        "recorded_at": latest.recorded_at,
                        "recorded_by": latest.recorded_by,
                        "source": source,
                    }
                )
            amendment_rows = [] if delete else [{"launch_key": launch_key, **row} for row in amendments]
            if kind == "amend" and not amendment_rows:
                return  # nothing to change (as DuckDB's statements would change nothing)
            tag = {"seq": seq, "claim": claim}
            self._insert(
                "launch_versions",
                LAUNCH_VERSIONS_SCHEMA,
                [{**row, **tag} for row in version_rows],
                _token("launch_versions", claim),
            )
            self._insert(
                "kpi_amendments",
                KPI_AMENDMENTS_SCHEMA,
                [{**row, **tag} for row in amendment_rows],
                _token("kpi_amendments", claim),
            )
            change = {
                "launch_key": launch_key,
                "seq": seq,
                "claim": claim,
                "kind": kind,
                "claimed_at": now_utc(),
            }
            self._insert(
                "launch_claims", LAUNCH_CLAIMS_SCHEMA, [change], _token("launch_claims", launch_key, seq)
            )
            winner = self._winner(
                query("select_launch_claim", "clickhouse"), {"launch_key": launch_key, "seq": seq}
            )
            if winner != claim:
                raise StaleLaunch(launch_key)

        self.database.write(run)

    # -- deliveries --------------------------------------------------------------------------

    def _delivery(self, subject: str, channel: str) -> _DeliveryRow | None:
        rows = self.database.rows("select_delivery", {"subject": subject, "channel": channel})
        return _DeliveryRow(*rows[0]) if rows else None

    def _advance_delivery(self, subject: str, channel: str, revision: int, row: dict[str, Any]) -> bool:
        """Writes `row` as the delivery's `revision`; whether it was the first to (the change
        happened), rather than another process's change from the same revision."""
        claim = uuid.uuid4().hex
        stored = {"subject": subject, "channel": channel, **row, "revision": revision, "claim": claim}
        token = _token("deliveries", subject, channel, revision)
        self._insert("deliveries", DELIVERIES_SCHEMA, [stored], token)
        params = {"subject": subject, "channel": channel, "revision": revision}
        return self._winner(query("select_delivery_claim", "clickhouse"), params) == claim

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
        """The attempt number when this call claimed the delivery; None when it is taken. The
        first row of a revision is the claim: of two processes writing it, one gets it."""

        def run(client: Any) -> int | None:
            current = self._delivery(subject, channel)
            if current is None:
                first = {
                    "status": "sending",
                    "attempts": 1,
                    "claimed_by": claimed_by,
                    "lease_until": lease_until,
                    "next_attempt_at": None,
                    "created_at": now,
                    "updated_at": now,
                    "sent_at": None,
                    "last_error": None,
                }
                if self._advance_delivery(subject, channel, 1, first):
                    return 1
                current = self._delivery(subject, channel)
            if not retry or current is None:
                return None
            failed_due = current.status == "failed" and (
                force or (current.next_attempt_at is not None and current.next_attempt_at <= now)
            )
            lapsed = (
                current.status == "sending" and current.lease_until is not None and current.lease_until < now
            )
            if not (failed_due or lapsed):
                return None
            retake = {
                "status": "sending",
                "attempts": current.attempts + 1,
                "claimed_by": claimed_by,
                "lease_until": lease_until,
                "next_attempt_at": current.next_attempt_at,
                "created_at": current.created_at,
                "updated_at": now,
                "sent_at": current.sent_at,
                "last_error": current.last_error,
            }
            if self._advance_delivery(subject, channel, current.revision + 1, retake):
                return current.attempts + 1
            return None

        return self.database.write(run)

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
        """How the claimed attempt went, unless the claim is no longer this sender's (its lease
        ran out and another process took the delivery again)."""

        def run(client: Any) -> None:
            current = self._delivery(subject, channel)
            if current is None or current.claimed_by != claimed_by or current.status != "sending":
                return
            sent = error is None
            result = {
                "status": "sent" if sent else "failed",
                "attempts": current.attempts,
                "claimed_by": current.claimed_by,
                "lease_until": None,
                "next_attempt_at": None if sent else next_attempt_at,
                "created_at": current.created_at,
                "updated_at": now,
                "sent_at": now if sent else current.sent_at,
                "last_error": error,
            }
            self._advance_delivery(subject, channel, current.revision + 1, result)

        self.database.write(run)

    @translates_errors
    def deliveries(self) -> list[Delivery]:
        return [Delivery(*row) for row in self.database.rows("select_deliveries")]

    @translates_errors
    def due_deliveries(self, now: datetime) -> list[tuple[str, str]]:
        rows = self.database.rows("select_due_deliveries", {"now": now})
        return [(str(subject), str(channel)) for subject, channel in rows]

    # -- alerts ------------------------------------------------------------------------------

    @translates_errors
    def alerts(self, launch_key: str | None = None) -> list[AlertRecord]:
        rows = self.database.rows("select_alerts", {"launch_key": launch_key})
        return [AlertRecord(*row) for row in rows]

    @translates_errors
    def launch_evaluations(self) -> dict[str, str]:
        rows = self.database.rows("select_launch_evaluations")
        return {str(key): str(verdicts) for key, verdicts in rows}

    def _occurrences(self, change: AlertChange) -> list[_Occurrence]:
        params = {"launch_key": change.launch_key, "kind": change.kind, "subject": change.subject}
        return [_Occurrence(*row) for row in self.database.rows("select_alert_occurrences", params)]

    def record_alert_evaluation(
        self,
        *,
        cleared: Sequence[AlertChange],
        raised: Sequence[AlertChange],
        evaluations: Sequence[LaunchEvaluation],
        now: datetime,
    ) -> list[AlertRecord]:
        """Clears the open alerts `cleared` names, raises `raised` (each unless one of its
        launch, kind and subject is still open), keeps the evaluated verdicts; the alerts this
        call raised. Without a transaction each step is an insert of its own: an evaluation cut
        short is completed by the next one (an open alert is not raised twice, a cleared one
        not cleared twice)."""

        def run(client: Any) -> list[AlertRecord]:
            for change in cleared:
                for open_ in (o for o in self._occurrences(change) if o.cleared_at is None):
                    row = {
                        "launch_key": change.launch_key,
                        "kind": change.kind,
                        "subject": change.subject,
                        "occurrence": open_.occurrence,
                        "state": open_.state,
                        "message": open_.message,
                        "raised_at": open_.raised_at,
                        "as_of": open_.as_of,
                        "cleared_at": now,
                        "cleared_message": change.message,
                        "claim": "",
                    }
                    token = _token(
                        "alerts", change.launch_key, change.kind, change.subject, open_.occurrence, "cleared"
                    )
                    self._insert("alerts", ALERTS_SCHEMA, [row], token)
            new: list[AlertRecord] = []
            for change in raised:
                occurrences = self._occurrences(change)
                if any(o.cleared_at is None for o in occurrences):
                    continue
                occurrence = max((o.occurrence for o in occurrences), default=0) + 1
                as_of = change.as_of or now
                claim = uuid.uuid4().hex
                row = {
                    "launch_key": change.launch_key,
                    "kind": change.kind,
                    "subject": change.subject,
                    "occurrence": occurrence,
                    "state": change.state,
                    "message": change.message,
                    "raised_at": now,
                    "as_of": as_of,
                    "cleared_at": None,
                    "cleared_message": None,
                    "claim": claim,
                }
                token = _token("alerts", change.launch_key, change.kind, change.subject, occurrence)
                self._insert("alerts", ALERTS_SCHEMA, [row], token)
                params = {
                    "launch_key": change.launch_key,
                    "kind": change.kind,
                    "subject": change.subject,
                    "occurrence": occurrence,
                }
                if self._winner(query("select_alert_claim", "clickhouse"), params) != claim:
                    continue  # another process raised it first
                new.append(
                    AlertRecord(
                        change.launch_key,
                        change.kind,
                        change.subject,
                        occurrence,
                        change.state,
                        change.message,
                        now,
                        as_of,
                        None,
                        None,
                    )
                )
            evaluated = [
                {
                    "launch_key": evaluation.launch_key,
                    "verdicts": evaluation.verdicts,
                    "as_of": evaluation.as_of,
                    "evaluated_at": now,
                }
                for evaluation in evaluations
            ]
            # A fresh token: an evaluation equal to an earlier one is still the latest.
            self._insert("launch_evaluations", LAUNCH_EVALUATIONS_SCHEMA, evaluated, uuid.uuid4().hex)
            return new

        return self.database.write(run)

    # -- decisions ---------------------------------------------------------------------------

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
        """Records a decision as the launch's next; its id. A number another process took
        first is left to it, and the decision takes the next."""
        sql = query("select_decision_claim", "clickhouse")

        def run(client: Any) -> int:
            for _ in range(DECISION_ATTEMPTS):
                rows = self.database.rows("select_last_decision_id", {"launch_key": launch_key})
                decision_id = (int(rows[0][0]) if rows else 0) + 1
                claim = uuid.uuid4().hex
                row = {
                    "launch_key": launch_key,
                    "decision_id": decision_id,
                    "decision": decision,
                    "reason": reason,
                    "decided_by": decided_by,
                    "follow_up": follow_up,
                    "decided_at": decided_at,
                    "evidence": evidence,
                    "claim": claim,
                }
                self._insert(
                    "decisions", DECISIONS_SCHEMA, [row], _token("decisions", launch_key, decision_id)
                )
                if self._winner(sql, {"launch_key": launch_key, "decision_id": decision_id}) == claim:
                    return decision_id
            raise StorageUnavailable(
                f"launch {launch_key!r}: other processes kept taking the next decision number",
                "retry later",
            )

        return self.database.write(run)

    @translates_errors
    def decisions(self, launch_key: str | None = None) -> list[DecisionRecord]:
        rows = self.database.rows("select_decisions", {"launch_key": launch_key})
        return [DecisionRecord(*row) for row in rows]


def _token(*parts: object) -> str:
    """An insert_deduplication_token naming one slot (a table and what identifies the row in
    it), unambiguous whatever characters the parts hold."""
    return hashlib.sha256(orjson.dumps([str(p) for p in parts])).hexdigest()
