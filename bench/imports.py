"""Import speed: `landed import` of a Parquet export against DuckDB reading the same files into
a plain table, in the same run.

The export is the project's seeded generator's (`data/sample/generate.py --format parquet`,
built once under `bench/data/` by bench/report.py's `_generate`): 1M events by default, 10M
with BENCH_BIG=1 (BENCH_IMPORT_SIZE=1M|10M picks one). Measured, each into a fresh database file
and counting the final close (which checkpoints what the write-ahead log holds):
- the baseline: `create table ... as select * from read_parquet(files)`, no checks at all;
- `landed import --quiet` of the same files, run as an operator runs it, in its own process
  (Python start-up included);
- the same import again into the now full database: every event a duplicate.
With BENCH_IMPORT_PER_EVENT=1 the per-event path (every event through app/ingest.py and the
group commit, as before the set-based import) is timed on the first file too. The bar, from
issue 15: the import at 0.5 or more of the baseline's rate.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from bench import Row
from bench.report import SIZES, Size, _generate

NAME = "imports"
ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.5


def _size() -> Size:
    chosen = os.environ.get("BENCH_IMPORT_SIZE") or ("10M" if os.environ.get("BENCH_BIG") else "1M")
    return next(size for size in SIZES if size.label == chosen)


def _copy_rate(files: list[Path], db: Path, events: int) -> float:
    """DuckDB alone: the Parquet files into a plain table (events/s)."""
    started = time.perf_counter()
    conn = duckdb.connect(str(db))
    conn.execute(
        "create table copied as select * from read_parquet($files)", {"files": [str(f) for f in files]}
    )
    conn.close()
    return events / (time.perf_counter() - started)


def _landed_import(files: list[Path], db: Path, *extra: str) -> float:
    """Seconds `landed import --quiet` takes, in its own process."""
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "import",
        "--db",
        str(db),
        "--quiet",
        *extra,
        *map(str, files),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"landed import failed: {done.stderr[-2000:]}")
    return elapsed


def _per_event_seconds(path: Path, db: Path) -> float:
    from app.importer import DEFAULT_SOURCE, import_files
    from app.storage import Storage

    started = time.perf_counter()
    storage = Storage(str(db))
    try:
        import_files(storage, [path], source=DEFAULT_SOURCE, max_event_bytes=1 << 20, per_event=True)
    finally:
        storage.close()
    return time.perf_counter() - started


def _count(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as conn:
        row = conn.execute("select count(*) from events").fetchone()
    assert row is not None
    return int(row[0])


def run() -> list[Row]:
    size = _size()
    files = sorted(_generate(size).glob("events-*.parquet"))
    with duckdb.connect() as conn:
        counted = conn.execute(
            "select count(*) from read_parquet($f)", {"f": [str(f) for f in files]}
        ).fetchone()
    assert counted is not None
    events = int(counted[0])
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="landed-bench-import-") as folder:
        work = Path(folder)
        copy_rate = _copy_rate(files, work / "copy.duckdb", events)
        db = work / "import.duckdb"
        first = _landed_import(files, db)
        stored = _count(db)
        again = _landed_import(files, db)
        if _count(db) != stored:
            raise RuntimeError("importing the same files again added events")
        import_rate = events / first
        rows += [
            Row(NAME, f"DuckDB: Parquet into a plain table, {size.label} events", copy_rate, "events/s"),
            Row(
                NAME,
                f"landed import of the Parquet export, {size.label} events, vs DuckDB",
                import_rate,
                "events/s",
                copy_rate,
            ),
            Row(
                NAME,
                "landed import vs the issue's bar (0.5 of DuckDB's rate)",
                import_rate / copy_rate,
                "ratio",
                TARGET_RATIO,
            ),
            Row(
                NAME,
                "landed import of the same files again (all duplicates), vs DuckDB",
                events / again,
                "events/s",
                copy_rate,
            ),
            Row(
                NAME,
                "events stored (of rows in the files; the rest are the export's retries)",
                stored,
                "events",
                events,
            ),
        ]
        if os.environ.get("BENCH_IMPORT_PER_EVENT"):
            with duckdb.connect() as conn:
                first_rows = conn.execute(
                    "select count(*) from read_parquet($f)", {"f": str(files[0])}
                ).fetchone()
            assert first_rows is not None
            seconds = _per_event_seconds(files[0], work / "per-event.duckdb")
            rows.append(
                Row(
                    NAME,
                    "per-event import path (first file), vs DuckDB",
                    int(first_rows[0]) / seconds,
                    "events/s",
                    copy_rate,
                )
            )
    return rows


if __name__ == "__main__":
    from bench import markdown_table

    print(markdown_table(run()))
