"""Report speed: the full launch report (ReportService) against hand-written SQL, at scale.

For each size (1M and 10M events; 100M too with BENCH_BIG=1) a database is built once and kept
under `bench/data/` (git-ignored), so reruns only measure. Building it: the project's seeded
generator writes Parquet (`data/sample/generate.py --format parquet`, about 35 events per user),
and DuckDB inserts the files straight into the events table, applying the importer's rules
(skew correction with the 23 h clamp, one row per (source, messageId), the earliest
anonymousId -> userId link). That shortcut is checked: the first Parquet file is also imported
through `app.importer.import_files` into a small separate database, and every one of its rows
and identity links must equal what the bulk load stored.

Measured, each in a fresh subprocess so every run is cold and its peak memory (VmHWM) is its
own: (a) `ReportService.report` for the team-workspaces launch after its window, with the `plan`
segment, median of 3, with the time of its three DuckDB selects and of the Polars computation;
(b) the same metrics by `tests/reference/reference_metrics.sql` (plain DuckDB, written from
the metric spec alone; tests/test_report_reference.py checks every report number against it),
median of 3. Bars on a 2-core machine: 10M events in under 1 s per launch; 100M under 10 s
with peak memory under 4 GiB (the hand-written SQL is the baseline measured in the same run).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from bench import Row
from tests.helpers.reference import reference_metrics, reference_params

NAME = "report"
ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
REPEATS = 3


# -- building the databases ------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """One benchmark size: a label, the users to generate, and the seed."""

    label: str
    users: int
    seed: int = 7


# About 34.2 events are stored per generated user (identified users and their anonymous
# visitors, duplicates removed).
SIZES = (Size("1M", 29_200), Size("10M", 292_000))
BIG = Size("100M", 2_920_000)
SOURCE = "bench"
LAUNCH_KEY = "team-workspaces"
AS_OF = datetime(2026, 11, 1)  # after team-workspaces' window: the final report

# One Parquet file as events-table rows. The spec's event time: receivedAt - (sentAt - timestamp);
# timestamp without sentAt; receivedAt without timestamp; clamped to receivedAt (and flagged)
# when more than 23 h after it. A retry of the same messageId: the first one in the file is kept.
_STAGE_FILE = """
create or replace temp table staged as
select
    source, message_id, type, event, user_id, anonymous_id, previous_id, group_id,
    properties, traits, context, original_timestamp, sent_at, received_at,
    case when corrected - received_at > interval 23 hour then received_at else corrected end
        as occurred_at,
    coalesce(corrected - received_at > interval 23 hour, false) as is_clamped,
    'import' as api,
    file_row_number
from (
    select
        *,
        case
            when original_timestamp is null then received_at
            when sent_at is null then original_timestamp
            else received_at - (sent_at - original_timestamp)
        end as corrected
    from (
        select
            $source as source,
            messageId as message_id,
            type,
            case when type = 'track' then event else name end as event,
            userId as user_id,
            anonymousId as anonymous_id,
            previousId as previous_id,
            null::varchar as group_id,
            properties::json as properties,
            coalesce(traits, json_extract(context, '$.traits')::varchar)::json as traits,
            context::json as context,
            make_timestamp(epoch_us("timestamp")) as original_timestamp,
            make_timestamp(epoch_us(sentAt)) as sent_at,
            make_timestamp(epoch_us(receivedAt)) as received_at,
            file_row_number
        from read_parquet($path, file_row_number = true)
    )
)
qualify row_number() over (partition by message_id order by file_row_number) = 1
"""

_INSERT_EVENTS = """
insert into events
select * exclude (file_row_number) from staged order by file_row_number
on conflict do nothing
"""

# The earliest anonymousId -> userId link of the file's events (from events carrying both, and
# from alias: previousId), ties to the first in the file; an earlier link replaces a stored
# later one, as app/storage/duckdb_events.py does per group of events.
_UPSERT_LINKS = """
insert into identity_links
with candidates as (
    select anonymous_id as anon, user_id, occurred_at, file_row_number, 1 as position
    from staged where user_id is not null
    union all
    select previous_id, user_id, occurred_at, file_row_number, 2
    from staged where user_id is not null
)
select anon, user_id, occurred_at
from candidates
where anon is not null and anon <> user_id
qualify row_number() over (partition by anon order by occurred_at, file_row_number, position) = 1
on conflict (anonymous_id) do update
    set user_id = excluded.user_id, linked_at = excluded.linked_at
    where excluded.linked_at < identity_links.linked_at
"""


def _generate(size: Size) -> Path:
    folder = DATA / f"parquet-u{size.users}-s{size.seed}"
    done = folder / "done.json"
    if done.is_file():
        return folder
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "data" / "sample" / "generate.py"), "--users", str(size.users),
         "--seed", str(size.seed), "--out", str(folder), "--format", "parquet"],
        check=True, cwd=ROOT,
    )
    done.write_text(json.dumps({"seconds": time.perf_counter() - started}))
    return folder


def bulk_load(conn: duckdb.DuckDBPyConnection, files: list[Path]) -> None:
    """The Parquet files into events and identity_links, one file per transaction, in order."""
    for path in files:
        conn.begin()
        conn.execute(_STAGE_FILE, {"source": SOURCE, "path": str(path)})
        conn.execute(_INSERT_EVENTS)
        conn.execute(_UPSERT_LINKS)
        conn.execute("drop table staged")
        conn.commit()


def verify_load(db: Path, first_file: Path, work: Path) -> int:
    """Imports `first_file` through the importer into a separate database and requires the
    bulk-loaded rows and links of that file to equal it; returns the rows compared."""
    from app.importer import import_files
    from app.storage import Storage

    small = work / "importer-check.duckdb"
    for stale in (small, small.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    storage = Storage(str(small))
    try:
        import_files(storage, [first_file], source=SOURCE, max_event_bytes=1 << 20)
    finally:
        storage.close()
    with duckdb.connect(str(db)) as conn:
        conn.execute(f"attach '{small}' as imported (read_only)")
        columns = ", ".join(
            f"{name}::varchar" if kind == "JSON" else name
            for name, kind in conn.execute(
                "select column_name, data_type from information_schema.columns where "
                "table_catalog = 'imported' and table_name = 'events' order by ordinal_position"
            ).fetchall()
        )
        compared = conn.execute("select count(*) from imported.events").fetchone()
        bulk = "events semi join imported.events using (source, message_id)"
        missing = conn.execute(
            f"select count(*) from (select {columns} from imported.events except all "
            f"select {columns} from {bulk})"
        ).fetchone()
        extra = conn.execute(
            f"select count(*) from (select {columns} from {bulk} except all "
            f"select {columns} from imported.events)"
        ).fetchone()
        links = conn.execute(
            "select count(*) from ((select * from imported.identity_links except all "
            "select * from identity_links semi join imported.identity_links using (anonymous_id)) "
            "union all (select * from identity_links semi join imported.identity_links "
            "using (anonymous_id) except all select * from imported.identity_links))"
        ).fetchone()
        conn.execute("detach imported")
    assert compared and missing and extra and links
    if missing[0] or extra[0] or links[0]:
        raise RuntimeError(
            f"the bulk load differs from the importer on {first_file.name}: {missing[0]} rows "
            f"missing or different, {extra[0]} rows extra, {links[0]} identity links differ"
        )
    small.unlink(missing_ok=True)
    return int(compared[0])


def build(size: Size) -> tuple[Path, dict[str, Any]]:
    """The size's database, built once and kept under bench/data/."""
    db = DATA / f"report-{size.label}-u{size.users}-s{size.seed}.duckdb"
    info_path = db.with_suffix(".json")
    if db.is_file() and info_path.is_file():
        info: dict[str, Any] = json.loads(info_path.read_text())
        return db, info
    import yaml

    from app import launches
    from app.queries import schema_statements
    from app.storage import Storage

    folder = _generate(size)
    files = sorted(folder.glob("events-*.parquet"))
    partial = db.with_suffix(".partial")
    for stale in (partial, Path(f"{partial}.wal")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(partial)) as conn:
        for _, statement in schema_statements():
            conn.execute(statement)
        bulk_load(conn, files)
        counted = conn.execute("select count(*) from events").fetchone()
        conn.execute("checkpoint")
    load_seconds = time.perf_counter() - started
    storage = Storage(str(partial))
    try:
        for path in sorted((folder / "launches").glob("*.yaml")):
            spec = launches.parse_spec(yaml.safe_load(path.read_text(encoding="utf-8")))
            launches.put_launch(storage, spec, by="bench", now=datetime(2026, 8, 1))
    finally:
        storage.close()
    checked = verify_load(partial, files[0], DATA)
    with duckdb.connect(str(partial)) as conn:
        conn.execute("checkpoint")  # nothing left in a WAL that the rename would orphan
    partial.replace(db)
    assert counted is not None
    info = {"events": int(counted[0]), "load_seconds": load_seconds, "verified_rows": checked}
    info_path.write_text(json.dumps(info))
    return db, info


# -- measuring --------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_clickhouse(db: Path) -> tuple[Path, float]:
    """The DuckDB database `db` copied into a chDB folder beside it, once (`landed migrate`'s
    path: a backup, then a restore into ClickHouse with the row counts checked); the folder
    and the seconds the copy took."""
    import shutil
    import tempfile

    from app.backup import migrate
    from app.storage import Storage

    folder = db.with_suffix(".chdb")
    done = folder / "migrated.json"
    if done.is_file():
        return folder, float(json.loads(done.read_text())["seconds"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(dir=DATA) as via,
        Storage(str(db)) as source,
        Storage(clickhouse_url=clickhouse_url(folder)) as target,
    ):
        migrate(source, target, Path(via) / "backup")
    seconds = time.perf_counter() - started
    done.write_text(json.dumps({"seconds": seconds}))
    return folder, seconds


def clickhouse_url(folder: Path) -> str:
    return f"chdb://{folder.resolve()}?database=landed"


def measure(kind: str, db: str, key: str, as_of: datetime) -> dict[str, Any]:
    """One cold measurement in this (fresh) process: seconds, peak RSS and headline counts.
    kind: pipeline (the report on DuckDB), clickhouse (the report on chDB; db is its folder)
    or sql (the hand-written reference SQL on DuckDB)."""
    if kind in ("pipeline", "clickhouse"):
        import app.reports
        from app.reports import ReportService
        from app.storage import Storage

        stages: dict[str, float] = {}

        def timed(name: str, function: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                begun = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    stages[name] = stages.get(name, 0.0) + time.perf_counter() - begun

            return wrapper

        storage = Storage(clickhouse_url=clickhouse_url(Path(db))) if kind == "clickhouse" else Storage(db)
        # Where the time goes: the three DuckDB selects and the Polars computation (the rest is
        # Arrow -> Polars conversion and loading the launch).
        for method in ("launch_activity", "launch_signals", "launch_traits"):
            setattr(storage, method, timed(method, getattr(storage, method)))
        # app.reports calls compute_report by its module-level name: wrap it there.
        compute = getattr(app.reports, "compute_report")  # noqa: B009
        setattr(app.reports, "compute_report", timed("compute_report", compute))  # noqa: B010
        try:
            started, cpu_started = time.perf_counter(), time.process_time()
            report = ReportService(storage).report(key, as_of=as_of, segment="plan")
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        finally:
            setattr(app.reports, "compute_report", compute)  # noqa: B010
            storage.close()
        c = report.counts
        counts = [c.active, c.exposed, c.adopters, c.tried, c.repeated, c.converted]
        return {"seconds": seconds, "cpu_seconds": cpu, "peak_mib": _peak_rss_mib(),
                "counts": counts, "stages": stages}
    else:
        from app import launches
        from app.storage import Storage

        storage = Storage(db)
        try:
            spec = launches.load_launch(storage, key).spec
        finally:
            storage.close()
        with duckdb.connect(db, read_only=True) as conn:
            started, cpu_started = time.perf_counter(), time.process_time()
            results = reference_metrics(conn, reference_params(spec, as_of))
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        s = results["summary"][0]
        counts = [s[k] for k in ("active", "exposed", "adopters", "tried", "repeated",
                                 "converted")]
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mib": _peak_rss_mib(), "counts": counts}


def measure_in_subprocess(kind: str, db: Path) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.report", "measure", kind, str(db), LAUNCH_KEY,
         AS_OF.isoformat()],
        check=True, cwd=ROOT, capture_output=True, text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def sizes() -> list[Size]:
    return [*SIZES, BIG] if os.environ.get("BENCH_BIG") == "1" else list(SIZES)


def run() -> list[Row]:
    rows: list[Row] = []
    DATA.mkdir(parents=True, exist_ok=True)
    # Other work on this 2-core machine stretches wall times; the load average says how much.
    rows.append(Row(NAME, "load average (1 min) before measuring", os.getloadavg()[0], ""))
    for size in sizes():
        db, info = build(size)
        events = info["events"]
        label = f"{size.label} ({events / 1e6:.2f}M events)"
        # Alternated, so load from other work on the machine hits both alike.
        pipeline: list[dict[str, Any]] = []
        reference: list[dict[str, Any]] = []
        for _ in range(REPEATS):
            pipeline.append(measure_in_subprocess("pipeline", db))
            reference.append(measure_in_subprocess("sql", db))
        p_time = statistics.median(m["seconds"] for m in pipeline)
        s_time = statistics.median(m["seconds"] for m in reference)
        agree = float(pipeline[0]["counts"] == reference[0]["counts"])
        p_cpu = statistics.median(m["cpu_seconds"] for m in pipeline)
        s_cpu = statistics.median(m["cpu_seconds"] for m in reference)
        rows += [
            Row(NAME, f"{label}: report (ReportService, cold) vs hand-written SQL", p_time, "s",
                s_time),
            Row(NAME, f"{label}: hand-written SQL (reference_metrics.sql)", s_time, "s"),
            Row(NAME, f"{label}: report CPU time (all threads) vs hand-written SQL's", p_cpu,
                "s", s_cpu),
            Row(NAME, f"{label}: report peak memory (VmHWM of its process)",
                max(m["peak_mib"] for m in pipeline), "MiB"),
            Row(NAME, f"{label}: SQL peak memory (VmHWM of its process)",
                max(m["peak_mib"] for m in reference), "MiB"),
            Row(NAME, f"{label}: report and SQL agree on A, E, U, tried, repeated, converted",
                agree, "yes=1"),
        ]
        bar = {"10M": 1.0, "100M": 10.0}.get(size.label)
        if bar is not None:
            rows.append(Row(NAME, f"{label}: report vs the issue's bar", p_time, "s", bar))
        if size.label == "100M":
            rows.append(Row(NAME, f"{label}: report peak memory vs the issue's bar",
                            max(m["peak_mib"] for m in pipeline), "MiB", 4096))
        for stage in pipeline[0]["stages"]:
            rows.append(Row(NAME, f"{label}: report stage {stage} (median)",
                            statistics.median(m["stages"][stage] for m in pipeline), "s", p_time))
        rows.append(Row(NAME, f"{label}: one-time build (DuckDB bulk load of the Parquet)",
                        info["load_seconds"], "s"))
        if size.label == "10M" or os.environ.get("BENCH_CLICKHOUSE_ALL") == "1":
            rows += clickhouse_rows(label, db, pipeline)
    return rows


def clickhouse_rows(label: str, db: Path, pipeline: list[dict[str, Any]]) -> list[Row]:
    """The same report on ClickHouse (chDB, in the report's own process), next to DuckDB's
    measured alternately in the same run, and whether every headline count agrees."""
    folder, copy_seconds = build_clickhouse(db)
    # Alternated with DuckDB runs of its own, so load from other work hits both alike.
    measured: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    for _ in range(REPEATS):
        measured.append(measure_in_subprocess("clickhouse", folder))
        baseline.append(measure_in_subprocess("pipeline", db))
    c_time = statistics.median(m["seconds"] for m in measured)
    duckdb_time = statistics.median(m["seconds"] for m in baseline)
    rows = [
        Row(NAME, f"{label}: report on ClickHouse (chDB, cold) vs on DuckDB", c_time, "s", duckdb_time),
        Row(NAME, f"{label}: ClickHouse and DuckDB reports agree on every headline count",
            float(measured[0]["counts"] == pipeline[0]["counts"]), "yes=1"),
        Row(NAME, f"{label}: report on ClickHouse peak memory (VmHWM of its process)",
            max(m["peak_mib"] for m in measured), "MiB"),
        Row(NAME, f"{label}: one-time copy into chDB (landed migrate's path)", copy_seconds, "s"),
    ]
    for stage in measured[0]["stages"]:
        rows.append(Row(NAME, f"{label}: ClickHouse report stage {stage} (median)",
                        statistics.median(m["stages"][stage] for m in measured), "s", c_time))
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["measure"] and len(argv) == 5:
        kind, db, key, as_of = argv[1:]
        print(json.dumps(measure(kind, db, key, datetime.fromisoformat(as_of))))
        return 0
    if argv[:1] == ["build"]:
        for size in sizes():
            print(size.label, build(size))
        return 0
    from bench import markdown_table

    print(markdown_table(run()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
