"""How the command line reaches the data: through a running service's HTTP API, or, when no
service runs, by opening the database file itself.

DuckDB lets one process write a database, so while `landed serve` holds the file a second
process that opened it would fail with a lock error. Every command that reads or changes data
therefore asks for a `Backend` and gets one of two with the same methods and the same return
types: `RemoteBackend` (the API, with a key) or `LocalBackend` (the file). The commands format
what they get back in one place, so their output and exit codes are the same either way.

Which one, in this order: `--url` (with `--key` or `LANDED_KEY`); then, unless `--db` names a
database on the command line, `LANDED_URL`; then the service announced beside the database
(`app.discovery`); and only when no service runs, the file itself.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
import orjson

from app import discovery
from app.decisions import DecisionRequest
from app.errors import Conflict, LandedError, StorageUnavailable
from app.importer import ImportSummary, sniff_format
from app.launches import AmendmentRequest
from app.settings import Settings
from app.storage import ApiKey, Scope, Storage
from pipelines.decisions import Decision
from pipelines.launch import LaunchFile, LaunchSpec
from pipelines.readiness import Readiness
from pipelines.report_models import LaunchReport, TargetHint, TargetHints
from pipelines.times import naive_utc
from pipelines.windows import window_end

if TYPE_CHECKING:
    from app.reports import ReportService

ENV_URL = "LANDED_URL"
ENV_KEY = "LANDED_KEY"
# A service that has just opened the database announces itself once it listens: a command
# that found the file locked waits this long for the announcement before giving up.
ANNOUNCEMENT_WAIT_SECONDS = 15.0
# Uploads are sent in pieces of this size, so a file of any size streams through flat memory.
UPLOAD_CHUNK_BYTES = 1024 * 1024
# Reports over many events, and imports (answered once every event is stored), take a while.
TIMEOUT = httpx.Timeout(10.0, read=3600.0, write=600.0)
MEDIA_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "ndjson": "application/x-ndjson",
    "ndjson.gz": "application/x-ndjson",
}

ReviewFormat = Literal["html", "md"]


@dataclass(frozen=True)
class LaunchRow:
    """A launch as `landed launch list` shows it; times are naive UTC."""

    key: str
    launched_at: datetime
    live: bool
    kpis: int
    owner: str


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    by: str
    summary: str
    reason: str


@dataclass(frozen=True)
class Applied:
    """What applying a spec file did (or, in a dry run, would do); before launch, with what
    past closed launches reached for each KPI's metric."""

    result: str
    changes: list[str]
    hints: list[TargetHint] = field(default_factory=list)


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


# (file, total units or None when unknown, unit name) -> a progress bar
ProgressFactory = Callable[[Path, int | None, str], Progress]


class Backend(Protocol):
    """What the commands need from the data, wherever it is."""

    def create_key(self, name: str, scope: Scope, origins: list[str]) -> tuple[ApiKey, str]: ...

    def list_keys(self) -> list[ApiKey]: ...

    def revoke_key(self, key: str) -> list[str]: ...

    def apply(self, file: LaunchFile, *, by: str, dry_run: bool) -> Applied: ...

    def launches(self) -> list[LaunchRow]: ...

    def launch(self, key: str) -> tuple[LaunchSpec, list[HistoryLine]]: ...

    def amend(self, key: str, request: AmendmentRequest, *, by: str) -> None: ...

    def readiness(self, key: str, as_of: datetime | None) -> Readiness: ...

    def target_hints(self, key: str) -> TargetHints: ...

    def report(self, key: str, as_of: datetime | None, segment: str | None) -> LaunchReport: ...

    def report_markdown(self, key: str, as_of: datetime | None, segment: str | None) -> str: ...

    def review(self, week: str, fmt: ReviewFormat, now: datetime) -> tuple[str, int]: ...

    def import_files(
        self, paths: list[Path], *, source: str | None, progress: ProgressFactory
    ) -> ImportSummary:
        """`source` is a write key's id (None: the `import` source)."""
        ...

    def backup(self, out: Path | None) -> tuple[str, dict[str, int]]: ...

    def send_review(self, week: str | None) -> tuple[str, list[Sent]]:
        """Sends the week's review (default: this week) on each channel it was not sent on."""
        ...

    def decide(self, key: str, request: DecisionRequest, *, by: str) -> Decision: ...


@dataclass(frozen=True)
class Sent:
    """What became of the review on one channel: sent, failed, or taken (already sent)."""

    channel: str
    status: str
    attempts: int
    error: str | None
    next_attempt_at: datetime | None


def import_source(keys: list[ApiKey], name: str) -> ApiKey:
    """The write key `--source` names, by id or name (a live one when several share a name)."""
    writes = [k for k in keys if k.scope == "write"]
    matches = [k for k in writes if k.key_id == name] or [k for k in writes if k.name == name]
    if len(matches) > 1:
        matches = [k for k in matches if k.revoked_at is None] or matches
    if not matches:
        raise LandedError(f"no write key named {name!r}; see `landed keys list`")
    if len(matches) > 1:
        raise LandedError(
            f"several write keys are named {name!r}",
            f"pass one key id: {', '.join(k.key_id for k in matches)}",
        )
    return matches[0]


def review_launch_count(launched: list[tuple[datetime, int]], week: str, now: datetime) -> int:
    """How many launches (launched_at, window_days) the review of `week` holds: those whose
    window overlaps the week, as `app.page_data.review_sections` selects them."""
    from app.page_data import parse_week

    start, end = parse_week(week)
    as_of = min(end, naive_utc(now))
    return sum(
        1 for at, days in launched if naive_utc(at) < as_of and window_end(naive_utc(at), days) > start
    )


def _new_or_empty(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} is not empty", "back up into a new, empty folder")


# ----------------------------------------------------------------------------- local


class LocalBackend:
    """The database file, opened by this process (no service runs on it)."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings
        self._reports: ReportService | None = None

    def create_key(self, name: str, scope: Scope, origins: list[str]) -> tuple[ApiKey, str]:
        return self.storage.create_key(name, scope, origins=origins)

    def list_keys(self) -> list[ApiKey]:
        return self.storage.list_keys()

    def revoke_key(self, key: str) -> list[str]:
        return self.storage.revoke_key(key)

    def apply(self, file: LaunchFile, *, by: str, dry_run: bool) -> Applied:
        from app import launches
        from app.compare import hints_for_spec
        from app.ingest import now_utc
        from app.reports import ReportService

        now = now_utc()
        state, result, changes = launches.apply_file(
            self.storage, file, by=by, now=now, dry_run=dry_run, source="git"
        )
        if not dry_run or state.is_locked(now):
            return Applied(result, changes)
        # Targets are set before launch, so a plan shows what past launches reached beside them;
        # one report service for the whole run, so launches shared by many files are read once.
        if self._reports is None:
            self._reports = ReportService(self.storage)
        return Applied(result, changes, hints_for_spec(self.storage, self._reports, state.spec, now=now))

    def launches(self) -> list[LaunchRow]:
        from app import launches
        from app.ingest import now_utc

        now = now_utc()
        return [
            LaunchRow(s.spec.key, s.launched_at, s.is_locked(now), len(s.spec.kpis), s.spec.owner)
            for s in launches.list_launches(self.storage)
        ]

    def launch(self, key: str) -> tuple[LaunchSpec, list[HistoryLine]]:
        from app import launches

        state = launches.load_launch(self.storage, key)
        return state.spec, [HistoryLine(i.at, i.by, i.summary, i.reason) for i in launches.history(state)]

    def amend(self, key: str, request: AmendmentRequest, *, by: str) -> None:
        from app import launches
        from app.ingest import now_utc

        launches.amend_launch(self.storage, key, request, by=by, now=now_utc())

    def readiness(self, key: str, as_of: datetime | None) -> Readiness:
        from app.ingest import now_utc
        from app.reports import ReportService

        return ReportService(self.storage).readiness(key, as_of=as_of or now_utc())

    def target_hints(self, key: str) -> TargetHints:
        from app.compare import target_hints
        from app.ingest import now_utc
        from app.reports import ReportService

        return target_hints(self.storage, ReportService(self.storage), key, now=now_utc())

    def report(self, key: str, as_of: datetime | None, segment: str | None) -> LaunchReport:
        from app.ingest import now_utc
        from app.reports import ReportService, default_as_of

        return ReportService(self.storage).report(
            key, as_of=as_of or default_as_of(now_utc()), segment=segment
        )

    def report_markdown(self, key: str, as_of: datetime | None, segment: str | None) -> str:
        from dashboards.markdown import report_markdown

        return report_markdown(self.report(key, as_of, segment))

    def review(self, week: str, fmt: ReviewFormat, now: datetime) -> tuple[str, int]:
        from app.page_data import review_file, review_sections
        from app.reports import ReportService

        sections = review_sections(self.storage, ReportService(self.storage), week=week, now=now)
        return review_file(week, sections, fmt=fmt, now=now), len(sections)

    def import_files(
        self, paths: list[Path], *, source: str | None, progress: ProgressFactory
    ) -> ImportSummary:
        from app.importer import DEFAULT_SOURCE, import_files, progress_total

        bars: dict[Path, Progress] = {}

        def on_progress(path: Path, units: int) -> None:
            if path not in bars:
                unit = " rows" if sniff_format(path) == "parquet" else "B"
                bars[path] = progress(path, progress_total(path) or None, unit)
            bars[path].update(units)

        try:
            return import_files(
                self.storage,
                paths,
                source=source or DEFAULT_SOURCE,
                max_event_bytes=self.settings.max_event_bytes,
                on_progress=on_progress,
            )
        finally:
            for bar in bars.values():
                bar.close()

    def backup(self, out: Path | None) -> tuple[str, dict[str, int]]:
        from app.backup import backup, backup_now, backup_root

        if out is None:
            folder, counts = backup_now(self.storage, backup_root(self.settings))
            return str(folder), counts
        return str(out), backup(self.storage, out)

    def send_review(self, week: str | None) -> tuple[str, list[Sent]]:
        from app.delivery import Delivery
        from app.page_data import parse_week
        from app.reports import ReportService

        delivery = Delivery(self.storage, ReportService(self.storage), self.settings)
        chosen = week or delivery.local_week()
        parse_week(chosen)
        outcomes = delivery.send_review(chosen, by_hand=True)
        return chosen, [Sent(o.channel, o.status, o.attempts, o.error, o.next_attempt_at) for o in outcomes]

    def decide(self, key: str, request: DecisionRequest, *, by: str) -> Decision:
        from app import launches
        from app.decisions import record_decision
        from app.ingest import now_utc
        from app.reports import ReportService, default_as_of

        now = now_utc()
        state = launches.load_launch(self.storage, key)
        report = ReportService(self.storage).report_for(state, as_of=default_as_of(now))
        return record_decision(self.storage, key, request, report=report, by=by, now=now)


# ----------------------------------------------------------------------------- remote


def _utc(text: str | None) -> datetime | None:
    return None if text is None else naive_utc(datetime.fromisoformat(text))


def _chunks(path: Path, bar: Progress) -> Iterator[bytes]:
    # The body is read a piece at a time as httpx sends it; the bar counts bytes handed over.
    with path.open("rb") as stream:
        while chunk := stream.read(UPLOAD_CHUNK_BYTES):
            yield chunk
            bar.update(len(chunk))


class RemoteBackend:
    """A running service, through its HTTP API, with `key` (admin for changes)."""

    def __init__(self, url: str, key: str, *, where: str) -> None:
        self.url = url.rstrip("/")
        self.where = where  # where the address and key came from, for error messages
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "landed-cli"},
            timeout=TIMEOUT,
        )

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(3):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                raise LandedError(
                    f"cannot reach the service at {self.url}",
                    f"{error or type(error).__name__} ({self.where})",
                    code="unreachable",
                ) from None
            # A service briefly unable to use its storage answers 503 with Retry-After; reads
            # are worth a second try (a change might have happened, so it is not resent).
            if response.status_code == 503 and method == "GET" and attempt < 2:
                time.sleep(min(float(response.headers.get("retry-after", "1") or 1), 5.0))
                continue
            break
        if response.is_success:
            return response
        try:
            body = response.json()
            message, detail, code = str(body["message"]), str(body.get("detail", "")), body.get("code")
        except (ValueError, KeyError, TypeError):
            message, detail, code = f"the service answered {response.status_code}", response.text[:200], None
        if response.status_code == 401:
            detail = f"{message}; the key came from {self.where}"
            message = f"the service at {self.url} refused the key"
        raise LandedError(message, detail, code=code if isinstance(code, str) else None)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return orjson.loads(self._send(method, path, **kwargs).content)

    @staticmethod
    def _key(data: dict[str, Any]) -> ApiKey:
        created = _utc(data["created_at"])
        assert created is not None
        return ApiKey(
            data["key_id"],
            data["name"],
            data["scope"],
            created,
            _utc(data.get("revoked_at")),
            tuple(data.get("origins") or ()),
        )

    def create_key(self, name: str, scope: Scope, origins: list[str]) -> tuple[ApiKey, str]:
        data = self._json("POST", "/api/keys", json={"name": name, "scope": scope, "origins": origins})
        return self._key(data), str(data["secret"])

    def list_keys(self) -> list[ApiKey]:
        return [self._key(k) for k in self._json("GET", "/api/keys")]

    def revoke_key(self, key: str) -> list[str]:
        return [str(k) for k in self._json("DELETE", f"/api/keys/{_segment(key)}")["revoked"]]

    def apply(self, file: LaunchFile, *, by: str, dry_run: bool) -> Applied:
        data = self._json(
            "PUT",
            f"/api/launches/{_segment(file.key)}",
            params={"dry_run": "true" if dry_run else "false", "author": by, "source": "git"},
            content=file.model_dump_json(),
            headers={"Content-Type": "application/json"},
        )
        hints = [TargetHint.model_validate(h) for h in data.get("target_hints", [])]
        return Applied(str(data["result"]), [str(c) for c in data.get("changes", [])], hints)

    def _launch_list(self) -> list[dict[str, Any]]:
        launches: list[dict[str, Any]] = self._json("GET", "/api/launches")
        return launches

    def launches(self) -> list[LaunchRow]:
        rows = []
        for item in self._launch_list():
            spec = LaunchSpec.model_validate(item["spec"])
            rows.append(
                LaunchRow(
                    spec.key, naive_utc(spec.launched_at), bool(item["live"]), len(spec.kpis), spec.owner
                )
            )
        return rows

    def launch(self, key: str) -> tuple[LaunchSpec, list[HistoryLine]]:
        spec = LaunchSpec.model_validate(self._json("GET", f"/api/launches/{_segment(key)}")["spec"])
        lines = []
        for item in self._json("GET", f"/api/launches/{_segment(key)}/history"):
            at = _utc(item["at"])
            assert at is not None
            lines.append(HistoryLine(at, item["by"], item["summary"], item["reason"]))
        return spec, lines

    def amend(self, key: str, request: AmendmentRequest, *, by: str) -> None:
        body = request.model_copy(update={"author": request.author or by}).model_dump(
            mode="json", exclude_none=True
        )
        self._send("POST", f"/api/launches/{_segment(key)}/amendments", json=body)

    @staticmethod
    def _as_of(as_of: datetime | None) -> dict[str, str]:
        return {} if as_of is None else {"as_of": naive_utc(as_of).isoformat() + "Z"}

    def readiness(self, key: str, as_of: datetime | None) -> Readiness:
        response = self._send("GET", f"/api/launches/{_segment(key)}/readiness", params=self._as_of(as_of))
        return Readiness.model_validate_json(response.content)

    def target_hints(self, key: str) -> TargetHints:
        response = self._send("GET", f"/api/launches/{_segment(key)}/target-hints")
        return TargetHints.model_validate_json(response.content)

    def _report_params(self, as_of: datetime | None, segment: str | None) -> dict[str, str]:
        return {**self._as_of(as_of), **({"segment": segment} if segment is not None else {})}

    def report(self, key: str, as_of: datetime | None, segment: str | None) -> LaunchReport:
        response = self._send(
            "GET", f"/api/launches/{_segment(key)}/report", params=self._report_params(as_of, segment)
        )
        return LaunchReport.model_validate_json(response.content)

    def report_markdown(self, key: str, as_of: datetime | None, segment: str | None) -> str:
        return self._send(
            "GET", f"/api/launches/{_segment(key)}/report.md", params=self._report_params(as_of, segment)
        ).text

    def review(self, week: str, fmt: ReviewFormat, now: datetime) -> tuple[str, int]:
        from app.page_data import parse_week

        parse_week(week)  # the same message as locally for a week that does not exist
        text = self._send("GET", f"/api/review.{fmt}", params={"week": week}).text
        launched = [
            (LaunchSpec.model_validate(item["spec"]).launched_at, int(item["spec"]["window_days"]))
            for item in self._launch_list()
        ]
        return text, review_launch_count(launched, week, now)

    def send_review(self, week: str | None) -> tuple[str, list[Sent]]:
        data = self._json("POST", "/api/review/send", params={"week": week} if week else None)
        return str(data["week"]), [
            Sent(
                c["channel"], c["status"], int(c["attempts"]), c.get("error"), _utc(c.get("next_attempt_at"))
            )
            for c in data["channels"]
        ]

    def decide(self, key: str, request: DecisionRequest, *, by: str) -> Decision:
        body = request.model_copy(update={"decided_by": request.decided_by or by}).model_dump(
            mode="json", exclude_none=True
        )
        response = self._send("POST", f"/api/launches/{_segment(key)}/decisions", json=body)
        return Decision.model_validate_json(response.content)

    def import_files(
        self, paths: list[Path], *, source: str | None, progress: ProgressFactory
    ) -> ImportSummary:
        summary = ImportSummary()
        for path in paths:
            size = path.stat().st_size
            fmt = sniff_format(path)
            headers = {"Content-Type": MEDIA_TYPES[fmt], "Content-Length": str(size)}
            if fmt == "ndjson.gz":
                headers["Content-Encoding"] = "gzip"
            bar = progress(path, size or None, "B")
            try:
                data = self._json(
                    "POST",
                    "/api/import",
                    params={"source": source} if source else None,
                    content=_chunks(path, bar),
                    headers=headers,
                )
            finally:
                bar.close()
            summary.files += 1
            for name in ("events", "inserted", "duplicates", "rejected"):
                setattr(summary, name, getattr(summary, name) + int(data[name]))
            summary.reasons.update(Counter({str(r): int(n) for r, n in data["reasons"].items()}))
        return summary

    def backup(self, out: Path | None) -> tuple[str, dict[str, int]]:
        if out is not None:
            _new_or_empty(out)
        data = self._json("POST", "/api/backup")
        folder, counts = Path(data["path"]), {str(t): int(n) for t, n in data["rows"].items()}
        if out is None:
            return str(folder), counts
        if not folder.is_dir():
            raise LandedError(
                f"the service wrote the backup to {folder} on its own machine; it cannot be moved to {out}",
                "leave out --out to back up into the service's backup folder (LANDED_BACKUP_DIR)",
            )
        # The service (on this machine) wrote it into its backup folder: move it where asked.
        out.mkdir(parents=True, exist_ok=True)
        for item in folder.iterdir():
            shutil.move(str(item), out / item.name)
        folder.rmdir()
        return str(out), counts


def _segment(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


# ----------------------------------------------------------------------------- choosing


@dataclass(frozen=True)
class Target:
    """Where a command was pointed: an explicit address, a database (explicit or not), a key."""

    url: str | None
    key: str | None
    db_given: bool


def target(url: str | None, key: str | None, db_given: bool) -> Target:
    """The command-line options and the environment, resolved."""
    return Target(url or None, key or os.environ.get(ENV_KEY) or None, db_given)


def remote_url(where: Target) -> tuple[str, str] | None:
    """(address, where it came from) when the command must go to a given address."""
    if where.url:
        return where.url, "--url"
    env = os.environ.get(ENV_URL)
    if env and not where.db_given:
        return env, ENV_URL
    return None


def _remote(url: str, key: str | None, source: str) -> RemoteBackend:
    if not key:
        raise LandedError(
            f"{source} names the service at {url}, but no key is given",
            f"set {ENV_KEY} or pass --key (an admin key for changes, read for reports)",
        )
    return RemoteBackend(url, key, where=f"{source} and {'--key' if source == '--url' else ENV_KEY}")


def announced(settings: Settings) -> discovery.ServiceInfo | None:
    """The service running on the settings' database, from its discovery file."""
    try:
        return discovery.find_service(settings.db_path)
    except discovery.UnreadableAnnouncement as error:
        raise LandedError(
            f"a service announced itself in {error}, but this user may not read that file",
            f"run the command as the service's user, or set {ENV_URL} and {ENV_KEY}",
        ) from None


@contextmanager
def backend(where: Target, settings_of: Callable[[], Settings]) -> Iterator[Backend]:
    """The service the command is pointed at, the one running on the database, or the file."""
    given = remote_url(where)
    if given is not None:
        remote = _remote(given[0], where.key, given[1])
        try:
            yield remote
        finally:
            remote.close()
        return
    settings = settings_of()
    chosen: RemoteBackend | LocalBackend = _announced_or_local(where, settings)
    try:
        yield chosen
    finally:
        if isinstance(chosen, RemoteBackend):
            chosen.close()
        else:
            chosen.storage.close()


def _announced_or_local(where: Target, settings: Settings) -> RemoteBackend | LocalBackend:
    """The service announced beside the database, else the database opened here. A database
    held by another process is most likely a service starting (it announces itself once it
    listens) or stopping (it lets go of the file once in-flight requests end): wait for either."""
    deadline = time.monotonic() + ANNOUNCEMENT_WAIT_SECONDS
    while True:
        info = announced(settings)
        if info is not None:
            file = discovery.service_file(settings.db_path)
            return RemoteBackend(
                info.url, where.key or info.key, where=ENV_KEY if where.key else f"the service's file {file}"
            )
        try:
            return LocalBackend(Storage.open(settings), settings)
        except StorageUnavailable as error:
            if "lock" not in error.detail.lower():
                raise
            if time.monotonic() > deadline:
                file = discovery.service_file(settings.db_path)
                raise LandedError(
                    f"the database {settings.db_path} is in use by another process",
                    f"no Landed service announced itself beside it ({file}); "
                    f"if a service runs on it, set {ENV_URL} and {ENV_KEY}",
                ) from None
            time.sleep(0.2)
