"""Backups as plain Parquet files, one per table, so other tools (DuckDB, Polars, pandas,
Spark) can read them, plus a manifest with row counts that a restore checks.

A backup reads one consistent snapshot of every table beside the writer rather than on it, so
ingestion goes on committing while it runs (`EventStore.export_tables`). `POST /api/backup`
writes into a new folder under the configured backup folder, never a path the caller names."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson

from app.errors import Conflict, InvalidInput, StorageUnavailable
from app.settings import Settings
from app.storage import Storage

TABLES = (
    "events",
    "rejected_events",
    "identity_links",
    "api_keys",
    "launch_versions",
    "kpi_amendments",
    "deliveries",
    "alerts",
    "launch_evaluations",
    "decisions",
)
# Tables added after the first backup format: a backup made before them has none, and restores
# leaving them empty.
LATER_TABLES = ("deliveries", "alerts", "launch_evaluations", "decisions")
MANIFEST = "manifest.json"
FORMAT = "landed-backup-1"


def _files(folder: Path) -> dict[str, Path]:
    """Each table's Parquet file in a backup folder."""
    return {table: folder / f"{table}.parquet" for table in TABLES}


def backup(storage: Storage, out: Path) -> dict[str, int]:
    """Writes every table to `out/<table>.parquet` and the manifest; returns the row counts.
    The tables are one consistent snapshot, taken without stopping the writer."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise Conflict(f"{out} is not empty", "back up into a new, empty folder")
    counts = storage.export_tables(_files(out))
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
    files = {
        table: path
        for table, path in _files(source).items()
        if table not in LATER_TABLES or table in manifest.get("rows", {})
    }
    missing = [table for table, path in files.items() if not path.is_file()]
    if missing:
        raise InvalidInput(f"the backup lacks {', '.join(missing)}", str(source))
    counts = storage.import_tables(files, manifest["rows"])
    storage.reload_keys()
    return counts


def migrate(source: Storage, target: Storage, via: Path) -> dict[str, int]:
    """Copies every table of `source` into the empty `target` (another backend, say DuckDB into
    ClickHouse) through a backup written to the empty folder `via`; the target's row count of
    every table is checked against the source's. Returns the row counts."""
    counts = backup(source, via)
    restored = restore(target, via)
    differing = {t: (n, restored.get(t)) for t, n in counts.items() if restored.get(t) != n}
    if differing:
        detail = ", ".join(f"{t}: {n:,} in the source, {m} in the target" for t, (n, m) in differing.items())
        raise StorageUnavailable("the migrated row counts differ", detail)
    return counts

