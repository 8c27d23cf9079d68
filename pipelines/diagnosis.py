"""Why a launch landed or not (spec section 6): funnel, channels, segments, adopters against
non-adopters, and the day-by-day timeline, all over the report window's active users.

Each function takes the flagged active users of the window (see `pipelines.metrics`) and
returns one result model, so a dashboard can show any of them alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from pipelines.launch import KpiRecord, LaunchSpec
from pipelines.metrics import count_columns, count_rates
from pipelines.rates import rate, share
from pipelines.report_models import (
    Channel,
    ConversionComparison,
    Counts,
    Funnel,
    FunnelStep,
    FunnelStepName,
    Interval,
    Marker,
    Rate,
    SegmentRow,
    Segments,
    Timeline,
    TimelineDay,
    Window,
)
from pipelines.stats import newcombe_difference_interval
from pipelines.times import naive_utc
from pipelines.windows import touched_days

ASSOCIATION_NOTE = "Association, not an effect: adopters may differ from non-adopters in other ways."
NO_ACTIVE_USERS = "No active users in the window yet."
NO_DROP = "Every active user went through every step."

# Which users each step loses, in words: "<share> of <parent users> <what they failed to do>."
_DROP_SENTENCES: dict[FunnelStepName, str] = {
    "exposed": "{} of active users never saw the announcement.",
    "tried": "{} of users who noticed it never tried it.",
    "repeated": "{} of users who tried it did not come back on a second day.",
    "converted": "{} of users who tried it did not convert.",
}


def percent_text(part: int, whole: int) -> str:
    """A share as a whole percent that never says 0% or 100% unless it is exactly that."""
    percent = math.floor(100 * part / whole + 0.5)
    if percent == 0 and part > 0:
        return "<1%"
    if percent == 100 and part < whole:
        return ">99%"
    return f"{percent}%"


def compute_funnel(*, active: int, exposed: int, tried: int, repeated: int, converted: int) -> Funnel:
    """Steps active -> exposed -> tried -> repeated, and converted from tried (converted
    users need not have come back on a second day, so their parent is tried)."""
    users: dict[FunnelStepName, int] = {
        "active": active,
        "exposed": exposed,
        "tried": tried,
        "repeated": repeated,
        "converted": converted,
    }
    parents: dict[FunnelStepName, FunnelStepName | None] = {
        "active": None,
        "exposed": "active",
        "tried": "exposed",
        "repeated": "tried",
        "converted": "tried",
    }
    steps = [
        FunnelStep(
            step=step,
            users=count,
            parent=parent,
            rate_from_parent=None if parent is None else share(count, users[parent]),
            rate_from_active=share(count, active),
        )
        for step, count in users.items()
        for parent in [parents[step]]
    ]
    if active == 0:
        return Funnel(steps=steps, largest_drop=None, summary=NO_ACTIVE_USERS)
    drops = [
        (users[parent] - count, step, users[parent])
        for step, count in users.items()
        if (parent := parents[step]) is not None
    ]
    # max keeps the first of equal drops, which is the earliest step.
    lost, largest, parent_users = max(drops, key=lambda drop: drop[0])
    if lost == 0:
        return Funnel(steps=steps, largest_drop=None, summary=NO_DROP)
    summary = _DROP_SENTENCES[largest].format(percent_text(lost, parent_users))
    return Funnel(steps=steps, largest_drop=largest, summary=summary)


def compute_channels(active: pl.DataFrame, channel_exposures: pl.DataFrame) -> list[Channel]:
    """Per channel: users of E exposed through it, and who of them first used it at or after
    their earliest exposure through it (the same instant counts)."""
    tried_after = (pl.col("first_used_at") >= pl.col("exposed_at")).fill_null(False)
    rows = (
        channel_exposures.join(active.select("user_id", "first_used_at"), on="user_id")
        .group_by("channel")
        .agg(exposed=pl.len(), tried=tried_after.sum())
        .sort(["exposed", "channel"], descending=[True, False])
    )
    return [
        Channel(
            channel=row["channel"],
            exposed=row["exposed"],
            reach=share(row["exposed"], active.height),
            tried_after=rate(row["tried"], row["exposed"]),
        )
        for row in rows.iter_rows(named=True)
    ]


def compute_segments(active: pl.DataFrame, *, trait: str) -> Segments:
    """Each rate by the `segment` column (the trait as of the window start, or "(none)")."""
    rows = (
        active.group_by("segment")
        .agg(**count_columns())
        .sort(["active", "segment"], descending=[True, False])
    )
    return Segments(
        trait=trait,
        rows=[
            SegmentRow(
                value=row["segment"],
                active=row["active"],
                **count_rates(Counts.model_validate(row)),
            )
            for row in rows.iter_rows(named=True)
        ],
    )


def compare_conversion(active: pl.DataFrame, *, adopters: Rate) -> ConversionComparison:
    """Adopters' conversion_rate against the share of active non-adopters who converted."""
    n, k = active.filter(~pl.col("is_adopter")).select(pl.len(), pl.col("has_converted").sum()).row(0)
    non_adopters = rate(int(k), int(n))
    if adopters.value is None or non_adopters.value is None:
        return ConversionComparison(
            adopters=adopters,
            non_adopters=non_adopters,
            difference=None,
            interval=None,
            note=ASSOCIATION_NOTE,
        )
    low, high = newcombe_difference_interval(adopters.k, adopters.n, non_adopters.k, non_adopters.n)
    return ConversionComparison(
        adopters=adopters,
        non_adopters=non_adopters,
        difference=adopters.value - non_adopters.value,
        interval=Interval(low=low, high=high),
        note=ASSOCIATION_NOTE,
    )


def _users_by_day(active: pl.DataFrame, *, flag: str | None, at: str, name: str) -> pl.DataFrame:
    users = active if flag is None else active.filter(pl.col(flag))
    return users.group_by(day=pl.col(at).dt.date()).agg(pl.len().alias(name))


def compute_timeline(
    active: pl.DataFrame,
    active_by_day: pl.DataFrame,
    *,
    window: Window,
    launch: LaunchSpec,
    kpis: Sequence[KpiRecord],
) -> Timeline:
    """Per UTC day of the window: active, newly exposed and new adopters, with the cumulative
    adoption and exposure rates (adopters, or exposed users, so far / users of A whose first
    event in the window came so far).

    `active_by_day` holds (day, active) from the window's activity, already limited to A.
    """
    newly_exposed = _users_by_day(active, flag="is_exposed", at="first_exposed_at", name="newly_exposed")
    new_adopters = _users_by_day(active, flag="is_adopter", at="first_used_at", name="new_adopters")
    arrived = _users_by_day(active, flag=None, at="first_event_at", name="arrived")
    counts = (
        pl.DataFrame({"day": touched_days(window)}, schema={"day": pl.Date})
        .join(active_by_day, on="day", how="left")
        .join(newly_exposed, on="day", how="left")
        .join(new_adopters, on="day", how="left")
        .join(arrived, on="day", how="left")
        .fill_null(0)
        .sort("day")
        .with_columns(
            adopted_so_far=pl.col("new_adopters").cum_sum(),
            exposed_so_far=pl.col("newly_exposed").cum_sum(),
            arrived_so_far=pl.col("arrived").cum_sum(),
        )
    )
    target = next((k.first_set.target for k in kpis if k.first_set.metric == "adoption_rate"), None)
    announcements = sorted(launch.announcements, key=lambda a: a.at)
    return Timeline(
        days=[
            TimelineDay(
                day=row["day"],
                active=row["active"],
                newly_exposed=row["newly_exposed"],
                new_adopters=row["new_adopters"],
                cumulative_adoption_rate=share(row["adopted_so_far"], row["arrived_so_far"]),
                cumulative_exposure_rate=share(row["exposed_so_far"], row["arrived_so_far"]),
            )
            for row in counts.iter_rows(named=True)
        ],
        target=target,
        markers=[
            Marker(label="Launch", at=window.start),
            *(Marker(label=f"{a.channel} announcement", at=naive_utc(a.at)) for a in announcements),
        ],
    )
