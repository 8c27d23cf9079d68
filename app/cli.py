"""The `landed` command line: serve the API, import events, manage keys (and, as later parts
arrive, launches, reports and the demo). Each command opens the database itself: stop the
service first, since DuckDB lets one process write a database file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from app.errors import LandedError
from app.settings import Settings
from app.storage import SCOPES, Storage

IMPORT_SOURCE = "import"


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in (("db_path", getattr(args, "db", None)),) if v is not None}
    for name in ("host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _open(settings: Settings) -> Storage:
    return Storage(settings.db_path, max_events_per_commit=settings.commit_max_events)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    settings = _settings(args)
    print(f"Landed on http://{settings.host}:{settings.port}  (database: {settings.db_path})")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.importer import import_files, progress_total

    settings = _settings(args)
    paths = [Path(p) for p in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise LandedError(f"no such file: {', '.join(missing)}")
    storage = _open(settings)
    try:
        source = IMPORT_SOURCE
        if args.source:
            match = [k for k in storage.list_keys() if k.name == args.source and k.scope == "write"]
            if not match:
                raise LandedError(f"no write key named {args.source!r}; see `landed keys list`")
            source = match[0].key_id
        bars: dict[Path, tqdm[None]] = {}

        def progress(path: Path, units: int) -> None:
            if path not in bars:
                total = progress_total(path) or None
                bars[path] = tqdm(total=total, desc=path.name, unit="B" if path.suffix != ".parquet" else " rows",
                                  unit_scale=True, disable=args.quiet, file=sys.stderr)
            bars[path].update(units)

        summary = import_files(
            storage, paths, source=source, max_event_bytes=settings.max_event_bytes, on_progress=progress
        )
        for bar in bars.values():
            bar.close()
    finally:
        storage.close()
    print(
        f"imported {summary.files} file(s): {summary.events} events, {summary.inserted} inserted, "
        f"{summary.duplicates} duplicates, {summary.rejected} rejected"
    )
    for reason, count in summary.reasons.most_common():
        print(f"  rejected {count}: {reason}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    storage = _open(_settings(args))
    try:
        if args.keys_command == "create":
            key, secret = storage.create_key(args.name, args.scope)
            print(f"created {key.scope} key {key.name!r} (id {key.key_id}). It is shown only once:")
            print(secret)
        elif args.keys_command == "list":
            print(f"{'id':<14}{'name':<20}{'scope':<8}{'created (UTC)':<21}revoked")
            for key in storage.list_keys():
                revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
                print(f"{key.key_id:<14}{key.name:<20}{key.scope:<8}"
                      f"{key.created_at.isoformat(timespec='seconds'):<21}{revoked}")
        else:
            for key_id in storage.revoke_key(args.key):
                print(f"revoked key {key_id}")
    finally:
        storage.close()
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
    create.add_argument("--scope", choices=SCOPES, default="write",
                        help="write: send events; read: reports and dashboards; admin: launches and keys")
    with_db(keys_sub.add_parser("list", help="list keys (never their secrets)"))
    revoke = with_db(keys_sub.add_parser("revoke", help="revoke a key by id or name"))
    revoke.add_argument("key", metavar="KEY_ID_OR_NAME")
    keys.set_defaults(func=cmd_keys)
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
