"""Launches as objects of the service: create and replace before launch, lock at launch,
amend KPIs afterwards with a reason, and keep every version and amendment on record.

The KPI a report judges is the one *first set*: the last version recorded at or before
`launched_at`, or, for a launch defined after it, the first version (flagged *set after
launch*). Amendments change the current target shown beside it, never the judged one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import Conflict, InvalidInput, NotFound
from app.storage import MetaStore, StaleLaunch
from pipelines.launch import (
    LOCKED_FIELDS,
    AmendmentNote,
    Kpi,
    KpiRecord,
    LaunchFile,
    LaunchSpec,
    is_rate_metric,
)
from pipelines.times import naive_utc, utc_text

AMENDABLE_FIELDS = ("target", "min_sample", "by_day")
# Where a version came from: spec files (`landed launch apply`), or the browser's editor; the
# API's own PUT records none.
Source = Literal["git", "editor"]


@dataclass(frozen=True)
class Version:
    version: int
    spec: LaunchSpec
    recorded_at: datetime
    recorded_by: str
    source: Source | None = None


@dataclass(frozen=True)
class Amendment:
    amendment_id: int
    kpi_id: str
    field: str
    old_value: Any
    new_value: Any
    amended_at: datetime
    amended_by: str
    reason: str


@dataclass(frozen=True)
class LaunchState:
    """A launch as stored: its versions, amendments, and what follows from them."""

    versions: list[Version]
    amendments: list[Amendment]

    @property
    def latest(self) -> Version:
        return self.versions[-1]

    @property
    def launched_at(self) -> datetime:
        return naive_utc(self.latest.spec.launched_at)

    def is_locked(self, now: datetime) -> bool:
        return now >= self.launched_at

    @property
    def managed_from_git(self) -> bool:
        """The latest version came from spec files: the editor shows it read-only, since the
        next `landed launch apply` would overwrite a change made there."""
        return self.latest.source == "git"

    @property
    def kpi_records(self) -> list[KpiRecord]:
        """Each KPI of the latest version (and any added by amendment) as first set and now.

        First set is the KPI in the last version recorded at or before launched_at; a KPI no
        such version has is first set by the first later version that has it, and flagged."""
        first: dict[str, KpiRecord] = {}
        for version in self.versions:
            before = version.recorded_at <= self.launched_at
            for kpi in version.spec.kpis:
                if before or kpi.id not in first:
                    first[kpi.id] = KpiRecord(first_set=kpi, current=kpi, set_after_launch=not before)
        records = {
            k.id: first[k.id].model_copy(update={"current": k, "amended": k != first[k.id].first_set})
            for k in self.latest.spec.kpis
        }
        for amendment in self.amendments:
            if amendment.field == "kpi":
                added = Kpi.model_validate(amendment.new_value)
                records[added.id] = KpiRecord(first_set=added, current=added, set_after_launch=True)
                continue
            record = records[amendment.kpi_id]
            current = record.current.model_copy(update={amendment.field: amendment.new_value})
            records[amendment.kpi_id] = record.model_copy(
                update={"current": current, "amended": current != record.first_set}
            )
        return list(records.values())

    @property
    def spec(self) -> LaunchSpec:
        """The current spec: the latest version with amended KPIs."""
        return self.latest.spec.model_copy(update={"kpis": [r.current for r in self.kpi_records]})


class KpiChange(BaseModel):
    """One KPI change in an amendment: an existing KPI's target/min_sample/by_day, or a new KPI."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    target: float | None = None
    min_sample: int | None = Field(default=None, ge=1)
    by_day: int | None = Field(default=None, ge=1)
    metric: str | None = None
    comparator: Literal[">=", "<="] | None = None


class AmendmentRequest(BaseModel):
    """KPI changes after launch. A reason is required: it is kept with the change."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    author: str | None = Field(default=None, max_length=200, description="who asks (default: the key's name)")
    kpis: list[KpiChange] = Field(min_length=1)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required: say why the target changes after launch")
        return value.strip()


def parse_spec(data: Any) -> LaunchSpec:
    """A launch spec from parsed YAML/JSON, with every problem named by field."""
    try:
        return LaunchSpec.model_validate(data)
    except ValidationError as error:
        raise InvalidInput("the launch spec is not valid", describe(error)) from None


def parse_launch_file(data: Any) -> LaunchFile:
    """A launch spec file (the spec and, after launch, an optional amendment with its reason)
    from parsed YAML/JSON, with every problem named by field."""
    try:
        return LaunchFile.model_validate(data)
    except ValidationError as error:
        raise InvalidInput("the launch spec is not valid", describe(error)) from None


def describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "spec"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


@functools.lru_cache(maxsize=1024)
def _stored_spec(text: str) -> LaunchSpec:
    """A stored spec's JSON, parsed once: every page lists the launches, and a spec (frozen)
    never changes once recorded."""
    return LaunchSpec.model_validate_json(text)


def load_launch(storage: MetaStore, key: str) -> LaunchState:
    versions = [
        Version(v, _stored_spec(spec), at, by, _source(src))
        for v, spec, at, by, src in storage.launch_versions(key)
    ]
    if not versions:
        raise NotFound(f"no launch with key {key!r}", "see GET /api/launches for the list")
    amendments = [
        Amendment(aid, kpi, field, _json(old), _json(new), at, by, reason)
        for aid, kpi, field, old, new, at, by, reason in storage.kpi_amendments(key)
    ]
    return LaunchState(versions, amendments)


def _source(text: str | None) -> Source | None:
    return "git" if text == "git" else "editor" if text == "editor" else None


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def list_launches(storage: MetaStore) -> list[LaunchState]:
    return [load_launch(storage, key) for key in storage.launch_keys()]


Result = Literal["created", "updated", "amended", "unchanged"]


def put_launch(
    storage: MetaStore,
    spec: LaunchSpec,
    *,
    by: str,
    now: datetime,
    key: str | None = None,
    amendment: AmendmentNote | None = None,
    dry_run: bool = False,
    source: Source | None = None,
) -> tuple[LaunchState, Result]:
    """Creates or replaces a launch; returns the state and what happened: created, updated,
    amended or unchanged. After launch only descriptive fields (name, owner, description,
    channel property, announcements) may change, and KPI targets, min_sample and by_day (or a
    new KPI) only with an `amendment` giving the reason, which records them as amendments.
    With `dry_run` nothing is written: the state returned is the one the change would make.
    `source` records where the change comes from; spec files (`git`) that change nothing still
    mark the launch as managed from git, without a new version."""
    if key is not None and key != spec.key:
        raise InvalidInput(f"the spec's key {spec.key!r} differs from the URL's {key!r}", "field: key")
    try:
        state: LaunchState | None = load_launch(storage, spec.key)
    except NotFound:
        state = None
    if state is None:
        return _commit(storage, None, "created", by=by, now=now, spec=spec, dry_run=dry_run, source=source)
    latest = state.latest.spec
    if spec == latest:
        return _unchanged(storage, state, source=source, dry_run=dry_run)
    if not state.is_locked(now) or spec.locked_part() == latest.locked_part():
        return _commit(storage, state, "updated", by=by, now=now, spec=spec, dry_run=dry_run, source=source)
    # Live: the locked fields stay as recorded; only the descriptive ones may take the file's.
    descriptive = spec.model_copy(update={f: getattr(latest, f) for f in LOCKED_FIELDS})
    new_version = None if descriptive == latest else descriptive
    if spec.locked_part() == state.spec.locked_part():
        # The file already carries the amended KPIs: only descriptive fields may differ.
        if new_version is None:
            return _unchanged(storage, state, source=source, dry_run=dry_run)
        return _commit(
            storage, state, "updated", by=by, now=now, spec=new_version, dry_run=dry_run, source=source
        )
    changed = [f for f in LOCKED_FIELDS if getattr(spec, f) != getattr(latest, f)]
    if changed != ["kpis"] or amendment is None:
        raise Conflict(
            f"launch {spec.key!r} went live at {utc_text(latest.launched_at, timespec='seconds')}; "
            f"{', '.join(changed)} can no longer change",
            (
                f"to change a KPI target after launch, give the reason in the spec file "
                f"(amendment: {{reason: ...}}) and apply it again, or POST "
                f"/api/launches/{spec.key}/amendments with a reason (or `landed launch amend {spec.key}`)"
            )
            if changed == ["kpis"]
            else f"only KPIs can be amended after launch: POST /api/launches/{spec.key}/amendments "
            f"with a reason (or `landed launch amend {spec.key}`); for other changes define a new launch",
            code="launch_locked",
        )
    rows = _file_amendments(state, spec, amendment)
    stamped = [
        {**r, "amended_at": now, "amended_by": amendment.author or by, "reason": amendment.reason}
        for r in rows
    ]
    return _commit(
        storage,
        state,
        "amended",
        by=by,
        now=now,
        spec=new_version,
        amendments=stamped,
        dry_run=dry_run,
        source=source,
    )


def _unchanged(
    storage: MetaStore, state: LaunchState, *, source: Source | None, dry_run: bool
) -> tuple[LaunchState, Result]:
    """Nothing to record; spec files applied to a launch not yet managed from git mark it so
    (no new version: the spec is the same)."""
    if source != "git" or state.managed_from_git or dry_run:
        return state, "unchanged"
    latest = state.latest
    key, version = latest.spec.key, latest.version
    _write(storage, key, version, by=latest.recorded_by, now=latest.recorded_at, source=source)
    return load_launch(storage, latest.spec.key), "unchanged"


def apply_file(
    storage: MetaStore,
    file: LaunchFile,
    *,
    by: str,
    now: datetime,
    key: str | None = None,
    dry_run: bool = False,
    source: Source | None = None,
) -> tuple[LaunchState, Result, list[str]]:
    """`put_launch` of a spec file (its amendment included), with what it changed (or, in a dry
    run, would change) as `describe_changes` lines: what `landed launch apply` and `plan` and
    `PUT /api/launches/{key}` do."""
    spec = file.spec()
    try:
        before: LaunchState | None = load_launch(storage, spec.key)
    except NotFound:
        before = None
    state, result = put_launch(
        storage, spec, by=by, now=now, key=key, amendment=file.amendment, dry_run=dry_run, source=source
    )
    return state, result, describe_changes(before, spec) if result != "unchanged" else []


def _commit(
    storage: MetaStore,
    state: LaunchState | None,
    result: Result,
    *,
    by: str,
    now: datetime,
    spec: LaunchSpec | None,
    amendments: list[dict[str, Any]] | None = None,
    dry_run: bool,
    source: Source | None = None,
) -> tuple[LaunchState, Result]:
    """Writes a new version and/or amendments, or, in a dry run, only builds the state they
    would make."""
    key = spec.key if spec is not None else state.latest.spec.key if state is not None else ""
    version = state.latest.version if state is not None else 0
    if not dry_run:
        _write(storage, key, version, spec=spec, by=by, now=now, amendments=amendments, source=source)
        return load_launch(storage, key), result
    versions = list(state.versions) if state is not None else []
    if spec is not None:
        versions.append(Version(version + 1, spec, now, by, source))
    added = [
        Amendment(
            r["amendment_id"],
            r["kpi_id"],
            r["field"],
            _json(r["old_value"]),
            _json(r["new_value"]),
            r["amended_at"],
            r["amended_by"],
            r["reason"],
        )
        for r in amendments or []
    ]
    return LaunchState(versions, [*(state.amendments if state is not None else []), *added]), result


def _file_amendments(state: LaunchState, spec: LaunchSpec, amendment: AmendmentNote) -> list[dict[str, Any]]:
    """The amendment rows that take the live launch's current KPIs to the file's: changed
    targets, min_sample and by_day, and new KPIs. Removing a KPI, or changing its metric or
    comparator, is refused: the target first set stays on record."""
    current = {k.id: k for k in state.spec.kpis}
    wanted = {k.id: k for k in spec.kpis}
    key = spec.key
    removed = [kpi_id for kpi_id in current if kpi_id not in wanted]
    if removed:
        raise Conflict(
            f"launch {key!r} is live: KPI {', '.join(removed)} cannot be removed",
            "its target is on record; keep it in the file (amend its target if it no longer fits)",
            code="launch_locked",
        )
    reused = next((a for a in state.amendments if a.reason == amendment.reason), None)
    if reused is not None:
        raise Conflict(
            f"launch {key!r}: the amendment reason was already given for the amendment of "
            f"{utc_text(reused.amended_at, timespec='seconds')}",
            "say in amendment.reason why this change is made: each change after launch keeps its own reason",
            code="launch_locked",
        )
    next_id = max((a.amendment_id for a in state.amendments), default=0) + 1
    rows: list[dict[str, Any]] = []
    for kpi_id, new in wanted.items():
        old = current.get(kpi_id)
        if old is None:
            rows.append(_row(next_id, kpi_id, "kpi", None, new.model_dump(mode="json")))
            continue
        if (new.metric, new.comparator) != (old.metric, old.comparator):
            raise Conflict(
                f"launch {key!r} is live: KPI {kpi_id!r}: metric and comparator cannot be amended",
                "define a new KPI with its own id instead",
                code="launch_locked",
            )
        for field in AMENDABLE_FIELDS:
            if getattr(new, field) != getattr(old, field):
                rows.append(_row(next_id, kpi_id, field, getattr(old, field), getattr(new, field)))
    return rows


def delete_launch(storage: MetaStore, key: str, *, now: datetime) -> None:
    state = load_launch(storage, key)
    if state.is_locked(now):
        raise Conflict(
            f"launch {key!r} went live at {utc_text(state.launched_at, timespec='seconds')} "
            "and can no longer be deleted",
            "its targets are on record; amend KPIs instead",
            code="launch_locked",
        )
    _write(storage, key, state.latest.version, by="", now=now, delete=True)


def amend_launch(
    storage: MetaStore, key: str, request: AmendmentRequest, *, by: str, now: datetime
) -> LaunchState:
    """Records KPI changes after launch; every changed field is kept with old and new value."""
    state = load_launch(storage, key)
    if not state.is_locked(now):
        raise Conflict(
            f"launch {key!r} is not live yet "
            f"(launches at {utc_text(state.launched_at, timespec='seconds')})",
            f"before launch, change KPIs freely with PUT /api/launches/{key}",
            code="launch_not_live",
        )
    records = {r.id: r for r in state.kpi_records}
    next_id = max((a.amendment_id for a in state.amendments), default=0) + 1
    rows: list[dict[str, Any]] = []
    kpis = {r.id: r.current for r in records.values()}
    repeated = sorted({c.id for c in request.kpis if [d.id for d in request.kpis].count(c.id) > 1})
    if repeated:
        raise InvalidInput(
            f"KPI {', '.join(repeated)} appears more than once in the amendment",
            "give each KPI's changes in one entry",
        )
    for change in request.kpis:
        if change.id in kpis:
            if change.metric is not None or change.comparator is not None:
                raise InvalidInput(
                    f"KPI {change.id!r}: metric and comparator cannot be amended",
                    "define a new KPI with its own id instead",
                )
            old = kpis[change.id]
            updates = {f: getattr(change, f) for f in AMENDABLE_FIELDS if getattr(change, f) is not None}
            new = _valid_kpi({**old.model_dump(), **updates}, change.id)
            for field in AMENDABLE_FIELDS:
                if getattr(new, field) != getattr(old, field):
                    rows.append(_row(next_id, change.id, field, getattr(old, field), getattr(new, field)))
            kpis[change.id] = new
        else:
            if change.metric is None or change.comparator is None or change.target is None:
                raise InvalidInput(
                    f"no KPI {change.id!r} to amend",
                    f"existing KPIs: {', '.join(kpis) or 'none'}; "
                    "a new KPI needs metric, comparator and target",
                )
            new = _valid_kpi(change.model_dump(exclude_none=True), change.id)
            rows.append(_row(next_id, change.id, "kpi", None, new.model_dump(mode="json")))
            kpis[change.id] = new
    if not rows:
        raise InvalidInput("nothing to amend", "every value given equals the current one")
    try:
        state.latest.spec.model_validate({**state.latest.spec.model_dump(), "kpis": list(kpis.values())})
    except ValidationError as error:
        raise InvalidInput("the amended launch is not valid", describe(error)) from None
    stamped = [
        {**r, "amended_at": now, "amended_by": request.author or by, "reason": request.reason} for r in rows
    ]
    _write(storage, key, state.latest.version, by=by, now=now, amendments=stamped)
    return load_launch(storage, key)


def _valid_kpi(data: dict[str, Any], kpi_id: str) -> Kpi:
    try:
        return Kpi.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(f"KPI {kpi_id!r} is not valid", describe(error)) from None


def _row(amendment_id: int, kpi_id: str, field: str, old: Any, new: Any) -> dict[str, Any]:
    return {
        "amendment_id": amendment_id,
        "kpi_id": kpi_id,
        "field": field,
        "old_value": None if old is None else orjson.dumps(old).decode(),
        "new_value": None if new is None else orjson.dumps(new).decode(),
    }


def _write(
    storage: MetaStore,
    key: str,
    expected_version: int,
    *,
    by: str,
    now: datetime,
    spec: LaunchSpec | None = None,
    amendments: list[dict[str, Any]] | None = None,
    delete: bool = False,
    source: Source | None = None,
) -> None:
    try:
        storage.write_launch(
            key,
            expected_version=expected_version,
            spec_json=None if spec is None else spec.model_dump_json(),
            recorded_at=now,
            recorded_by=by,
            amendments=amendments or [],
            delete=delete,
            source=source,
        )
    except StaleLaunch:
        raise Conflict(
            f"launch {key!r} changed meanwhile", "read it again and retry", code="launch_changed"
        ) from None


def _shown(metric: str, field: str, value: Any) -> str:
    """An amended value as people read it: rate targets in percent, days with a unit."""
    if field == "target" and isinstance(value, int | float):
        return f"{value * 100:.1f}%" if is_rate_metric(metric) else f"{value:g} days"
    return str(value)


@dataclass(frozen=True)
class HistoryItem:
    kind: Literal["version", "amendment"]
    at: datetime
    by: str
    summary: str
    reason: str
    version: int | None = None
    kpi_id: str | None = None
    field: str | None = None
    old_value: Any = None
    new_value: Any = None


def history(state: LaunchState) -> list[HistoryItem]:
    """Every version and amendment, oldest first: what, when, who and why."""
    items: list[HistoryItem] = []
    previous: LaunchSpec | None = None
    for v in state.versions:
        if previous is None:
            summary = "created" + (" after launch" if v.recorded_at > state.launched_at else "")
        else:
            changed = [f for f in LaunchSpec.model_fields if getattr(v.spec, f) != getattr(previous, f)]
            summary = "changed " + (", ".join(changed) or "nothing")
        items.append(HistoryItem("version", v.recorded_at, v.recorded_by, summary, "", version=v.version))
        previous = v.spec
    metrics = {r.id: r.first_set.metric for r in state.kpi_records}
    for a in state.amendments:
        if a.field == "kpi":
            summary = f"added KPI {a.kpi_id}"
        else:
            metric = metrics.get(a.kpi_id, "")
            summary = (
                f"{a.kpi_id}: {a.field} {_shown(metric, a.field, a.old_value)} -> "
                f"{_shown(metric, a.field, a.new_value)}"
            )
        items.append(
            HistoryItem(
                "amendment",
                a.amended_at,
                a.amended_by,
                summary,
                a.reason,
                kpi_id=a.kpi_id,
                field=a.field,
                old_value=a.old_value,
                new_value=a.new_value,
            )
        )
    return sorted(items, key=lambda i: i.at)


MAX_CHANGES_SHOWN = 12


def describe_changes(before: LaunchState | None, spec: LaunchSpec) -> list[str]:
    """What applying `spec` changes, one short line per field or KPI, for `landed launch plan`:
    `~ field: old -> new`, `+ kpi id: ...` for a new KPI, `- ...` for one removed. Compared
    with the latest version when the file keeps its KPIs, else with the KPIs as amended."""
    if before is None:
        return []
    latest = before.latest.spec
    base = latest if spec.locked_part()["kpis"] == latest.locked_part()["kpis"] else before.spec
    old, new = _flat(base), _flat(spec)
    lines: list[str] = []
    for path in [*old, *(p for p in new if p not in old)]:
        if path not in new:
            lines.append(f"- {path}: {_short(old[path])}")
        elif path not in old:
            lines.append(f"+ {path}: {_short(new[path])}")
        elif old[path] != new[path]:
            lines.append(f"~ {path}: {_short(old[path])} -> {_short(new[path])}")
    if len(lines) > MAX_CHANGES_SHOWN:
        hidden = len(lines) - MAX_CHANGES_SHOWN + 1
        lines = [*lines[: MAX_CHANGES_SHOWN - 1], f"... and {hidden} more changes"]
    return lines


class _Shown(str):
    """A value already written for people (a KPI), shown without JSON quotes."""


def _flat(spec: LaunchSpec) -> dict[str, Any]:
    """The spec as dotted paths to values; KPIs by id (one entry each, so a KPI added or
    removed is one line), lists of matchers and announcements by position."""
    data = spec.model_dump(mode="json")
    flat: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict) and value:
            for name, item in value.items():
                walk(item, f"{path}.{name}" if path else name)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}")
        else:
            flat[path] = value

    kpis = data.pop("kpis")
    walk(data, "")
    for kpi in kpis:
        text = f"{kpi['metric']} {kpi['comparator']} {kpi['target']:g}"
        if kpi.get("by_day") is not None:
            text += f" by day {kpi['by_day']}"
        flat[f"kpi {kpi['id']}"] = _Shown(f"{text}, min_sample {kpi['min_sample']}")
    return flat


def _short(value: Any, limit: int = 60) -> str:
    text = str(value) if isinstance(value, _Shown) else orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def spec_yaml(state: LaunchState) -> str:
    """The launch's current spec (KPIs as amended) as a spec file `landed launch apply` takes
    unchanged, and `landed launch plan` shows as unchanged: the same fields, in the spec's order,
    every time in UTC."""
    spec = state.spec
    header = (
        f"# Launch spec of {spec.key!r}, version {state.latest.version}, downloaded from Landed.\n"
        "# Keep it in your repository and apply it with `landed launch apply`.\n"
    )
    data = spec.model_dump(mode="json")
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
