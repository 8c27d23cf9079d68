"""The scorecard page of one launch: the verdict at the top, KPI tiles against their targets,
then why it landed or not (funnel, adoption over time, channels, segments, retention, adopters
vs non-adopters), every metric, the KPI history with what past launches reached for each target,
readiness warnings, and a link to compare the launch with those before it. A pure function of the
context the app gathers; templates/scorecard.html lays it out."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from dashboards import figures, theme
from dashboards.figures import SegmentMetric
from dashboards.layout import Freshness, figure_html, kpi_target, render_page, verdict_counts
from dashboards.notes import AlertNote, DecisionForm, DecisionNote, decision_line
from dashboards.timeline import adoption_timeline_chart
from pipelines.launch import retention_week
from pipelines.report_models import KpiResult, LaunchReport, TargetHint

__all__ = ["FIGURE_IDS", "HistoryEntry", "ScorecardContext", "scorecard_page"]

FIGURE_IDS: Final[dict[str, str]] = {
    "funnel": "funnel-chart",
    "adoption": "adoption-chart",
    "channels": "channels-chart",
    "segments": "segments-chart",
    "retention": "retention-chart",
    "conversion": "conversion-chart",
}
"""The div id of each scorecard figure, for the app's and the browser tests' selectors."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HistoryEntry(_Model):
    """One change to a launch's spec: a new version before launch, or an amendment after."""

    at: datetime
    by: str
    kind: Literal["version", "amendment", "decision"]
    summary: str = Field(description="what changed, e.g. 'adoption: target 8.0% -> 6.0%'")
    reason: str = ""


class ScorecardContext(_Model):
    report: LaunchReport
    history: list[HistoryEntry] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    segment_traits: list[str] = Field(default_factory=list)
    segment_metric: SegmentMetric = "adoption_rate"
    json_url: str
    target_hints: list[TargetHint] = Field(
        default_factory=list, description="each KPI's target beside what past closed launches reached"
    )
    compare_url: str | None = Field(
        default=None, description="the compare page of this launch and those launched before it"
    )
    freshness: Freshness | None = Field(default=None, description="when the numbers were computed")
    decisions: list[DecisionNote] = Field(
        default_factory=list, description="decisions on record, oldest first"
    )
    alerts: list[AlertNote] = Field(default_factory=list, description="the launch's alerts, newest first")
    decision_form: DecisionForm | None = Field(default=None, description="shown to an admin sign-in")
    can_edit: bool = Field(default=False, description="the viewer may change launches (admin): an Edit link")


@dataclass(frozen=True)
class Tile:
    """What a KPI's tile says beyond the KPI itself."""

    kpi: KpiResult
    target: str
    sample: str
    flags: list[str]
    period_end: str


def _tile(kpi: KpiResult) -> Tile:
    flags: list[str] = []
    if kpi.amended and kpi.amended_target is not None:
        flags.append(
            f"amended target: {theme.fmt_metric(kpi.metric, kpi.amended_target)}"
            f" (judged against {theme.fmt_metric(kpi.metric, kpi.target)} as first set)"
        )
    elif kpi.amended:
        flags.append("amended (judged as first set)")
    if kpi.set_after_launch:
        flags.append("set after launch")
    if kpi.by_day is not None:
        flags.append(f"by day {kpi.by_day}")
    sample = f"n = {theme.fmt_count(kpi.n)}"
    if kpi.verdict == "insufficient_data":
        sample += f", needs {theme.fmt_count(kpi.min_sample)}"
    # When the fixed-horizon interval takes over from the always-valid one, in plain words.
    period_end = "once the window closes" if kpi.by_day is None else f"after day {kpi.by_day}"
    return Tile(kpi, kpi_target(kpi), sample, flags, period_end)


@dataclass(frozen=True)
class MetricRow:
    """A line of the all-metrics table, every cell written out."""

    label: str
    value: str
    counts: str
    interval: str


def _metric_rows(report: LaunchReport) -> list[MetricRow]:
    metrics = report.metrics
    rates = [
        ("exposure_rate", metrics.exposure_rate, "active users"),
        ("adoption_rate", metrics.adoption_rate, "active users"),
        ("notice_to_try_rate", metrics.notice_to_try_rate, "exposed users"),
        ("repeat_usage_rate", metrics.repeat_usage_rate, "adopters"),
        ("conversion_rate", metrics.conversion_rate, "adopters"),
        ("baseline_conversion_rate", metrics.baseline_conversion_rate, "active before launch"),
    ]
    rows = [
        MetricRow(
            theme.metric_label(name),
            theme.fmt_percent(rate.value),
            f"{theme.fmt_k_of_n(rate.k, rate.n)} {of}",
            theme.fmt_interval(rate.interval),
        )
        for name, rate, of in rates
    ]
    median = metrics.median_days_to_adopt
    sticky = metrics.stickiness
    return [
        *rows,
        MetricRow(
            theme.metric_label("median_days_to_adopt"),
            theme.fmt_days(median.value),
            f"{theme.fmt_count(median.n)} adopters",
            theme.fmt_interval(median.interval, theme.fmt_days),
        ),
        MetricRow(
            "Stickiness",
            theme.fmt_percent(sticky.value),
            f"{theme.fmt_count(sticky.adopters)} adopters over {sticky.full_days} full days",
            theme.fmt_interval(sticky.interval),
        ),
    ]


def _segment_traits(ctx: ScorecardContext) -> list[str]:
    """The traits to break down by, the one shown first among them even if not offered."""
    traits = list(ctx.segment_traits)
    current = ctx.report.segments.trait if ctx.report.segments else None
    if current is not None and current not in traits:
        traits.insert(0, current)
    return traits


def _association_note(report: LaunchReport) -> str:
    note = report.adopters_vs_non_adopters.note.strip()
    if "association" in note.lower():
        return note
    return f"{note} This is an association, not an effect of the feature.".strip()


def _target_for(report: LaunchReport, metric: str) -> float | None:
    return next((kpi.target for kpi in report.kpis if kpi.metric == metric), None)


# The charts of recent (report, segment metric) pairs. Pages show reports computed ahead, the
# same object view after view, and building six Plotly figures costs more than the rest of the
# page. Entries hold their report, so a key's id() cannot be reused while it is cached.
_CHARTS_KEPT: Final = 64
_charts_cache: OrderedDict[tuple[int, str], tuple[LaunchReport, dict[str, Markup]]] = OrderedDict()
_charts_lock = threading.Lock()


def _charts(ctx: ScorecardContext) -> dict[str, Markup]:
    key = (id(ctx.report), ctx.segment_metric)
    with _charts_lock:
        cached = _charts_cache.get(key)
        if cached is not None and cached[0] is ctx.report:
            _charts_cache.move_to_end(key)
            return cached[1]
    charts = _build_charts(ctx)
    with _charts_lock:
        _charts_cache[key] = (ctx.report, charts)
        while len(_charts_cache) > _CHARTS_KEPT:
            _charts_cache.popitem(last=False)
    return charts


def _build_charts(ctx: ScorecardContext) -> dict[str, Markup]:
    report = ctx.report
    retention_kpi = next((kpi for kpi in report.kpis if retention_week(kpi.metric) is not None), None)
    charts = {
        "funnel": figures.funnel_chart(report.funnel),
        "adoption": adoption_timeline_chart(report.timeline, start=report.window.start),
        "channels": figures.channels_chart(report.channels, active=report.counts.active),
        "segments": figures.segments_chart(
            report.segments,
            metric=ctx.segment_metric,
            target=_target_for(report, ctx.segment_metric),
        ),
        "retention": figures.retention_chart(
            report.metrics.week_n_retention,
            target=retention_kpi.target if retention_kpi else None,
            target_week=retention_week(retention_kpi.metric) if retention_kpi else None,
        ),
        "conversion": figures.conversion_comparison_chart(report.adopters_vs_non_adopters),
    }
    return {name: figure_html(fig, FIGURE_IDS[name]) for name, fig in charts.items()}


def _hint_launches(hint: TargetHint) -> str:
    """The past launches behind a target hint with what each reached: "Team workspaces 31.0%, ..."."""
    return ", ".join(f"{past.name} {theme.fmt_metric(hint.metric, past.value)}" for past in hint.launches)


def scorecard_page(ctx: ScorecardContext) -> str:
    """One launch: the verdict at the top, KPI tiles against their targets, then why it
    landed or not (funnel, adoption over time, channels, segments, retention, adopters vs
    non-adopters), the KPI history and readiness warnings."""
    report = ctx.report
    window = report.window
    window_days = (window.full_end - window.start).total_seconds() / 86400
    measured = (
        f"provisional: {window.days:.1f} of {window_days:.0f} days measured"
        if report.provisional
        else f"{window_days:.0f} days"
    )
    return render_page(
        "scorecard.html",
        charts=True,
        ctx=ctx,
        report=report,
        measured=measured,
        verdict_counts=verdict_counts(report),
        tiles=[_tile(kpi) for kpi in report.kpis],
        figure=_charts(ctx),
        association_note=_association_note(report),
        metric_rows=_metric_rows(report),
        segment_traits=_segment_traits(ctx),
        segment_metrics=figures.SEGMENT_METRICS,
        hint_launches=_hint_launches,
        decision_line=decision_line,
    )
