"""Plotly figures of a launch report, one pure function per result model: data first, keyword
options after, a `go.Figure` out. Each trace carries hover text with the exact counts behind
its rates (k of n), interval error bars are the report's own Wilson/Newcombe bounds (never
recomputed here), and every figure draws something readable for an empty report instead of
raising: a window that has not started, no channels, a rate over n = 0.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal, get_args

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards import theme
from pipelines.report_models import (
    Channel,
    ConversionComparison,
    Funnel,
    FunnelStep,
    Rate,
    RetentionWeek,
    SegmentRow,
    Segments,
    Timeline,
)

__all__ = [
    "SEGMENT_METRICS",
    "STEP_LABELS",
    "SegmentMetric",
    "adoption_timeline_chart",
    "channels_chart",
    "conversion_comparison_chart",
    "funnel_chart",
    "retention_chart",
    "segments_chart",
]

SegmentMetric = Literal[
    "exposure_rate", "adoption_rate", "notice_to_try_rate", "repeat_usage_rate", "conversion_rate"
]
SEGMENT_METRICS: Final[tuple[SegmentMetric, ...]] = get_args(SegmentMetric)

STEP_LABELS: Final[dict[str, str]] = {
    "active": "Active",
    "exposed": "Exposed",
    "tried": "Tried",
    "repeated": "Repeated",
    "converted": "Converted",
}

_NOTE_WIDTH = 95


def _text(value: str) -> str:
    """User-controlled text for plotly: plotly.js reads labels as a small HTML dialect, so a
    channel called `<b>x` would turn bold; escaping makes it show literally."""
    return html.escape(value, quote=False)


def _wrapped(value: str, width: int = _NOTE_WIDTH) -> str:
    # Annotations never wrap by themselves; breaking on spaces only keeps entities whole.
    lines = textwrap.wrap(value, width, break_long_words=False, break_on_hyphens=False)
    return "<br>".join(lines)


def _figure(title: str, *, height: int, fig: Any = None) -> go.Figure:
    figure = fig if fig is not None else go.Figure()
    figure.update_layout(template=theme.TEMPLATE, title={"text": title}, height=height)
    return figure


def _note(fig: go.Figure, message: str, *, hide_axes: bool = False) -> go.Figure:
    """The explanatory line an empty or degenerate figure shows instead of an empty plot."""
    fig.add_annotation(
        text=message,
        name="empty-note",
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 15, "color": theme.MUTED},
        bgcolor="rgba(255,255,255,0.85)",
    )
    if hide_axes:
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    return fig


def _error_bars(rates: Sequence[Rate]) -> dict[str, Any]:
    """Asymmetric error bars reaching exactly the interval's ends (plotly wants distances
    from the value); a rate over n = 0 has no bar."""
    plus: list[float | None] = []
    minus: list[float | None] = []
    for rate in rates:
        if rate.value is None or rate.interval is None:
            plus.append(None)
            minus.append(None)
        else:
            plus.append(rate.interval.high - rate.value)
            minus.append(rate.value - rate.interval.low)
    return {
        "type": "data",
        "symmetric": False,
        "array": plus,
        "arrayminus": minus,
        "color": theme.INK,
        "thickness": 1.5,
        "width": 5,
    }


def _rate_hover(heading: str, label: str, rate: Rate, denominator: str) -> str:
    return (
        f"<b>{heading}</b><br>{label} {theme.fmt_percent(rate.value)}<br>"
        f"{theme.fmt_k_of_n(rate.k, rate.n)} {denominator}<br>"
        f"95% interval {theme.fmt_interval(rate.interval)}"
    )


def _utc_naive(at: datetime) -> datetime:
    # plotly.js ignores or misreads UTC offsets in date strings; the axis is in UTC days.
    return theme.as_utc(at).replace(tzinfo=None)


def _step_hover(step: FunnelStep, users: Mapping[str, int]) -> str:
    lines = [f"<b>{STEP_LABELS[step.step]}</b>", f"{theme.fmt_count(step.users)} users"]
    if step.parent is not None:
        parent = STEP_LABELS[step.parent].lower()
        lines.append(
            f"{theme.fmt_k_of_n(step.users, users[step.parent])} {parent}"
            f" ({theme.fmt_percent(step.rate_from_parent)})"
        )
    if step.step != "active" and "active" in users:
        lines.append(f"{theme.fmt_percent(step.rate_from_active)} of active")
    return "<br>".join(lines)


def funnel_chart(funnel: Funnel, *, title: str = "Funnel") -> go.Figure:
    """The nested steps active -> exposed -> tried -> repeated -> converted, each with its
    users and its rate from its parent step; the largest drop is drawn red and called out."""
    fig = _figure(title, height=380)
    if not funnel.steps:
        return _note(fig, "No funnel yet: the window has not started", hide_axes=True)
    users: dict[str, int] = {step.step: step.users for step in funnel.steps}
    text = [
        theme.fmt_count(step.users)
        if step.parent is None
        else f"{theme.fmt_count(step.users)} · {theme.fmt_percent(step.rate_from_parent)}"
        f" of {STEP_LABELS[step.parent].lower()}"
        for step in funnel.steps
    ]
    fig.add_trace(
        go.Funnel(
            name="Users",
            y=[STEP_LABELS[step.step] for step in funnel.steps],
            x=[step.users for step in funnel.steps],
            text=text,
            textinfo="text",
            textposition="inside",
            hovertext=[_step_hover(step, users) for step in funnel.steps],
            hoverinfo="text",
            marker={
                "color": [
                    theme.RED if step.step == funnel.largest_drop else theme.BLUE
                    for step in funnel.steps
                ]
            },
            connector={"line": {"color": theme.GRID}},
        )
    )
    if funnel.summary:
        fig.add_annotation(
            text=_wrapped(_text(funnel.summary)),
            name="largest-drop",
            xref="paper",
            yref="paper",
            x=0,
            y=-0.04,
            xanchor="left",
            yanchor="top",
            align="left",
            showarrow=False,
            font={"color": theme.RED if funnel.largest_drop else theme.MUTED},
        )
        fig.update_layout(margin={"b": 80})
    if funnel.steps[0].users == 0:
        _note(fig, "No active users in the window yet")
    return fig


def adoption_timeline_chart(
    timeline: Timeline, *, title: str = "Cumulative adoption", height: int = 420
) -> go.Figure:
    """Cumulative adoption rate per UTC day against the target, with the launch and each
    announcement marked, over bars of new adopters and newly exposed users (right axis)."""
    fig = _figure(title, height=height, fig=make_subplots(specs=[[{"secondary_y": True}]]))
    if not timeline.days:
        return _note(fig, "No days in the window yet", hide_axes=True)
    days = [day.day for day in timeline.days]
    hover: list[str] = []
    adopters = 0
    for day in timeline.days:
        adopters += day.new_adopters
        rate = day.cumulative_adoption_rate
        # The model carries the cumulative numerator implicitly (a running sum) but not the
        # denominator; k / rate gives it back exactly for any realistic n.
        so_far = (
            theme.fmt_k_of_n(adopters, round(adopters / rate))
            if rate and adopters
            else f"{theme.fmt_count(adopters)} adopters"
        )
        hover.append(
            f"<b>{theme.fmt_date(day.day)}</b><br>Cumulative adoption {theme.fmt_percent(rate)}"
            f"<br>{so_far} active so far<br>New adopters {theme.fmt_count(day.new_adopters)}"
            f" · newly exposed {theme.fmt_count(day.newly_exposed)}"
            f" · active that day {theme.fmt_count(day.active)}"
        )
    fig.add_trace(
        go.Bar(
            name="Newly exposed",
            x=days,
            y=[day.newly_exposed for day in timeline.days],
            marker={"color": theme.GREY},
            opacity=0.35,
            hoverinfo="skip",
        ),
        secondary_y=True,
    )
    fig.add_trace(
        go.Bar(
            name="New adopters",
            x=days,
            y=[day.new_adopters for day in timeline.days],
            marker={"color": theme.LIGHT_BLUE},
            opacity=0.6,
            hoverinfo="skip",
        ),
        secondary_y=True,
    )
    fig.add_trace(
        go.Scatter(
            name="Cumulative adoption rate",
            x=days,
            y=[day.cumulative_adoption_rate for day in timeline.days],
            mode="lines+markers",
            line={"color": theme.BLUE, "width": 2.5},
            hovertext=hover,
            hoverinfo="text",
        ),
        secondary_y=False,
    )
    if timeline.target is not None:
        fig.add_hline(
            y=timeline.target,
            line={"color": theme.GREEN, "dash": "dash", "width": 1.5},
            annotation_text=f"Target {theme.fmt_percent(timeline.target)}",
            annotation_position="top left",
            annotation_font={"color": theme.GREEN},
            secondary_y=False,
        )
    for index, marker in enumerate(timeline.markers):
        at = _utc_naive(marker.at)
        fig.add_shape(
            type="line",
            name="marker",
            x0=at,
            x1=at,
            xref="x",
            y0=0,
            y1=1,
            yref="y domain",
            line={"color": theme.MUTED, "dash": "dot", "width": 1},
        )
        # Announcements often fall days apart; stepping labels down keeps neighbours legible.
        fig.add_annotation(
            text=_text(marker.label),
            name="marker",
            x=at,
            xref="x",
            y=1 - 0.07 * (index % 5),
            yref="y domain",
            xanchor="left",
            yanchor="top",
            showarrow=False,
            font={"size": 11, "color": theme.MUTED},
            bgcolor="rgba(255,255,255,0.8)",
        )
    fig.update_layout(barmode="group", hovermode="x unified")
    fig.update_yaxes(
        title_text="Cumulative adoption", tickformat=".0%", rangemode="tozero", secondary_y=False
    )
    fig.update_yaxes(
        title_text="Users per day", rangemode="tozero", showgrid=False, secondary_y=True
    )
    if adopters == 0:
        _note(fig, "No adopters yet")
    return fig


def channels_chart(
    channels: Sequence[Channel], *, active: int | None = None, title: str = "Channels"
) -> go.Figure:
    """Per channel: its reach (users exposed through it / active, left) and the rate of those
    who tried the feature after that exposure with its 95% interval (right). Give `active`
    (the report's active count) to show the reach's exact denominator on hover."""
    height = max(300, 120 + 44 * len(channels))
    fig = _figure(
        title,
        height=height,
        fig=make_subplots(
            rows=1,
            cols=2,
            shared_yaxes=True,
            horizontal_spacing=0.06,
            subplot_titles=("Reach (share of active users)", "Tried after exposure"),
        ),
    )
    if not channels:
        return _note(fig, "No exposures by channel yet", hide_axes=True)
    names = [_text(channel.channel) for channel in channels]
    reach_hover = [
        f"<b>{name}</b><br>Reach {theme.fmt_percent(channel.reach)}<br>"
        + (
            f"{theme.fmt_k_of_n(channel.exposed, active)} active users exposed here"
            if active is not None
            else f"{theme.fmt_count(channel.exposed)} users exposed here"
        )
        for name, channel in zip(names, channels, strict=True)
    ]
    fig.add_trace(
        go.Bar(
            name="Reach",
            orientation="h",
            y=names,
            x=[channel.reach for channel in channels],
            text=[f"{theme.fmt_count(channel.exposed)} exposed" for channel in channels],
            textposition="auto",
            marker={"color": theme.LIGHT_BLUE},
            hovertext=reach_hover,
            hoverinfo="text",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    tried = [channel.tried_after for channel in channels]
    fig.add_trace(
        go.Scatter(
            name="Tried after exposure",
            mode="markers",
            y=names,
            x=[rate.value for rate in tried],
            error_x=_error_bars(tried),
            marker={"color": theme.BLUE, "size": 10},
            hovertext=[
                _rate_hover(name, "Tried after exposure", rate, "exposed here")
                for name, rate in zip(names, tried, strict=True)
            ],
            hoverinfo="text",
            showlegend=False,
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(tickformat=".0%", rangemode="tozero")
    # Categories stack bottom-up by default; reversed, the list reads top-down as given.
    fig.update_yaxes(autorange="reversed", type="category")
    if all(rate.n == 0 for rate in tried):
        _note(fig, "Nobody was exposed through a channel yet")
    return fig


def _segment_rate(row: SegmentRow, metric: SegmentMetric) -> Rate:
    rate: Rate = getattr(row, metric)
    return rate


def segments_chart(
    segments: Segments | None,
    *,
    metric: SegmentMetric = "adoption_rate",
    target: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """One rate (adoption by default) per value of the breakdown trait, with its 95% interval;
    `target` draws the KPI's target as a vertical line."""
    if metric not in SEGMENT_METRICS:
        raise ValueError(f"unknown segment metric {metric!r}; one of {', '.join(SEGMENT_METRICS)}")
    label = theme.metric_label(metric)
    rows = segments.rows if segments is not None else []
    heading = title or (
        f"{label} by {_text(segments.trait)}" if segments is not None else f"{label} by segment"
    )
    fig = _figure(heading, height=max(300, 120 + 40 * len(rows)))
    if segments is None or not rows:
        return _note(fig, "No segment breakdown for this report", hide_axes=True)
    trait = _text(segments.trait)
    names = [_text(row.value) for row in rows]
    rates = [_segment_rate(row, metric) for row in rows]
    fig.add_trace(
        go.Bar(
            name=label,
            orientation="h",
            y=names,
            x=[rate.value for rate in rates],
            error_x=_error_bars(rates),
            marker={"color": theme.BLUE},
            hovertext=[
                _rate_hover(f"{trait} = {name}", label, rate, "users")
                + f"<br>{theme.fmt_count(row.active)} active in segment"
                for name, rate, row in zip(names, rates, rows, strict=True)
            ],
            hoverinfo="text",
        )
    )
    if target is not None:
        fig.add_vline(
            x=target,
            line={"color": theme.GREEN, "dash": "dash", "width": 1.5},
            annotation_text=f"Target {theme.fmt_percent(target)}",
            annotation_position="top right",
            annotation_font={"color": theme.GREEN},
        )
    fig.update_xaxes(tickformat=".0%", rangemode="tozero", title_text=label)
    fig.update_yaxes(autorange="reversed", type="category")
    if all(rate.n == 0 for rate in rates):
        _note(fig, "No users in these segments yet")
    return fig


def retention_chart(
    weeks: Sequence[RetentionWeek],
    *,
    target: float | None = None,
    target_week: int | None = None,
    title: str = "Retention",
) -> go.Figure:
    """Week-n retention of adopters (n = 1, 2, ...) with 95% intervals; only adopters whose
    week n is over are counted, so later weeks have smaller n. A KPI's `target` is drawn
    over its own `target_week` only (a week-2 target says nothing about week 4), or across
    all weeks when no week is given."""
    fig = _figure(title, height=360)
    if not weeks:
        return _note(fig, "No adopter has been around for a full week yet", hide_axes=True)
    rates = [week.rate for week in weeks]
    fig.add_trace(
        go.Bar(
            name="Retention",
            x=[week.week for week in weeks],
            y=[rate.value for rate in rates],
            error_y=_error_bars(rates),
            marker={"color": theme.BLUE},
            hovertext=[
                _rate_hover(
                    f"Week {week.week}", "Retained", week.rate, "adopters whose week is over"
                )
                for week in weeks
            ],
            hoverinfo="text",
        )
    )
    if target is not None:
        line = {"color": theme.GREEN, "dash": "dash", "width": 2}
        label = f"Target {theme.fmt_percent(target)}"
        if target_week is None:
            fig.add_hline(
                y=target,
                line=line,
                annotation_text=label,
                annotation_position="top left",
                annotation_font={"color": theme.GREEN},
            )
        else:
            fig.add_shape(
                type="line",
                name="target",
                x0=target_week - 0.45,
                x1=target_week + 0.45,
                y0=target,
                y1=target,
                xref="x",
                yref="y",
                line=line,
            )
            fig.add_annotation(
                text=f"Week {target_week} target {theme.fmt_percent(target)}",
                x=target_week,
                y=target,
                xref="x",
                yref="y",
                yanchor="bottom",
                showarrow=False,
                font={"color": theme.GREEN, "size": 11},
            )
    fig.update_xaxes(title_text="Weeks since first use", tickprefix="Week ", dtick=1)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    if all(rate.n == 0 for rate in rates):
        _note(fig, "No adopter has been around for a full week yet")
    return fig


def conversion_comparison_chart(
    cmp: ConversionComparison, *, title: str = "Conversion: adopters vs non-adopters"
) -> go.Figure:
    """Adopters' conversion beside active non-adopters', each with its 95% interval, the
    difference and its Newcombe interval in the title, and the report's caution beneath."""
    if cmp.difference is not None:
        title = (
            f"{title}<br><sup>Difference {theme.fmt_points(cmp.difference)}"
            f" (95% interval {theme.fmt_points_interval(cmp.interval)})</sup>"
        )
    fig = _figure(title, height=380)
    rates = [cmp.adopters, cmp.non_adopters]
    fig.add_trace(
        go.Bar(
            name="Conversion rate",
            x=["Adopters", "Active non-adopters"],
            y=[rate.value for rate in rates],
            error_y=_error_bars(rates),
            marker={"color": [theme.BLUE, theme.GREY]},
            text=[theme.fmt_percent(rate.value) for rate in rates],
            textposition="outside",
            hovertext=[
                _rate_hover("Adopters", "Converted", cmp.adopters, "adopters"),
                _rate_hover("Active non-adopters", "Converted", cmp.non_adopters, "non-adopters"),
            ],
            hoverinfo="text",
        )
    )
    if cmp.note:
        fig.add_annotation(
            text=_wrapped(_text(cmp.note), 80),
            name="caution",
            xref="paper",
            yref="paper",
            x=0,
            y=-0.12,
            xanchor="left",
            yanchor="top",
            align="left",
            showarrow=False,
            font={"size": 12, "color": theme.MUTED},
        )
        fig.update_layout(margin={"b": 90})
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    if cmp.adopters.n == 0 and cmp.non_adopters.n == 0:
        _note(fig, "No active users yet")
    elif cmp.adopters.n == 0:
        _note(fig, "No adopters yet")
    elif cmp.non_adopters.n == 0:
        _note(fig, "No active non-adopters to compare with")
    return fig
