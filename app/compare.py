"""Learning across launches as a service: gathers the reports a comparison or a target hint
needs from the report service (which caches them, so a page and its API share the work) and
hands them to `pipelines.compare`. A metric at day d comes from the report as of launched_at +
d, so it is the number that launch's report showed at that point."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from app import launches
from app.errors import InvalidInput
from app.reports import ReportService
from app.storage import Storage
from pipelines.compare import (
    compared_metrics,
    comparison,
    days_to_measure,
    hint_day,
    launch_comparison,
    past_launches,
    target_hint,
)
from pipelines.launch import LaunchSpec
from pipelines.report_models import Comparison, LaunchReport, TargetHint, TargetHints
from pipelines.times import naive_utc

# Each launch costs up to four reports; a dozen lines on one chart is already hard to read.
MAX_COMPARED = 12


def compare_launches(
    storage: Storage, reports: ReportService, keys: Sequence[str], *, as_of: datetime
) -> Comparison:
    """The launches named by `keys` (in that order, repeats dropped) side by side as of `as_of`."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        raise InvalidInput("name the launches to compare", "e.g. /api/compare?launch=a&launch=b")
    if len(unique) > MAX_COMPARED:
        raise InvalidInput(
            f"{len(unique)} launches named; at most {MAX_COMPARED} can be compared at once",
            "pick fewer launches",
        )
    states = [launches.load_launch(storage, key) for key in unique]
    full = [reports.report_for(state, as_of=as_of) for state in states]
    metrics = compared_metrics(full)
    compared = []
    for state, report in zip(states, full, strict=True):
        spec = state.spec
        at_day = {
            day: reports.report_for(state, as_of=naive_utc(spec.launched_at) + timedelta(days=day))
            for day in days_to_measure(spec, as_of)
        }
        compared.append(launch_comparison(spec, report, at_day, metrics=metrics, as_of=as_of))
    return comparison(compared, metrics=metrics, as_of=as_of)


def hints_for_spec(
    storage: Storage,
    reports: ReportService,
    spec: LaunchSpec,
    *,
    now: datetime,
    min_version: int | None = None,
) -> list[TargetHint]:
    """A hint for each KPI of `spec` (stored or not yet: `landed launch plan` asks before the
    spec is applied) from the launches that closed before it went live."""
    states = {state.latest.spec.key: state for state in launches.list_launches(storage)}
    candidates = [state.spec for state in states.values()]
    hints = []
    for kpi in spec.kpis:
        day = hint_day(kpi, spec.window_days)
        past: list[tuple[LaunchSpec, LaunchReport]] = []
        for other in past_launches(candidates, launch=spec, now=now, day=day):
            at = naive_utc(other.launched_at) + timedelta(days=day)
            past.append((other, reports.report_for(states[other.key], as_of=at, min_version=min_version)))
        hints.append(target_hint(kpi, day=day, past=past))
    return hints


def target_hints(
    storage: Storage,
    reports: ReportService,
    key: str,
    *,
    now: datetime,
    min_version: int | None = None,
) -> TargetHints:
    """Hints for a stored launch's KPIs as first set: the targets its reports judge."""
    state = launches.load_launch(storage, key)
    spec = state.spec.model_copy(update={"kpis": [record.first_set for record in state.kpi_records]})
    hints = hints_for_spec(storage, reports, spec, now=now, min_version=min_version)
    return TargetHints(launch_key=key, as_of=naive_utc(now), hints=hints)
