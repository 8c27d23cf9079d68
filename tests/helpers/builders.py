"""Builders of test data: Segment events and NDJSON bodies, a small valid launch spec, and a
realistic launch report with each of its parts (window, timeline, KPI results, funnel, channels,
segment rows, conversion comparison), for tests of figures, pages and the pipeline. Every value
is fixed, so assertions can state the numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from pipelines.rates import always_valid_rate_interval, rate
from pipelines.report_models import (
    Channel,
    ConversionComparison,
    Counts,
    Funnel,
    FunnelStep,
    Interval,
    IntervalKind,
    KpiResult,
    LaunchReport,
    Marker,
    Median,
    Metrics,
    RetentionWeek,
    SegmentRow,
    Segments,
    Stickiness,
    Timeline,
    TimelineDay,
    Window,
)
from pipelines.stats import newcombe_difference_interval

# ----------------------------------------------------------------------------- events


def track(user: str, message_id: str, **extra: Any) -> dict[str, Any]:
    """A Segment track event of "Feature Used"; `extra` adds or replaces fields."""
    return {"type": "track", "event": "Feature Used", "userId": user, "messageId": message_id, **extra}


def ndjson(events: list[Any]) -> bytes:
    """Events as newline-delimited JSON, one per line, as an import upload."""
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


# ----------------------------------------------------------------------------- launch specs


def launch_spec(key: str, launched_at: datetime) -> dict[str, Any]:
    """A small valid launch spec as JSON."""
    return {
        "key": key,
        "name": key.replace("-", " ").title(),
        "owner": "po@example.com",
        "launched_at": launched_at.isoformat(),
        "signals": {"exposed": [{"event": "Feature Seen"}], "used": [{"event": "Feature Used"}]},
        "kpis": [{"id": "adoption", "metric": "adoption_rate", "comparator": ">=", "target": 0.2}],
    }


# ----------------------------------------------------------------------------- a launch report


def segment_row(
    value: str, *, active: int, exposed: int, adopters: int, tried: int, repeated: int, converted: int
) -> SegmentRow:
    """A segment's row from its counts, each rate on its spec denominator."""
    return SegmentRow(
        value=value,
        active=active,
        exposure_rate=rate(exposed, active),
        adoption_rate=rate(adopters, active),
        notice_to_try_rate=rate(tried, exposed),
        repeat_usage_rate=rate(repeated, adopters),
        conversion_rate=rate(converted, adopters),
    )


LAUNCHED = datetime(2025, 3, 3, tzinfo=UTC)
AS_OF = datetime(2025, 3, 21, 9, tzinfo=UTC)
WINDOW_DAYS = 28

# One missed launch, 18 days into its 28-day window: 2,000 active, 260 exposed, 48 adopters.
FIRST_SEEN = [500, 300, 200, 150, 120, 100, 90, 80, 70, 60, 55, 50, 45, 40, 35, 35, 25, 45]
NEW_ADOPTERS = [3, 6, 5, 4, 4, 3, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 2, 1]
NEWLY_EXPOSED = [40, 60, 30, 20, 15, 12, 10, 10, 9, 8, 8, 7, 6, 6, 5, 5, 5, 4]
FUNNEL_USERS = {"active": 2000, "exposed": 260, "tried": 40, "repeated": 22, "converted": 9}
FUNNEL_PARENTS: dict[str, Any] = {
    "active": None,
    "exposed": "active",
    "tried": "exposed",
    "repeated": "tried",
    "converted": "tried",
}
DROP_SUMMARY = "85% of users who noticed it never tried it."
ASSOCIATION_NOTE = "Association, not an effect: adopters may differ from non-adopters in other ways."


def build_window(*, as_of: datetime = AS_OF) -> Window:
    full_end = LAUNCHED + timedelta(days=WINDOW_DAYS)
    end = min(as_of, full_end)
    return Window(
        start=LAUNCHED,
        end=end,
        full_end=full_end,
        as_of=as_of,
        days=(end - LAUNCHED).total_seconds() / 86400,
        provisional=as_of < full_end,
    )


def timeline_day(day: date, active: int, exposed: int, adopters: int, rate: float | None) -> TimelineDay:
    return TimelineDay(
        day=day, active=active, newly_exposed=exposed, new_adopters=adopters, cumulative_adoption_rate=rate
    )


def build_timeline(*, target: float | None = 0.08) -> Timeline:
    days: list[TimelineDay] = []
    seen = adopters = 0
    for index, (first, new, exposed) in enumerate(zip(FIRST_SEEN, NEW_ADOPTERS, NEWLY_EXPOSED, strict=True)):
        seen += first
        adopters += new
        days.append(
            timeline_day(LAUNCHED.date() + timedelta(days=index), first + 400, exposed, new, adopters / seen)
        )
    assert seen == 2000 and adopters == 48
    markers = [
        Marker(label="Launch", at=LAUNCHED),
        Marker(label="email announcement", at=LAUNCHED + timedelta(days=2, hours=9)),
        Marker(label="in_app announcement", at=LAUNCHED + timedelta(days=5, hours=14, minutes=30)),
    ]
    return Timeline(days=days, target=target, markers=markers)


def build_kpis(*, provisional: bool = True) -> list[KpiResult]:
    """Three KPIs; provisional ones are judged, as section 7 says, on their always-valid interval."""
    window = build_window()
    adoption = rate(48, 2000)
    notice = rate(40, 260)
    kind: IntervalKind = "always_valid" if provisional else "fixed"

    def judging(fixed: Interval | None, always_valid: Interval | None) -> Interval | None:
        return always_valid if provisional else fixed

    speed = Interval(low=1.6, high=3.5)
    return [
        KpiResult(
            id="adoption",
            metric="adoption_rate",
            comparator=">=",
            target=0.08,
            amended_target=None,
            amended=False,
            set_after_launch=False,
            min_sample=30,
            by_day=None,
            window=window,
            value=adoption.value,
            interval=judging(adoption.interval, always_valid_rate_interval(adoption)),
            fixed_interval=adoption.interval,
            interval_kind=kind,
            n=2000,
            verdict="missed",
            provisional=provisional,
        ),
        KpiResult(
            id="notice-to-try",
            metric="notice_to_try_rate",
            comparator=">=",
            target=0.15,
            amended_target=0.12,
            amended=True,
            set_after_launch=False,
            min_sample=30,
            by_day=None,
            window=window,
            value=notice.value,
            interval=judging(notice.interval, always_valid_rate_interval(notice)),
            fixed_interval=notice.interval,
            interval_kind=kind,
            n=260,
            verdict="inconclusive",
            provisional=provisional,
        ),
        KpiResult(
            id="time-to-adopt",
            metric="median_days_to_adopt",
            comparator="<=",
            target=3.0,
            amended_target=None,
            amended=False,
            set_after_launch=True,
            min_sample=30,
            by_day=14,
            window=window,
            value=2.4,
            interval=judging(speed, Interval(low=1.2, high=4.1)),
            fixed_interval=speed,
            interval_kind=kind,
            n=48,
            verdict="inconclusive",
            provisional=provisional,
        ),
    ]


def build_funnel() -> Funnel:
    steps = []
    for step, users in FUNNEL_USERS.items():
        parent = FUNNEL_PARENTS[step]
        steps.append(
            FunnelStep(
                step=step,  # type: ignore[arg-type]
                users=users,
                parent=parent,
                rate_from_parent=users / FUNNEL_USERS[parent] if parent else None,
                rate_from_active=users / FUNNEL_USERS["active"],
            )
        )
    return Funnel(steps=steps, largest_drop="tried", summary=DROP_SUMMARY)


def build_channels() -> list[Channel]:
    return [
        Channel(channel="email", exposed=160, reach=0.08, tried_after=rate(20, 160)),
        Channel(channel="in_app", exposed=120, reach=0.06, tried_after=rate(24, 120)),
        Channel(channel="blog", exposed=0, reach=0.0, tried_after=rate(0, 0)),
    ]


def segment(value: str, active: int, exposed: int, adopters: int, tried: int) -> SegmentRow:
    """A segment whose repeaters and converters are a half and a fifth of its adopters."""
    return segment_row(
        value,
        active=active,
        exposed=exposed,
        adopters=adopters,
        tried=tried,
        repeated=adopters // 2,
        converted=adopters // 5,
    )


def build_segments() -> Segments:
    return Segments(
        trait="plan",
        rows=[
            segment("free", 1500, 180, 30, 25),
            segment("premium", 450, 75, 16, 14),
            segment("(none)", 50, 5, 2, 1),
        ],
    )


def build_comparison() -> ConversionComparison:
    low, high = newcombe_difference_interval(10, 48, 80, 1952)
    return ConversionComparison(
        adopters=rate(10, 48),
        non_adopters=rate(80, 1952),
        difference=10 / 48 - 80 / 1952,
        interval=Interval(low=low, high=high),
        note=ASSOCIATION_NOTE,
    )


def build_report(**update: Any) -> LaunchReport:
    """A realistic missed launch, provisional at day 18; `update` replaces any field."""
    window = build_window()
    report = LaunchReport(
        launch_key="onboarding-checklist",
        name="Onboarding checklist",
        owner="Ana Lima",
        window=window,
        provisional=window.provisional,
        counts=Counts(active=2000, exposed=260, adopters=48, tried=40, repeated=22, converted=9),
        metrics=Metrics(
            exposure_rate=rate(260, 2000),
            adoption_rate=rate(48, 2000),
            notice_to_try_rate=rate(40, 260),
            repeat_usage_rate=rate(26, 48),
            conversion_rate=rate(10, 48),
            baseline_conversion_rate=rate(57, 1900),
            median_days_to_adopt=Median(n=48, value=2.4, interval=Interval(low=1.6, high=3.5)),
            week_n_retention=[
                RetentionWeek(week=1, rate=rate(14, 40)),
                RetentionWeek(week=2, rate=rate(6, 25)),
            ],
            stickiness=Stickiness(
                value=0.11, full_days=18, adopters=48, interval=Interval(low=0.08, high=0.14)
            ),
        ),
        kpis=build_kpis(),
        verdict="missed",
        funnel=build_funnel(),
        channels=build_channels(),
        segments=build_segments(),
        adopters_vs_non_adopters=build_comparison(),
        timeline=build_timeline(),
    )
    return report.model_copy(update=update)


def build_empty_report(**update: Any) -> LaunchReport:
    """A launch whose window has just opened: nobody active, every rate over n = 0."""
    none = rate(0, 0)
    window = build_window(as_of=LAUNCHED)
    report = build_report(
        window=window,
        counts=Counts(active=0, exposed=0, adopters=0, tried=0, repeated=0, converted=0),
        metrics=Metrics(
            exposure_rate=none,
            adoption_rate=none,
            notice_to_try_rate=none,
            repeat_usage_rate=none,
            conversion_rate=none,
            baseline_conversion_rate=none,
            median_days_to_adopt=Median(n=0, value=None, interval=None),
            week_n_retention=[],
            stickiness=Stickiness(value=None, full_days=0, adopters=0, interval=None),
        ),
        kpis=[],
        verdict="inconclusive",
        funnel=Funnel(steps=[], largest_drop=None, summary=""),
        channels=[],
        segments=None,
        adopters_vs_non_adopters=ConversionComparison(
            adopters=none, non_adopters=none, difference=None, interval=None, note=""
        ),
        timeline=Timeline(days=[], target=None, markers=[]),
    )
    return report.model_copy(update=update)
