"""Figures checked on their data, not their pixels: trace types, x/y equal to the report's
numbers, target and marker shapes where they belong, error bars reaching exactly the
report's interval bounds, hover text with exact counts, and every empty case drawing an
explanatory note instead of raising. The report they draw is built in tests/helpers/builders.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from dashboards import figures, theme
from dashboards.timeline import adoption_timeline_chart
from pipelines.rates import rate
from pipelines.report_models import (
    Channel,
    ConversionComparison,
    Funnel,
    FunnelStep,
    Interval,
    LaunchReport,
    Marker,
    Rate,
    RetentionWeek,
    Segments,
    Timeline,
)
from tests.helpers.builders import (
    DROP_SUMMARY,
    FUNNEL_PARENTS,
    LAUNCHED,
    NEW_ADOPTERS,
    NEWLY_EXPOSED,
    build_channels,
    build_comparison,
    build_empty_report,
    build_funnel,
    build_report,
    build_segments,
    build_timeline,
    timeline_day,
)


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
    assert trace.type == "bar" and trace.orientation == "h"
    assert list(trace.y) == ["Active", "Exposed", "Tried", "Repeated", "Converted"]
    assert list(trace.x) == [2000, 260, 40, 22, 9]
    assert fig.layout.yaxis.autorange == "reversed"  # read top-down, active first
    assert list(trace.marker.color) == [theme.BLUE, theme.BLUE, theme.RED, theme.BLUE, theme.BLUE]
    assert trace.text[2] == "40 · 15.4% of exposed"
    # converted is taken from tried, not from the step drawn above it
    assert trace.text[4] == "9 · 22.5% of tried"
    assert "40 of 260 exposed (15.4%)" in trace.hovertext[2]
    assert "260 of 2,000 active (13.0%)" in trace.hovertext[1]
    assert "9 of 40 tried (22.5%)" in trace.hovertext[4]
    # The drop's sentence is the page's, once; the figure keeps only the red bar.
    assert not [a for a in fig.layout.annotations if DROP_SUMMARY in (a.text or "")]
    assert [a.name for a in fig.layout.annotations] == []
    assert empty_note(fig) is None


def test_funnel_labels_stay_readable_on_slivers() -> None:
    """smart-export's funnel, 1,825 -> 218 -> 38 -> 3 -> 1: only the widest bar can hold its
    label; every other label sits outside its bar, on one linear axis with room for it."""
    users = {"active": 1825, "exposed": 218, "tried": 38, "repeated": 3, "converted": 1}
    steps = [
        FunnelStep(
            step=step,  # type: ignore[arg-type]
            users=n,
            parent=FUNNEL_PARENTS[step],
            rate_from_parent=n / users[FUNNEL_PARENTS[step]] if FUNNEL_PARENTS[step] else None,
            rate_from_active=n / users["active"],
        )
        for step, n in users.items()
    ]
    fig = figures.funnel_chart(Funnel(steps=steps, largest_drop="exposed", summary="88% ..."))
    (trace,) = fig.data
    assert list(trace.textposition) == ["inside", "outside", "outside", "outside", "outside"]
    assert trace.cliponaxis is False
    assert trace.text[1] == "218 · 11.9% of active"
    assert trace.text[4] == "1 · 2.6% of tried"
    assert "218 of 1,825 active (11.9%)" in trace.hovertext[1]
    assert list(trace.marker.color)[1] == theme.RED
    low, high = fig.layout.xaxis.range
    assert low == 0 and high > 1825


def test_funnel_without_steps_or_users() -> None:
    fig = figures.funnel_chart(Funnel(steps=[], largest_drop=None, summary=""))
    assert fig.data == ()
    assert empty_note(fig) == "No funnel yet: the window has not started"

    zero = Funnel(
        steps=[
            FunnelStep(step="active", users=0, parent=None, rate_from_parent=None, rate_from_active=None),
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
    assert list(fig.data[0].textposition) == ["outside", "outside"]
    assert list(fig.layout.xaxis.range) == [0, 1]
    assert empty_note(fig) == "No active users in the window yet"


# ---------------------------------------------------------------------------------- timeline


def test_timeline_rates_bars_target_and_markers() -> None:
    timeline = build_timeline()
    fig = adoption_timeline_chart(timeline)
    by_name = {trace.name: trace for trace in fig.data}
    line = by_name["Cumulative adoption rate"]
    assert line.type == "scatter"
    # Each day's point sits at the middle of its UTC day (the launch here is at midnight).
    assert list(line.x) == [
        datetime.combine(day.day, datetime.min.time()) + timedelta(hours=12) for day in timeline.days
    ]
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
    # The target's label sits at the right end of its line, clear of the launch markers.
    (label,) = [a for a in fig.layout.annotations if a.text == "Target 8.0%"]
    assert (label.xref, label.x, label.xanchor, label.y) == ("x domain", 1, "right", 0.08)

    markers = [s for s in fig.layout.shapes if s.name == "marker"]
    assert [s.x0 for s in markers] == [
        datetime(2025, 3, 3, 0, 0),
        datetime(2025, 3, 5, 9, 0),
        datetime(2025, 3, 8, 14, 30),
    ]
    assert all(s.x0 == s.x1 and s.yref == "y domain" for s in markers)
    # Each marker is a numbered tag on its line, explained once in the key under the axis.
    tags = [a for a in fig.layout.annotations if a.name == "marker-tag"]
    assert [(a.text, a.x) for a in tags] == [(f"<b>{n}</b>", s.x0) for n, s in enumerate(markers, start=1)]
    assert key_lines(fig) == [
        "1  Launch · Mar 3 00:00 UTC",
        "2  email announcement · Mar 5 09:00 UTC",
        "3  in_app announcement · Mar 8 14:30 UTC",
    ]
    assert empty_note(fig) is None


def key_lines(fig: Any) -> list[str]:
    (key,) = [a for a in fig.layout.annotations if a.name == "marker-key"]
    assert key.xref == key.yref == "paper" and key.y == 0 and key.yanchor == "top"
    plain = key.text.replace("<b>", "").replace("</b>", "").replace("&nbsp;", " ")
    return [line.strip() for line in plain.split("<br>")]


def smart_export_timeline() -> Timeline:
    """As in the sample: a 28-day window launched at 09:00 UTC with an in-app announcement at
    the same instant, an email the next day and a social post the day after, against a 20%
    target."""
    launched = datetime(2026, 9, 16, 9, 0)
    days = [
        timeline_day(date(2026, 9, 16) + timedelta(days=i), 500, exposed, adopters, rate_)
        for i, (exposed, adopters, rate_) in enumerate(
            [(10, 3, 0.009), (63, 7, 0.015), (31, 6, 0.019), (22, 8, 0.024)] + [(9, 1, 0.021)] * 24
        )
    ]
    return Timeline(
        days=days,
        target=0.2,
        markers=[
            Marker(label="Launch", at=launched),
            Marker(label="in_app announcement", at=launched),
            Marker(label="email announcement", at=datetime(2026, 9, 17, 14, 0)),
            Marker(label="social announcement", at=datetime(2026, 9, 18, 16, 0)),
        ],
    )


def bar_extents(bar: Any) -> list[tuple[datetime, datetime]]:
    """Where each bar of a trace starts and ends on the date axis (x + offset, + width)."""
    extents = []
    for day, offset, width in zip(bar.x, bar.offset, bar.width, strict=True):
        start = datetime.combine(day, datetime.min.time()) + timedelta(milliseconds=offset)
        extents.append((start, start + timedelta(milliseconds=width)))
    return extents


def test_timeline_draws_nothing_before_the_launch() -> None:
    timeline = smart_export_timeline()
    launched = datetime(2026, 9, 16, 9, 0)
    for start in (launched, None):  # given by the page, or taken from the Launch marker
        fig = adoption_timeline_chart(timeline, start=start)
        by_name = {trace.name: trace for trace in fig.data}
        for name in ("Newly exposed", "New adopters"):
            extents = bar_extents(by_name[name])
            # No bar of the launch day starts before the launch ...
            assert extents[0][0] > launched, name
            # ... and every bar stays inside its own UTC day.
            for (low, high), day in zip(extents, timeline.days, strict=True):
                midnight = datetime.combine(day.day, datetime.min.time())
                assert midnight <= low < high <= midnight + timedelta(days=1), (name, day.day)
        exposed, adopters = (
            bar_extents(by_name["Newly exposed"]),
            bar_extents(by_name["New adopters"]),
        )
        assert all(e[1] <= a[0] for e, a in zip(exposed, adopters, strict=True))  # side by side
        line = by_name["Cumulative adoption rate"]
        assert line.x[0] > launched
        assert [x.date() for x in line.x] == [day.day for day in timeline.days]
        assert fig.layout.xaxis.range[0] <= launched


def test_timeline_marker_labels_never_overlap() -> None:
    fig = adoption_timeline_chart(smart_export_timeline())
    # Launch and the in-app announcement share one instant: one line, one tag, one key line.
    markers = [s.x0 for s in fig.layout.shapes if s.name == "marker"]
    assert markers == [
        datetime(2026, 9, 16, 9, 0),
        datetime(2026, 9, 17, 14, 0),
        datetime(2026, 9, 18, 16, 0),
    ]
    tags = [a for a in fig.layout.annotations if a.name == "marker-tag"]
    assert [a.text for a in tags] == ["<b>1</b>", "<b>2</b>", "<b>3</b>"]
    # Tags a day or two apart drop to different rows; all hang from the top of the plot.
    assert all(a.yref == "y domain" and a.y == 1 and a.yanchor == "top" for a in tags)
    shifts = [a.yshift for a in tags]
    assert len(set(shifts)) == 3, shifts
    # No marker label is drawn in the plot area any more; the key lives under the axis
    # and is broken so that each line fits a phone's chart.
    assert [a for a in fig.layout.annotations if a.name == "marker"] == []
    lines = key_lines(fig)
    assert lines == [
        "1  Launch, in_app announcement",
        "Sep 16 09:00 UTC",
        "2  email announcement · Sep 17 14:00 UTC",
        "3  social announcement · Sep 18 16:00 UTC",
    ]
    assert max(len(line) for line in lines) <= 44
    # The data leave headroom under the tags: the rate axis runs past the target and the
    # highest rate, the users axis past the highest bar.
    assert fig.layout.yaxis.range[0] == 0 and fig.layout.yaxis.range[1] > 0.2 * 1.1
    assert fig.layout.yaxis2.range[1] > 63 * 1.1


def test_timeline_users_axis_has_whole_number_ticks() -> None:
    for timeline in (smart_export_timeline(), build_timeline()):
        fig = adoption_timeline_chart(timeline)
        users = fig.layout.yaxis2
        assert users.tickformat == ",d"
        assert users.tickmode == "linear" and users.tick0 == 0
        assert isinstance(users.dtick, int) and users.dtick >= 1
        low, high = users.range
        assert low == 0 and high % users.dtick == 0
        peak = max(max(d.newly_exposed, d.new_adopters) for d in timeline.days)
        assert high >= peak
        assert 2 <= high // users.dtick <= 10
    # A quiet launch with one user a day still counts in whole users.
    quiet = Timeline(days=[timeline_day(date(2025, 3, 3), 3, 1, 1, 0.33)], target=None, markers=[])
    users = adoption_timeline_chart(quiet).layout.yaxis2
    assert users.dtick == 1 and users.tickformat == ",d"


def test_timeline_without_target_days_or_adopters() -> None:
    fig = adoption_timeline_chart(build_timeline(target=None))
    assert [s for s in fig.layout.shapes if s.name != "marker"] == []

    fig = adoption_timeline_chart(Timeline(days=[], target=0.08, markers=[]))
    assert fig.data == ()
    assert empty_note(fig) == "No days in the window yet"

    quiet = Timeline(
        days=[timeline_day(date(2025, 3, 3), 0, 0, 0, None), timeline_day(date(2025, 3, 4), 12, 3, 0, 0.0)],
        target=0.08,
        markers=[Marker(label="Launch", at=LAUNCHED)],
    )
    fig = adoption_timeline_chart(quiet)
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
    # Dark, level labels from each bar's base: readable past a short bar's end, never turned
    # on end or shrunk (a phone's chart leaves a channel's bar a few pixels long).
    assert (reach.textposition, reach.insidetextanchor) == ("inside", "start")
    assert (reach.constraintext, reach.textangle, reach.textfont.color) == ("none", 0, theme.INK)
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

    fig = figures.channels_chart([Channel(channel="push", exposed=0, reach=None, tried_after=rate(0, 0))])
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


def value_labels(fig: Any) -> list[tuple[Any, float, str]]:
    """(x, y, text) of each value label; each must sit on top of what it labels."""
    labels = [a for a in fig.layout.annotations if a.name == "value-label"]
    assert all(a.yref == "y" and a.yanchor == "bottom" and a.showarrow is False for a in labels)
    return [(a.x, a.y, a.text) for a in labels]


def test_retention_axis_is_always_0_to_100_percent() -> None:
    weeks = [
        RetentionWeek(week=1, rate=rate(1, 30)),
        RetentionWeek(week=2, rate=rate(0, 27)),
        RetentionWeek(week=3, rate=rate(0, 0)),
    ]
    nobody = [RetentionWeek(week=w, rate=rate(0, 0)) for w in (1, 2, 3)]
    for case in (weeks, nobody, build_report().metrics.week_n_retention, []):
        fig = figures.retention_chart(case)
        assert list(fig.layout.yaxis.range) == [0, 1]
        assert fig.layout.yaxis.tickformat == ".0%"


def test_retention_labels_every_week_even_zero_and_unmeasurable() -> None:
    """smart-export: week 1 at 1 of 30, week 2 at 0 of 27 (a bar of height 0 would show only
    its error bar), week 3 with n = 0 (nobody's week 3 is over yet)."""
    weeks = [
        RetentionWeek(week=1, rate=rate(1, 30)),
        RetentionWeek(week=2, rate=rate(0, 27)),
        RetentionWeek(week=3, rate=rate(0, 0)),
    ]
    fig = figures.retention_chart(weeks)
    high = [w.rate.interval.high for w in weeks[:2] if w.rate.interval]
    # Each measured week's value above the top of its whisker, so the bar never crosses it.
    assert value_labels(fig) == [(1, high[0], "3.3%"), (2, high[1], "0.0%")]
    (slot,) = [a for a in fig.layout.annotations if a.name == "not-measurable"]
    assert (slot.x, slot.y, slot.yanchor) == (3, 0, "bottom")
    assert slot.text.replace("<br>", " ") == "not yet measurable: no adopter's week 3 is over"
    assert empty_note(fig) is None


def test_retention_empty() -> None:
    assert empty_note(figures.retention_chart([])) is not None
    fig = figures.retention_chart([RetentionWeek(week=1, rate=rate(0, 0))])
    assert list(fig.data[0].y) == [None]
    assert value_labels(fig) == []
    assert [a.x for a in fig.layout.annotations if a.name == "not-measurable"] == [1]
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
    assert fig.layout.title.text == "Conversion rate"
    assert fig.layout.title.subtitle.text == (
        f"Difference {theme.fmt_points(cmp.difference)}<br>"
        f"95% interval {theme.fmt_points_interval(cmp.interval)}"
    )
    # The caution is the page's, once: the figure does not repeat it.
    assert not [a for a in fig.layout.annotations if "Association" in (a.text or "")]
    assert [a for a in fig.layout.annotations if a.name == "caution"] == []
    # Values sit above the whiskers' tops instead of where the error bars cross them.
    assert trace.text is None
    highs = [r.interval.high for r in (cmp.adopters, cmp.non_adopters) if r.interval]
    assert value_labels(fig) == [
        ("Adopters", highs[0], "20.8%"),
        ("Active non-adopters", highs[1], "4.1%"),
    ]
    assert fig.layout.yaxis.range[1] > max(highs)  # room for the top label
    assert empty_note(fig) is None


def test_conversion_comparison_without_adopters() -> None:
    cmp = ConversionComparison(
        adopters=rate(0, 0), non_adopters=rate(30, 900), difference=None, interval=None, note=""
    )
    fig = figures.conversion_comparison_chart(cmp)
    assert list(fig.data[0].y) == [None, 30 / 900]
    assert "Difference" not in fig.layout.title.text
    assert fig.layout.title.subtitle.text is None
    assert [x for x, _, _ in value_labels(fig)] == ["Active non-adopters"]
    assert empty_note(fig) == "No adopters yet"


# ---------------------------------------------------------------------------------- all


def all_figures(report: LaunchReport) -> list[Any]:
    return [
        figures.funnel_chart(report.funnel),
        adoption_timeline_chart(report.timeline),
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
    timeline = Timeline(days=build_timeline().days, target=None, markers=[Marker(label="email", at=naive)])
    fig = adoption_timeline_chart(timeline)
    (marker,) = fig.layout.shapes
    assert marker.x0 == naive
    assert key_lines(fig) == ["1  email · Mar 5 09:00 UTC"]
    assert theme.fmt_datetime(naive) == "2025-03-05 09:00 UTC"
    assert theme.fmt_date(datetime(2025, 3, 5, 23, 30)) == "2025-03-05"
    assert theme.fmt_datetime(datetime(2025, 3, 5, 9, tzinfo=UTC)) == "2025-03-05 09:00 UTC"
