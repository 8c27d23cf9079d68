"""The `landed` command line: serve the API and the demo; manage keys and launches, import
events, print reports and the weekly review, back up and restore.

DuckDB lets one process write a database file, so the commands that read or change data are
clients: they go through the running service's API when there is one (`LANDED_URL` and
`LANDED_KEY`, or the service announced beside the database, see `app.discovery`), and open the
file themselves only when no service runs (`app.client`). Either way they print the same and
exit with the same codes; only `restore`, which fills a new database, always works offline.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from app.client import Backend, Progress, announced, backend, target
from app.errors import LandedError, NotFound
from app.settings import Settings
from app.storage import SCOPES, Storage

if TYPE_CHECKING:
    from app.demo import DemoLoad
    from pipelines.launch import LaunchFile
    from pipelines.report_models import TargetHint

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
# `launch plan` exit codes, so CI can gate a merge: nothing would change, something would.
PLAN_NO_CHANGES = 0
PLAN_CHANGES = 2
# `launch check` exit code when a matcher matches nothing or a KPI cannot be judged.
CHECK_WARNINGS = 2


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


def _serve(
    app: Any,
    settings: Settings,
    *,
    on_started: Callable[[], object] | None = None,
    on_stopping: Callable[[], object] | None = None,
) -> None:
    """Serves `app` in the foreground until SIGTERM or Ctrl+C. `on_started` runs once the
    socket listens, `on_stopping` as soon as shutdown begins (before in-flight requests end)."""
    import uvicorn

    from app.observability import serve_log_config

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_started is not None:
                on_started()

        async def shutdown(self, sockets: Any = None) -> None:
            if on_stopping is not None:
                on_stopping()
            await super().shutdown(sockets=sockets)

    _exit_cleanly_on_sigterm()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    # The service writes its own access log (request id, route template, duration); uvicorn's
    # would be a second line per request.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        log_config=serve_log_config(),
    )
    server = Server(config)
    # As uvicorn.run: Ctrl+C (SIGINT) ends the loop with KeyboardInterrupt once shutdown is done.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(3)  # as uvicorn.run: the socket could not be opened


def _refuse_second_service(settings: Settings) -> None:
    running = announced(settings)
    if running is not None:
        raise LandedError(
            f"a Landed service already runs on {settings.db_path}, at {running.url} (process {running.pid})",
            "stop it first, or use another --db",
        )


def _revoke_local_key(storage: Storage) -> None:
    """Revokes the local CLI key a service that did not stop cleanly left live."""
    from app.discovery import LOCAL_KEY_NAME

    with contextlib.suppress(NotFound):
        storage.revoke_key(LOCAL_KEY_NAME)


def _serve_announced(app: Any, storage: Storage, settings: Settings) -> None:
    """Serves `app` and announces it beside the database with a fresh local admin key, so the
    CLI on this machine goes through the service; withdraws both when the service stops."""
    from app import discovery

    _revoke_local_key(storage)
    _, secret = storage.create_key(discovery.LOCAL_KEY_NAME, "admin")
    url = discovery.service_url(settings.host, settings.port)

    def announce() -> None:
        # Serving matters more than being found: without the file the CLI needs LANDED_URL.
        try:
            discovery.announce(settings.db_path, url=url, key=secret)
        except OSError as error:
            print(
                f"landed: cannot write {discovery.service_file(settings.db_path)} ({error}); "
                "the command line on this machine needs LANDED_URL and LANDED_KEY",
                file=sys.stderr,
                flush=True,
            )

    try:
        _serve(app, settings, on_started=announce, on_stopping=lambda: discovery.withdraw(settings.db_path))
    finally:
        discovery.withdraw(settings.db_path)
        with contextlib.suppress(LandedError):
            storage.revoke_key(discovery.LOCAL_KEY_NAME)


def _print_first_admin_key(secret: str, url: str) -> None:
    print(
        f"""
No admin key existed, so Landed created one. It is shown only this once; keep it as a secret:

  Admin key: {secret}

Create the keys your apps and dashboards use with it, while the service runs:

  curl -u "{secret}:" {url}/api/keys -H 'Content-Type: application/json' -d '{{"name": "web"}}'
""",
        flush=True,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from app.admin import first_admin_key
    from app.main import create_app

    settings = _settings(args)
    _refuse_second_service(settings)
    url = f"http://{settings.host}:{settings.port}"
    with Storage.open(settings) as storage:
        # Before looking for a live admin key: a stale local CLI key must not count as one.
        _revoke_local_key(storage)
        # A new database gets an admin key at once, so nobody needs the command line first.
        created = first_admin_key(storage)
        print(f"Landed on {url}  (database: {settings.db_path})", flush=True)
        if created is not None:
            _print_first_admin_key(created, url)
        _serve_announced(create_app(settings, storage), storage, settings)
    return 0


@contextlib.contextmanager
def _backend(args: argparse.Namespace) -> Iterator[Backend]:
    """The running service the command goes through, or the database file when none runs."""
    where = target(
        getattr(args, "url", None), getattr(args, "api_key", None), getattr(args, "db", None) is not None
    )
    with backend(where, lambda: _settings(args)) as chosen:
        yield chosen


def _error_text(error: LandedError) -> str:
    return error.message + (f" ({error.detail})" if error.detail else "")


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.client import import_source

    paths = [Path(p) for p in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise LandedError(f"no such file: {', '.join(missing)}")

    def bar(path: Path, total: int | None, unit: str) -> Progress:
        return tqdm(
            total=total,
            desc=path.name,
            unit=unit,
            unit_scale=True,
            disable=args.quiet,
            file=sys.stderr,
        )

    with _backend(args) as data:
        source = import_source(data.list_keys(), args.source).key_id if args.source else None
        summary = data.import_files(paths, source=source, progress=bar)
    print(
        f"imported {summary.files} file(s): {summary.events} events, {summary.inserted} inserted, "
        f"{summary.duplicates} duplicates, {summary.rejected} rejected"
    )
    for reason, count in summary.reasons.most_common():
        print(f"  rejected {count}: {reason}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    with _backend(args) as data:
        if args.keys_command == "create":
            key, secret = data.create_key(args.name, args.scope, list(args.origin or ()))
            print(f"created {key.scope} key {key.name!r} (id {key.key_id}). It is shown only once:")
            print(secret)
        elif args.keys_command == "list":
            print(f"{'id':<14}{'name':<20}{'scope':<8}{'origins':<32}{'created (UTC)':<21}revoked")
            for key in data.list_keys():
                revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
                # Only write keys send from browsers; "any" is a write key without an origin list.
                origins = ",".join(key.origins) or ("any" if key.scope == "write" else "-")
                print(
                    f"{key.key_id:<14}{key.name:<20}{key.scope:<8}{origins:<31} "
                    f"{key.created_at.isoformat(timespec='seconds'):<21}{revoked}"
                )
        else:
            for key_id in data.revoke_key(args.key):
                print(f"revoked key {key_id}")
    return 0


def _spec_files(targets: list[str]) -> list[Path]:
    """The spec files named, and those in the folders named and their sub-folders (hidden
    folders such as .git aside), each folder's in path order."""
    files: list[Path] = []
    for name in targets:
        path = Path(name)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix in SPEC_SUFFIXES
                    and p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            raise LandedError(f"no such file or folder: {name}")
    return files


def _read_spec_file(path: Path) -> LaunchFile:
    """A spec file (YAML; JSON is YAML too) as a `LaunchFile`; LandedError naming the problem."""
    import yaml

    from app import launches

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise LandedError(f"not valid YAML: {error}") from None
    except (UnicodeDecodeError, OSError) as error:
        raise LandedError(f"cannot read the file as UTF-8 text: {error}") from None
    return launches.parse_launch_file(data)


# Errors that end the whole run, not just one file: the service cannot be reached or used.
_FATAL_CODES = {"unreachable", "unauthorized", "forbidden"}


def _apply_all(args: argparse.Namespace, *, dry_run: bool) -> int:
    by = args.by or getpass.getuser()
    failures = 0
    counts = {"created": 0, "updated": 0, "amended": 0, "unchanged": 0}
    with _backend(args) as data:
        for path in _spec_files(args.targets):
            try:
                file = _read_spec_file(path)
                applied = data.apply(file, by=by, dry_run=dry_run)
            except LandedError as error:
                if error.code in _FATAL_CODES:
                    raise
                failures += 1
                print(f"{path}: {_error_text(error)}", file=sys.stderr)
                continue
            counts[applied.result] = counts.get(applied.result, 0) + 1
            if not dry_run:
                print(f"{path}: {file.key} {applied.result}")
                continue
            would = "unchanged" if applied.result == "unchanged" else f"would be {applied.result}"
            print(f"{path}: {file.key} {would}")
            for line in applied.changes:
                print(f"    {line}")
            if applied.result == "amended" and file.amendment is not None:
                print(f"    reason: {file.amendment.reason}")
            # Information beside the plan, never a warning: it leaves the exit code alone.
            _print_hints(applied.hints, indent="    ")
    if dry_run:
        errors = f", {failures} with errors" if failures else ""
        print(
            f"Plan: {counts['created']} to create, {counts['updated']} to update, "
            f"{counts['amended']} to amend, {counts['unchanged']} unchanged{errors}."
        )
        if failures:
            return 1
        return PLAN_CHANGES if counts["created"] + counts["updated"] + counts["amended"] else PLAN_NO_CHANGES
    return 1 if failures else 0


def _grounded(hints: Sequence[TargetHint]) -> list[TargetHint]:
    """The hints with past launches behind them: before the first launch closes there is
    nothing to ground a target on, and a line per KPI saying so would only be noise."""
    return [hint for hint in hints if hint.launches]


def _print_hints(hints: Sequence[TargetHint], *, indent: str) -> None:
    """Each KPI's target hint, and the past launches behind it with what each reached."""
    from pipelines.compare import metric_value_text

    for hint in _grounded(hints):
        print(f"{indent}target {hint.kpi_id}: {hint.sentence}")
        reached = ", ".join(f"{p.name} {metric_value_text(hint.metric, p.value)}" for p in hint.launches)
        print(f"{indent}    {reached}")


def cmd_launch_apply(args: argparse.Namespace) -> int:
    return _apply_all(args, dry_run=False)


def cmd_launch_plan(args: argparse.Namespace) -> int:
    return _apply_all(args, dry_run=True)


def cmd_launch_schema(args: argparse.Namespace) -> int:
    import json

    from pipelines.launch import LaunchFile

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Landed launch spec",
        **{k: v for k, v in LaunchFile.model_json_schema().items() if k != "title"},
    }
    print(json.dumps(schema, indent=2))
    return 0


def cmd_launch_list(args: argparse.Namespace) -> int:
    from app.ingest import now_utc

    with _backend(args) as data:
        rows = data.launches()
    now = now_utc()
    print(f"{'key':<24}{'launched (UTC)':<22}{'days':<6}{'live':<6}{'kpis':<6}owner")
    for row in rows:
        days = (now - row.launched_at).days
        print(
            f"{row.key:<24}{row.launched_at.isoformat(timespec='minutes'):<22}"
            f"{days:<6}{'yes' if row.live else 'no':<6}{row.kpis:<6}{row.owner}"
        )
    return 0


def cmd_launch_show(args: argparse.Namespace) -> int:
    import yaml

    with _backend(args) as data:
        spec, history = data.launch(args.key)
    print(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True), end="")
    print("# history")
    for item in history:
        reason = f" ({item.reason})" if item.reason else ""
        print(f"# {item.at.isoformat(timespec='seconds')}Z {item.by}: {item.summary}{reason}")
    return 0


def cmd_launch_amend(args: argparse.Namespace) -> int:
    from app import launches

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
    with _backend(args) as data:
        data.amend(args.key, request, by=args.by or getpass.getuser())
    print(f"amended {args.key}: KPI {args.kpi}")
    return 0


def cmd_launch_decide(args: argparse.Namespace) -> int:
    from app.decisions import parse_request
    from dashboards.notes import decision_line

    fields = {
        "decision": args.decision,
        "reason": args.reason,
        "decided_by": args.by,
        "follow_up": args.follow_up,
    }
    request = parse_request({k: v for k, v in fields.items() if v is not None})
    with _backend(args) as data:
        decision = data.decide(args.key, request, by=args.by or getpass.getuser())
    from app.page_data import decision_note

    print(f"{args.key}: {decision_line(decision_note(decision))}")
    if decision.decision_id > 1:
        print(f"(supersedes decision {decision.decision_id - 1})")
    return 0


def _as_of(value: str | None) -> datetime | None:
    """--as-of as naive UTC; None (the default: now) when not given."""
    from pipelines.times import naive_utc

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise LandedError(f"--as-of {value!r} is not an ISO 8601 time", "e.g. 2026-10-20T00:00:00Z") from None
    return naive_utc(parsed)


def cmd_report(args: argparse.Namespace) -> int:
    as_of = _as_of(args.as_of)
    with _backend(args) as data:
        if args.format == "md":
            text = data.report_markdown(args.key, as_of, args.segment)
        else:
            text = data.report(args.key, as_of, args.segment).model_dump_json(indent=2)
    print(text)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from pipelines.readiness import describe_matcher

    as_of = _as_of(args.as_of)
    with _backend(args) as data:
        readiness = data.readiness(args.key, as_of)
        hints = data.target_hints(args.key)
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
    if _grounded(hints.hints):
        # What past closed launches reached: information for the targets, never a warning.
        print("\nTargets beside past closed launches:")
        _print_hints(hints.hints, indent="  ")
    if readiness.warnings:
        # A matcher that matches nothing, or a KPI that cannot be judged, fails the check, so
        # CI (or a pre-launch script) stops before a launch goes live unmeasurable.
        print("\nWarnings:")
        for warning in readiness.warnings:
            print(f"  - {warning}")
        return CHECK_WARNINGS
    print("\nNo warnings.")
    return 0


def cmd_review_send(args: argparse.Namespace) -> int:
    with _backend(args) as data:
        week, sent = data.send_review(args.week)
    failed = False
    for line in sent:
        if line.status == "sent":
            print(f"{week} review sent by {line.channel}")
        elif line.status == "taken":
            print(f"{week} review already sent by {line.channel} (each week goes out once per channel)")
        else:
            failed = True
            retry = (
                f"; next attempt {line.next_attempt_at:%Y-%m-%d %H:%M}Z"
                if line.next_attempt_at
                else "; no more automatic attempts"
            )
            print(
                f"landed: the {week} review could not be sent by {line.channel} "
                f"(attempt {line.attempts}): {line.error}{retry}",
                file=sys.stderr,
            )
    return 1 if failed else 0


def cmd_review(args: argparse.Namespace) -> int:
    from app.ingest import now_utc
    from app.page_data import current_week

    if args.send:
        return cmd_review_send(args)
    now = now_utc()
    week = args.week or current_week(now)
    with _backend(args) as data:
        text, launches = data.review(week, args.format, now)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote the {week} review ({launches} launches) to {args.out}")
    else:
        print(text)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    with _backend(args) as data:
        path, counts = data.backup(Path(args.out) if args.out else None)
    print(f"backed up to {path}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from app.backup import restore

    settings = _settings(args)
    running = announced(settings)
    if running is not None:
        raise LandedError(
            f"a Landed service runs on {settings.db_path}, at {running.url}",
            "restore fills a new, empty database: pass another --db, or stop the service",
        )
    with Storage.open(settings) as storage:
        counts = restore(storage, Path(args.source))
    print(f"restored from {args.source}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    import tempfile

    from app.backup import migrate

    settings = _settings(args)
    running = announced(settings)
    if running is not None:
        raise LandedError(
            f"a Landed service runs on {settings.db_path}, at {running.url}",
            "stop it first, or run `landed backup` and restore that backup on the target "
            "(`LANDED_STORAGE=... landed restore DIR`)",
        )
    kind, where = args.to
    if kind == "clickhouse":
        target = Settings(storage="clickhouse", clickhouse_url=where, db_path=settings.db_path)
    elif kind == "duckdb":
        target = Settings(storage="duckdb", db_path=where)
    else:
        raise LandedError(f"--to {kind}: unknown backend", "use `--to clickhouse URL` or `--to duckdb FILE`")
    if (target.storage, target.db_path if target.storage == "duckdb" else None) == (
        settings.storage,
        settings.db_path if settings.storage == "duckdb" else None,
    ) and target.clickhouse_url == settings.clickhouse_url:
        raise LandedError("the source and the target are the same database", "name another --to target")
    with contextlib.ExitStack() as stack:
        via = Path(args.via) if args.via else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        source = stack.enter_context(Storage.open(settings))
        print(f"copying {source.db_path} through {via} ...", flush=True)
        destination = stack.enter_context(Storage.open(target))
        counts = migrate(source, destination, via)
        described = destination.db_path
    copied = ", ".join(f"{t} {n:,}" for t, n in counts.items())
    print(f"migrated to {described}, row counts checked: {copied}")
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
    _print_after_the_verdict(demo, settings)


def _print_after_the_verdict(demo: DemoLoad, settings: Settings) -> None:
    """The demo's decisions and alerts, and how the weekly review is (or would be) delivered."""
    for line in demo.decided:
        print(f"  Decision on record: {line}")
    for message in demo.alerts:
        print(f"  Alert raised:       {message}")
    channels = []
    if settings.smtp_url is not None:
        channels.append(f"by mail to {', '.join(settings.review_recipients)}")
    if settings.webhook_url is not None:
        channels.append("to the webhook")
    if channels:
        print(
            f"  Weekly review:      delivered {' and '.join(channels)} on '{settings.review_schedule}' "
            f"({settings.review_timezone}); send it now with `landed review --send`"
        )
    else:
        print(
            "  Weekly review:      not delivered (no channel configured). To have it sent every Monday "
            "09:00, start the demo with\n"
            "                      LANDED_SMTP_URL=smtp://user:pass@mail.example.com:587 "
            "LANDED_MAIL_FROM=landed@example.com LANDED_REVIEW_TO=team@example.com\n"
            "                      and/or LANDED_WEBHOOK_URL=https://hooks.slack.com/services/...; "
            "then `landed review --send` sends it at once."
        )
    print(flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    import time
    from datetime import UTC, datetime

    from app.demo import load_sample
    from app.main import create_app

    settings = Settings(db_path=args.db or DEMO_DB, **({"port": args.port} if args.port else {}))
    _refuse_second_service(settings)  # before deleting the database it serves
    db_file = Path(settings.db_path)
    for stale in (db_file, db_file.with_name(db_file.name + ".wal")):
        stale.unlink(missing_ok=True)
    started = time.monotonic()
    print(f"Loading the sample data into a fresh {db_file} ...", flush=True)
    with Storage.open(settings) as storage:
        demo = load_sample(storage, today=datetime.now(UTC), max_event_bytes=settings.max_event_bytes)
        _print_demo_banner(demo, settings, seconds=time.monotonic() - started)
        _serve_announced(create_app(settings, storage), storage, settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landed",
        description="Launch analytics: did it land?",
        epilog="Commands that read or change data go through the running service: the one at "
        "$LANDED_URL (with $LANDED_KEY), else the one serving the database, which announces "
        "itself beside it; without a service they open the database file.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", help="database file (default: $LANDED_DB_PATH or ./landed.duckdb)")
        return p

    def client(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        with_db(p)
        p.add_argument(
            "--url",
            help="the service to go through, e.g. https://landed.example.com (default: $LANDED_URL "
            "unless --db is given, else the service running on the database, else the file itself)",
        )
        p.add_argument("--key", dest="api_key", help="the key to send to the service (default: $LANDED_KEY)")
        return p

    serve = with_db(sub.add_parser("serve", help="run the HTTP service"))
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.set_defaults(func=cmd_serve)

    imp = client(sub.add_parser("import", help="backfill events from NDJSON (.gz) or Parquet files"))
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument("--source", help="name or id of the write key the events came through (for dedupe)")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_import)

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = client(keys_sub.add_parser("create", help="create a key and print it once"))
    create.add_argument("--name", required=True, help="what the key is for, e.g. web, ios, dashboards")
    create.add_argument(
        "--scope",
        choices=SCOPES,
        default="write",
        help="write: send events; read: reports and dashboards; admin: launches and keys",
    )
    create.add_argument(
        "--origin",
        action="append",
        metavar="ORIGIN",
        help="write keys used in browsers: a web origin allowed to send with it, e.g. "
        "https://app.example.com (repeat for more; without it any origin may send)",
    )
    client(keys_sub.add_parser("list", help="list keys (never their secrets)"))
    revoke = client(keys_sub.add_parser("revoke", help="revoke a key by id or name"))
    revoke.add_argument("key", metavar="KEY_ID_OR_NAME")
    keys.set_defaults(func=cmd_keys)

    launch = sub.add_parser("launch", help="define launches from spec files, plan, list, show and amend them")
    launch_sub = launch.add_subparsers(dest="launch_command", required=True, metavar="ACTION")
    apply = client(
        launch_sub.add_parser(
            "apply", help="create or update launches from YAML/JSON files or folders (and sub-folders)"
        )
    )
    apply.add_argument("targets", nargs="+", metavar="FILE_OR_DIR")
    apply.add_argument("--by", help="who records the change (default: your user name)")
    apply.set_defaults(func=cmd_launch_apply)
    plan = client(
        launch_sub.add_parser(
            "plan",
            help="what apply would change, changing nothing; exit 0: nothing would, 2: something would, "
            "1: an error",
        )
    )
    plan.add_argument("targets", nargs="+", metavar="FILE_OR_DIR")
    plan.add_argument("--by", help="who would record the change (default: your user name)")
    plan.set_defaults(func=cmd_launch_plan)
    launch_sub.add_parser(
        "schema", help="print the JSON Schema of launch spec files (for editors)"
    ).set_defaults(func=cmd_launch_schema)
    client(launch_sub.add_parser("list", help="list launches")).set_defaults(func=cmd_launch_list)
    show = client(launch_sub.add_parser("show", help="print a launch's current spec and its history"))
    show.add_argument("key")
    show.set_defaults(func=cmd_launch_show)
    amend = client(launch_sub.add_parser("amend", help="change a KPI after launch, with a reason"))
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
    amend.set_defaults(func=cmd_launch_amend)
    decide = client(
        launch_sub.add_parser("decide", help="record a review's decision on a launch, with today's evidence")
    )
    decide.add_argument("key")
    decide.add_argument(
        "--decision", required=True, choices=["keep", "iterate", "double-down", "roll-back", "sunset"]
    )
    decide.add_argument("--reason", required=True, help="why, as the review will show it")
    decide.add_argument("--follow-up", dest="follow_up", help="the key of a follow-up launch")
    decide.add_argument("--by", help="who decided (default: your user name)")
    decide.set_defaults(func=cmd_launch_decide)
    check = client(
        launch_sub.add_parser(
            "check",
            help="readiness: do the matchers match events? can KPIs be judged? (exit 2 on warnings)",
        )
    )
    check.add_argument("key")
    check.add_argument("--as-of", dest="as_of", help="check as of this ISO time (default now)")
    check.set_defaults(func=cmd_check)

    report = client(sub.add_parser("report", help="print a launch report as JSON or Markdown"))
    report.add_argument("key")
    report.add_argument("--as-of", dest="as_of", help="report as of this ISO time (default now)")
    report.add_argument("--segment", help="break each rate down by this trait, e.g. plan")
    report.add_argument("--format", choices=["json", "md"], default="json")
    report.set_defaults(func=cmd_report)

    review = client(
        sub.add_parser("review", help="the weekly review as one self-contained HTML file or Markdown")
    )
    review.add_argument("--week", help="ISO week such as 2026-W47 (default: this week)")
    review.add_argument("--out", help="write to this file (default: print)")
    review.add_argument("--format", choices=["html", "md"], default="html")
    review.add_argument(
        "--send",
        action="store_true",
        help="send the week's review by mail and webhook now, through the service (once per channel)",
    )
    review.set_defaults(func=cmd_review)

    backup = client(sub.add_parser("backup", help="write every table to Parquet files in a new folder"))
    backup.add_argument(
        "--out",
        help="an empty or new folder (default: a new landed-<time> folder in the backup folder, "
        "$LANDED_BACKUP_DIR or backups/ beside the database)",
    )
    backup.set_defaults(func=cmd_backup)
    restore = with_db(
        sub.add_parser("restore", help="load a backup folder into a new, empty database (offline)")
    )
    restore.add_argument("source", metavar="DIR")
    restore.set_defaults(func=cmd_restore)

    migrate = with_db(
        sub.add_parser(
            "migrate",
            help="copy every table into another, empty database (DuckDB into ClickHouse, or back), "
            "checking the row counts (offline)",
        )
    )
    migrate.add_argument(
        "--to",
        required=True,
        nargs=2,
        metavar=("BACKEND", "TARGET"),
        help="`clickhouse URL` (clickhouse://user:password@host:8123/db or chdb:///dir) or `duckdb FILE`",
    )
    migrate.add_argument("--via", metavar="DIR", help="keep the intermediate backup in this new folder")
    migrate.set_defaults(func=cmd_migrate)

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
