"""The metrics of spec section 4 for one evaluation window, from the collected journeys.

A window [launched_at, E) turns each journey timestamp into a flag ("first use before E?"), so
the report window and every KPI's by_day window are computed from the same collected tables,
once per distinct end. The baseline of a window is the period of the same length just before
launch, with its own audience (traits as of that period's start).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

import polars as pl

from pipelines.audience import in_audience
from pipelines.journeys import DAY_US, Journeys
from pipelines.launch import Audience
from pipelines.rates import median_days, rate
from pipelines.report_models import (
    Counts,
    Interval,
    Metrics,
    Rate,
    RetentionWeek,
    Stickiness,
    Window,
)
from pipelines.stats import wilson_interval_at
from pipelines.windows import baseline_start, full_days


@dataclass(frozen=True)
class WindowOutcome:
    """Everything measured over one window; `active` keeps the flagged users of A for the
    diagnosis, `retention` every week any report part asks about, `adoption_days` the values
    behind median_days_to_adopt (a provisional KPI's always-valid interval needs them)."""

    window: Window
    active: pl.DataFrame
    counts: Counts
    metrics: Metrics
    retention: dict[int, Rate]
    adoption_days: list[float]
    tried_repeated: int
    tried_converted: int


def _before(column: str, end: datetime) -> pl.Expr:
    return (pl.col(column) < end).fill_null(False)


def is_active(audience: Audience, *, start: datetime, end: datetime) -> pl.Expr:
    """True for users of A in the window [start, end): an event in it and in the audience."""
    return _before("first_event_at", end) & in_audience(audience, start=start, end=end)


def with_window_flags(
    users: pl.LazyFrame, *, audience: Audience, start: datetime, end: datetime
) -> pl.LazyFrame:
    """Adds is_active (A), is_exposed, is_adopter, is_repeat, is_converted_after_use and
    has_converted for the window ending at `end`."""
    return users.with_columns(
        is_active=is_active(audience, start=start, end=end),
        is_exposed=_before("first_exposed_at", end),
        is_adopter=_before("first_used_at", end),
        is_repeat=_before("repeat_at", end),
        is_converted_after_use=_before("converted_after_use_at", end),
        has_converted=_before("first_converted_at", end),
    )


def keep_active(users: pl.LazyFrame) -> pl.LazyFrame:
    return users.filter(pl.col("is_active"))


def count_columns() -> dict[str, pl.Expr]:
    """The counts of section 4 as aggregations over flagged active users: |A|, |E|, |U|,
    tried (E and U), repeated and converted. The report's totals and each segment row of
    the diagnosis aggregate these same expressions."""
    exposed, adopter = pl.col("is_exposed"), pl.col("is_adopter")
    return {
        "active": pl.len(),
        "exposed": exposed.sum(),
        "adopters": adopter.sum(),
        "tried": (exposed & adopter).sum(),
        "repeated": pl.col("is_repeat").sum(),
        "converted": pl.col("is_converted_after_use").sum(),
    }


class CountRates(TypedDict):
    """The five rates that are a count over another count."""

    exposure_rate: Rate
    adoption_rate: Rate
    notice_to_try_rate: Rate
    repeat_usage_rate: Rate
    conversion_rate: Rate


def count_rates(counts: Counts) -> CountRates:
    """The five count rates with their denominators (spec section 4), for the report's
    metrics and for each segment row alike."""
    return CountRates(
        exposure_rate=rate(counts.exposed, counts.active),
        adoption_rate=rate(counts.adopters, counts.active),
        notice_to_try_rate=rate(counts.tried, counts.exposed),
        repeat_usage_rate=rate(counts.repeated, counts.adopters),
        conversion_rate=rate(counts.converted, counts.adopters),
    )


def days_to_adopt(active: pl.DataFrame) -> list[float]:
    since_first_event = pl.col("first_used_at") - pl.col("first_event_at")
    return (
        active.filter(pl.col("is_adopter"))
        .select(since_first_event.dt.total_microseconds() / DAY_US)
        .to_series()
        .to_list()
    )


def retention(
    active: pl.DataFrame, used_weeks: pl.DataFrame, *, end: datetime, weeks: Sequence[int]
) -> dict[int, Rate]:
    """week_n_retention for each n: adopters whose week n is over by `end` form n."""
    if not weeks:
        return {}
    adopters = active.filter(pl.col("is_adopter")).select("user_id", "first_used_at")
    first_use = pl.col("first_used_at")
    eligible = adopters.select(
        [(first_use <= end - timedelta(days=7 * (n + 1))).sum().alias(str(n)) for n in weeks]
    ).row(0)
    retained = dict(
        used_weeks.filter(pl.col("week").is_in(list(weeks)))
        .join(adopters, on="user_id")
        .filter(first_use + pl.duration(days=7 * (pl.col("week") + 1)) <= end)
        .group_by("week")
        .len()
        .iter_rows()
    )
    return {n: rate(int(retained.get(n, 0)), int(eligible[i])) for i, n in enumerate(weeks)}


def stickiness(active: pl.DataFrame, used_days: pl.DataFrame, *, window: Window) -> Stickiness:
    """Mean over full days of the share of adopters using it; days without use count as 0."""
    first_day, day_count = full_days(window)
    adopters = active.filter(pl.col("is_adopter")).select("user_id")
    if day_count == 0 or adopters.height == 0:
        return Stickiness(value=None, full_days=day_count, adopters=adopters.height, interval=None)
    last_day = first_day + timedelta(days=day_count - 1)
    adopter_days = (
        used_days.filter(pl.col("day").is_between(first_day, last_day))
        .join(adopters, on="user_id", how="semi")
        .height
    )
    value = adopter_days / (day_count * adopters.height)
    low, high = wilson_interval_at(value, adopters.height)
    return Stickiness(
        value=value,
        full_days=day_count,
        adopters=adopters.height,
        interval=Interval(low=low, high=high),
    )


def baseline_conversion(users: pl.DataFrame, *, audience: Audience, window: Window) -> Rate:
    """Active audience users of [launched_at - L, launched_at) and who of them converted."""
    lookback = baseline_start(window)
    active = (pl.col("last_event_before") >= lookback).fill_null(False) & in_audience(
        audience, start=lookback, end=window.start
    )
    converted = (pl.col("last_converted_before") >= lookback).fill_null(False)
    n, k = users.filter(active).select(pl.len(), converted.sum()).row(0)
    return rate(int(k), int(n))


def compute_window_outcome(
    journeys: Journeys,
    *,
    window: Window,
    audience: Audience,
    weeks: Sequence[int],
    report_weeks: Sequence[int],
) -> WindowOutcome:
    """All of section 4 over `window`, from journeys holding the trait states as of the
    window's start and its baseline's start."""
    active = (
        journeys.users.lazy()
        .pipe(with_window_flags, audience=audience, start=window.start, end=window.end)
        .pipe(keep_active)
        .collect()
    )
    exposed = pl.col("is_exposed")
    totals = active.select(
        **count_columns(),
        # The funnel's later steps follow the users who noticed it (E) only.
        tried_repeated=(exposed & pl.col("is_repeat")).sum(),
        tried_converted=(exposed & pl.col("is_converted_after_use")).sum(),
    ).row(0, named=True)
    counts = Counts.model_validate(totals)  # the count columns; extra ones are ignored
    weekly = retention(active, journeys.used_weeks, end=window.end, weeks=weeks)
    adoption_days = days_to_adopt(active)
    metrics = Metrics(
        **count_rates(counts),
        baseline_conversion_rate=baseline_conversion(journeys.users, audience=audience, window=window),
        median_days_to_adopt=median_days(adoption_days),
        week_n_retention=[RetentionWeek(week=n, rate=weekly[n]) for n in report_weeks],
        stickiness=stickiness(active, journeys.used_days, window=window),
    )
    return WindowOutcome(
        window=window,
        active=active,
        counts=counts,
        metrics=metrics,
        retention=weekly,
        adoption_days=adoption_days,
        tried_repeated=totals["tried_repeated"],
        tried_converted=totals["tried_converted"],
    )
