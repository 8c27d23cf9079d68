"""The launch report: every number of the metrics contract, the KPI verdicts and the diagnosis,
computed from three narrow frames the storage layer selects with SQL.

`compute_report` is the one entry point. It takes the frames and the `ReportPlan` the storage
layer selected them by, so both read the same periods and the same order of `props`. The signal
and trait frames need not be limited to the report's periods: rows outside them are filtered
here. The activity frame is already one row per user for exactly the plan's span (times outside
it are ignored).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipelines.audience import segment_value
from pipelines.diagnosis import (
    compare_conversion,
    compute_channels,
    compute_funnel,
    compute_segments,
    compute_timeline,
)
from pipelines.journeys import collect_journeys
from pipelines.launch import KpiRecord, retention_week
from pipelines.metrics import WindowOutcome, compute_window_outcome
from pipelines.plan import ReportPlan
from pipelines.rates import always_valid_median, always_valid_rate_interval
from pipelines.report_models import Interval, KpiResult, LaunchReport, Rate, Segments, Window
from pipelines.verdicts import kpi_verdict, launch_verdict
from pipelines.windows import touched_days

ACTIVITY_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "is_identified": pl.Boolean(),
    "first_event_at": pl.Datetime("us"),
    "last_event_before": pl.Datetime("us"),
    "active_days": pl.String(),
}
SIGNALS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "is_identified": pl.Boolean(),
    "type": pl.String(),
    "event": pl.String(),
    "occurred_at": pl.Datetime("us"),
    "props": pl.List(pl.String()),
    "channel": pl.String(),
}
TRAITS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "occurred_at": pl.Datetime("us"),
    "trait": pl.String(),
    "value": pl.String(),
}

Frame = pl.DataFrame | pl.LazyFrame


@dataclass(frozen=True)
class ReportInputs:
    """The storage layer's frames for one report plan (schemas: ACTIVITY_SCHEMA,
    SIGNALS_SCHEMA, TRAITS_SCHEMA; times naive or aware UTC).

    activity: one row per user with an event in the plan's span (the window and its baseline
      period): the first event at or after launched_at, the last one before it, and
      active_days, one character per UTC day the window touches from the launch's day on, '1'
      when the user had an event that day inside the window ('0' or missing otherwise).
    signals: candidate signal events; `props` holds the values of the plan's property_names,
      in order.
    traits: every known value of the plan's trait_names, each timed by its event.
    """

    activity: Frame
    signals: Frame
    traits: Frame


def as_input_frame(frame: Frame, schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    """The frame's contract columns, lazily, with times as naive UTC microseconds.

    DuckDB hands TIMESTAMPTZ columns over as zone-aware Arrow; comparing them with the naive
    period bounds would fail, so they are converted rather than rejected.
    """
    lazy = frame.lazy()
    present = lazy.collect_schema()
    missing = [name for name in schema if name not in present]
    if missing:
        raise ValueError(f"report input lacks columns {missing}; expected {list(schema)}")
    columns: list[pl.Expr] = []
    for name, dtype in schema.items():
        column = pl.col(name)
        found = present[name]
        if isinstance(found, pl.Datetime) and found.time_zone is not None:
            column = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        columns.append(column.cast(dtype))
    return lazy.select(columns)


def _measure(outcome: WindowOutcome, metric: str) -> tuple[float | None, Interval | None, int]:
    """A KPI metric's value, interval and sample size n over the outcome's window."""
    metrics = outcome.metrics
    week = retention_week(metric)
    if week is not None:
        weekly = outcome.retention[week]
        return weekly.value, weekly.interval, weekly.n
    if metric == "median_days_to_adopt":
        median = metrics.median_days_to_adopt
        return median.value, median.interval, median.n
    if metric == "stickiness":
        sticky = metrics.stickiness
        return sticky.value, sticky.interval, sticky.adopters
    rated: Rate = getattr(metrics, metric)
    return rated.value, rated.interval, rated.n


# A mean of daily shares is not k successes of n, so no confidence sequence applies: stickiness
# keeps its fixed-horizon interval while provisional too (spec section 7).
FIXED_ONLY_METRICS = frozenset({"stickiness"})


def _always_valid(outcome: WindowOutcome, metric: str) -> Interval | None:
    """A rate's or the median's always-valid 95% interval over the outcome's window (section 7)."""
    week = retention_week(metric)
    if week is not None:
        return always_valid_rate_interval(outcome.retention[week])
    if metric == "median_days_to_adopt":
        return always_valid_median(outcome.adoption_days)
    rated: Rate = getattr(outcome.metrics, metric)
    return always_valid_rate_interval(rated)


def judge_kpi(record: KpiRecord, window: Window, outcome: WindowOutcome) -> KpiResult:
    """The KPI as first set, over its own window; an amended target is shown, never used.

    While the window is open the team looks again every week, and a fixed-horizon interval
    looked at repeatedly calls a false met or missed far more often than 5%; so a provisional
    KPI is judged on its always-valid interval, and on the fixed one once its window is over.
    """
    kpi, current = record.first_set, record.current
    value, fixed_interval, n = _measure(outcome, kpi.metric)
    always_valid = window.provisional and kpi.metric not in FIXED_ONLY_METRICS
    interval = _always_valid(outcome, kpi.metric) if always_valid else fixed_interval
    amended_target = current.target if record.amended and current.target != kpi.target else None
    return KpiResult(
        id=kpi.id,
        metric=kpi.metric,
        comparator=kpi.comparator,
        target=kpi.target,
        amended_target=amended_target,
        amended=record.amended,
        set_after_launch=record.set_after_launch,
        min_sample=kpi.min_sample,
        by_day=kpi.by_day,
        window=window,
        value=value,
        interval=interval,
        fixed_interval=fixed_interval,
        interval_kind="always_valid" if always_valid else "fixed",
        n=n,
        verdict=kpi_verdict(
            interval, n, comparator=kpi.comparator, target=kpi.target, min_sample=kpi.min_sample
        ),
        provisional=window.provisional,
    )


def active_users_by_day(active: pl.DataFrame, *, window: Window) -> pl.DataFrame:
    """(day, active): users of A with any event that day inside the window, from active_days."""
    days = touched_days(window)
    width = len(days)
    counts = [0] * width
    if width and active.height:
        # All users' flags end to end, one string of `width` characters per user: the users
        # active on day i are the '1's at positions i, i + width, i + 2 * width, ...
        text: str = active.select(pl.col("active_days").fill_null("0" * width).str.join("")).item()
        if len(text) != width * active.height:
            raise ValueError(f"active_days must hold {width} characters per user, one per day of the window")
        counts = [text[i::width].count("1") for i in range(width)]
    return pl.DataFrame({"day": days, "active": counts}, schema={"day": pl.Date, "active": pl.UInt32})


def compute_report(inputs: ReportInputs, plan: ReportPlan) -> LaunchReport:
    """The launch report the plan describes: as of its as_of, judging its KPIs (as first set)
    and, when its segment names a trait, breaking each rate down by it."""
    launch, window = plan.launch, plan.window
    activity = as_input_frame(inputs.activity, ACTIVITY_SCHEMA)
    signals = as_input_frame(inputs.signals, SIGNALS_SCHEMA)
    traits = as_input_frame(inputs.traits, TRAITS_SCHEMA)
    journeys = collect_journeys(
        activity,
        signals,
        traits,
        launch=launch,
        property_names=plan.property_names,
        trait_pairs=plan.trait_pairs,
        span=plan.span,
    )

    outcomes = {
        w.end: compute_window_outcome(
            journeys,
            window=w,
            audience=launch.audience,
            weeks=plan.weeks,
            report_weeks=plan.shown_weeks,
        )
        for w in plan.windows
    }
    report = outcomes[window.end]
    kpi_results = [
        judge_kpi(record, kpi_window, outcomes[kpi_window.end])
        for record, kpi_window in zip(plan.kpis, plan.kpi_windows, strict=True)
    ]

    active = report.active
    segments: Segments | None = None
    if plan.segment is not None:
        with_segment = active.with_columns(
            segment=segment_value(plan.segment, start=window.start, end=window.end)
        )
        segments = compute_segments(with_segment, trait=plan.segment)
    counts = report.counts
    return LaunchReport(
        launch_key=launch.key,
        name=launch.name,
        owner=launch.owner,
        window=window,
        provisional=window.provisional,
        counts=counts,
        metrics=report.metrics,
        kpis=kpi_results,
        verdict=launch_verdict([k.verdict for k in kpi_results]),
        funnel=compute_funnel(
            active=counts.active,
            exposed=counts.exposed,
            tried=counts.tried,
            repeated=report.tried_repeated,
            converted=report.tried_converted,
        ),
        channels=compute_channels(active, journeys.channel_exposures),
        segments=segments,
        adopters_vs_non_adopters=compare_conversion(active, adopters=report.metrics.conversion_rate),
        timeline=compute_timeline(
            active,
            active_users_by_day(active, window=window),
            window=window,
            launch=launch,
            kpis=plan.kpis,
        ),
    )
