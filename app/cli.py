"""The `landed` command line: serve the API, import events, manage keys (and, as later parts
arrive, launches, reports and the demo). Each command opens the database itself: stop the
service first, since DuckDB lets one process write a database file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from app.errors import LandedError
from app.settings import Settings
from app.storage import SCOPES, Storage

if TYPE_CHECKING:
    from app.demo import DemoLoad

IMPORT_SOURCE = "import"


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in (("db_path", getattr(args, "db", None)),) if v is not None}
    for name in ("host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _exit_cleanly_on_sigterm() -> None:
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again; ending with a
    # normal exit (status 0) tells a supervisor the shutdown was orderly.
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


# How long a thread may hold the GIL while another waits for it (Python's default is 5 ms).
# The writer thread calls into DuckDB, whose Python layer takes the GIL back several times per
# statement; each time it waited for the event loop's parsing to yield, so a 200-event commit
# took 5-10 ms instead of 3. Measured with `make bench` (ingest) on 2 cores: 19,000 events/s
# at 5 ms, about 30,000 at 50 us.
GIL_SWITCH_INTERVAL_SECONDS = 50e-6


def _serve(app: Any, settings: Settings) -> None:
    import uvicorn

    _exit_cleanly_on_sigterm()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


def cmd_serve(args: argparse.Namespace) -> int:
    from app.main import create_app

    settings = _settings(args)
    print(f"Landed on http://{settings.host}:{settings.port}  (database: {settings.db_path})")
    _serve(create_app(settings), settings)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.importer import import_files, progress_total

    settings = _settings(args)
    paths = [Path(p) for p in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise LandedError(f"no such file: {', '.join(missing)}")
    with Storage.open(settings) as storage:
        source = IMPORT_SOURCE
        if args.source:
            match = [k for k in storage.list_keys() if k.name == args.source and k.scope == "write"]
            if not match:
                raise LandedError(f"no write key named {args.source!r}; see `landed keys list`")
            source = match[0].key_id
        bars: dict[Path, tqdm[Any]] = {}

        def progress(path: Path, units: int) -> None:
            if path not in bars:
                total = progress_total(path) or None
                bars[path] = tqdm(
                    total=total,
                    desc=path.name,
                    unit="B" if path.suffix != ".parquet" else " rows",
                    unit_scale=True,
                    disable=args.quiet,
                    file=sys.stderr,
                )
            bars[path].update(units)

        summary = import_files(
            storage, paths, source=source, max_event_bytes=settings.max_event_bytes, on_progress=progress
        )
        for bar in bars.values():
            bar.close()
    print(
        f"imported {summary.files} file(s): {summary.events} events, {summary.inserted} inserted, "
        f"{summary.duplicates} duplicates, {summary.rejected} rejected"
    )
    for reason, count in summary.reasons.most_common():
        print(f"  rejected {count}: {reason}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    with Storage.open(_settings(args)) as storage:
        if args.keys_command == "create":
            key, secret = storage.create_key(args.name, args.scope)
            print(f"created {key.scope} key {key.name!r} (id {key.key_id}). It is shown only once:")
            print(secret)
        elif args.keys_command == "list":
            print(f"{'id':<14}{'name':<20}{'scope':<8}{'created (UTC)':<21}revoked")
            for key in storage.list_keys():
                revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
                print(
                    f"{key.key_id:<14}{key.name:<20}{key.scope:<8}"
                    f"{key.created_at.isoformat(timespec='seconds'):<21}{revoked}"
                )
        else:
            for key_id in storage.revoke_key(args.key):
                print(f"revoked key {key_id}")
    return 0


def _spec_files(targets: list[str]) -> list[Path]:
    files: list[Path] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml", ".json"}))
        elif path.is_file():
            files.append(path)
        else:
            raise LandedError(f"no such file or folder: {target}")
    return files


def cmd_launch(args: argparse.Namespace) -> int:
    import getpass

    import yaml

    from app import launches
    from app.ingest import now_utc

    with Storage.open(_settings(args)) as storage:
        if args.launch_command == "apply":
            failures = 0
            for path in _spec_files(args.targets):
                try:
                    data = yaml.safe_load(path.read_text(encoding="utf-8"))
                    spec = launches.parse_spec(data)
                    _, result = launches.put_launch(
                        storage, spec, by=args.by or getpass.getuser(), now=now_utc()
                    )
                    print(f"{path}: {spec.key} {result}")
                except yaml.YAMLError as error:
                    failures += 1
                    print(f"{path}: not valid YAML: {error}", file=sys.stderr)
                except (UnicodeDecodeError, OSError) as error:
                    failures += 1
                    print(f"{path}: cannot read the file as UTF-8 text: {error}", file=sys.stderr)
                except LandedError as error:
                    failures += 1
                    print(
                        f"{path}: {error.message}" + (f" ({error.detail})" if error.detail else ""),
                        file=sys.stderr,
                    )
            return 1 if failures else 0
        if args.launch_command == "list":
            now = now_utc()
            print(f"{'key':<24}{'launched (UTC)':<22}{'days':<6}{'live':<6}{'kpis':<6}owner")
            for state in launches.list_launches(storage):
                spec = state.spec
                days = (now - state.launched_at).days
                print(
                    f"{spec.key:<24}{state.launched_at.isoformat(timespec='minutes'):<22}"
                    f"{days:<6}{'yes' if state.is_locked(now) else 'no':<6}{len(spec.kpis):<6}{spec.owner}"
                )
            return 0
        if args.launch_command == "show":
            state = launches.load_launch(storage, args.key)
            print(
                yaml.safe_dump(state.spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
                end="",
            )
            print("# history")
            for item in launches.history(state):
                reason = f" ({item.reason})" if item.reason else ""
                print(f"# {item.at.isoformat(timespec='seconds')}Z {item.by}: {item.summary}{reason}")
            return 0
        if args.launch_command == "amend":
            change: dict[str, object] = {"id": args.kpi}
            for field in ("target", "min_sample", "by_day", "metric", "comparator"):
                value = getattr(args, field)
                if value is not None:
                    change[field] = value
            try:
                request = launches.AmendmentRequest.model_validate(
                    {"reason": args.reason, "kpis": [change], "author": args.by}
                )
            except ValidationError as error:
                raise LandedError("the amendment is not valid", launches.describe(error)) from None
            launches.amend_launch(storage, args.key, request, by=args.by or getpass.getuser(), now=now_utc())
            print(f"amended {args.key}: KPI {args.kpi}")
            return 0
    return 2


def _as_of(value: str | None) -> datetime:
    from app.ingest import now_utc
    from app.launches import naive_utc
    from app.reports import default_as_of

    if value is None:
        return default_as_of(now_utc())
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise LandedError(f"--as-of {value!r} is not an ISO 8601 time", "e.g. 2026-10-20T00:00:00Z") from None
    return naive_utc(parsed)


def cmd_report(args: argparse.Namespace) -> int:
    from app.reports import ReportService
    from dashboards.markdown import report_markdown

    with Storage.open(_settings(args)) as storage:
        report = ReportService(storage).report(args.key, as_of=_as_of(args.as_of), segment=args.segment)
    print(report_markdown(report) if args.format == "md" else report.model_dump_json(indent=2))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from app.reports import ReportService
    from pipelines.readiness import describe_matcher

    with Storage.open(_settings(args)) as storage:
        readiness = ReportService(storage).readiness(args.key, as_of=_as_of(args.as_of))
    print(
        f"{readiness.launch_key}: {'live' if readiness.live else 'not live yet'}; "
        f"as of {readiness.as_of:%Y-%m-%d %H:%M}Z"
    )
    print(f"{'signal':<10}{'events 7d':>10}{'users 7d':>10}  {'last seen (UTC)':<18}matcher")
    for check in readiness.matchers:
        last = f"{check.last_seen_at:%Y-%m-%d %H:%M}" if check.last_seen_at else "never"
        print(
            f"{check.signal:<10}{check.events_7d:>10,}{check.users_7d:>10,}  {last:<18}"
            f"{describe_matcher(check.matcher)}"
        )
    if readiness.expected_active is not None:
        print(
            "\nExpected active audience over the window, from recent traffic: "
            f"about {readiness.expected_active:,} users"
        )
        for kpi in readiness.kpis:
            print(f"  {kpi.message}")
    if readiness.warnings:
        print("\nWarnings:")
        for warning in readiness.warnings:
            print(f"  - {warning}")
    else:
        print("\nNo warnings.")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from app.ingest import now_utc
    from app.reports import ReportService
    from app.review import current_week, review_sections
    from dashboards.pages import review_markdown, review_page

    now = now_utc()
    week = args.week or current_week(now)
    with Storage.open(_settings(args)) as storage:
        sections = review_sections(storage, ReportService(storage), week=week, now=now)
    if args.format == "md":
        text = review_markdown(week, sections, generated_at=now)
    else:
        text = review_page(week, sections, generated_at=now, self_contained=True)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote the {week} review ({len(sections)} launches) to {args.out}")
    else:
        print(text)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from app.backup import backup

    with Storage.open(_settings(args)) as storage:
        counts = backup(storage, Path(args.out))
    print(f"backed up to {args.out}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from app.backup import restore

    with Storage.open(_settings(args)) as storage:
        counts = restore(storage, Path(args.source))
    print(f"restored from {args.source}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    return 0


DEMO_DB = "landed-demo.duckdb"


def _print_demo_banner(demo: DemoLoad, settings: Settings, *, seconds: float) -> None:
    db_file = Path(settings.db_path)
    loaded = demo.imported
    print(
        f"Imported {loaded.events:,} events ({loaded.inserted:,} stored, {loaded.duplicates:,} duplicate "
        f"deliveries dropped) and {len(demo.launch_keys)} launches in {seconds:.1f} s."
    )
    url = f"http://{settings.host}:{settings.port}"
    print(
        f"""
Landed demo is running.

  Dashboards:  {url}/            sign in with the read key below
  Scorecards:  {url}/launches/smart-export   (missed)
               {url}/launches/team-workspaces (landed)
               {url}/launches/ai-summaries    (still in its window: provisional)
  API docs:    {url}/docs

  Read key  (dashboards, reports): {demo.read_key}
  Write key (send events):         {demo.write_key}
  Admin key (launches, keys):      {demo.admin_key}

  Try:  curl -u {demo.read_key}: {url}/api/launches/smart-export/report

Press Ctrl+C to stop. The demo database is {db_file}; it is rebuilt on every `make demo`.
""",
        flush=True,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    import time
    from datetime import UTC, datetime

    from app.demo import load_sample
    from app.main import create_app

    settings = Settings(db_path=args.db or DEMO_DB, **({"port": args.port} if args.port else {}))
    db_file = Path(settings.db_path)
    for stale in (db_file, db_file.with_name(db_file.name + ".wal")):
        stale.unlink(missing_ok=True)
    started = time.monotonic()
    print(f"Loading the sample data into a fresh {db_file} ...", flush=True)
    with Storage.open(settings) as storage:
        demo = load_sample(storage, today=datetime.now(UTC), max_event_bytes=settings.max_event_bytes)
        _print_demo_banner(demo, settings, seconds=time.monotonic() - started)
        _serve(create_app(settings, storage), settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="landed", description="Launch analytics: did it land?")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", help="database file (default: $LANDED_DB_PATH or ./landed.duckdb)")
        return p

    serve = with_db(sub.add_parser("serve", help="run the HTTP service"))
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.set_defaults(func=cmd_serve)

    imp = with_db(sub.add_parser("import", help="backfill events from NDJSON (.gz) or Parquet files"))
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument("--source", help="name of the write key the events came through (for dedupe)")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_import)

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = with_db(keys_sub.add_parser("create", help="create a key and print it once"))
    create.add_argument("--name", required=True, help="what the key is for, e.g. web, ios, dashboards")
    create.add_argument(
        "--scope",
        choices=SCOPES,
        default="write",
        help="write: send events; read: reports and dashboards; admin: launches and keys",
    )
    with_db(keys_sub.add_parser("list", help="list keys (never their secrets)"))
    revoke = with_db(keys_sub.add_parser("revoke", help="revoke a key by id or name"))
    revoke.add_argument("key", metavar="KEY_ID_OR_NAME")
    keys.set_defaults(func=cmd_keys)

    launch = sub.add_parser("launch", help="define launches from spec files, list, show and amend them")
    launch_sub = launch.add_subparsers(dest="launch_command", required=True, metavar="ACTION")
    apply = with_db(
        launch_sub.add_parser("apply", help="create or update launches from YAML/JSON files or folders")
    )
    apply.add_argument("targets", nargs="+", metavar="FILE_OR_DIR")
    apply.add_argument("--by", help="who records the change (default: your user name)")
    with_db(launch_sub.add_parser("list", help="list launches"))
    show = with_db(launch_sub.add_parser("show", help="print a launch's current spec and its history"))
    show.add_argument("key")
    amend = with_db(launch_sub.add_parser("amend", help="change a KPI after launch, with a reason"))
    amend.add_argument("key")
    amend.add_argument(
        "--kpi", required=True, help="the KPI id (a new id adds a KPI, flagged set after launch)"
    )
    amend.add_argument("--reason", required=True, help="why the KPI changes after launch")
    amend.add_argument("--target", type=float)
    amend.add_argument("--min-sample", dest="min_sample", type=int)
    amend.add_argument("--by-day", dest="by_day", type=int)
    amend.add_argument("--metric", help="for a new KPI")
    amend.add_argument("--comparator", choices=[">=", "<="], help="for a new KPI")
    amend.add_argument("--by", help="who asks (default: your user name)")
    check = with_db(
        launch_sub.add_parser("check", help="readiness: do the matchers match events? can KPIs be judged?")
    )
    check.add_argument("key")
    check.add_argument("--as-of", dest="as_of", help="check as of this ISO time (default now)")
    check.set_defaults(func=cmd_check)
    launch.set_defaults(func=cmd_launch)

    report = with_db(sub.add_parser("report", help="print a launch report as JSON or Markdown"))
    report.add_argument("key")
    report.add_argument("--as-of", dest="as_of", help="report as of this ISO time (default now)")
    report.add_argument("--segment", help="break each rate down by this trait, e.g. plan")
    report.add_argument("--format", choices=["json", "md"], default="json")
    report.set_defaults(func=cmd_report)

    review = with_db(
        sub.add_parser("review", help="the weekly review as one self-contained HTML file or Markdown")
    )
    review.add_argument("--week", help="ISO week such as 2026-W47 (default: this week)")
    review.add_argument("--out", help="write to this file (default: print)")
    review.add_argument("--format", choices=["html", "md"], default="html")
    review.set_defaults(func=cmd_review)

    backup = with_db(sub.add_parser("backup", help="write every table to Parquet files in a new folder"))
    backup.add_argument("--out", required=True, help="an empty or new folder")
    backup.set_defaults(func=cmd_backup)
    restore = with_db(sub.add_parser("restore", help="load a backup folder into a new, empty database"))
    restore.add_argument("source", metavar="DIR")
    restore.set_defaults(func=cmd_restore)

    demo = sub.add_parser("demo", help="load the sample data into a fresh database and serve it")
    demo.add_argument("--db", help=f"demo database file, rebuilt each time (default {DEMO_DB})")
    demo.add_argument("--port", type=int, help="port (default 8000)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ValidationError as error:
        print(f"landed: invalid configuration: {error}", file=sys.stderr)
        return 2
    except LandedError as error:
        print(f"landed: {error.message}" + (f" ({error.detail})" if error.detail else ""), file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
