"""The demo: loads `data/sample/` into a fresh database through the paths users use (the
importer, launch apply, amendments), moved in time so the sample data ends today and the
provisional launch is still open whenever the demo runs."""

from __future__ import annotations

import gzip
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from app import launches
from app.importer import ImportSummary, import_files
from app.launches import AmendmentRequest, KpiChange
from app.storage import LaunchEvaluation, Storage
from pipelines.times import as_utc, naive_utc, utc_text

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
_EVENT_TIMES = ("timestamp", "sentAt", "receivedAt", "originalTimestamp")


@dataclass(frozen=True)
class DemoLoad:
    write_key: str
    read_key: str
    admin_key: str
    shift: timedelta
    imported: ImportSummary
    launch_keys: list[str]
    decided: list[str] = field(default_factory=list)  # decisions recorded on closed launches
    alerts: list[str] = field(default_factory=list)  # the alerts the sample raised


def _parse(value: str) -> datetime:
    return as_utc(datetime.fromisoformat(value))


def sample_shift(sample_dir: Path, today: datetime) -> timedelta:
    """Whole days that move the sample's end to the start of `today` (UTC days stay aligned)."""
    manifest = orjson.loads((sample_dir / "manifest.json").read_bytes())
    end = _parse(manifest["data_end"])
    midnight = as_utc(today).replace(hour=0, minute=0, second=0, microsecond=0)
    return timedelta(days=(midnight - end).days)


def shift_events(source: Path, target: Path, shift: timedelta) -> None:
    """Copies the sample events with every time moved by `shift`."""
    with gzip.open(source, "rb") as lines, gzip.open(target, "wb") as out:
        for line in lines:
            event = orjson.loads(line)
            for name in _EVENT_TIMES:
                if isinstance(event.get(name), str):
                    event[name] = utc_text(_parse(event[name]) + shift, timespec="milliseconds")
            out.write(orjson.dumps(event) + b"\n")


def _shift_spec(data: dict[str, Any], shift: timedelta) -> dict[str, Any]:
    data["launched_at"] = (
        _parse(
            str(data["launched_at"])
            if not isinstance(data["launched_at"], datetime)
            else data["launched_at"].isoformat()
        )
        + shift
    )
    for note in data.get("announcements", []):
        at = note["at"]
        note["at"] = as_utc(at if isinstance(at, datetime) else _parse(str(at))) + shift
    return data


def load_sample(
    storage: Storage, *, today: datetime, sample_dir: Path = SAMPLE_DIR, max_event_bytes: int = 1 << 20
) -> DemoLoad:
    """Keys, events and launches of the sample, as if the data ended today."""
    shift = sample_shift(sample_dir, today)
    _, write_key = storage.create_key("demo-app", "write")
    _, read_key = storage.create_key("demo-dashboards", "read")
    _, admin_key = storage.create_key("demo-po", "admin")
    source = next(k.key_id for k in storage.list_keys() if k.name == "demo-app")
    with tempfile.TemporaryDirectory() as scratch:
        shifted = Path(scratch) / "events.ndjson.gz"
        shift_events(sample_dir / "events.ndjson.gz", shifted, shift)
        summary = import_files(storage, [shifted], source=source, max_event_bytes=max_event_bytes)
    manifest = orjson.loads((sample_dir / "manifest.json").read_bytes())
    keys: list[str] = []
    for path in sorted((sample_dir / "launches").glob("*.yaml")):
        spec = launches.parse_spec(_shift_spec(yaml.safe_load(path.read_text(encoding="utf-8")), shift))
        story = manifest["launches"][spec.key]
        owner = spec.owner
        launches.put_launch(storage, spec, by=owner, now=naive_utc(_parse(story["defined_at"]) + shift))
        for change in story.get("amendments", []):
            request = AmendmentRequest(
                reason=change["reason"],
                author=change["by"],
                kpis=[KpiChange.model_validate({"id": change["kpi"], change["field"]: change["new"]})],
            )
            launches.amend_launch(
                storage, spec.key, request, by=change["by"], now=naive_utc(_parse(change["at"]) + shift)
            )
        keys.append(spec.key)
    decided, alerts = after_the_verdict(storage, today=today)
    return DemoLoad(write_key, read_key, admin_key, shift, summary, keys, decided, alerts)


# The review of the closed launch that missed, as a product owner would record it.
SAMPLE_DECISION = {
    "smart-export": {
        "decision": "iterate",
        "reason": "make the export button visible where people finish a report",
        "decided_by": "po@example.com",
        "follow_up": "smart-export-v2",
    }
}


def after_the_verdict(storage: Storage, *, today: datetime) -> tuple[list[str], list[str]]:
    """What follows the verdicts in the sample: the decision on the closed launch that missed,
    and the alerts the sample raises when its launches are evaluated as the service does,
    a week ago and now (a verdict that changed since). Returns (decision lines, alert messages)."""
    from app.alerts import evaluate_snapshots
    from app.decisions import parse_request, record_decision
    from app.reports import ReportService
    from app.snapshots import Snapshots
    from dashboards.notes import decision_line
    from pipelines.alerts import report_verdicts

    now = naive_utc(today)
    snapshots = Snapshots(storage, ReportService(storage), refresh_seconds=0, clock=lambda: now)
    shown = [snapshots.get(state, None) for state in launches.list_launches(storage)]
    decided = []
    for snapshot in shown:
        request = SAMPLE_DECISION.get(snapshot.key)
        if request is not None and now >= naive_utc(snapshot.state.spec.window_end):
            decision = record_decision(
                storage, snapshot.key, parse_request(request), report=snapshot.report, by="demo", now=now
            )
            from app.page_data import decision_note

            decided.append(f"{snapshot.key}: {decision_line(decision_note(decision))}")
    week_ago = [
        LaunchEvaluation(s.key, orjson.dumps(report_verdicts(s.previous)).decode(), s.previous.window.as_of)
        for s in shown
        if s.previous is not None
    ]
    storage.record_alert_evaluation(cleared=[], raised=[], evaluations=week_ago, now=now - timedelta(days=7))
    raised = evaluate_snapshots(storage, shown, now=now)
    return decided, [alert.message for alert in raised]
