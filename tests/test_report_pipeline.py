"""The launch report pipeline against journeys worked out by hand (spec sections 2-6).

Each test writes a few users' events as literal tuples, relative to the launch, and states the
expected numbers with the arithmetic beside them. Intervals come from `pipelines.stats` (tested
against statsmodels in test_stats.py) through `rate`, so these tests pin counts and rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import polars as pl
import pytest

from pipelines.diagnosis import ASSOCIATION_NOTE, compute_funnel
from pipelines.launch import Kpi, KpiRecord, LaunchSpec
from pipelines.plan import plan_report, signal_property_names, trait_names
from pipelines.rates import median_days, rate
from pipelines.report import (
    ACTIVITY_SCHEMA,
    SIGNALS_SCHEMA,
    TRAITS_SCHEMA,
    ReportInputs,
    compute_report,
)
from pipelines.report_models import (
    Channel,
    ConversionComparison,
    Counts,
    Funnel,
    FunnelStep,
    Interval,
    LaunchReport,
    Marker,
    Median,
    RetentionWeek,
    Segments,
    Stickiness,
    TimelineDay,
    Window,
)
from pipelines.stats import (
    always_valid_interval,
    newcombe_difference_interval,
    wilson_interval,
    wilson_interval_at,
)
from pipelines.times import naive_utc
from pipelines.verdicts import kpi_verdict, launch_verdict
from pipelines.windows import baseline_start, evaluation_window, touched_days
from tests.helpers.builders import segment_row

LAUNCH = datetime(2024, 3, 1)  # a midnight launch: UTC days and window days coincide
SIGNAL_EVENTS = ("Seen", "Used", "Upgraded", "Toggled")
# (user, time, event) or (user, time, event, properties); "channel" is the channel property.
Event = tuple[Any, ...]
Trait = tuple[str, datetime, str, str]


def t(days: float = 0, hours: float = 0, *, base: datetime = LAUNCH) -> datetime:
    return base + timedelta(days=days, hours=hours)


AFTER_WINDOW = t(40)


def spec(**changes: Any) -> LaunchSpec:
    fields: dict[str, Any] = {
        "key": "dark-mode",
        "name": "Dark mode",
        "owner": "po@example.com",
        "launched_at": LAUNCH.replace(tzinfo=UTC),
        "signals": {
            "exposed": [{"event": "Seen"}],
            "used": [{"event": "Used"}],
            "converted": [{"event": "Upgraded", "where": {"to": "premium"}}],
        },
    }
    fields.update(changes)
    return LaunchSpec.model_validate(fields)


def activity_frame(
    rows: Iterable[tuple[str, datetime]], *, launch: LaunchSpec, as_of: datetime
) -> pl.DataFrame:
    """The activity the storage layer would select, worked out plainly: per user with an event
    in the report's span, the first event at or after launch, the last one before it, and a
    '0'/'1' character per UTC day the window touches."""
    window = evaluation_window(naive_utc(launch.launched_at), launch.window_days, naive_utc(as_of))
    lookback, days = baseline_start(window), touched_days(window)
    users: dict[str, list[Any]] = {}
    for user, at in rows:
        if not lookback <= at < window.end:
            continue
        row = users.setdefault(user, [user, not user.startswith("anon:"), None, None, ["0"] * len(days)])
        if at >= window.start:
            row[2] = at if row[2] is None else min(row[2], at)
            row[4][days.index(at.date())] = "1"
        else:
            row[3] = at if row[3] is None else max(row[3], at)
    return pl.DataFrame(
        [[*row[:4], "".join(row[4]) if row[2] is not None else None] for row in users.values()],
        schema=ACTIVITY_SCHEMA,
        orient="row",
    )


def inputs(
    events: Iterable[Event],
    traits: Iterable[Trait] = (),
    *,
    launch: LaunchSpec | None = None,
    as_of: datetime = AFTER_WINDOW,
) -> ReportInputs:
    """The frames the storage layer would select: activity per user, candidate signal events,
    and trait values."""
    launch = launch or spec()
    names = signal_property_names(launch)
    rows = [(e[0], e[1], e[2], e[3] if len(e) > 3 else {}) for e in events]
    activity = activity_frame([(user, at) for user, at, _, _ in rows], launch=launch, as_of=as_of)
    signals = pl.DataFrame(
        [
            (
                user,
                not user.startswith("anon:"),
                "page" if event.startswith("/") else "track",
                event,
                at,
                [props.get(name) for name in names],
                props.get("channel"),
            )
            for user, at, event, props in rows
            if event in SIGNAL_EVENTS or event.startswith("/")
        ],
        schema=SIGNALS_SCHEMA,
        orient="row",
    )
    return ReportInputs(
        activity=activity,
        signals=signals,
        traits=pl.DataFrame(list(traits), schema=TRAITS_SCHEMA, orient="row"),
    )


def report(
    events: Iterable[Event],
    traits: Iterable[Trait] = (),
    *,
    launch: LaunchSpec | None = None,
    kpis: Sequence[KpiRecord] = (),
    as_of: datetime = AFTER_WINDOW,
    segment: str | None = None,
) -> LaunchReport:
    launch = launch or spec()
    return compute_report(
        inputs(events, traits, launch=launch, as_of=as_of),
        plan_report(launch, as_of, kpis=kpis, segment=segment),
    )


def kpi(metric: str, comparator: str = ">=", target: float = 0.5, **more: Any) -> Kpi:
    return Kpi.model_validate(
        {"id": "k", "metric": metric, "comparator": comparator, "target": target, "min_sample": 1} | more
    )


def record(first: Kpi, current: Kpi | None = None, **flags: bool) -> KpiRecord:
    current = current or first
    return KpiRecord(first_set=first, current=current, amended=current != first, **flags)


def counts(active: int, exposed: int = 0, adopters: int = 0, tried: int = 0) -> Counts:
    return Counts(active=active, exposed=exposed, adopters=adopters, tried=tried, repeated=0, converted=0)


# -- helpers shared with the storage layer -------------------------------------------------------


def test_property_and_trait_names_are_sorted_and_distinct() -> None:
    launch = spec(
        signals={
            "exposed": [{"event": "Seen", "where": {"surface": "banner"}}],
            "used": [{"event": "Toggled", "where": {"to": ["dark", "auto"], "surface": "menu"}}],
            "converted": [{"event": "Upgraded", "where": {"to": "premium"}}],
        },
        audience={"where": {"plan": "free", "country": ["DE", "FR"]}},
    )
    assert signal_property_names(launch) == ["surface", "to"]
    assert trait_names(launch) == ["country", "plan"]
    assert trait_names(launch, "plan") == ["country", "plan"]
    assert trait_names(launch, "os") == ["country", "os", "plan"]


# -- identity and audience (section 2) -----------------------------------------------------------


JOURNEY_WITH_ANONYMOUS = [
    ("u1", t(1), "Viewed"),
    ("anon:a1", t(1), "Viewed"),
    ("anon:a1", t(2), "Used"),
]


def test_anonymous_users_are_left_out_when_the_audience_is_identified_only() -> None:
    result = report(JOURNEY_WITH_ANONYMOUS)
    assert result.counts == counts(active=1)  # u1 only; anon:a1 is not identified


def test_anonymous_users_count_when_the_launch_opts_in() -> None:
    result = report(JOURNEY_WITH_ANONYMOUS, launch=spec(audience={"identified_only": False}))
    # u1 and anon:a1 are active; anon:a1 used it: adoption 1 / 2.
    assert result.counts == counts(active=2, adopters=1)
    assert result.metrics.adoption_rate == rate(1, 2)


def test_audience_traits_are_taken_as_of_the_window_start() -> None:
    everyone = [
        "free_then_premium",
        "premium_then_free",
        "late_free",
        "late_after_end",
        "no_trait",
        "first_premium_then_free",
    ]
    events = [(user, t(1), "Viewed") for user in everyone]
    traits = [
        # free at the start, upgraded mid-window: stays in the plan=free audience
        ("free_then_premium", t(-10), "plan", "free"),
        ("free_then_premium", t(5), "plan", "premium"),
        # premium at the start: out, even though free later
        ("premium_then_free", t(-10), "plan", "premium"),
        ("premium_then_free", t(3), "plan", "free"),
        # identified after the start: the first value inside the window decides (free: in)
        ("late_free", t(2), "plan", "free"),
        # the first value comes at the window's end, which is outside it: fails the filter
        ("late_after_end", t(28), "plan", "free"),
        # first value inside the window is premium: out, the later free does not matter
        ("first_premium_then_free", t(1), "plan", "premium"),
        ("first_premium_then_free", t(2), "plan", "free"),
    ]
    result = report(events, traits, launch=spec(audience={"where": {"plan": "free"}}))
    assert result.counts == counts(active=2)  # free_then_premium, late_free


def test_values_of_one_trait_at_the_same_instant_resolve_to_the_greatest() -> None:
    # Undefined by the spec; a fixed rule keeps a report from changing with row order.
    events = [("u1", t(1), "Viewed")]
    traits = [("u1", t(-1), "plan", "free"), ("u1", t(-1), "plan", "premium")]
    result = report(events, traits, segment="plan")
    assert result.segments is not None
    assert [row.value for row in result.segments.rows] == ["premium"]


def test_a_value_at_exactly_the_window_start_counts_as_before_it() -> None:
    events = [("u1", t(1), "Viewed")]
    traits = [("u1", t(-1), "plan", "premium"), ("u1", t(0), "plan", "free")]
    result = report(events, traits, launch=spec(audience={"where": {"plan": "free"}}))
    assert result.counts == counts(active=1)


# -- windows, provisional reports, by_day KPIs (sections 3 and 5) -------------------------------


def test_a_cut_window_is_provisional_and_ignores_events_after_as_of() -> None:
    events = [
        ("u1", t(1), "Viewed"),
        ("u2", t(2), "Used"),
        ("u1", t(6), "Used"),  # after as_of: not counted
    ]
    as_of = t(5, 6)
    result = report(
        events,
        kpis=[
            record(kpi("adoption_rate", id="whole")),
            record(kpi("adoption_rate", id="first-3-days", by_day=3)),
        ],
        as_of=as_of,
    )
    assert result.window == Window(
        start=LAUNCH, end=as_of, full_end=t(28), as_of=as_of, days=5.25, provisional=True
    )
    assert result.provisional
    assert result.metrics.adoption_rate == rate(1, 2)  # u2 of {u1, u2}
    whole, first_days = result.kpis
    assert (whole.provisional, whole.window.end) == (True, as_of)
    # by_day 3 ends at day 3, before as_of: that window is complete, not provisional
    assert first_days.window == Window(
        start=LAUNCH, end=t(3), full_end=t(3), as_of=as_of, days=3.0, provisional=False
    )
    assert (first_days.provisional, first_days.value, first_days.n) == (False, 1 / 2, 2)


def test_a_by_day_kpi_is_evaluated_on_its_shorter_window() -> None:
    events = [
        ("u1", t(1), "Viewed"),
        ("u1", t(2), "Used"),
        ("u2", t(1), "Viewed"),
        ("u2", t(10), "Used"),  # adopts after day 7
        ("u3", t(1), "Viewed"),
        ("u4", t(9), "Viewed"),  # first active after day 7
    ]
    result = report(events, kpis=[record(kpi("adoption_rate", by_day=7))])
    # whole window: adopters u1, u2 of active u1..u4 = 2 / 4
    assert result.metrics.adoption_rate == rate(2, 4)
    # first 7 days: adopters u1 of active u1, u2, u3 = 1 / 3
    (judged,) = result.kpis
    assert (judged.value, judged.n, judged.window.end) == (1 / 3, 3, t(7))
    assert judged.interval == rate(1, 3).interval


def test_every_metric_of_a_by_day_kpi_stops_at_its_window_end() -> None:
    events = [
        ("u1", t(1), "Used"),
        ("u1", t(5), "Used"),  # second day of use after day 3
        ("u1", t(6), "Upgraded", {"to": "premium"}),
        ("u2", t(2), "Used"),
    ]
    repeat = record(kpi("repeat_usage_rate", id="repeat", by_day=3))
    conversion = record(kpi("conversion_rate", id="conversion", by_day=3))
    result = report(events, kpis=[repeat, conversion])
    # whole window: u1 repeats and converts, of adopters u1, u2 = 1 / 2 each
    assert result.metrics.repeat_usage_rate == result.metrics.conversion_rate == rate(1, 2)
    # first 3 days: neither has happened yet = 0 / 2 each
    assert [(k.value, k.n) for k in result.kpis] == [(0.0, 2), (0.0, 2)]


def test_an_as_of_before_launch_gives_an_empty_provisional_window() -> None:
    result = report([("u1", t(-1), "Used")], as_of=t(-2))
    assert result.window == Window(
        start=LAUNCH, end=LAUNCH, full_end=t(28), as_of=t(-2), days=0.0, provisional=True
    )
    assert result.counts == counts(active=0)
    assert result.metrics.baseline_conversion_rate == rate(0, 0)
    assert result.timeline.days == []


def test_aware_times_are_normalised_to_naive_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    source = inputs([("u1", t(1), "Used")], as_of=t(4))
    aware_signals = pl.DataFrame(source.signals).with_columns(
        pl.col("occurred_at").dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Berlin")
    )
    result = compute_report(
        ReportInputs(source.activity, aware_signals, source.traits),
        plan_report(spec(), datetime(2024, 3, 5, 2, tzinfo=plus_two)),  # 00:00 UTC on day 4
    )
    assert result.window.as_of == t(4)
    assert result.counts == counts(active=1, adopters=1)


def test_activity_outside_the_span_is_ignored() -> None:
    # The storage selects exactly the report's span; times outside it (here a first event
    # after the window's end and a "last event before" older than the baseline) count for nothing.
    activity = pl.DataFrame(
        [("late", True, t(30), None, "1" * 28), ("old", True, None, t(-40), None)],
        schema=ACTIVITY_SCHEMA,
        orient="row",
    )
    result = compute_report(
        ReportInputs(activity, pl.DataFrame(schema=SIGNALS_SCHEMA), pl.DataFrame(schema=TRAITS_SCHEMA)),
        plan_report(spec(), AFTER_WINDOW),
    )
    assert result.counts == counts(active=0)
    assert result.metrics.baseline_conversion_rate == rate(0, 0)


# -- signals (section 3) ---------------------------------------------------------------------------


def test_matchers_need_type_event_and_every_property() -> None:
    launch = spec(
        signals={
            "exposed": [
                {"event": "Seen"},
                {"type": "page", "event": "/dark-mode"},
                {"event": "Toggled"},
            ],
            "used": [{"event": "Used"}, {"event": "Toggled", "where": {"to": ["dark", "auto"]}}],
        }
    )
    events = [
        ("dark", t(1), "Toggled", {"to": "dark"}),  # exposed and used: one event, two signals
        ("light", t(1), "Toggled", {"to": "light"}),  # exposed only: "light" is not allowed
        ("missing", t(1), "Toggled"),  # exposed only: a missing property fails the filter
        ("page", t(1), "/dark-mode"),  # exposed: a page matcher
        ("track", t(1), "Viewed"),  # active, nothing else
    ]
    result = report(events, launch=launch)
    assert result.counts == counts(active=5, exposed=4, adopters=1, tried=1)


def test_repeat_usage_needs_two_distinct_utc_days() -> None:
    events = [
        ("two_days", t(1, 23), "Used"),
        ("two_days", t(2, 1), "Used"),  # two hours later, but another UTC day
        ("one_day", t(3, 1), "Used"),
        ("one_day", t(3, 22), "Used"),  # same UTC day
    ]
    result = report(events)
    assert result.metrics.repeat_usage_rate == rate(1, 2)
    assert result.counts.repeated == 1


def test_conversion_counts_only_at_or_after_first_use() -> None:
    events = [
        ("before_use", t(1), "Upgraded", {"to": "premium"}),
        ("before_use", t(2), "Used"),
        ("same_instant", t(1), "Used"),
        ("same_instant", t(1), "Upgraded", {"to": "premium"}),
        ("wrong_plan", t(1), "Used"),
        ("wrong_plan", t(2), "Upgraded", {"to": "basic"}),
        ("after_use", t(1), "Used"),
        ("after_use", t(3), "Upgraded", {"to": "premium"}),
        ("non_adopter_converted", t(1), "Upgraded", {"to": "premium"}),
        ("non_adopter", t(1), "Viewed"),
    ]
    result = report(events)
    # adopters: before_use, same_instant, wrong_plan, after_use; converted after first use:
    # same_instant and after_use = 2 / 4
    assert result.metrics.conversion_rate == rate(2, 4)
    assert result.counts.converted == 2
    # non-adopters: non_adopter_converted and non_adopter, one converted = 1 / 2
    difference = newcombe_difference_interval(2, 4, 1, 2)
    assert result.adopters_vs_non_adopters == ConversionComparison(
        adopters=rate(2, 4),
        non_adopters=rate(1, 2),
        difference=0.0,  # 2/4 - 1/2
        interval=Interval(low=difference[0], high=difference[1]),
        note=ASSOCIATION_NOTE,
    )


# -- baseline (section 4) --------------------------------------------------------------------------


def test_baseline_uses_a_period_as_long_as_the_cut_window_and_its_own_traits() -> None:
    # as_of cuts the window to 10 days, so the baseline is [launch - 10d, launch).
    events = [
        ("converts", t(-9), "Viewed"),
        ("converts", t(-5), "Upgraded", {"to": "premium"}),
        ("too_early", t(-11), "Upgraded", {"to": "premium"}),  # before the baseline period
        ("idle", t(-3), "Viewed"),
        ("basic", t(-2), "Upgraded", {"to": "basic"}),  # active; not the conversion signal
        ("premium_then", t(-1), "Upgraded", {"to": "premium"}),  # premium as of launch - 10d
    ]
    traits = [(user, t(-30), "plan", "free") for user in ("converts", "too_early", "idle", "basic")]
    traits += [("premium_then", t(-20), "plan", "premium"), ("premium_then", t(-8), "plan", "free")]
    result = report(
        events,
        traits,
        launch=spec(audience={"where": {"plan": "free"}}),
        kpis=[record(kpi("baseline_conversion_rate", by_day=3))],
        as_of=t(10),
    )
    # active in the baseline: converts, idle, basic; converted: converts = 1 / 3
    assert result.metrics.baseline_conversion_rate == rate(1, 3)
    # the 3-day KPI window has the baseline [launch - 3d, launch), with traits as of its start:
    # idle (exactly at its start, which is inside), basic, and premium_then (free since
    # day -8), who converted = 1 / 3
    (judged,) = result.kpis
    assert (judged.value, judged.n) == (1 / 3, 3)


# -- median days to adopt (section 4) --------------------------------------------------------------


ODD_ADOPTERS = [
    ("half", t(-1), "Viewed"),  # before the window: not the first event inside it
    ("half", t(0), "Viewed"),
    ("half", t(0, 12), "Used"),  # 12 h = 0.5 days
    ("quarter", t(1), "Viewed"),
    ("quarter", t(1, 6), "Used"),  # 6 h = 0.25 days
    ("three", t(2), "Viewed"),
    ("three", t(5), "Used"),  # 3 days
]


def test_median_days_to_adopt_with_an_odd_count() -> None:
    result = report(ODD_ADOPTERS)
    # sorted 0.25, 0.5, 3.0: median 0.5; n = 3 gives j = 1, so the interval is [x(1), x(3)]
    assert result.metrics.median_days_to_adopt == Median(
        n=3, value=0.5, interval=Interval(low=0.25, high=3.0)
    )


def test_median_days_to_adopt_with_an_even_count_takes_the_middle_mean() -> None:
    result = report([*ODD_ADOPTERS, ("late", t(3), "Viewed"), ("late", t(4, 18), "Used")])
    # 1 day 18 h = 1.75 days; sorted 0.25, 0.5, 1.75, 3.0: (0.5 + 1.75) / 2 = 1.125
    assert result.metrics.median_days_to_adopt == Median(
        n=4, value=1.125, interval=Interval(low=0.25, high=3.0)
    )
    assert result.metrics.median_days_to_adopt == median_days([0.25, 0.5, 1.75, 3.0])


# -- week-n retention (section 4) ------------------------------------------------------------------


def test_retention_leaves_out_adopters_whose_week_is_not_over() -> None:
    events = [
        # f = day 6: week 1 is [day 13, day 20), over exactly at the window end (day 20)
        ("on_boundary", t(6), "Used"),
        ("on_boundary", t(13), "Used"),  # exactly f + 7 days: week 1
        # f = day 6 + 1 h: week 1 ends 1 h after the window: out of both counts
        ("one_hour_late", t(6, 1), "Used"),
        ("one_hour_late", t(13, 1), "Used"),
        # f = day 1: a use at exactly f + 14 days is week 2, not week 1
        ("week_two", t(1), "Used"),
        ("week_two", t(15), "Used"),
        # f = day 2: a use 1 h before f + 7 days is still week 0
        ("week_zero", t(2), "Used"),
        ("week_zero", t(8, 23), "Used"),
    ]
    result = report(events, as_of=t(20), kpis=[record(kpi("week_2_retention"))])
    # week 1: eligible on_boundary, week_two, week_zero; retained on_boundary = 1 / 3.
    # week 2 needs f + 21 days <= day 20: nobody is eligible. A 28-day window shows weeks 1-3.
    assert result.metrics.week_n_retention == [
        RetentionWeek(week=1, rate=rate(1, 3)),
        RetentionWeek(week=2, rate=rate(0, 0)),
        RetentionWeek(week=3, rate=rate(0, 0)),
    ]
    (judged,) = result.kpis
    assert (judged.n, judged.value, judged.verdict) == (0, None, "insufficient_data")


def test_retention_weeks_shown_are_those_that_fit_in_the_window() -> None:
    assert report([], launch=spec(window_days=13)).metrics.week_n_retention == []
    assert [w.week for w in report([], launch=spec(window_days=14)).metrics.week_n_retention] == [1]


# -- stickiness (section 4) ------------------------------------------------------------------------


NOON = datetime(2024, 3, 1, 12)


def test_stickiness_averages_full_utc_days_only_counting_days_without_use() -> None:
    # A 3-day window from noon: [Mar 1 12:00, Mar 4 12:00); full days are Mar 2 and Mar 3.
    launch = spec(launched_at=NOON.replace(tzinfo=UTC), window_days=3)
    events = [
        ("daily", t(0, 1, base=NOON), "Used"),  # Mar 1 13:00: partial day, not counted
        ("daily", t(0, 22, base=NOON), "Used"),  # Mar 2 10:00
        ("late", t(2, 21, base=NOON), "Used"),  # Mar 4 09:00: partial day
    ]
    result = report(events, launch=launch, as_of=t(10, base=NOON))
    # Mar 2: 1 of 2 adopters, Mar 3: 0 of 2; mean (0.5 + 0) / 2 = 0.25, judged on n = 2
    low, high = wilson_interval_at(0.25, 2)
    assert result.metrics.stickiness == Stickiness(
        value=0.25, full_days=2, adopters=2, interval=Interval(low=low, high=high)
    )


def test_stickiness_before_the_first_full_day_is_undefined() -> None:
    launch = spec(launched_at=NOON.replace(tzinfo=UTC))
    result = report(
        [("u1", t(0, 1, base=NOON), "Used")],
        launch=launch,
        as_of=t(0, 18, base=NOON),
        kpis=[record(kpi("stickiness"))],
    )
    assert result.metrics.stickiness == Stickiness(value=None, full_days=0, adopters=1, interval=None)
    assert result.kpis[0].verdict == "insufficient_data"  # nothing to judge yet


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 2), (3, 10), (10, 10), (17, 40)])
def test_wilson_at_a_proportion_agrees_with_wilson_at_a_count(k: int, n: int) -> None:
    assert wilson_interval_at(k / n, n) == pytest.approx(wilson_interval(k, n), abs=1e-12)


# -- KPI verdicts (section 5) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("comparator", "target", "n", "verdict"),
    [
        (">=", 0.3, 30, "met"),  # low 0.3 >= 0.3
        (">=", 0.5, 30, "inconclusive"),  # 0.3 < 0.5 <= high 0.5
        (">=", 0.51, 30, "missed"),  # high 0.5 < 0.51
        ("<=", 0.5, 30, "met"),  # high 0.5 <= 0.5
        ("<=", 0.4, 30, "inconclusive"),
        ("<=", 0.29, 30, "missed"),  # low 0.3 > 0.29
        (">=", 0.3, 29, "insufficient_data"),  # n below min_sample 30
    ],
)
def test_kpi_verdicts_judge_the_interval(comparator: str, target: float, n: int, verdict: str) -> None:
    interval = Interval(low=0.3, high=0.5)
    assert (
        kpi_verdict(interval, n, comparator=comparator, target=target, min_sample=30)  # type: ignore[arg-type]
        == verdict
    )


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], "inconclusive"),
        (["met", "met"], "landed"),
        (["met", "missed"], "missed"),
        (["missed", "insufficient_data"], "missed"),
        (["met", "inconclusive"], "inconclusive"),
        (["met", "insufficient_data"], "inconclusive"),
    ],
)
def test_launch_verdict_combines_kpis(verdicts: list[str], expected: str) -> None:
    assert launch_verdict(verdicts) == expected  # type: ignore[arg-type]


def test_kpis_are_judged_as_first_set_with_amendments_shown() -> None:
    # 10 active users, 8 adopters: adoption 0.8 with Wilson interval about [0.49, 0.94]
    events = [(f"u{i}", t(1), "Used" if i < 8 else "Viewed") for i in range(10)]
    amended = record(
        kpi("adoption_rate", target=0.4, id="adoption"),
        kpi("adoption_rate", target=0.95, id="adoption"),
    )
    retro = record(kpi("adoption_rate", "<=", 0.2, id="retro"), set_after_launch=True)
    small = record(kpi("exposure_rate", target=0.1, id="small", min_sample=11))
    result = report(events, kpis=[amended, retro, small])
    adoption = rate(8, 10)
    assert adoption.interval is not None
    assert result.kpis[0].model_dump() == {
        "id": "adoption",
        "metric": "adoption_rate",
        "comparator": ">=",
        "target": 0.4,  # judged on the first-set target: low 0.49 >= 0.4
        "amended_target": 0.95,
        "amended": True,
        "set_after_launch": False,
        "min_sample": 1,
        "by_day": None,
        "window": result.window.model_dump(),
        "value": 0.8,
        "interval": adoption.interval.model_dump(),
        "fixed_interval": adoption.interval.model_dump(),  # the window is over: fixed judges
        "interval_kind": "fixed",
        "n": 10,
        "verdict": "met",
        "provisional": False,
    }
    assert (result.kpis[1].set_after_launch, result.kpis[1].verdict) == (True, "missed")
    assert (result.kpis[2].n, result.kpis[2].verdict) == (10, "insufficient_data")
    assert result.verdict == "missed"


def test_an_amendment_that_keeps_the_target_shows_no_amended_target() -> None:
    first = kpi("adoption_rate", id="adoption")
    changed = record(first, kpi("adoption_rate", id="adoption", min_sample=5))
    (judged,) = report([("u1", t(1), "Used")], kpis=[changed]).kpis
    assert (judged.amended, judged.amended_target, judged.min_sample) == (True, None, 1)


# -- provisional KPIs: always-valid intervals (section 7) -----------------------------------------

# 40 users active on day 1; 8 of them see the announcement and use the feature on day 2.
EIGHT_OF_FORTY = [(f"u{i}", t(1), "Seen" if i < 8 else "Viewed") for i in range(40)] + [
    (f"u{i}", t(2), "Used") for i in range(8)
]


def test_a_provisional_kpi_is_judged_on_its_always_valid_interval() -> None:
    borderline = record(kpi("exposure_rate", target=0.36, id="reach"))
    clear_miss = record(kpi("notice_to_try_rate", target=0.5, id="try", min_sample=30))
    never = record(kpi("conversion_rate", id="premium"))
    result = report(EIGHT_OF_FORTY, kpis=[borderline, clear_miss, never], as_of=t(7))
    reach, tried, premium = result.kpis
    # 8 of 40: Wilson 10.5%-34.8% would already call a miss of 36%; the always-valid interval
    # 5.6%-43.3% (B(9, 33) / (p^8 (1-p)^32) < 20) still holds 36%: inconclusive.
    assert (reach.provisional, reach.interval_kind, reach.verdict) == (True, "always_valid", "inconclusive")
    assert reach.fixed_interval == rate(8, 40).interval
    assert reach.interval is not None
    assert (reach.interval.low, reach.interval.high) == pytest.approx((0.0563315, 0.4333835), abs=1e-7)
    assert (reach.interval.low, reach.interval.high) == always_valid_interval(8, 40)
    # 8 of 8 exposed tried it: 100% against a target of 50%, but n = 8 is below min_sample 30.
    assert (tried.n, tried.verdict) == (8, "insufficient_data")
    # no converted event: 0 of 8, and an always-valid interval [0, high) all the same
    assert (premium.value, premium.interval_kind, premium.verdict) == (0.0, "always_valid", "missed")
    assert premium.interval is not None and premium.interval.low == 0.0 < premium.interval.high < 0.5
    assert result.verdict == "missed"


def test_a_clear_miss_is_called_early_and_a_zero_sample_has_no_interval() -> None:
    adoption = record(kpi("adoption_rate", target=0.5, id="adoption"))
    retention = record(kpi("week_1_retention", target=0.5, id="week-1"))
    result = report([(f"u{i}", t(1), "Viewed") for i in range(40)], kpis=[adoption, retention], as_of=t(7))
    judged, week_one = result.kpis
    # 0 of 40 against 50%: the always-valid interval is [0, 1 - 820^(-1/40)) = [0, 15.4%)
    assert judged.interval is not None and judged.interval.low == 0.0
    assert judged.interval.high == pytest.approx(1 - 820 ** (-1 / 40), abs=1e-12)
    assert (judged.interval_kind, judged.verdict) == ("always_valid", "missed")
    # n = 0 (no adopters): no interval of either kind, and nothing to judge
    assert week_one.model_dump(include={"n", "interval", "fixed_interval", "interval_kind", "verdict"}) == {
        "n": 0,
        "interval": None,
        "fixed_interval": None,
        "interval_kind": "always_valid",
        "verdict": "insufficient_data",
    }


def test_the_fixed_interval_judges_once_the_window_is_over() -> None:
    borderline = record(kpi("exposure_rate", target=0.36, id="reach"))
    early = report(EIGHT_OF_FORTY, kpis=[borderline], as_of=t(27, 23))
    final = report(EIGHT_OF_FORTY, kpis=[borderline], as_of=t(28))
    # One hour before the window closes the always-valid interval still judges ...
    assert (early.kpis[0].interval_kind, early.kpis[0].verdict) == ("always_valid", "inconclusive")
    # ... at its end the Wilson interval 10.5%-34.8% does, and 36% lies above it.
    (judged,) = final.kpis
    assert (judged.provisional, judged.interval_kind, judged.verdict) == (False, "fixed", "missed")
    assert judged.interval == judged.fixed_interval == rate(8, 40).interval


def test_a_by_day_kpi_switches_to_the_fixed_interval_after_its_day() -> None:
    by_day = record(kpi("adoption_rate", target=0.36, id="adoption", by_day=7))
    during = report(EIGHT_OF_FORTY, kpis=[by_day], as_of=t(5))
    after = report(EIGHT_OF_FORTY, kpis=[by_day], as_of=t(10))
    # Day 5: 8 adopters of 40 so far, judged on the always-valid 5.6%-43.3%: inconclusive.
    (judged,) = during.kpis
    assert (judged.provisional, judged.interval_kind) == (True, "always_valid")
    assert judged.verdict == "inconclusive"
    assert judged.fixed_interval == rate(8, 40).interval != judged.interval
    # Day 10: its 7 days are over though the report's window is still open; Wilson judges.
    assert after.provisional
    (judged,) = after.kpis
    assert (judged.provisional, judged.interval_kind, judged.verdict) == (False, "fixed", "missed")
    assert judged.interval == judged.fixed_interval == rate(8, 40).interval


def test_a_provisional_median_uses_the_always_valid_ranks_and_stickiness_keeps_its_interval() -> None:
    # 12 adopters taking 0, 1, ..., 11 days from their first event to their first use.
    events = [(f"a{i}", t(1), "Viewed") for i in range(12)]
    events += [(f"a{i}", t(1 + i), "Used") for i in range(12)]
    speed = record(kpi("median_days_to_adopt", "<=", 9.5, id="speed"))
    sticky = record(kpi("stickiness", target=0.01, id="sticky"))
    during = report(events, kpis=[speed, sticky], as_of=t(14))
    after = report(events, kpis=[speed, sticky])
    # Fixed: j = 3 (P(Bin(12, 1/2) <= 3) = 299/4096 >= 2.5%), [x(3), x(10)] = [2, 9]: met.
    # Always-valid: j = 2 (1/2 is inside the interval of 2 of 12, not of 1), [x(2), x(11)] = [1, 10].
    judged = during.kpis[0]
    assert (judged.value, judged.n) == (5.5, 12)
    assert judged.interval == Interval(low=1.0, high=10.0)
    assert judged.fixed_interval == Interval(low=2.0, high=9.0)
    assert (judged.interval_kind, judged.verdict) == ("always_valid", "inconclusive")
    assert (after.kpis[0].interval, after.kpis[0].verdict) == (Interval(low=2.0, high=9.0), "met")
    # Stickiness is a mean of daily shares, not k of n: its own interval judges, open or not.
    stuck = during.kpis[1]
    assert stuck.interval_kind == "fixed" and stuck.interval == stuck.fixed_interval is not None
    assert stuck.interval == during.metrics.stickiness.interval


# -- diagnosis (section 6) -------------------------------------------------------------------------


def test_funnel_names_the_largest_drop() -> None:
    events = [(f"a{i}", t(1), "Viewed") for i in range(6)]  # never exposed
    events += [("e1", t(1), "Seen"), ("e1", t(1), "Used"), ("e1", t(2), "Used")]
    events += [
        ("e2", t(1), "Seen"),
        ("e2", t(2), "Used"),
        ("e2", t(3), "Upgraded", {"to": "premium"}),
    ]
    events += [
        ("e3", t(1), "Seen"),
        ("e3", t(2), "Used"),
        ("e3", t(2), "Upgraded", {"to": "premium"}),
    ]
    events += [("e4", t(1), "Seen")]
    result = report(events)
    # active 10 -> exposed 4 (lost 6) -> tried 3 (lost 1) -> repeated 1 (lost 2);
    # converted 2 of tried (lost 1). The largest loss is exposed: 6 / 10 = 60%.
    assert result.funnel == Funnel(
        steps=[
            FunnelStep(step="active", users=10, parent=None, rate_from_parent=None, rate_from_active=1.0),
            FunnelStep(step="exposed", users=4, parent="active", rate_from_parent=0.4, rate_from_active=0.4),
            FunnelStep(step="tried", users=3, parent="exposed", rate_from_parent=0.75, rate_from_active=0.3),
            FunnelStep(
                step="repeated",
                users=1,
                parent="tried",
                rate_from_parent=1 / 3,
                rate_from_active=0.1,
            ),
            FunnelStep(
                step="converted",
                users=2,
                parent="tried",
                rate_from_parent=2 / 3,
                rate_from_active=0.2,
            ),
        ],
        largest_drop="exposed",
        summary="60% of active users never saw the announcement.",
    )


@pytest.mark.parametrize(
    ("users", "largest", "summary"),
    [
        ((10, 9, 3, 3, 3), "tried", "67% of users who noticed it never tried it."),  # 6 of 9
        (
            (10, 10, 10, 3, 9),
            "repeated",
            "70% of users who tried it did not come back on a second day.",
        ),
        ((20, 19, 19, 19, 1), "converted", "95% of users who tried it did not convert."),
        (
            (4, 2, 0, 0, 0),
            "exposed",
            "50% of active users never saw the announcement.",
        ),  # tie: earliest
        ((1000, 999, 999, 999, 999), "exposed", "<1% of active users never saw the announcement."),
        ((3, 3, 3, 3, 3), None, "Every active user went through every step."),
        ((0, 0, 0, 0, 0), None, "No active users in the window yet."),
    ],
)
def test_funnel_summary_sentences(
    users: tuple[int, int, int, int, int], largest: str | None, summary: str
) -> None:
    active, exposed, tried, repeated, converted = users
    funnel = compute_funnel(
        active=active, exposed=exposed, tried=tried, repeated=repeated, converted=converted
    )
    assert (funnel.largest_drop, funnel.summary) == (largest, summary)


def test_channels_count_use_at_or_after_the_channels_first_exposure() -> None:
    events = [
        ("same_instant", t(1), "Seen", {"channel": "email"}),
        ("same_instant", t(1), "Used"),
        ("used_first", t(1), "Used"),
        ("used_first", t(2), "Seen", {"channel": "email"}),
        ("both", t(1), "Seen", {"channel": "push"}),
        ("both", t(2), "Used"),
        ("both", t(3), "Seen", {"channel": "email"}),
        ("no_channel", t(1), "Seen"),
        ("no_channel", t(4), "Used"),
        ("idle", t(1), "Viewed"),
        ("before_launch", t(-1), "Seen", {"channel": "email"}),
        ("before_launch", t(1), "Viewed"),
    ]
    result = report(events)
    # 6 active users. email: same_instant (tried at the same instant), used_first (no),
    # both (first use day 2 before the email on day 3: no) = 1 / 3; push: both = 1 / 1;
    # (none): no_channel = 1 / 1. Sorted by exposed, then name ("(" sorts before "p").
    assert result.channels == [
        Channel(channel="email", exposed=3, reach=3 / 6, tried_after=rate(1, 3)),
        Channel(channel="(none)", exposed=1, reach=1 / 6, tried_after=rate(1, 1)),
        Channel(channel="push", exposed=1, reach=1 / 6, tried_after=rate(1, 1)),
    ]


def test_segments_break_rates_down_with_none_for_unknown_values() -> None:
    events = [
        ("free_user", t(1), "Seen"),
        ("free_user", t(1), "Used"),
        ("free_idle", t(1), "Viewed"),
        ("premium_user", t(1), "Viewed"),
        ("unknown", t(1), "Seen"),
    ]
    traits = [
        ("free_user", t(-5), "plan", "free"),
        ("free_idle", t(-5), "plan", "free"),
        ("premium_user", t(-5), "plan", "premium"),
        ("unknown", t(35), "plan", "free"),  # known only after the window: "(none)"
    ]
    result = report(events, traits, segment="plan")
    assert result.segments == Segments(
        trait="plan",
        rows=[
            segment_row("free", active=2, exposed=1, adopters=1, tried=1, repeated=0, converted=0),
            segment_row("(none)", active=1, exposed=1, adopters=0, tried=0, repeated=0, converted=0),
            segment_row("premium", active=1, exposed=0, adopters=0, tried=0, repeated=0, converted=0),
        ],
    )


def test_timeline_counts_each_day_and_the_cumulative_adoption_rate() -> None:
    launch = spec(
        announcements=[
            {"channel": "push", "at": "2024-03-02T00:00:00Z"},
            {"channel": "email", "at": "2024-03-01T02:00:00Z"},
        ]
    )
    events = [
        ("first", t(0, 10), "Viewed"),
        ("first", t(0, 11), "Seen"),
        ("first", t(1, 9), "Used"),
        ("second", t(1, 3), "Viewed"),
        ("second", t(2, 1), "Seen"),
        ("third", t(2, 5), "Viewed"),
        ("third", t(3), "Used"),  # after as_of
        ("anon:visitor", t(1), "Viewed"),  # not in the audience: never counted
    ]
    result = report(
        events,
        launch=launch,
        kpis=[record(kpi("exposure_rate", target=0.9)), record(kpi("adoption_rate", target=0.3))],
        as_of=t(2, 12),
    )
    assert result.timeline.days == [
        # day 0: first arrives and is exposed; 0 adopters, 1 exposed / 1 arrived
        TimelineDay(
            day=date(2024, 3, 1),
            active=1,
            newly_exposed=1,
            new_adopters=0,
            cumulative_adoption_rate=0.0,
            cumulative_exposure_rate=1.0,
        ),
        # day 1: first uses it, second arrives: 1 adopter, 1 exposed / 2
        TimelineDay(
            day=date(2024, 3, 2),
            active=2,
            newly_exposed=0,
            new_adopters=1,
            cumulative_adoption_rate=0.5,
            cumulative_exposure_rate=0.5,
        ),
        # day 2 (as_of's day): second exposed, third arrives: 1 adopter, 2 exposed / 3
        TimelineDay(
            day=date(2024, 3, 3),
            active=2,
            newly_exposed=1,
            new_adopters=0,
            cumulative_adoption_rate=1 / 3,
            cumulative_exposure_rate=2 / 3,
        ),
    ]
    assert result.timeline.target == 0.3
    assert result.timeline.markers == [
        Marker(label="Launch", at=LAUNCH),
        Marker(label="email announcement", at=t(0, 2)),
        Marker(label="push announcement", at=t(1)),
    ]


# -- empty input and zero denominators -------------------------------------------------------------


def test_no_events_at_all_gives_a_defined_empty_report() -> None:
    result = report([], kpis=[record(kpi("adoption_rate"))], segment="plan")
    none = rate(0, 0)
    assert none == rate(0, 0) and none.value is None and none.interval is None
    assert result.counts == counts(active=0)
    assert result.metrics.model_dump() == {
        "exposure_rate": none.model_dump(),
        "adoption_rate": none.model_dump(),
        "notice_to_try_rate": none.model_dump(),
        "repeat_usage_rate": none.model_dump(),
        "conversion_rate": none.model_dump(),
        "baseline_conversion_rate": none.model_dump(),
        "median_days_to_adopt": {"n": 0, "value": None, "interval": None},
        "week_n_retention": [{"week": n, "rate": none.model_dump()} for n in (1, 2, 3)],
        "stickiness": {"value": None, "full_days": 28, "adopters": 0, "interval": None},
    }
    assert [(k.verdict, k.value, k.n) for k in result.kpis] == [("insufficient_data", None, 0)]
    assert result.verdict == "inconclusive"
    assert result.funnel.summary == "No active users in the window yet."
    assert result.funnel.largest_drop is None
    assert [s.rate_from_active for s in result.funnel.steps] == [None] * 5
    assert result.channels == []
    assert result.segments == Segments(trait="plan", rows=[])
    assert result.adopters_vs_non_adopters == ConversionComparison(
        adopters=none, non_adopters=none, difference=None, interval=None, note=ASSOCIATION_NOTE
    )
    assert len(result.timeline.days) == 28
    assert result.timeline.days[0] == TimelineDay(
        day=date(2024, 3, 1),
        active=0,
        newly_exposed=0,
        new_adopters=0,
        cumulative_adoption_rate=None,
    )


def test_no_exposed_users_leaves_notice_to_try_undefined() -> None:
    result = report([("u1", t(1), "Used"), ("u2", t(1), "Viewed")])
    assert result.metrics.exposure_rate == rate(0, 2)
    assert result.metrics.notice_to_try_rate == rate(0, 0)
    assert result.channels == []


def test_no_adopters_leaves_adopter_metrics_undefined() -> None:
    result = report([("u1", t(1), "Seen"), ("u2", t(1), "Upgraded", {"to": "premium"})])
    metrics = result.metrics
    assert metrics.adoption_rate == rate(0, 2)
    assert (metrics.conversion_rate, metrics.repeat_usage_rate) == (rate(0, 0), rate(0, 0))
    assert metrics.median_days_to_adopt == Median(n=0, value=None, interval=None)
    assert metrics.stickiness == Stickiness(value=None, full_days=28, adopters=0, interval=None)
    # non-adopters u1, u2; u2 converted: 1 / 2, but there is no adopter rate to compare with
    assert result.adopters_vs_non_adopters.non_adopters == rate(1, 2)
    assert result.adopters_vs_non_adopters.difference is None
