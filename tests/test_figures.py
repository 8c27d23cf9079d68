"""Figures checked on their data, not their pixels: trace types, x/y equal to the report's
numbers, target and marker shapes where they belong, error bars reaching exactly the
report's interval bounds, hover text with exact counts, and every empty case drawing an
explanatory note instead of raising. The report builder here is shared with test_pages.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from dashboards import figures, theme
from pipelines.report_models import (
    Channel,
    ConversionComparison,
    Counts,
    Funnel,
    FunnelStep,
    Interval,
    KpiResult,
    LaunchReport,
    Marker,
    Median,
    Metrics,
    Rate,
    RetentionWeek,
    SegmentRow,
    Segments,
    Stickiness,
    Timeline,
    TimelineDay,
    Window,
)
from pipelines.stats import newcombe_difference_interval, wilson_interval

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
ASSOCIATION_NOTE = (
    "Association, not an effect: adopters may differ from non-adopters in other ways."
)


def rate(k: int, n: int) -> Rate:
    if n == 0:
        return Rate(k=0, n=0, value=None, interval=None)
    low, high = wilson_interval(k, n)
    return Rate(k=k, n=n, value=k / n, interval=Interval(low=low, high=high))


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


def build_timeline(*, target: float | None = 0.08) -> Timeline:
    days: list[TimelineDay] = []
    seen = adopters = 0
    for index, (first, new, exposed) in enumerate(
        zip(FIRST_SEEN, NEW_ADOPTERS, NEWLY_EXPOSED, strict=True)
    ):
        seen += first
        adopters += new
        days.append(
            TimelineDay(
                day=LAUNCHED.date() + timedelta(days=index),
                active=first + 400,
                newly_exposed=exposed,
                new_adopters=new,
                cumulative_adoption_rate=adopters / seen,
            )
        )
    assert seen == 2000 and adopters == 48
    markers = [
        Marker(label="Launch", at=LAUNCHED),
        Marker(label="email announcement", at=LAUNCHED + timedelta(days=2, hours=9)),
        Marker(label="in_app announcement", at=LAUNCHED + timedelta(days=5, hours=14, minutes=30)),
    ]
    return Timeline(days=days, target=target, markers=markers)


def build_kpis(*, provisional: bool = True) -> list[KpiResult]:
    window = build_window()
    adoption = rate(48, 2000)
    notice = rate(40, 260)
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
            interval=adoption.interval,
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
            interval=notice.interval,
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
            interval=Interval(low=1.6, high=3.5),
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


def segment_row(value: str, active: int, exposed: int, adopters: int, tried: int) -> SegmentRow:
    return SegmentRow(
        value=value,
        active=active,
        exposure_rate=rate(exposed, active),
        adoption_rate=rate(adopters, active),
        notice_to_try_rate=rate(tried, exposed),
        repeat_usage_rate=rate(adopters // 2, adopters),
        conversion_rate=rate(adopters // 5, adopters),
    )


def build_segments() -> Segments:
    return Segments(
        trait="plan",
        rows=[
            segment_row("free", 1500, 180, 30, 25),
            segment_row("premium", 450, 75, 16, 14),
            segment_row("(none)", 50, 5, 2, 1),
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


def texts(fig: Any) -> list[str]:
    return [annotation.text for annotation in fig.layout.annotations]


def empty_note(fig: Any) -> str | None:
    notes = [a.text for a in fig.layout.annotations if a.name == "empty-note"]
    assert len(notes) <= 1
    return notes[0] if notes else None


def assert_error_bars(error: Any, rates: list[Rate]) -> None:
    """Error bars must reach the report's interval ends exactly, and be absent for n = 0."""
    assert error.type == "data" and error.symmetric is False
    for plus, minus, r in zip(error.array, error.arrayminus, rates, strict=True):
        if r.value is None or r.interval is None:
            assert plus is None and minus is None
        else:
            assert r.value + plus == pytest.approx(r.interval.high, abs=1e-12)
            assert r.value - minus == pytest.approx(r.interval.low, abs=1e-12)


# ---------------------------------------------------------------------------------- theme


def test_formats() -> None:
    assert theme.fmt_percent(0.065) == "6.5%"
    assert theme.fmt_percent(0.0) == "0.0%"
    assert theme.fmt_percent(None) == "\u2013"
    assert theme.fmt_count(2841) == "2,841"
    assert theme.fmt_count(None) == "\u2013"
    assert theme.fmt_days(2.44) == "2.4 days"
    assert theme.fmt_k_of_n(48, 2000) == "48 of 2,000"
    assert theme.fmt_interval(Interval(low=0.041, high=0.092)) == "4.1% \u2013 9.2%"
    assert theme.fmt_interval(None) == "\u2013"
    assert theme.fmt_points(0.0321) == "+3.2 pts"
    assert theme.fmt_points(-0.01) == "-1.0 pts"
    assert theme.fmt_points_interval(Interval(low=-0.004, high=0.05)) == "-0.4 to +5.0 pts"
    assert theme.fmt_rate(rate(48, 2000)) == "2.4% (48 of 2,000)"
    assert theme.fmt_metric("adoption_rate", 0.024) == "2.4%"
    assert theme.fmt_metric("week_2_retention", 0.24) == "24.0%"
    assert theme.fmt_metric("median_days_to_adopt", 2.4) == "2.4 days"
    assert theme.fmt_datetime(datetime(2025, 3, 21, 9, 5, tzinfo=UTC)) == "2025-03-21 09:05 UTC"
    assert theme.metric_label("week_3_retention") == "Week 3 retention"


def test_verdict_colours_and_labels() -> None:
    assert theme.verdict_colour("met") == theme.verdict_colour("landed") == theme.GREEN
    assert theme.verdict_colour("missed") == theme.RED
    assert theme.verdict_colour("inconclusive") == theme.AMBER
    assert theme.verdict_colour("insufficient_data") == theme.GREY
    assert theme.verdict_label("insufficient_data") == "Insufficient data"
    assert theme.verdict_label("landed") == "Landed"


# ---------------------------------------------------------------------------------- funnel


def test_funnel_steps_counts_and_largest_drop() -> None:
    fig = figures.funnel_chart(build_funnel())
    (trace,) = fig.data
    assert trace.type == "funnel"
    assert list(trace.y) == ["Active", "Exposed", "Tried", "Repeated", "Converted"]
    assert list(trace.x) == [2000, 260, 40, 22, 9]
    assert list(trace.marker.color) == [theme.BLUE, theme.BLUE, theme.RED, theme.BLUE, theme.BLUE]
    assert trace.text[2] == "40 · 15.4% of exposed"
    # converted is taken from tried, not from the step drawn above it
    assert trace.text[4] == "9 · 22.5% of tried"
    assert "40 of 260 exposed (15.4%)" in trace.hovertext[2]
    assert "9 of 40 tried (22.5%)" in trace.hovertext[4]
    (drop,) = [a for a in fig.layout.annotations if a.name == "largest-drop"]
    assert drop.text.replace("<br>", " ") == DROP_SUMMARY
    assert empty_note(fig) is None


def test_funnel_without_steps_or_users() -> None:
    fig = figures.funnel_chart(Funnel(steps=[], largest_drop=None, summary=""))
    assert fig.data == ()
    assert empty_note(fig) == "No funnel yet: the window has not started"

    zero = Funnel(
        steps=[
            FunnelStep(
                step="active", users=0, parent=None, rate_from_parent=None, rate_from_active=None
            ),
            FunnelStep(
                step="exposed",
                users=0,
                parent="active",
                rate_from_parent=None,
                rate_from_active=None,
            ),
        ],
        largest_drop=None,
        summary="No active users yet.",
    )
    fig = figures.funnel_chart(zero)
    assert list(fig.data[0].x) == [0, 0]
    assert fig.data[0].text[1] == "0 · \u2013 of active"
    assert empty_note(fig) == "No active users in the window yet"


# ---------------------------------------------------------------------------------- timeline


def test_timeline_rates_bars_target_and_markers() -> None:
    timeline = build_timeline()
    fig = figures.adoption_timeline_chart(timeline)
    by_name = {trace.name: trace for trace in fig.data}
    line = by_name["Cumulative adoption rate"]
    assert line.type == "scatter"
    assert list(line.x) == [day.day for day in timeline.days]
    assert list(line.y) == [day.cumulative_adoption_rate for day in timeline.days]
    assert line.y[-1] == pytest.approx(48 / 2000)
    assert line.yaxis == "y"
    adopters, exposed = by_name["New adopters"], by_name["Newly exposed"]
    assert adopters.type == exposed.type == "bar"
    assert list(adopters.y) == NEW_ADOPTERS and list(exposed.y) == NEWLY_EXPOSED
    assert adopters.yaxis == exposed.yaxis == "y2"
    assert "3 of 500 active so far" in line.hovertext[0]
    assert "48 of 2,000 active so far" in line.hovertext[-1]

    (target,) = [s for s in fig.layout.shapes if s.yref == "y"]
    assert target.y0 == target.y1 == 0.08
    assert "Target 8.0%" in texts(fig)

    markers = [s for s in fig.layout.shapes if s.name == "marker"]
    assert [s.x0 for s in markers] == [
        datetime(2025, 3, 3, 0, 0),
        datetime(2025, 3, 5, 9, 0),
        datetime(2025, 3, 8, 14, 30),
    ]
    assert all(s.x0 == s.x1 and s.yref == "y domain" for s in markers)
    labels = [a.text for a in fig.layout.annotations if a.name == "marker"]
    assert labels == ["Launch", "email announcement", "in_app announcement"]
    assert empty_note(fig) is None


def test_timeline_without_target_days_or_adopters() -> None:
    fig = figures.adoption_timeline_chart(build_timeline(target=None))
    assert [s for s in fig.layout.shapes if s.name != "marker"] == []

    fig = figures.adoption_timeline_chart(Timeline(days=[], target=0.08, markers=[]))
    assert fig.data == ()
    assert empty_note(fig) == "No days in the window yet"

    quiet = Timeline(
        days=[
            TimelineDay(
                day=date(2025, 3, 3),
                active=0,
                newly_exposed=0,
                new_adopters=0,
                cumulative_adoption_rate=None,
            ),
            TimelineDay(
                day=date(2025, 3, 4),
                active=12,
                newly_exposed=3,
                new_adopters=0,
                cumulative_adoption_rate=0.0,
            ),
        ],
        target=0.08,
        markers=[Marker(label="Launch", at=LAUNCHED)],
    )
    fig = figures.adoption_timeline_chart(quiet)
    assert list(fig.data[-1].y) == [None, 0.0]
    assert "0 adopters active so far" in fig.data[-1].hovertext[1]
    assert empty_note(fig) == "No adopters yet"


# ---------------------------------------------------------------------------------- channels


def test_channels_reach_and_tried_with_intervals() -> None:
    channels = build_channels()
    fig = figures.channels_chart(channels, active=2000)
    reach, tried = fig.data
    assert reach.type == "bar" and reach.orientation == "h"
    assert list(reach.y) == ["email", "in_app", "blog"]
    assert list(reach.x) == [0.08, 0.06, 0.0]
    assert list(reach.text) == ["160 exposed", "120 exposed", "0 exposed"]
    assert "160 of 2,000 active users exposed here" in reach.hovertext[0]
    assert tried.type == "scatter" and tried.xaxis == "x2"
    assert list(tried.x) == [20 / 160, 24 / 120, None]
    assert_error_bars(tried.error_x, [c.tried_after for c in channels])
    assert "20 of 160 exposed here" in tried.hovertext[0]
    assert empty_note(fig) is None


def test_channels_empty_and_unexposed() -> None:
    fig = figures.channels_chart([])
    assert fig.data == ()
    assert empty_note(fig) == "No exposures by channel yet"

    fig = figures.channels_chart(
        [Channel(channel="push", exposed=0, reach=None, tried_after=rate(0, 0))]
    )
    assert list(fig.data[1].x) == [None]
    assert "0 users exposed here" in fig.data[0].hovertext[0]
    assert empty_note(fig) == "Nobody was exposed through a channel yet"


def test_hostile_channel_name_is_shown_as_text() -> None:
    hostile = Channel(channel="<b>x</b>", exposed=3, reach=0.1, tried_after=rate(1, 3))
    fig = figures.channels_chart([hostile])
    assert list(fig.data[0].y) == ["&lt;b&gt;x&lt;/b&gt;"]
    assert fig.data[1].hovertext[0].startswith("<b>&lt;b&gt;x&lt;/b&gt;</b><br>")


# ---------------------------------------------------------------------------------- segments


def test_segments_default_adoption_with_intervals() -> None:
    segments = build_segments()
    fig = figures.segments_chart(segments)
    (trace,) = fig.data
    assert trace.type == "bar"
    assert list(trace.y) == ["free", "premium", "(none)"]
    assert list(trace.x) == [30 / 1500, 16 / 450, 2 / 50]
    assert_error_bars(trace.error_x, [row.adoption_rate for row in segments.rows])
    assert "30 of 1,500 users" in trace.hovertext[0]
    assert fig.layout.title.text == "Adoption rate by plan"


@pytest.mark.parametrize("metric", figures.SEGMENT_METRICS)
def test_segments_any_metric(metric: figures.SegmentMetric) -> None:
    segments = build_segments()
    fig = figures.segments_chart(segments, metric=metric, target=0.05)
    rates = [getattr(row, metric) for row in segments.rows]
    assert list(fig.data[0].x) == [r.value for r in rates]
    assert_error_bars(fig.data[0].error_x, rates)
    (target,) = fig.layout.shapes
    assert target.x0 == target.x1 == 0.05


def test_segments_empty_and_unknown_metric() -> None:
    assert empty_note(figures.segments_chart(None)) == "No segment breakdown for this report"
    assert empty_note(figures.segments_chart(Segments(trait="plan", rows=[]))) is not None
    with pytest.raises(ValueError, match="unknown segment metric"):
        figures.segments_chart(build_segments(), metric="stickiness")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- retention


def test_retention_weeks_with_intervals() -> None:
    weeks = build_report().metrics.week_n_retention
    fig = figures.retention_chart(weeks, target=0.3)
    (trace,) = fig.data
    assert trace.type == "bar"
    assert list(trace.x) == [1, 2]
    assert list(trace.y) == [14 / 40, 6 / 25]
    assert_error_bars(trace.error_y, [w.rate for w in weeks])
    assert "14 of 40 adopters whose week is over" in trace.hovertext[0]
    (target,) = fig.layout.shapes
    assert target.y0 == target.y1 == 0.3
    assert (target.xref, target.x0, target.x1) == ("x domain", 0, 1)

    (target,) = figures.retention_chart(weeks, target=0.3, target_week=2).layout.shapes
    assert (target.x0, target.x1, target.y0, target.y1) == (1.55, 2.45, 0.3, 0.3)


def test_retention_empty() -> None:
    assert empty_note(figures.retention_chart([])) is not None
    fig = figures.retention_chart([RetentionWeek(week=1, rate=rate(0, 0))])
    assert list(fig.data[0].y) == [None]
    assert empty_note(fig) == "No adopter has been around for a full week yet"


# ---------------------------------------------------------------------------------- conversion


def test_conversion_comparison() -> None:
    cmp = build_comparison()
    fig = figures.conversion_comparison_chart(cmp)
    (trace,) = fig.data
    assert list(trace.x) == ["Adopters", "Active non-adopters"]
    assert list(trace.y) == [10 / 48, 80 / 1952]
    assert_error_bars(trace.error_y, [cmp.adopters, cmp.non_adopters])
    assert "10 of 48 adopters" in trace.hovertext[0]
    assert "80 of 1,952 non-adopters" in trace.hovertext[1]
    assert theme.fmt_points(cmp.difference) in fig.layout.title.text
    assert theme.fmt_points_interval(cmp.interval) in fig.layout.title.text
    (note,) = [a for a in fig.layout.annotations if a.name == "caution"]
    assert note.text.replace("<br>", " ") == ASSOCIATION_NOTE
    assert empty_note(fig) is None


def test_conversion_comparison_without_adopters() -> None:
    cmp = ConversionComparison(
        adopters=rate(0, 0), non_adopters=rate(30, 900), difference=None, interval=None, note=""
    )
    fig = figures.conversion_comparison_chart(cmp)
    assert list(fig.data[0].y) == [None, 30 / 900]
    assert "Difference" not in fig.layout.title.text
    assert empty_note(fig) == "No adopters yet"


# ---------------------------------------------------------------------------------- all


def all_figures(report: LaunchReport) -> list[Any]:
    return [
        figures.funnel_chart(report.funnel),
        figures.adoption_timeline_chart(report.timeline),
        figures.channels_chart(report.channels, active=report.counts.active),
        figures.segments_chart(report.segments),
        figures.retention_chart(report.metrics.week_n_retention),
        figures.conversion_comparison_chart(report.adopters_vs_non_adopters),
    ]


@pytest.mark.parametrize("builder", [build_report, build_empty_report], ids=["full", "empty"])
def test_every_figure_validates_and_serialises(builder: Any) -> None:
    for fig in all_figures(builder()):
        assert fig.layout.template.layout.font.family == theme.FONT_FAMILY
        html = fig.to_html(full_html=False, include_plotlyjs=False)
        assert "Plotly.newPlot" in html


def test_empty_report_figures_all_explain_themselves() -> None:
    notes = [empty_note(fig) for fig in all_figures(build_empty_report())]
    assert all(notes), notes


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A server whose local time is not UTC, where `astimezone` on naive times would shift."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york")
def test_naive_times_from_the_pipelines_are_utc() -> None:
    naive = datetime(2025, 3, 5, 9, 0)
    timeline = Timeline(
        days=build_timeline().days, target=None, markers=[Marker(label="email", at=naive)]
    )
    (marker,) = figures.adoption_timeline_chart(timeline).layout.shapes
    assert marker.x0 == naive
    assert theme.fmt_datetime(naive) == "2025-03-05 09:00 UTC"
    assert theme.fmt_date(datetime(2025, 3, 5, 23, 30)) == "2025-03-05"
    assert theme.fmt_datetime(datetime(2025, 3, 5, 9, tzinfo=UTC)) == "2025-03-05 09:00 UTC"
