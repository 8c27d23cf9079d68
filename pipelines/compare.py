"""Learning across launches, computed from launch reports alone: launches side by side (their
cumulative curves aligned on the launch day, each KPI's metric at days 7, 14 and 28, their
funnels), and target hints that set a KPI's target beside what past closed launches reached for
its metric by the same day. A metric at day d is read from the report as of launched_at + d,
so these numbers are the ones that launch's own report gave at that point; the app gathers
those reports (cached by the report service) and hands them here.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipelines.launch import Kpi, LaunchSpec, is_rate_metric, retention_week
from pipelines.report_models import (
    COMPARISON_DAYS,
    Comparison,
    CurvePoint,
    Interval,
    LaunchComparison,
    LaunchReport,
    MetricAtDay,
    MetricAtDayStatus,
    PastValue,
    Rate,
    TargetHint,
)
from pipelines.times import naive_utc

# A hint names the launches behind it, so it stays readable (and cheap: one report each).
MAX_PAST_LAUNCHES = 10
# Compared even when no launch has a KPI on it: adoption is what every launch is about.
ALWAYS_COMPARED = "adoption_rate"


@dataclass(frozen=True)
class Measured:
    """A metric's value, fixed-horizon 95% interval and sample size in one report."""

    value: float | None
    interval: Interval | None
    n: int


def metric_in_report(report: LaunchReport, metric: str) -> Measured | None:
    """`metric` as the report states it; None when the report does not show it (a retention
    week beyond those its window shows)."""
    metrics = report.metrics
    week = retention_week(metric)
    if week is not None:
        found = next((w.rate for w in metrics.week_n_retention if w.week == week), None)
        return None if found is None else Measured(found.value, found.interval, found.n)
    if metric == "median_days_to_adopt":
        median = metrics.median_days_to_adopt
        return Measured(median.value, median.interval, median.n)
    if metric == "stickiness":
        sticky = metrics.stickiness
        return Measured(sticky.value, sticky.interval, sticky.adopters)
    rated: Rate = getattr(metrics, metric)
    return Measured(rated.value, rated.interval, rated.n)


# ----------------------------------------------------------------------------- comparison


def window_end(spec: LaunchSpec) -> datetime:
    return naive_utc(spec.window_end)


def day_status(spec: LaunchSpec, day: int, as_of: datetime) -> MetricAtDayStatus:
    """Whether the launch's first `day` days can be measured as of `as_of`."""
    if day > spec.window_days:
        return "beyond_window"
    if naive_utc(spec.launched_at) + timedelta(days=day) > naive_utc(as_of):
        return "not_reached"
    return "measured"


def days_to_measure(spec: LaunchSpec, as_of: datetime) -> list[int]:
    """The comparison days whose report (as of launched_at + day) the comparison needs."""
    return [day for day in COMPARISON_DAYS if day_status(spec, day, as_of) == "measured"]


def compared_metrics(reports: Sequence[LaunchReport]) -> list[str]:
    """Adoption, then each KPI metric of the compared launches in order of first mention."""
    metrics = [ALWAYS_COMPARED, *(kpi.metric for report in reports for kpi in report.kpis)]
    return list(dict.fromkeys(metrics))


def launch_curve(spec: LaunchSpec, report: LaunchReport) -> list[CurvePoint]:
    """The report's timeline as days since launch: day 0 is the UTC day of launched_at (the
    timeline's first day), so launches of any date line up."""
    launch_day = naive_utc(spec.launched_at).date()
    return [
        CurvePoint(
            day=(point.day - launch_day).days,
            utc_date=point.day,
            cumulative_adoption_rate=point.cumulative_adoption_rate,
            cumulative_exposure_rate=point.cumulative_exposure_rate,
        )
        for point in report.timeline.days
    ]


def launch_comparison(
    spec: LaunchSpec,
    report: LaunchReport,
    at_day: Mapping[int, LaunchReport],
    *,
    metrics: Sequence[str],
    as_of: datetime,
) -> LaunchComparison:
    """One launch for the comparison: `report` is its report as of `as_of`, `at_day` its
    reports as of launched_at + day for each of `days_to_measure`."""
    rows: list[MetricAtDay] = []
    for metric in metrics:
        for day in COMPARISON_DAYS:
            status = day_status(spec, day, as_of)
            measured = metric_in_report(at_day[day], metric) if status == "measured" else None
            rows.append(
                MetricAtDay(
                    metric=metric,
                    day=day,
                    status=status,
                    value=measured.value if measured else None,
                    interval=measured.interval if measured else None,
                    n=measured.n if measured else 0,
                )
            )
    return LaunchComparison(
        key=spec.key,
        name=spec.name,
        owner=spec.owner,
        launched_at=naive_utc(spec.launched_at),
        window_days=spec.window_days,
        closed=window_end(spec) <= naive_utc(as_of),
        verdict=report.verdict,
        curve=launch_curve(spec, report),
        metrics=rows,
        funnel=report.funnel,
    )


def comparison(
    launches: Sequence[LaunchComparison], *, metrics: Sequence[str], as_of: datetime
) -> Comparison:
    return Comparison(
        as_of=naive_utc(as_of), days=list(COMPARISON_DAYS), metrics=list(metrics), launches=list(launches)
    )


# ----------------------------------------------------------------------------- target hints


def hint_day(kpi: Kpi, window_days: int) -> int:
    """The day a KPI is judged at: its by_day, else the end of the launch's window."""
    return kpi.by_day if kpi.by_day is not None else window_days


def past_launches(
    candidates: Sequence[LaunchSpec], *, launch: LaunchSpec, now: datetime, day: int
) -> list[LaunchSpec]:
    """The closed launches a hint for `launch` compares with, most recently closed first: other
    launches whose window ended before now and before `launch` went live (what was known when
    its targets were set), and was long enough to reach `day`."""
    cutoff = min(naive_utc(now), naive_utc(launch.launched_at))
    closed = [
        spec
        for spec in candidates
        if spec.key != launch.key and window_end(spec) <= cutoff and spec.window_days >= day
    ]
    closed.sort(key=lambda spec: (window_end(spec), spec.key), reverse=True)
    return closed[:MAX_PAST_LAUNCHES]


def _percent(value: float) -> str:
    """Whole percents, as people quote them ("18%"), with one decimal below 10% ("9.3%")."""
    percent = value * 100
    if round(percent) >= 10:
        return f"{percent:.0f}%"
    return f"{percent:.1f}".rstrip("0").rstrip(".") + "%"


def _days(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text} day" if text == "1" else f"{text} days"


def metric_value_text(metric: str, value: float) -> str:
    return _percent(value) if is_rate_metric(metric) else _days(value)


def _metric_noun(metric: str) -> str:
    week = retention_week(metric)
    if week is not None:
        return f"week {week} retention"
    nouns = {
        "exposure_rate": "exposure",
        "adoption_rate": "adoption",
        "notice_to_try_rate": "notice-to-try",
        "repeat_usage_rate": "repeat usage",
        "conversion_rate": "conversion",
        "baseline_conversion_rate": "baseline conversion",
        "median_days_to_adopt": "median time to adopt",
    }
    return nouns.get(metric, metric.replace("_", " "))


def hint_sentence(kpi: Kpi, *, day: int, values: Sequence[float], is_stretch: bool) -> str:
    """E.g. "your last 6 launches reached 9%-31% adoption by day 14 (median 18%); this target
    is 20%", and for a target none of them reached, that it is a stretch."""
    noun, target = _metric_noun(kpi.metric), metric_value_text(kpi.metric, kpi.target)
    if not values:
        return f"no past launch has closed with {noun} measured by day {day}; this target is {target}"
    low, high = min(values), max(values)
    spread = metric_value_text(kpi.metric, low)
    if high != low:
        spread += "-" + metric_value_text(kpi.metric, high)
    who = "your last launch" if len(values) == 1 else f"your last {len(values)} launches"
    # A duration is had, not reached: "had 2-4 days median time to adopt".
    verb = "reached" if is_rate_metric(kpi.metric) else "had"
    text = f"{who} {verb} {spread} {noun} by day {day}"
    if len(values) > 1:
        text += f" (median {metric_value_text(kpi.metric, statistics.median(values))})"
    text += f"; this target is {target}"
    if is_stretch:
        beyond = "got that low" if kpi.comparator == "<=" else "reached it"
        text += f"; no past launch {beyond}: a stretch"
    return text


def target_hint(kpi: Kpi, *, day: int, past: Sequence[tuple[LaunchSpec, LaunchReport]]) -> TargetHint:
    """The hint for one KPI from `past`: each past launch with its report as of launched_at +
    day, most recently closed first. A launch whose report has no value (nobody in its
    audience) is left out, since it reached nothing either way."""
    values: list[PastValue] = []
    for spec, report in past:
        measured = metric_in_report(report, kpi.metric)
        if measured is None or measured.value is None:
            continue
        values.append(
            PastValue(
                key=spec.key,
                name=spec.name,
                launched_at=naive_utc(spec.launched_at),
                value=measured.value,
                n=measured.n,
            )
        )
    numbers = [v.value for v in values]
    low, high = (min(numbers), max(numbers)) if numbers else (None, None)
    # Stretch: beyond everything past launches did, in the KPI's direction.
    is_stretch = (
        low is not None
        and high is not None
        and (kpi.target > high if kpi.comparator == ">=" else kpi.target < low)
    )
    return TargetHint(
        kpi_id=kpi.id,
        metric=kpi.metric,
        comparator=kpi.comparator,
        target=kpi.target,
        day=day,
        launches=values,
        median=statistics.median(numbers) if numbers else None,
        low=low,
        high=high,
        is_stretch=is_stretch,
        sentence=hint_sentence(kpi, day=day, values=numbers, is_stretch=is_stretch),
    )
