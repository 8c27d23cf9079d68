"""The report plan: everything about one report that follows from the launch, its KPIs, as_of
and the segment, worked out once, before any event is read.

The storage layer selects exactly what a plan names (the span to read, the window's day count,
the event names and matcher types of candidate signals, and the property and trait names whose
values it hands over, in the plan's order), and `compute_report` measures the windows the same
plan holds. Both sides read one object, so they cannot disagree about the periods or about the
order of the `props` values. Readiness builds its own, narrower plans here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pipelines.launch import KpiRecord, LaunchSpec, Matcher, retention_week
from pipelines.report_models import Window
from pipelines.times import as_utc, naive_utc
from pipelines.windows import Span, baseline_start, evaluation_window, touched_days

# The matcher check always reads at least this far back from as_of.
RECENT = timedelta(days=7)


def launch_matchers(launch: LaunchSpec) -> list[Matcher]:
    """Every matcher of the launch: exposed, then used, then converted."""
    return [*launch.signals.exposed, *launch.signals.used, *launch.signals.converted]


def signal_property_names(launch: LaunchSpec) -> list[str]:
    """The properties any matcher of the launch tests, sorted: the order of `props`."""
    return sorted({prop for matcher in launch_matchers(launch) for prop in matcher.where})


def trait_names(launch: LaunchSpec, segment: str | None = None) -> list[str]:
    """The traits the audience filter and the segment breakdown need, sorted."""
    names = set(launch.audience.where)
    if segment is not None:
        names.add(segment)
    return sorted(names)


def report_weeks(window_days: int) -> list[int]:
    """Retention weeks shown on the report: those that fit in the full window for a user
    adopting at launch (weeks 1..3 of a 28-day window), whatever as_of is."""
    return list(range(1, window_days // 7))


@dataclass(frozen=True)
class ReportPlan:
    """One report's periods and selections (all times naive UTC).

    window: the launch's window cut at as_of; kpi_windows: each KPI's own window (its by_day
      window, or the report's), in the order of `kpis`.
    span: what storage reads, [lookback, end) with the launch at `start`; for a report the
      window and its baseline period of the same length.
    day_count: the UTC days the window touches (the width of `active_days`).
    identified_only: storage leaves out users whose events never carry or link to a userId.
    event_names, matcher_types: candidate signals are events with one of these names, or of one
      of these types (the types of matchers that name no event).
    property_names: the matcher properties, in the order of `props`; trait_names: the traits
      the audience filter and the segment need.
    """

    launch: LaunchSpec
    kpis: tuple[KpiRecord, ...]
    segment: str | None
    as_of: datetime
    window: Window
    kpi_windows: tuple[Window, ...]
    span: Span
    day_count: int
    identified_only: bool
    event_names: tuple[str, ...]
    matcher_types: tuple[str, ...]
    property_names: tuple[str, ...]
    trait_names: tuple[str, ...]
    channel_property: str

    @property
    def windows(self) -> list[Window]:
        """The distinct windows to measure. Metrics depend only on where a window ends (all
        start at launch), so KPIs whose windows are cut to the same end share one."""
        by_end = {self.window.end: self.window}
        for window in self.kpi_windows:
            by_end.setdefault(window.end, window)
        return list(by_end.values())

    @property
    def trait_pairs(self) -> list[tuple[datetime, str]]:
        """The (start, trait) states the report needs: every trait as of the launch (the
        windows, the segment), and the audience's traits as of each baseline's start."""
        return [(self.window.start, name) for name in self.trait_names] + [
            (baseline_start(w), name) for w in self.windows for name in self.launch.audience.where
        ]

    @property
    def shown_weeks(self) -> list[int]:
        """The retention weeks the report shows."""
        return report_weeks(self.launch.window_days)

    @property
    def weeks(self) -> list[int]:
        """Every retention week measured: those shown and those a KPI judges."""
        judged = (retention_week(r.first_set.metric) for r in self.kpis)
        return sorted({*self.shown_weeks, *(w for w in judged if w is not None)})


def plan_report(
    launch: LaunchSpec,
    as_of: datetime,
    *,
    kpis: Sequence[KpiRecord] = (),
    segment: str | None = None,
) -> ReportPlan:
    """The plan of the launch's report as of `as_of`, judging `kpis` (as first set) and, when
    `segment` names a trait, breaking each rate down by it."""
    launched_at = naive_utc(launch.launched_at)
    as_of = naive_utc(as_of)
    window = evaluation_window(launched_at, launch.window_days, as_of)
    kpi_windows = tuple(
        window
        if record.first_set.by_day is None
        else evaluation_window(launched_at, record.first_set.by_day, as_of)
        for record in kpis
    )
    matchers = launch_matchers(launch)
    return ReportPlan(
        launch=launch,
        kpis=tuple(kpis),
        segment=segment,
        as_of=as_of,
        window=window,
        kpi_windows=kpi_windows,
        span=Span(lookback=baseline_start(window), start=window.start, end=window.end),
        day_count=len(touched_days(window)),
        identified_only=launch.audience.identified_only,
        event_names=tuple(sorted({m.event for m in matchers if m.event is not None})),
        matcher_types=tuple(sorted({m.type for m in matchers if m.event is None})),
        property_names=tuple(signal_property_names(launch)),
        trait_names=tuple(trait_names(launch, segment)),
        channel_property=launch.channel_property,
    )


def matcher_check_since(launch: LaunchSpec, as_of: datetime) -> datetime:
    """Where the readiness matcher check starts reading: the start of the period the launch's
    report measures (its baseline, a window's length before launch) or 7 days before as_of,
    whichever is earlier. A check reads that period only, never all history."""
    launched_at = naive_utc(launch.launched_at)
    return min(naive_utc(as_of) - RECENT, launched_at - timedelta(days=launch.window_days))


def matcher_check_plan(launch: LaunchSpec, as_of: datetime) -> ReportPlan:
    """What the readiness matcher check reads: the candidate signal events since
    `matcher_check_since`, before as_of, of identified and anonymous users alike (a matcher
    that never matched is news either way)."""
    plan = plan_report(launch, as_of)
    since = matcher_check_since(launch, as_of)
    return replace(plan, span=Span(lookback=since, start=since, end=plan.as_of), identified_only=False)


def audience_plan(launch: LaunchSpec, as_of: datetime, days: int) -> ReportPlan:
    """The window the launch would have had, had it started `days` days before as_of, with
    the launch's audience rules. Readiness counts its active users from this period alone:
    no baseline, no signals, no KPIs."""
    as_of = naive_utc(as_of)
    recent = launch.model_copy(
        update={"launched_at": as_utc(as_of - timedelta(days=days)), "window_days": days, "kpis": []}
    )
    plan = plan_report(recent, as_of)
    return replace(plan, span=replace(plan.span, lookback=plan.span.start))
