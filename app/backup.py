"""Backups as plain Parquet files, one per table, so other tools (DuckDB, Polars, pandas,
Spark) can read them, plus a manifest with row counts that a restore checks.

A backup reads one snapshot through a cursor of its own, beside the writer rather than on it:
DuckDB gives a transaction a consistent view of every table, so the copy is consistent while
ingestion goes on committing (a backup taken on the writer would hold every request for as
long as the export takes). `POST /api/backup` writes into a new folder under the configured
backup folder, never a path the caller names."""

from __future__ import annotations

import contextlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from app.errors import Conflict, InvalidInput, StorageUnavailable
from app.queries import query
from app.settings import Settings
from app.storage import Storage

TABLES = ("events", "rejected_events", "identity_links", "api_keys", "launch_versions", "kpi_amendments")
MANIFEST = "manifest.json"
FORMAT = "landed-backup-1"


def backup(storage: Storage, out: Path) -> dict[str, int]:
    """Writes every table to `out/<table>.parquet` and the manifest; returns the row counts.
    Every table is read in one transaction of its own cursor: one consistent snapshot, taken
    without stopping the writer."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise Conflict(f"{out} is not empty", "back up into a new, empty folder")
    cursor = storage.cursor()
    try:
        cursor.begin()
        counts = {}
        for table in TABLES:
            cursor.execute(query(f"export_{table}"), {"path": str(out / f"{table}.parquet")})
            row = cursor.execute(query(f"count_{table}")).fetchone()
            counts[table] = int(row[0]) if row else 0
        cursor.commit()
    except duckdb.Error as error:
        with contextlib.suppress(duckdb.Error):
            cursor.rollback()
        storage.check_connection()
        raise StorageUnavailable("the backup could not be written", str(error)) from error
    finally:
        cursor.close()
    manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(), "rows": counts}
    (out / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return counts


def backup_root(settings: Settings) -> Path:
    """Where online backups go: `backup_dir`, else `backups` beside the database file."""
    if settings.backup_dir:
        return Path(settings.backup_dir).expanduser()
    if settings.db_path == ":memory:":
        raise Conflict(
            "no backup folder is configured", "an in-memory database needs LANDED_BACKUP_DIR for backups"
        )
    return Path(settings.db_path).expanduser().resolve().parent / "backups"


def backup_now(storage: Storage, root: Path, *, now: datetime | None = None) -> tuple[Path, dict[str, int]]:
    """A backup into a new folder under `root` named after the time (landed-20261122T101500Z,
    with -2, -3... when several start in one second); returns the folder and the row counts.
    A backup that fails leaves no folder behind that could pass for a backup."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            folder = root / (f"landed-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise Conflict("too many backups started in this second", "retry in a second")
    except OSError as error:
        raise StorageUnavailable(f"cannot create a backup folder in {root}", str(error)) from error
    try:
        return folder, backup(storage, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


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
