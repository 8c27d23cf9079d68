"""The demo: loads `data/sample/` into a fresh database through the paths users use (the
importer, launch apply, amendments), moved in time so the sample data ends today and the
provisional launch is still open whenever the demo runs."""

from __future__ import annotations

import gzip
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from app import launches
from app.importer import ImportSummary, import_files
from app.launches import AmendmentRequest, KpiChange
from app.storage import Storage
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
    return DemoLoad(write_key, read_key, admin_key, shift, summary, keys)
