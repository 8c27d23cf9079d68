"""Warnings between meetings: which alert conditions hold for a launch at a moment, from its
report and readiness alone (results already computed), so checking them costs nothing new.

Three conditions:
- silent_signal: the launch is live and one of its `exposed` or `used` matchers has matched no
  event since launch (once 24 hours have passed) or in the last 7 days, while the window is
  open: nobody can notice the feature, or the tracking is broken;
- verdict_changed: a KPI or launch verdict differs from the one at the previous evaluation;
- off_path: a KPI with `by_day` is already missed by the verdict rule (on its always-valid
  interval) before its evaluation day.

Each condition has a kind, a subject (what it is about, e.g. `exposed:0`, `kpi:adoption`) and a
state (what it holds for, e.g. the new verdict), so the app can raise it once and clear it when
it no longer holds. No I/O and no clock: as_of comes with the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from pipelines.launch import Matcher, is_rate_metric
from pipelines.readiness import MatcherReadiness, Readiness, describe_matcher
from pipelines.report_models import KpiResult, LaunchReport
from pipelines.times import naive_utc

AlertKind = Literal["silent_signal", "verdict_changed", "off_path"]
ALERT_KINDS: tuple[AlertKind, ...] = ("silent_signal", "verdict_changed", "off_path")
# How long a live launch's signal may stay silent from launch before it is an alert, and how
# long it may stay silent later in the window.
FIRST_DAY = timedelta(hours=24)
RECENT = timedelta(days=7)
WATCHED_SIGNALS = ("exposed", "used")
LAUNCH_SUBJECT = "launch"


class AlertCondition(BaseModel):
    """A condition that holds for a launch now."""

    model_config = ConfigDict(frozen=True)

    kind: AlertKind
    subject: str
    state: str
    message: str


def kpi_subject(kpi_id: str) -> str:
    return f"kpi:{kpi_id}"


def report_verdicts(report: LaunchReport) -> dict[str, str]:
    """The launch verdict and each KPI's, by subject: what a later evaluation compares with."""
    return {LAUNCH_SUBJECT: report.verdict, **{kpi_subject(kpi.id): kpi.verdict for kpi in report.kpis}}


def _matcher_text(signal: str, matcher: Matcher) -> str:
    return f"its {signal} signal ({describe_matcher(matcher)})"


def silent_signals(
    readiness: Readiness, *, name: str, launched_at: datetime, window_end: datetime
) -> list[AlertCondition]:
    """The `exposed` and `used` matchers that matched no event since launch (24 hours on) or
    in the last 7 days, while the launch is live and its window open."""
    as_of, launched_at, window_end = (
        naive_utc(readiness.as_of),
        naive_utc(launched_at),
        naive_utc(window_end),
    )
    if not readiness.live or as_of < launched_at + FIRST_DAY or as_of >= window_end:
        return []
    since = max(launched_at, as_of - RECENT)
    found = []
    for check in readiness.matchers:
        if check.signal not in WATCHED_SIGNALS or not _silent(check, since):
            continue
        period = "since launch" if since == launched_at else "in the last 7 days"
        hours = (as_of - since).total_seconds() / 3600
        length = f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"
        message = (
            f"{name}: nobody can notice it. {_matcher_text(check.signal, check.matcher).capitalize()} "
            f"has matched no event {period} ({length}): the feature is not shown, or its tracking is broken."
        )
        found.append(
            AlertCondition(
                kind="silent_signal", subject=f"{check.signal}:{check.index}", state="silent", message=message
            )
        )
    return found


def _silent(check: MatcherReadiness, since: datetime) -> bool:
    return check.last_seen_at is None or naive_utc(check.last_seen_at) < since


def verdict_changes(report: LaunchReport, previous: Mapping[str, str] | None) -> list[AlertCondition]:
    """Each verdict (the launch's, each KPI's) that differs from `previous`, the verdicts of
    the last evaluation (None: never evaluated, so nothing to compare with)."""
    if previous is None:
        return []
    found = []
    for subject, verdict in report_verdicts(report).items():
        before = previous.get(subject)
        if before is None or before == verdict:
            continue
        what = "the launch verdict" if subject == LAUNCH_SUBJECT else f"KPI {subject.removeprefix('kpi:')}"
        message = f"{report.name}: {what} changed from {_label(before)} to {_label(verdict)}."
        found.append(AlertCondition(kind="verdict_changed", subject=subject, state=verdict, message=message))
    return found


def _label(verdict: str) -> str:
    return verdict.replace("_", " ")


def is_off_path(kpi: KpiResult) -> bool:
    """A KPI with by_day already missed before its evaluation day (its verdict, on the
    always-valid interval, is safe to act on at any look)."""
    return kpi.by_day is not None and kpi.window.provisional and kpi.verdict == "missed"


def off_path(report: LaunchReport) -> list[AlertCondition]:
    """The KPIs with by_day already missed before their evaluation day."""
    found = []
    for kpi in report.kpis:
        if not is_off_path(kpi):
            continue
        assert kpi.by_day is not None
        day = int((naive_utc(kpi.window.as_of) - naive_utc(kpi.window.start)).total_seconds() // 86400)
        value = "no value" if kpi.value is None else _value(kpi.metric, kpi.value)
        interval = ""
        if kpi.interval is not None:
            low, high = _value(kpi.metric, kpi.interval.low), _value(kpi.metric, kpi.interval.high)
            interval = f", 95% interval {low} to {high}"
        message = (
            f"{report.name}: off the path. KPI {kpi.id} is already missed on day {day} of {kpi.by_day}: "
            f"{value}{interval}, target {kpi.comparator} {_value(kpi.metric, kpi.target)}."
        )
        found.append(
            AlertCondition(kind="off_path", subject=kpi_subject(kpi.id), state="missed", message=message)
        )
    return found


def _value(metric: str, value: float) -> str:
    return f"{value * 100:.1f}%" if is_rate_metric(metric) else f"{value:.1f} days"


def launch_conditions(
    report: LaunchReport,
    readiness: Readiness,
    *,
    launched_at: datetime,
    window_end: datetime,
    previous_verdicts: Mapping[str, str] | None,
) -> list[AlertCondition]:
    """Every condition that holds for the launch at its report's as_of."""
    if naive_utc(report.window.as_of) < naive_utc(launched_at):
        return []
    return [
        *silent_signals(readiness, name=report.name, launched_at=launched_at, window_end=window_end),
        *verdict_changes(report, previous_verdicts),
        *off_path(report),
    ]
