"""Readiness: will this launch's report mean anything? Checks each signal matcher against
recent events (a misspelt event name is the most common reason a launch looks dead) and, from
recent traffic, whether each rate KPI can be judged at all by the window's end: how far from
its target the true rate must be for the Wilson interval to clear the target."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import datetime

import polars as pl
from pydantic import BaseModel, ConfigDict

from pipelines.audience import trait_states
from pipelines.journeys import matches, presence_by_user
from pipelines.launch import LaunchSpec, Matcher, is_rate_metric
from pipelines.metrics import is_active
from pipelines.plan import RECENT, ReportPlan
from pipelines.report import ACTIVITY_SCHEMA, TRAITS_SCHEMA, Frame, as_input_frame
from pipelines.report_models import UtcTime
from pipelines.stats import wilson_interval_at
from pipelines.times import naive_utc


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class MatcherReadiness(_Result):
    signal: str
    index: int
    matcher: Matcher
    events_7d: int
    users_7d: int
    last_seen_at: UtcTime | None
    warning: str | None


class KpiResolution(_Result):
    """For a rate KPI on about `expected_n` users: the rate must be below `below` or above
    `above` for a verdict (met or missed by the comparator); in between it is inconclusive."""

    kpi_id: str
    metric: str
    target: float
    expected_n: int | None
    below: float | None
    above: float | None
    message: str
    warning: bool


class Readiness(_Result):
    launch_key: str
    as_of: UtcTime
    live: bool
    matchers: list[MatcherReadiness]
    expected_active: int | None
    kpis: list[KpiResolution]
    warnings: list[str]


def describe_matcher(matcher: Matcher) -> str:
    parts = [f"type {matcher.type}"] if matcher.type != "track" else []
    if matcher.event is not None:
        parts.append(f"event {matcher.event!r}")
    parts.extend(f"{prop} = {'|'.join(values)}" for prop, values in matcher.allowed().items())
    return ", ".join(parts)


def check_matchers(
    signals: pl.DataFrame | pl.LazyFrame,
    *,
    launch: LaunchSpec,
    property_names: Sequence[str],
    as_of: datetime,
    known_events: Sequence[str] = (),
    since: datetime | None = None,
) -> list[MatcherReadiness]:
    """Per matcher: events and users in the 7 days before as_of and when it last matched in
    `signals`, which hold the events since `since` (None: all of them)."""
    as_of = naive_utc(as_of)
    recent_start = as_of - RECENT
    frame = signals.lazy().filter(pl.col("occurred_at") < as_of)
    window_open = as_of < naive_utc(launch.window_end)
    checks: list[MatcherReadiness] = []
    named = [
        ("exposed", launch.signals.exposed),
        ("used", launch.signals.used),
        ("converted", launch.signals.converted),
    ]
    expressions = {
        f"{signal}:{i}": matches(m, property_names) for signal, ms in named for i, m in enumerate(ms)
    }
    if not expressions:
        return checks
    recent = pl.col("occurred_at") >= recent_start
    stats = (
        frame.select(
            [
                *(expr.and_(recent).sum().alias(f"{name}|events") for name, expr in expressions.items()),
                *(
                    pl.col("user_id").filter(expr & recent).n_unique().alias(f"{name}|users")
                    for name, expr in expressions.items()
                ),
                *(
                    pl.col("occurred_at").filter(expr).max().alias(f"{name}|last")
                    for name, expr in expressions.items()
                ),
            ]
        )
        .collect()
        .row(0, named=True)
    )
    for signal, ms in named:
        for i, matcher in enumerate(ms):
            name = f"{signal}:{i}"
            events, users, last = (
                int(stats[f"{name}|events"] or 0),
                int(stats[f"{name}|users"] or 0),
                stats[f"{name}|last"],
            )
            checks.append(
                MatcherReadiness(
                    signal=signal,
                    index=i,
                    matcher=matcher,
                    events_7d=events,
                    users_7d=users,
                    last_seen_at=last,
                    warning=_matcher_warning(
                        signal, i, matcher, events, last, known_events, window_open, since
                    ),
                )
            )
    return checks


def _matcher_warning(
    signal: str,
    index: int,
    matcher: Matcher,
    events: int,
    last: datetime | None,
    known_events: Sequence[str],
    window_open: bool,
    since: datetime | None,
) -> str | None:
    # Silence in the last 7 days is news only while the window is open.
    label = f"{signal} matcher {index + 1} ({describe_matcher(matcher)})"
    if last is None:
        hint = ""
        if matcher.event is not None and known_events:
            close = difflib.get_close_matches(matcher.event, list(known_events), n=1, cutoff=0.6)
            if close and close[0] != matcher.event:
                hint = f"; did you mean {close[0]!r}?"
            elif matcher.event in known_events:
                hint = "; the event exists, so check the where filters"
        period = "" if since is None else f" since {since.isoformat(timespec='minutes')}Z"
        return f"{label} has never matched an event{period}: check the event name and properties{hint}"
    if events == 0 and window_open:
        return f"{label} matched nothing in the last 7 days (last seen {last.isoformat(timespec='minutes')}Z)"
    return None


def audience_size(activity: Frame, traits: Frame, *, plan: ReportPlan) -> int:
    """|A| of the plan's window from its activity and trait frames alone: the audience rules
    of the report (identified users, traits as of the window's start) without reading a
    single signal. Readiness plans it with `pipelines.plan.audience_plan`."""
    window = plan.window
    users = presence_by_user(as_input_frame(activity, ACTIVITY_SCHEMA), plan.span)
    if plan.trait_pairs:
        states = trait_states(as_input_frame(traits, TRAITS_SCHEMA), wanted=plan.trait_pairs)
        users = users.join(states, on="user_id", how="left")
    active = users.filter(is_active(plan.launch.audience, start=window.start, end=window.end))
    return int(active.select(pl.len()).collect().item())


def _denominator(metric: str, active: int, kpis: dict[str, float]) -> int | None:
    # Before launch only the audience size is known; other denominators are estimated from the
    # launch's own targets (a team expecting 20% adoption expects 20% of active users to adopt).
    if metric in {"exposure_rate", "adoption_rate", "baseline_conversion_rate"}:
        return active
    share = kpis.get("exposure_rate" if metric == "notice_to_try_rate" else "adoption_rate")
    return None if share is None else round(active * share)


def resolvable_band(target: float, n: int) -> tuple[float | None, float | None]:
    """(below, above): on n users, an observed rate under `below` has its whole Wilson interval
    under the target, one over `above` has it at or over the target; None where no rate can."""
    missed = None
    if target > 0 and wilson_interval_at(0.0, n)[1] < target:
        lo, hi = 0.0, target
        for _ in range(60):
            mid = (lo + hi) / 2
            if wilson_interval_at(mid, n)[1] < target:
                lo = mid
            else:
                hi = mid
        missed = lo
    met = None
    if target < 1 and wilson_interval_at(1.0, n)[0] >= target:
        lo, hi = target, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if wilson_interval_at(mid, n)[0] >= target:
                hi = mid
            else:
                lo = mid
        met = hi
    return missed, met


def kpi_resolutions(launch: LaunchSpec, *, expected_active: dict[int, int]) -> list[KpiResolution]:
    """How far from target each rate KPI's true value must be for a verdict, on the expected
    number of users of its window (`expected_active` maps window days to active users)."""
    targets = {k.metric: k.target for k in launch.kpis}
    results: list[KpiResolution] = []
    for kpi in launch.kpis:
        if not is_rate_metric(kpi.metric):
            continue
        active = expected_active.get(kpi.by_day or launch.window_days)
        n = None if active is None else _denominator(kpi.metric, active, targets)
        target = kpi.target
        below: float | None = None
        above: float | None = None
        if not n:
            message = f"{kpi.id}: cannot estimate how many users {kpi.metric} will be measured on yet"
            warning = n == 0
        else:
            below, above = resolvable_band(target, n)
            message = (
                f"{kpi.id}: with about {n:,} users, {kpi.metric} must be below {_pct(below)} or "
                f"above {_pct(above)} for a verdict on a {_pct(target)} target"
            )
            too_small = n < kpi.min_sample
            wide = below is None or above is None or (above - below) > max(0.5 * target, 0.02)
            if too_small:
                message += (
                    f"; that is below min_sample {kpi.min_sample}, so the verdict would be insufficient data"
                )
            elif wide:
                message += "; the target sits inside a wide band where no verdict is possible"
            warning = too_small or wide
        results.append(
            KpiResolution(
                kpi_id=kpi.id,
                metric=kpi.metric,
                target=target,
                expected_n=n,
                below=below,
                above=above,
                message=message,
                warning=warning,
            )
        )
    return results


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"
