"""The launch editor page: the form a product owner fills in the browser, what each field means,
and the two translations between the form (text as typed: a launch time in a time zone, targets
in percent, filter values separated by commas) and the launch spec the API validates. Pure
functions of pipelines.launch models; the app saves the spec with the same rules as the API.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dashboards.layout import render_page
from dashboards.theme import metric_label
from pipelines.launch import (
    DURATION_METRICS,
    RATE_METRICS,
    Kpi,
    LaunchSpec,
    Matcher,
    WhereValue,
    as_text,
    is_rate_metric,
)

__all__ = [
    "EditorForm",
    "EditorPage",
    "FieldError",
    "editor_js",
    "editor_page",
    "form_from_spec",
    "metric_choices",
    "spec_from_form",
]

SIGNALS = ("exposed", "used", "converted")

# One sentence per metric a KPI may target, in the words of docs/metrics.md.
METRIC_SENTENCES: dict[str, str] = {
    "exposure_rate": "Of the active audience, the share who saw the feature (an exposed event): "
    "did people even notice it?",
    "adoption_rate": "Of the active audience, the share who used the feature at least once in the window.",
    "notice_to_try_rate": "Of the users who saw the feature, the share who then used it.",
    "repeat_usage_rate": "Of the adopters, the share who used it on two or more different days.",
    "conversion_rate": "Of the adopters, the share with a converted event at or after their first use, "
    "inside the window.",
    "baseline_conversion_rate": "Of the audience active in the same length of time before launch, the "
    "share who converted then: the bar adopters should beat.",
    "stickiness": "On an average day of the window, the share of adopters who used the feature that day.",
    "median_days_to_adopt": "How many days adopters took from their first activity in the window to their "
    "first use (the median).",
}
RETENTION_SENTENCE = (
    "Of the adopters whose week {n} after first use is over, the share who used it again in that week."
)


def metric_choices(window_days: int = 28, current: Sequence[str] = ()) -> list[dict[str, str]]:
    """The metrics a KPI may pick, each with its label, unit and sentence: every rate and duration,
    the retention weeks the window can measure, and any other week a KPI already uses."""
    weeks = [f"week_{n}_retention" for n in range(1, max(2, window_days // 7))]
    names = [*RATE_METRICS, *DURATION_METRICS, *weeks]
    names += [m for m in current if m not in names]
    choices = []
    for name in names:
        match = re.match(r"^week_(\d+)_retention$", name)
        sentence = RETENTION_SENTENCE.format(n=match.group(1)) if match else METRIC_SENTENCES.get(name, "")
        choices.append(
            {
                "value": name,
                "label": metric_label(name),
                "unit": "%" if is_rate_metric(name) else "days",
                "sentence": sentence,
            }
        )
    return choices


@cache
def editor_js() -> str:
    """The editor's script, dashboards/static/editor.js, which the service serves itself."""
    return (importlib.resources.files("dashboards") / "static" / "editor.js").read_text(encoding="utf-8")


@cache
def time_zones() -> list[str]:
    return sorted(available_timezones() - {"localtime", "Factory"})


# ----------------------------------------------------------------------------- the form


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WhereRow(_Form):
    """One filter: a property (or trait) and its accepted values, separated by commas."""

    name: str = Field(default="", max_length=500)
    values: str = Field(default="", max_length=5000)


class MatcherForm(_Form):
    type: Literal["track", "page", "screen", "identify"] = "track"
    event: str = Field(default="", max_length=500)
    where: list[WhereRow] = Field(default_factory=list, max_length=50)


class KpiForm(_Form):
    id: str = Field(default="", max_length=200)
    metric: str = Field(default="", max_length=100)
    comparator: str = Field(default=">=", max_length=2)
    target: str = Field(default="", max_length=50, description="percent for rates, days for durations")
    min_sample: str = Field(default="", max_length=20)
    by_day: str = Field(default="", max_length=20)


class EditorForm(_Form):
    """The editor's fields as typed."""

    version: int | None = Field(default=None, description="the version the form was opened at")
    key: str = Field(default="", max_length=200)
    name: str = Field(default="", max_length=1000)
    owner: str = Field(default="", max_length=1000)
    description: str = Field(default="", max_length=10000)
    launched_local: str = Field(default="", max_length=40, description="YYYY-MM-DDTHH:MM in time_zone")
    time_zone: str = Field(default="UTC", max_length=100)
    window_days: str = Field(default="28", max_length=20)
    identified_only: bool = True
    audience_where: list[WhereRow] = Field(default_factory=list, max_length=50)
    exposed: list[MatcherForm] = Field(default_factory=list, max_length=50)
    used: list[MatcherForm] = Field(default_factory=list, max_length=50)
    converted: list[MatcherForm] = Field(default_factory=list, max_length=50)
    channel_property: str = Field(default="channel", max_length=500)
    kpis: list[KpiForm] = Field(default_factory=list, max_length=50)
    reason: str = Field(default="", max_length=2000)


class FieldError(BaseModel):
    """A message for the field at `field`, a dotted path as the spec names it (`kpis.1.target`)."""

    field: str
    message: str


def _number_text(value: float) -> str:
    return f"{round(value, 10):g}"


def _values_text(value: WhereValue) -> str:
    return ", ".join(as_text(v) for v in (value if isinstance(value, list) else [value]))


def _where_rows(where: dict[str, WhereValue]) -> list[WhereRow]:
    return [WhereRow(name=name, values=_values_text(value)) for name, value in where.items()]


def _matcher_rows(matchers: Sequence[Matcher]) -> list[MatcherForm]:
    return [MatcherForm(type=m.type, event=m.event or "", where=_where_rows(m.where)) for m in matchers]


def form_from_spec(spec: LaunchSpec, *, version: int | None = None, time_zone: str = "UTC") -> EditorForm:
    """The form showing `spec`: its launch time in `time_zone`, rate targets in percent."""
    zone = ZoneInfo(time_zone)
    local = spec.launched_at.astimezone(zone).replace(tzinfo=None)
    return EditorForm(
        version=version,
        key=spec.key,
        name=spec.name,
        owner=spec.owner,
        description=spec.description,
        launched_local=local.isoformat(timespec="minutes" if local.second == 0 else "seconds"),
        time_zone=time_zone,
        window_days=str(spec.window_days),
        identified_only=spec.audience.identified_only,
        audience_where=_where_rows(spec.audience.where),
        exposed=_matcher_rows(spec.signals.exposed),
        used=_matcher_rows(spec.signals.used),
        converted=_matcher_rows(spec.signals.converted),
        channel_property=spec.channel_property,
        kpis=[
            KpiForm(
                id=k.id,
                metric=k.metric,
                comparator=k.comparator,
                target=_number_text(k.target * 100 if is_rate_metric(k.metric) else k.target),
                min_sample=str(k.min_sample),
                by_day="" if k.by_day is None else str(k.by_day),
            )
            for k in spec.kpis
        ],
    )


def _where(rows: Sequence[WhereRow], path: str, errors: list[FieldError]) -> dict[str, Any]:
    where: dict[str, Any] = {}
    for row in rows:
        name = row.name.strip()
        values = [v.strip() for v in row.values.split(",") if v.strip()]
        if not name and not values:
            continue
        if not name:
            errors.append(FieldError(field=path, message="name the property each filter checks"))
        elif not values:
            errors.append(FieldError(field=path, message=f"{name}: list at least one accepted value"))
        elif name in where:
            errors.append(FieldError(field=path, message=f"{name} is filtered twice; list its values once"))
        else:
            where[name] = values[0] if len(values) == 1 else values
    return where


def _launched_at(form: EditorForm, errors: list[FieldError]) -> str | None:
    try:
        zone = ZoneInfo(form.time_zone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(FieldError(field="time_zone", message=f"unknown time zone {form.time_zone!r}"))
        return None
    try:
        local = datetime.fromisoformat(form.launched_local.strip())
    except ValueError:
        errors.append(FieldError(field="launched_at", message="give the launch date and time"))
        return None
    if local.tzinfo is not None:
        local = local.replace(tzinfo=None)
    return local.replace(tzinfo=zone).astimezone(UTC).isoformat()


def _integer(text: str) -> int | str | None:
    text = text.strip()
    if not text:
        return None
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else text


def _kpi(form: KpiForm, index: int, errors: list[FieldError]) -> dict[str, Any]:
    kpi: dict[str, Any] = {
        "id": form.id.strip(),
        "metric": form.metric.strip(),
        "comparator": form.comparator,
    }
    text = form.target.strip().removesuffix("%").strip()
    try:
        target = float(text)
    except ValueError:
        errors.append(FieldError(field=f"kpis.{index}.target", message="give the target as a number"))
        target = None
    if target is not None and is_rate_metric(kpi["metric"]):
        if not 0 <= target <= 100:
            errors.append(
                FieldError(
                    field=f"kpis.{index}.target", message="a rate target is a percent between 0 and 100"
                )
            )
            target = None
        else:
            target = target / 100
    kpi["target"] = 0.0 if target is None else target
    for name in ("min_sample", "by_day"):
        value = _integer(getattr(form, name))
        if value is not None:
            kpi[name] = value
    return kpi


def _spec_data(form: EditorForm, errors: list[FieldError]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": form.key.strip(),
        "name": form.name.strip(),
        "owner": form.owner.strip(),
        "description": form.description.strip(),
        "launched_at": _launched_at(form, errors),
        "window_days": _integer(form.window_days) or 28,
        "audience": {
            "identified_only": form.identified_only,
            "where": _where(form.audience_where, "audience.where", errors),
        },
        "signals": {
            signal: [
                {
                    "type": m.type,
                    **({"event": m.event.strip()} if m.event.strip() else {}),
                    "where": _where(m.where, f"signals.{signal}.{i}.where", errors),
                }
                for i, m in enumerate(getattr(form, signal))
            ]
            for signal in SIGNALS
        },
        "channel_property": form.channel_property.strip() or "channel",
        "kpis": [_kpi(k, i, errors) for i, k in enumerate(form.kpis)],
    }
    return data


def _field_of(path: str, message: str, data: dict[str, Any]) -> str:
    """Where a spec error belongs on the form: the spec's own path, made more precise for the
    checks pydantic reports on a whole model (a KPI's range, the spec's consistency)."""
    kpi = re.match(r"^kpis\.(\d+)$", path)
    if kpi and "target" in message:
        return f"{path}.target"
    if path:
        return path
    named = re.search(r"KPI (?:id )?'([^']*)'", message)
    if named:
        ids = [k.get("id") for k in data.get("kpis", [])]
        if named.group(1) in ids:
            index = len(ids) - 1 - ids[::-1].index(named.group(1))
            part = "by_day" if "by_day" in message else "metric" if "signals.converted" in message else "id"
            return f"kpis.{index}.{part}"
    if "signals.converted" in message:
        return "signals.converted"
    return "form"


def _errors_of(error: ValidationError, data: dict[str, Any]) -> list[FieldError]:
    found = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        found.append(FieldError(field=_field_of(path, message, data), message=message))
    return found


def _same_matchers(typed: list[dict[str, Any]], stored: Sequence[Matcher]) -> list[Any]:
    """The form's matchers, each replaced by the stored one it equals as text, so a filter value
    written `3` in a spec file stays the number 3 and an unchanged form changes nothing."""
    kept: list[Any] = []
    for item in typed:
        twin = None
        try:
            matcher = Matcher.model_validate(item)
            twin = next((m for m in stored if _matcher_text(m) == _matcher_text(matcher)), None)
        except ValidationError:
            pass
        kept.append(item if twin is None else twin.model_dump(mode="json"))
    return kept


def _matcher_text(matcher: Matcher) -> tuple[str, str | None, dict[str, list[str]]]:
    return matcher.type, matcher.event, matcher.allowed()


def _same_where(typed: dict[str, Any], stored: dict[str, WhereValue]) -> dict[str, Any]:
    return {
        name: stored[name] if name in stored and _values_text(stored[name]) == _values_text(value) else value
        for name, value in typed.items()
    }


def spec_from_form(
    form: EditorForm, *, stored: LaunchSpec | None = None, live: bool = False
) -> tuple[LaunchSpec | None, list[FieldError]]:
    """The launch spec the form describes, or the messages saying what to change, each for its
    field. With the `stored` spec of an existing launch, its key and announcements are kept
    (the form edits neither), and values equal as text keep their stored form; once `live`,
    the locked fields (launch time, window, audience, signals, each KPI's metric and
    comparator) are the stored ones whatever the form says: after launch only targets move,
    as amendments."""
    errors: list[FieldError] = []
    data = _spec_data(form, errors)
    if stored is not None:
        data["key"] = stored.key
        data["announcements"] = [a.model_dump(mode="json") for a in stored.announcements]
        data["audience"]["where"] = _same_where(data["audience"]["where"], stored.audience.where)
        for signal in SIGNALS:
            data["signals"][signal] = _same_matchers(data["signals"][signal], getattr(stored.signals, signal))
        if live:
            for name in ("launched_at", "window_days", "audience", "signals"):
                data[name] = stored.model_dump(mode="json")[name]
            errors = [
                e
                for e in errors
                if not e.field.startswith(("launched_at", "time_zone", "audience", "signals"))
            ]
            first = {k.id: k for k in stored.kpis}
            for kpi in data["kpis"]:
                if kpi["id"] in first:
                    kpi["metric"], kpi["comparator"] = first[kpi["id"]].metric, first[kpi["id"]].comparator
    try:
        spec = LaunchSpec.model_validate(data)
    except ValidationError as error:
        return None, errors + _errors_of(error, data)
    return (spec, []) if not errors else (None, errors)


def kpis_changed(spec: LaunchSpec, current: LaunchSpec) -> bool:
    """Whether the form changes a KPI (which after launch needs a reason)."""
    return bool(spec.locked_part()["kpis"] != current.locked_part()["kpis"])


def valid_kpis(form: EditorForm) -> list[tuple[int, Kpi]]:
    """The form's KPIs that are valid on their own, with their place on the form."""
    found = []
    for index, item in enumerate(form.kpis):
        try:
            found.append((index, Kpi.model_validate(_kpi(item, index, []))))
        except ValidationError:
            continue
    return found


# ----------------------------------------------------------------------------- the page


class EditorPage(BaseModel):
    """What the editor page shows."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["new", "edit"]
    form: EditorForm
    csrf_token: str
    live: bool = False
    managed_from_git: bool = False
    spec_yaml: str | None = Field(default=None, description="the spec as a file, for a launch that exists")
    launched_at: datetime | None = None
    kpi_ids: list[str] = Field(
        default_factory=list, description="KPIs on record (after launch: not removable)"
    )


def editor_page(page: EditorPage) -> str:
    """The editor: a new launch, or an existing one (read-only when managed from git)."""
    launch_key = page.form.key if page.mode == "edit" else None
    window = int(page.form.window_days) if page.form.window_days.isdigit() else 28
    initial = {
        "mode": page.mode,
        "live": page.live,
        "form": page.form.model_dump(),
        "kpi_ids": page.kpi_ids,
        "metrics": metric_choices(window, [k.metric for k in page.form.kpis]),
    }
    return render_page(
        "editor.html",
        page=page,
        launch_key=launch_key,
        title=f"Edit {page.form.name}" if page.mode == "edit" else "New launch",
        action="/launches/new" if launch_key is None else f"/launches/{launch_key}/edit",
        initial_json=json.dumps(initial),
        time_zones=time_zones(),
        metrics=initial["metrics"],
    )
