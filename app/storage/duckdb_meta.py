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
from app.storage.duckdb_database import DuckDBDatabase, translates_errors
from app.storage.interfaces import ApiKey, KpiAmendment, LaunchVersion, MetaStore, Scope, StaleLaunch
from app.storage.keys import KeyRing, hash_key, new_key


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
        return [LaunchVersion(int(v), s, at, by) for v, s, at, by in rows.fetchall()]

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

        self.database.write(run)
