"""Backups as plain Parquet files, one per table, so other tools (DuckDB, Polars, pandas,
Spark) can read them, plus a manifest with row counts that a restore checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from app.errors import Conflict, InvalidInput
from app.queries import query
from app.storage import Storage

TABLES = ("events", "rejected_events", "identity_links", "api_keys", "launch_versions", "kpi_amendments")
MANIFEST = "manifest.json"
FORMAT = "landed-backup-1"


def backup(storage: Storage, out: Path) -> dict[str, int]:
    """Writes every table to `out/<table>.parquet` and the manifest; returns the row counts.
    Runs on the writer, so the copy is one consistent snapshot."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise Conflict(f"{out} is not empty", "back up into a new, empty folder")

    def run(conn: Any) -> dict[str, int]:
        counts = {}
        for table in TABLES:
            conn.execute(query(f"export_{table}"), {"path": str(out / f"{table}.parquet")})
            counts[table] = int(conn.execute(query(f"count_{table}")).fetchone()[0])
        return counts

    counts: dict[str, int] = storage.writer.submit(run).result()
    manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(), "rows": counts}
    (out / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return counts


def restore(storage: Storage, source: Path) -> dict[str, int]:
    """Loads a backup into an empty database, checking every table's row count."""
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise InvalidInput(f"{source} is not a Landed backup", f"{MANIFEST} is missing")
    manifest = orjson.loads(manifest_path.read_bytes())
    if manifest.get("format") != FORMAT:
        raise InvalidInput(f"{source} has an unknown backup format {manifest.get('format')!r}")
    missing = [t for t in TABLES if not (source / f"{t}.parquet").is_file()]
    if missing:
        raise InvalidInput(f"the backup lacks {', '.join(missing)}", str(source))

    def run(conn: Any) -> dict[str, int]:
        for table in TABLES:
            if int(conn.execute(query(f"count_{table}")).fetchone()[0]):
                raise Conflict(
                    f"the database already holds {table}",
                    "restore into a new database file (--db new.duckdb)",
                )
        counts = {}
        for table in TABLES:
            conn.execute(query(f"restore_{table}"), {"path": str(source / f"{table}.parquet")})
            counts[table] = int(conn.execute(query(f"count_{table}")).fetchone()[0])
            if counts[table] != manifest["rows"][table]:
                raise InvalidInput(
                    f"{table}: restored {counts[table]} rows, the manifest says {manifest['rows'][table]}",
                    "the backup is incomplete; nothing was restored",
                )
        return counts

    counts: dict[str, int] = storage.writer.submit(run).result()
    storage.reload_keys()
    return counts
