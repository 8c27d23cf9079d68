"""Each user's journey through a launch, reduced to a few timestamps per user.

Every period a report measures starts at launched_at (the window and each KPI's by_day window)
or ends there (their baselines), so one pass over the events can record, per user, the first
time each thing happened at or after launch and the last time before it. A period [S, E) then
asks "did it happen before E?", which is a cheap comparison instead of another pass over
millions of activity rows. The step functions below build that table lazily; `collect_journeys`
collects it together with the few per-(user, day) and per-(user, week) frames some metrics need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from pipelines.audience import trait_states
from pipelines.launch import LaunchSpec, Matcher
from pipelines.windows import DAY, Span

NO_CHANNEL = "(none)"
WEEK_US = int(timedelta(days=7) / timedelta(microseconds=1))
DAY_US = int(DAY / timedelta(microseconds=1))


@dataclass(frozen=True)
class Journeys:
    """The collected per-user tables every period's metrics are computed from.

    users: one row per user with any event in the span: is_identified, first_event_at,
      last_event_before, active_days (see `ReportInputs`), the signal timestamps (see
      `signal_times_by_user`) and the trait states of `pipelines.audience`.
    used_days: distinct (user_id, day) with a `used` event at or after launch.
    used_weeks: distinct (user_id, week) with a `used` event in week n >= 1 after first use.
    channel_exposures: (user_id, channel, exposed_at): earliest exposure through each channel.
    """

    users: pl.DataFrame
    used_days: pl.DataFrame
    used_weeks: pl.DataFrame
    channel_exposures: pl.DataFrame


def matches(matcher: Matcher, property_names: Sequence[str]) -> pl.Expr:
    """True for events the matcher accepts; a property it tests but the event lacks fails."""
    condition = pl.col("type") == matcher.type
    if matcher.event is not None:
        condition = condition & (pl.col("event") == matcher.event)
    for prop, allowed in matcher.allowed().items():
        # property_names come from the same plan as the matchers, so every tested one is there.
        value = pl.col("props").list.get(property_names.index(prop), null_on_oob=True)
        condition = condition & value.is_in(allowed)
    # Comparisons with a null event or property give null; null means "does not match".
    return condition.fill_null(False)


def matches_any(matchers: Sequence[Matcher], property_names: Sequence[str]) -> pl.Expr:
    if not matchers:
        return pl.lit(False)
    return pl.any_horizontal([matches(m, property_names) for m in matchers])


def with_signal_flags(
    signals: pl.LazyFrame, *, launch: LaunchSpec, property_names: Sequence[str]
) -> pl.LazyFrame:
    """Adds is_exposed, is_used and is_converted (an event may be several signals at once)."""
    return signals.with_columns(
        is_exposed=matches_any(launch.signals.exposed, property_names),
        is_used=matches_any(launch.signals.used, property_names),
        is_converted=matches_any(launch.signals.converted, property_names),
    )


def keep_between(frame: pl.LazyFrame, column: str, start: datetime, end: datetime) -> pl.LazyFrame:
    return frame.filter((pl.col(column) >= start) & (pl.col(column) < end))


def presence_by_user(activity: pl.LazyFrame, span: Span) -> pl.LazyFrame:
    """Per user seen in the span: is_identified, the first event at or after the launch, the
    last one before it, and the window's active days (times outside the span are dropped)."""
    first, last = pl.col("first_event_at"), pl.col("last_event_before")
    return activity.with_columns(
        first_event_at=pl.when((first >= span.start) & (first < span.end)).then(first),
        last_event_before=pl.when((last >= span.lookback) & (last < span.start)).then(last),
    ).filter(pl.col("first_event_at").is_not_null() | pl.col("last_event_before").is_not_null())


def first_use_by_user(signals: pl.LazyFrame, *, start: datetime) -> pl.LazyFrame:
    """Per adopter, the first use at or after start (f in the retention and repeat rules)."""
    return (
        signals.filter(pl.col("is_used") & (pl.col("occurred_at") >= start))
        .group_by("user_id")
        .agg(first_used_at=pl.col("occurred_at").min())
    )


def signal_times_by_user(signals: pl.LazyFrame, *, start: datetime) -> pl.LazyFrame:
    """Per user, the signal timestamps every metric compares with a period end.

    repeat_at is the first use on a later UTC day than the first use (so "used on 2+ days
    before E" is "repeat_at < E"); converted_after_use_at the first conversion at or after
    the first use.
    """
    at = pl.col("occurred_at")
    first_used_at = pl.col("first_used_at")
    since_launch = at >= start
    used = pl.col("is_used") & since_launch
    converted = pl.col("is_converted")
    return (
        signals.join(signals.pipe(first_use_by_user, start=start), on="user_id", how="left")
        .select(
            "user_id",
            first_used_at,
            first_exposed_at=pl.when(pl.col("is_exposed") & since_launch).then(at),
            repeat_at=pl.when(used & (at.dt.date() > first_used_at.dt.date())).then(at),
            first_converted_at=pl.when(converted & since_launch).then(at),
            converted_after_use_at=pl.when(converted & (at >= first_used_at)).then(at),
            last_converted_before=pl.when(converted & (at < start)).then(at),
        )
        .group_by("user_id")
        .agg(
            pl.col("first_used_at").first(),
            pl.col("first_exposed_at", "repeat_at", "first_converted_at", "converted_after_use_at").min(),
            pl.col("last_converted_before").max(),
        )
    )


def used_days(signals: pl.LazyFrame, *, start: datetime) -> pl.LazyFrame:
    """Distinct (user, UTC day) with a use at or after start."""
    return (
        signals.filter(pl.col("is_used") & (pl.col("occurred_at") >= start))
        .select("user_id", day=pl.col("occurred_at").dt.date())
        .unique()
    )


def used_weeks(signals: pl.LazyFrame, first_use: pl.LazyFrame, *, start: datetime) -> pl.LazyFrame:
    """Distinct (user, n) with a use in [f + 7n days, f + 7(n+1) days), f the first use."""
    since_first_use = pl.col("occurred_at") - pl.col("first_used_at")
    return (
        signals.filter(pl.col("is_used") & (pl.col("occurred_at") >= start))
        .join(first_use, on="user_id")
        .select("user_id", week=since_first_use.dt.total_microseconds() // WEEK_US)
        .filter(pl.col("week") >= 1)
        .unique()
    )


def channel_exposures(signals: pl.LazyFrame, *, start: datetime) -> pl.LazyFrame:
    """Per user and channel ("(none)" without one), the earliest exposure at or after start."""
    return (
        signals.filter(pl.col("is_exposed") & (pl.col("occurred_at") >= start))
        .group_by("user_id", channel=pl.col("channel").fill_null(NO_CHANNEL))
        .agg(exposed_at=pl.col("occurred_at").min())
    )


def user_journeys(
    activity: pl.LazyFrame,
    signals: pl.LazyFrame,
    states: pl.LazyFrame | None,
    *,
    span: Span,
) -> pl.LazyFrame:
    """One row per user seen in the span: presence, signal times and trait states."""
    users = presence_by_user(activity, span).join(
        signals.pipe(signal_times_by_user, start=span.start), on="user_id", how="left"
    )
    return users if states is None else users.join(states, on="user_id", how="left")


def collect_journeys(
    activity: pl.LazyFrame,
    signals: pl.LazyFrame,
    traits: pl.LazyFrame,
    *,
    launch: LaunchSpec,
    property_names: Sequence[str],
    trait_pairs: Sequence[tuple[datetime, str]],
    span: Span,
) -> Journeys:
    """Runs the lazy steps over the inputs and collects the tables in one go."""
    # Candidates that match no matcher (the same event name for another feature, say) carry
    # nothing any metric reads, so they are dropped before the per-user work.
    flagged = (
        signals.pipe(keep_between, "occurred_at", span.lookback, span.end)
        .pipe(with_signal_flags, launch=launch, property_names=property_names)
        .filter(pl.col("is_exposed") | pl.col("is_used") | pl.col("is_converted"))
    )
    states = trait_states(traits, wanted=trait_pairs) if trait_pairs else None
    first_use = flagged.pipe(first_use_by_user, start=span.start)
    frames = pl.collect_all(
        [
            user_journeys(activity, flagged, states, span=span),
            flagged.pipe(used_days, start=span.start),
            flagged.pipe(used_weeks, first_use, start=span.start),
            flagged.pipe(channel_exposures, start=span.start),
        ]
    )
    return Journeys(
        users=frames[0],
        used_days=frames[1],
        used_weeks=frames[2],
        channel_exposures=frames[3],
    )
