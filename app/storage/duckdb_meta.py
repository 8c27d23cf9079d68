"""The DuckDB metadata store: API keys, launch versions with their KPI amendments, and the
service's own secrets.

Every change runs on the database's single writer, in a transaction of its own; keys are also
held in a `KeyRing`, re-read after every change, so authenticating a request queries nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import duckdb

from app.errors import NotFound
from app.ingest import now_utc
from app.queries import query
from app.storage.duckdb_database import DuckDBDatabase
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


class DuckDBMetaStore(MetaStore):
    """Keys, launches and secrets in DuckDB."""

    def __init__(self, database: DuckDBDatabase) -> None:
        self.database = database
        self._keys = KeyRing()
        self.reload_keys()

    # -- keys --------------------------------------------------------------------------------

    @translates_errors
    def reload_keys(self) -> None:
        """Re-reads the keys (after a change, or a restore)."""
        rows = self.database.cursor().execute(query("select_api_keys")).fetchall()
        self._keys.replace(
            {
                key_hash: ApiKey(key_id, name, scope, created_at, revoked_at, tuple(origins or ()))
                for key_id, name, scope, key_hash, created_at, revoked_at, origins in rows
            }
        )

    def create_key(self, name: str, scope: Scope, *, origins: Sequence[str] = ()) -> tuple[ApiKey, str]:
        """A new key and its secret, which is not stored and cannot be shown again. A write key
        may carry the web origins browsers may send with it (none: any origin)."""
        key, secret = new_key(name, scope, origins)
        params = {
            "key_id": key.key_id,
            "name": name,
            "scope": scope,
            "key_hash": hash_key(secret),
            "created_at": key.created_at,
            "origins": list(key.origins) or None,
        }
        self.database.write(lambda conn: conn.execute(query("insert_api_key"), params))
        self.reload_keys()
        return key, secret

    def revoke_key(self, key: str) -> list[str]:
        params = {"key": key, "revoked_at": now_utc()}
        revoked = self.database.write(
            lambda conn: [str(r[0]) for r in conn.execute(query("revoke_api_key"), params).fetchall()]
        )
        if not revoked:
            raise NotFound(f"no active key with id or name {key!r}")
        self.reload_keys()
        return revoked

    def list_keys(self) -> list[ApiKey]:
        return self._keys.all_keys()

    def authenticate(self, secret: str | None, scopes: Iterable[Scope]) -> ApiKey:
        """The live key behind `secret` if its scope is one of `scopes`; Unauthorized otherwise."""
        return self._keys.authenticate(secret, scopes)

    def authenticate_id(self, key_id: str, scopes: Iterable[Scope]) -> ApiKey:
        """The live key with id `key_id`, held to the same rules as `authenticate`."""
        return self._keys.authenticate_id(key_id, scopes)

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

        return self.database.write(run)

    # -- launches ----------------------------------------------------------------------------

    @translates_errors
    def launch_keys(self) -> list[str]:
        return [r[0] for r in self.database.cursor().execute(query("select_launch_keys")).fetchall()]

    @translates_errors
    def launch_versions(self, launch_key: str) -> list[LaunchVersion]:
        """Every recorded version, oldest first."""
        rows = self.database.cursor().execute(query("select_launch_versions"), {"launch_key": launch_key})
        return [LaunchVersion(int(v), s, at, by, src) for v, s, at, by, src in rows.fetchall()]

    @translates_errors
    def kpi_amendments(self, launch_key: str) -> list[KpiAmendment]:
        """Every KPI amendment of the launch, in the order made."""
        rows = self.database.cursor().execute(query("select_kpi_amendments"), {"launch_key": launch_key})
        return [KpiAmendment(*r) for r in rows.fetchall()]

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
        a Conflict-worthy StaleLaunch if another change landed since `expected_version` was read.
        A new version records `source`; without one, a `source` marks the current version."""

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
                        "source": source,
                    },
                )
            elif source is not None:
                params = {"launch_key": launch_key, "version": current, "source": source}
                conn.execute(query("update_launch_version_source"), params)
            for row in amendments:
                conn.execute(query("insert_kpi_amendment"), {"launch_key": launch_key, **row})

        self.database.write(run)

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
        """The attempt number when this call claimed the delivery; None when it is taken. The
        row's primary key is the claim: of two processes inserting it, one gets it."""
        params = {
            "subject": subject,
            "channel": channel,
            "claimed_by": claimed_by,
            "lease_until": lease_until,
            "now": now,
        }

        def run(conn: duckdb.DuckDBPyConnection) -> int | None:
            row = conn.execute(query("insert_delivery_claim"), params).fetchone()
            if row is None and retry:
                row = conn.execute(query("update_delivery_retake"), {**params, "force": force}).fetchone()
            return None if row is None else int(row[0])

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
        params = {
            "subject": subject,
            "channel": channel,
            "claimed_by": claimed_by,
            "now": now,
            "error": error,
            "next_attempt_at": next_attempt_at,
        }
        self.database.write(lambda conn: conn.execute(query("update_delivery_result"), params))

    @translates_errors
    def deliveries(self) -> list[Delivery]:
        rows = self.database.cursor().execute(query("select_deliveries")).fetchall()
        return [Delivery(*row) for row in rows]

    @translates_errors
    def due_deliveries(self, now: datetime) -> list[tuple[str, str]]:
        rows = self.database.cursor().execute(query("select_due_deliveries"), {"now": now}).fetchall()
        return [(str(subject), str(channel)) for subject, channel in rows]

    @translates_errors
    def alerts(self, launch_key: str | None = None) -> list[AlertRecord]:
        rows = self.database.cursor().execute(query("select_alerts"), {"launch_key": launch_key}).fetchall()
        return [AlertRecord(*row) for row in rows]

    @translates_errors
    def launch_evaluations(self) -> dict[str, str]:
        rows = self.database.cursor().execute(query("select_launch_evaluations")).fetchall()
        return {str(key): str(verdicts) for key, verdicts in rows}

    def record_alert_evaluation(
        self,
        *,
        cleared: Sequence[AlertChange],
        raised: Sequence[AlertChange],
        evaluations: Sequence[LaunchEvaluation],
        now: datetime,
    ) -> list[AlertRecord]:
        def run(conn: duckdb.DuckDBPyConnection) -> list[AlertRecord]:
            for change in cleared:
                conn.execute(
                    query("update_alert_cleared"),
                    {
                        "launch_key": change.launch_key,
                        "kind": change.kind,
                        "subject": change.subject,
                        "cleared_at": now,
                        "cleared_message": change.message,
                    },
                )
            new: list[AlertRecord] = []
            for change in raised:
                as_of = change.as_of or now
                row = conn.execute(
                    query("insert_alert"),
                    {
                        "launch_key": change.launch_key,
                        "kind": change.kind,
                        "subject": change.subject,
                        "state": change.state,
                        "message": change.message,
                        "raised_at": now,
                        "as_of": as_of,
                    },
                ).fetchone()
                if row is not None:
                    new.append(
                        AlertRecord(
                            change.launch_key,
                            change.kind,
                            change.subject,
                            int(row[0]),
                            change.state,
                            change.message,
                            now,
                            as_of,
                            None,
                            None,
                        )
                    )
            for evaluation in evaluations:
                conn.execute(
                    query("upsert_launch_evaluation"),
                    {
                        "launch_key": evaluation.launch_key,
                        "verdicts": evaluation.verdicts,
                        "as_of": evaluation.as_of,
                        "evaluated_at": now,
                    },
                )
            return new

        return self.database.write(run)

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
        params = {
            "launch_key": launch_key,
            "decision": decision,
            "reason": reason,
            "decided_by": decided_by,
            "follow_up": follow_up,
            "decided_at": decided_at,
            "evidence": evidence,
        }

        def run(conn: duckdb.DuckDBPyConnection) -> int:
            row = conn.execute(query("insert_decision"), params).fetchone()
            assert row is not None
            return int(row[0])

        return self.database.write(run)

    @translates_errors
    def decisions(self, launch_key: str | None = None) -> list[DecisionRecord]:
        params = {"launch_key": launch_key}
        rows = self.database.cursor().execute(query("select_decisions"), params).fetchall()
        return [DecisionRecord(*row) for row in rows]
