"""Plotly figures of a launch report, one pure function per result model: data first, keyword
options after, a `go.Figure` out. Each trace carries hover text with the exact counts behind
its rates (k of n), interval error bars are the report's own Wilson/Newcombe bounds (never
recomputed here), and every figure draws something readable for an empty report instead of
raising: a window that has not started, no channels, a rate over n = 0.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from typing import Any, Final, Literal, get_args

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards import theme
from pipelines.report_models import (
    Channel,
    ConversionComparison,
    Funnel,
    FunnelStep,
    Marker,
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

# A funnel bar at least this share of the widest holds its own label; shorter ones get it
# beside them. The axis runs a little past the widest bar to leave room for those labels.
_INSIDE_SHARE: Final = 0.5
_FUNNEL_HEADROOM: Final = 1.15

# The adoption timeline's geometry. Each UTC day leaves this share of its span empty on each
# side of its two bars; marker tags sit in up to three rows at the top of the plot, a tag
# dropping a row when the previous one in its row is nearer than a share of the x axis; the
# key explaining them is a line per marker under the axis's tick labels.
_DAY: Final = timedelta(days=1)
_ZERO: Final = timedelta(0)
_BAR_PAD: Final = 0.1
_TAG_ROWS: Final = 3
_TAG_GAP: Final = 0.09
_TAG_ROW_PX: Final = 20
_KEY_LINE: Final = 16
_KEY_WIDTH: Final = 44
_KEY_HANG: Final = "&nbsp;" * 5
_KEY_INDENT_PX: Final = 50
_KEY_OFFSET_PX: Final = 44
_TIMELINE_MARGIN: Final[dict[str, int]] = {"t": 40, "b": 50}
_TIMELINE_TOP_PX: Final = 90  # the title and a one-row legend, as drawn on a wide screen


# A title at the top of the figure that moves the plot (and a legend above it) down to make
# room for itself, however many lines it and the legend take on a narrow screen.
_TITLE_PUSHES_PLOT: Final[dict[str, Any]] = {
    "automargin": True,
    "yref": "container",
    "y": 1,
    "yanchor": "top",
    "pad": {"t": 8},
}


def _text(value: str) -> str:
    """User-controlled text for plotly: plotly.js reads labels as a small HTML dialect, so a
    channel called `<b>x` would turn bold; escaping makes it show literally."""
    return html.escape(value, quote=False)


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


def _ms(span: timedelta) -> int:
    """A duration in plotly's date-axis units (milliseconds)."""
    return round(span.total_seconds() * 1000)


def _marker_time(at: datetime) -> str:
    """A marker's instant, short enough for a phone: "Sep 16 09:00 UTC"."""
    return f"{at:%b} {at.day} {at:%H:%M} UTC"


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
    """The nested steps active -> exposed -> tried -> repeated -> converted as horizontal
    bars on one linear scale, each labelled with its users and its rate from its parent step;
    the step with the largest drop is drawn red. A label goes inside its bar only when the bar
    is long enough to hold it, so the slivers late in a funnel keep a readable label beside
    them. The drop's sentence (`funnel.summary`) is the page's to show, once, as text."""
    fig = _figure(title, height=380)
    if not funnel.steps:
        return _note(fig, "No funnel yet: the window has not started", hide_axes=True)
    users: dict[str, int] = {step.step: step.users for step in funnel.steps}
    widest = max(users.values())
    text = [
        theme.fmt_count(step.users)
        if step.parent is None
        else f"{theme.fmt_count(step.users)} · {theme.fmt_percent(step.rate_from_parent)}"
        f" of {STEP_LABELS[step.parent].lower()}"
        for step in funnel.steps
    ]
    fig.add_trace(
        go.Bar(
            name="Users",
            orientation="h",
            y=[STEP_LABELS[step.step] for step in funnel.steps],
            x=[step.users for step in funnel.steps],
            text=text,
            textposition=[
                "inside" if widest and step.users >= _INSIDE_SHARE * widest else "outside"
                for step in funnel.steps
            ],
            insidetextanchor="end",
            outsidetextfont={"color": theme.INK},
            cliponaxis=False,
            hovertext=[_step_hover(step, users) for step in funnel.steps],
            hoverinfo="text",
            marker={
                "color": [
                    theme.RED if step.step == funnel.largest_drop else theme.BLUE for step in funnel.steps
                ]
            },
            showlegend=False,
        )
    )
    # The widest bar ends short of the edge so an outside label of a bar just under the
    # inside threshold still fits to its right.
    fig.update_xaxes(
        range=[0, widest * _FUNNEL_HEADROOM if widest else 1],
        tickformat=",d",
        rangemode="tozero",
        title_text="Users",
    )
    fig.update_yaxes(type="category", autorange="reversed", ticklabelstandoff=6)
    fig.update_layout(bargap=0.25)
    if funnel.steps[0].users == 0:
        _note(fig, "No active users in the window yet")
    return fig


def _marker_groups(markers: Sequence[Marker]) -> list[tuple[datetime, list[str]]]:
    """Markers at the same instant (a launch and its first announcement, typically) share
    one line and one tag; each group's labels stay in the order given."""
    groups: dict[datetime, list[str]] = {}
    for marker in markers:
        groups.setdefault(_utc_naive(marker.at), []).append(marker.label)
    return sorted(groups.items())


def _tag_rows(instants: Sequence[datetime], span: timedelta) -> list[int]:
    """The row (0 = top) of each marker's number tag: a tag drops a row when its neighbour
    is closer than a share of the axis, so tags a day apart stay apart even on a phone."""
    gap = span * _TAG_GAP
    last: list[datetime | None] = [None] * _TAG_ROWS
    rows: list[int] = []
    for at in instants:
        row = next(
            (r for r, previous in enumerate(last) if previous is None or at - previous >= gap),
            min(range(_TAG_ROWS), key=lambda r: last[r] or datetime.min),
        )
        last[row] = at
        rows.append(row)
    return rows


def _marker_key(groups: Sequence[tuple[datetime, list[str]]]) -> list[str]:
    """The lines of the key under the timeline, "1  Launch, in_app announcement · Sep 16
    09:00 UTC", broken so that no line is wider than a phone's chart."""
    lines: list[str] = []
    for number, (at, labels) in enumerate(groups, start=1):
        head = f"{number}  {', '.join(labels)}"
        when = _marker_time(at)
        if len(head) + len(when) + 3 <= _KEY_WIDTH:
            parts = [f"{head} · {when}"]
        else:
            parts = [*textwrap.wrap(head, _KEY_WIDTH, break_on_hyphens=False), when]
        first = _text(parts[0]).replace(str(number), f"<b>{number}</b>", 1)
        lines.append(first)
        lines.extend(f"{_KEY_HANG}{_text(part)}" for part in parts[1:])
    return lines


def _count_step(top: int) -> int:
    """A round tick step (1, 2, 5 x 10^k) giving about four ticks up to `top` users."""
    raw = max(top / 4, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(int(m * magnitude) for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _day_spans(days: Sequence[date], start: datetime | None) -> list[tuple[datetime, datetime]]:
    """The part of each UTC day inside the window: whole days, except that the launch day
    begins at the launch itself."""
    spans: list[tuple[datetime, datetime]] = []
    for day in days:
        low = datetime.combine(day, dt_time())
        high = low + _DAY
        if start is not None and low < start < high:
            low = start
        spans.append((low, high))
    return spans


def adoption_timeline_chart(
    timeline: Timeline,
    *,
    start: datetime | None = None,
    title: str = "Cumulative adoption",
    height: int = 420,
) -> go.Figure:
    """Cumulative adoption rate per UTC day against the target, with the launch and each
    announcement marked, over bars of new adopters and newly exposed users (right axis).

    Each day's pair of bars and its point on the line sit inside that UTC day; the launch
    day's begin at `start` (the window's start: give `report.window.start`; without it, the
    "Launch" marker's time), so nothing is drawn before the launch. Markers are dotted lines
    at their exact instants with a numbered tag at the top, explained in a key under the
    axis, so labels never sit on the data or on each other."""
    groups = _marker_groups(timeline.markers)
    key = _marker_key(groups)
    key_height = _KEY_LINE * len(key) + (8 if key else 0)
    fig = _figure(title, height=height + key_height, fig=make_subplots(specs=[[{"secondary_y": True}]]))
    if not timeline.days:
        return _note(fig, "No days in the window yet", hide_axes=True)
    if start is None:
        start = next((m.at for m in timeline.markers if m.label == "Launch"), None)
    launched = _utc_naive(start) if start is not None else None
    days = [day.day for day in timeline.days]
    spans = _day_spans(days, launched)
    midnights = [datetime.combine(day, dt_time()) for day in days]
    pads = [(high - low) * _BAR_PAD for low, high in spans]
    widths = [(high - low - 2 * pad) / 2 for (low, high), pad in zip(spans, pads, strict=True)]
    first = [low + pad - midnight for (low, _), pad, midnight in zip(spans, pads, midnights, strict=True)]
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
    # Bars are placed by hand (offset and width in ms from the day's midnight) rather than
    # centred on the date, which would put half of the launch day's bars before the launch.
    for name, values, colour, opacity, shift in (
        ("Newly exposed", [d.newly_exposed for d in timeline.days], theme.GREY, 0.35, False),
        ("New adopters", [d.new_adopters for d in timeline.days], theme.LIGHT_BLUE, 0.6, True),
    ):
        fig.add_trace(
            go.Bar(
                name=name,
                x=days,
                y=values,
                offset=[
                    _ms(off + (width if shift else _ZERO)) for off, width in zip(first, widths, strict=True)
                ],
                width=[_ms(width) for width in widths],
                marker={"color": colour},
                opacity=opacity,
                hoverinfo="skip",
            ),
            secondary_y=True,
        )
    rates = [day.cumulative_adoption_rate for day in timeline.days]
    fig.add_trace(
        go.Scatter(
            name="Cumulative adoption rate",
            x=[low + (high - low) / 2 for low, high in spans],
            y=rates,
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
            annotation_position="top right",
            annotation_font={"color": theme.GREEN},
            secondary_y=False,
        )
    low_x = min([midnights[0], *(at for at, _ in groups)])
    high_x = max([midnights[-1] + _DAY, *(at + _DAY / 2 for at, _ in groups)])
    rows = _tag_rows([at for at, _ in groups], high_x - low_x)
    for number, ((at, _), row) in enumerate(zip(groups, rows, strict=True), start=1):
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
        fig.add_annotation(
            text=f"<b>{number}</b>",
            name="marker-tag",
            x=at,
            xref="x",
            y=1,
            yref="y domain",
            yanchor="top",
            yshift=-_TAG_ROW_PX * row,
            showarrow=False,
            font={"size": 11, "color": theme.MUTED},
            bgcolor="white",
            bordercolor=theme.MUTED,
            borderwidth=1,
            borderpad=2,
        )
    if groups:
        fig.add_annotation(
            text="<br>".join(key),
            name="marker-key",
            xref="paper",
            yref="paper",
            x=0,
            y=0,
            xanchor="left",
            yanchor="top",
            # From under the left axis's title rather than the plot's edge: a phone's width.
            xshift=-_KEY_INDENT_PX,
            yshift=-_KEY_OFFSET_PX,
            align="left",
            showarrow=False,
            font={"size": 11, "color": theme.MUTED},
        )
    # Headroom above the data for the marker tags, in both axes' units, estimated from the
    # plot's height in px (the figure is responsive in width only).
    plot_px = height - _TIMELINE_TOP_PX - _TIMELINE_MARGIN["b"]
    tag_px = (max(rows) + 1) * _TAG_ROW_PX + 6 if groups else 0
    room = 1 - min(0.45, tag_px / plot_px)
    top_rate = max([r for r in rates if r is not None] + [timeline.target or 0])
    peak = max(max(day.newly_exposed, day.new_adopters) for day in timeline.days)
    step = _count_step(math.ceil(peak / room))
    fig.update_layout(
        barmode="overlay",
        hovermode="x unified",
        margin={"t": _TIMELINE_MARGIN["t"], "b": _TIMELINE_MARGIN["b"] + key_height},
        # The title pushes the plot down and the legend hangs from under it, so a legend
        # that wraps on a narrow screen grows into the margin, never over the title.
        title=_TITLE_PUSHES_PLOT,
        legend={"yref": "paper", "y": 1.04, "yanchor": "bottom"},
    )
    fig.update_xaxes(range=[low_x, high_x], type="date", hoverformat="%Y-%m-%d")
    fig.update_yaxes(
        title_text="Cumulative adoption",
        tickformat=".1~%",
        range=[0, (top_rate or 0.1) / room],
        secondary_y=False,
    )
    fig.update_yaxes(
        title_text="Users per day",
        tickformat=",d",
        tickmode="linear",
        tick0=0,
        dtick=step,
        range=[0, max(step * math.ceil(peak / room / step), step)],
        showgrid=False,
        secondary_y=True,
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
            # Short enough that the two stay apart on a phone's narrow chart.
            subplot_titles=("Reach", "Tried after exposure"),
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
            # Dark text from the bar's base, unconstrained: it reads on the light bar and on
            # the white past a short bar's end alike, instead of being clipped or shrunk.
            textposition="inside",
            insidetextanchor="start",
            constraintext="none",
            textangle=0,
            textfont={"color": theme.INK},
            cliponaxis=False,
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
    fig.update_xaxes(title={"text": "of active users", "font": {"size": 12}}, row=1, col=1)
    fig.update_xaxes(title={"text": "with 95% interval", "font": {"size": 12}}, row=1, col=2)
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


def _value_labels(fig: go.Figure, xs: Sequence[Any], rates: Sequence[Rate]) -> None:
    """Each rate's value written just above the top of its interval's whisker (or of its bar
    when it has no interval), so the error bar never crosses the label; a 0% rate gets its
    label too, since its bar is invisible. A rate over n = 0 gets none."""
    for x, rate in zip(xs, rates, strict=True):
        if rate.value is None:
            continue
        high = rate.interval.high if rate.interval is not None else rate.value
        fig.add_annotation(
            text=theme.fmt_percent(rate.value),
            name="value-label",
            x=x,
            y=high,
            xref="x",
            yref="y",
            yanchor="bottom",
            yshift=2,
            showarrow=False,
            font={"size": 12, "color": theme.INK},
        )


def retention_chart(
    weeks: Sequence[RetentionWeek],
    *,
    target: float | None = None,
    target_week: int | None = None,
    title: str = "Retention",
) -> go.Figure:
    """Week-n retention of adopters (n = 1, 2, ...) with 95% intervals, on a fixed 0-100%
    axis so an empty or small week is never blown up; only adopters whose week n is over
    are counted, so later weeks have smaller n, and a week nobody has finished yet says so
    in its slot. A KPI's `target` is drawn over its own `target_week` only (a week-2 target
    says nothing about week 4), or across all weeks when no week is given."""
    fig = _figure(title, height=360)
    fig.update_yaxes(tickformat=".0%", range=[0, 1], fixedrange=True)
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
                _rate_hover(f"Week {week.week}", "Retained", week.rate, "adopters whose week is over")
                for week in weeks
            ],
            hoverinfo="text",
        )
    )
    _value_labels(fig, [week.week for week in weeks], rates)
    for week in weeks:
        if week.rate.n == 0:
            fig.add_annotation(
                text=f"not yet<br>measurable:<br>no adopter's<br>week {week.week} is over",
                name="not-measurable",
                x=week.week,
                y=0,
                xref="x",
                yref="y",
                yanchor="bottom",
                yshift=4,
                showarrow=False,
                font={"size": 11, "color": theme.MUTED},
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
    if all(rate.n == 0 for rate in rates):
        _note(fig, "No adopter has been around for a full week yet")
    return fig


def conversion_comparison_chart(cmp: ConversionComparison, *, title: str = "Conversion rate") -> go.Figure:
    """Adopters' conversion beside active non-adopters', each with its 95% interval and its
    value written above the interval's top, and the difference with its Newcombe interval in
    the title. The report's caution (`cmp.note`) is the page's to show, once, as text."""
    fig = _figure(title, height=380)
    if cmp.difference is not None:
        # A subtitle of two short lines: one line of both would not fit a phone's chart.
        fig.update_layout(
            title={
                "subtitle": {
                    "text": f"Difference {theme.fmt_points(cmp.difference)}<br>"
                    f"95% interval {theme.fmt_points_interval(cmp.interval)}"
                },
                **_TITLE_PUSHES_PLOT,
            }
        )
    names = ["Adopters", "Active non-adopters"]
    rates = [cmp.adopters, cmp.non_adopters]
    fig.add_trace(
        go.Bar(
            name="Conversion rate",
            x=names,
            y=[rate.value for rate in rates],
            error_y=_error_bars(rates),
            marker={"color": [theme.BLUE, theme.GREY]},
            hovertext=[
                _rate_hover("Adopters", "Converted", cmp.adopters, "adopters"),
                _rate_hover("Active non-adopters", "Converted", cmp.non_adopters, "non-adopters"),
            ],
            hoverinfo="text",
        )
    )
    _value_labels(fig, names, rates)
    # Room above the highest whisker for its label.
    highs = [rate.interval.high if rate.interval is not None else rate.value or 0 for rate in rates]
    fig.update_yaxes(tickformat=".0%", range=[0, max(max(highs) * 1.15, 0.01)])
    if cmp.adopters.n == 0 and cmp.non_adopters.n == 0:
        _note(fig, "No active users yet")
    elif cmp.adopters.n == 0:
        _note(fig, "No adopters yet")
    elif cmp.non_adopters.n == 0:
        _note(fig, "No active non-adopters to compare with")
    return fig


def prepare_rendering() -> None:
    """Draws and serialises one tiny figure, so plotly's lazy imports (pandas, numpy, its
    validators) happen once, in one thread, before pages are served: two request threads
    importing pandas for the first time at once can leave it half-initialised."""
    go.Figure(go.Bar(x=[0], y=[0], error_y={"type": "data", "array": [0]})).to_html(
        full_html=False, include_plotlyjs=False
    )
