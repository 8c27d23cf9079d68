"""The adoption timeline of a launch: cumulative adoption per UTC day against the target, over
bars of new adopters and newly exposed users, with the launch and each announcement marked at
their exact instants. Its own module for its geometry (bars placed inside each UTC day, marker
tags in rows, the key under the axis), which nothing else draws with.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from typing import Final

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards import theme
from dashboards.figures import TITLE_PUSHES_PLOT, add_note, new_figure, plotly_label, plotly_text
from pipelines.report_models import Marker, Timeline

__all__ = ["adoption_timeline_chart"]

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



def _utc_naive(at: datetime) -> datetime:
    # plotly.js ignores or misreads UTC offsets in date strings; the axis is in UTC days.
    return theme.as_utc(at).replace(tzinfo=None)


def _ms(span: timedelta) -> int:
    """A duration in plotly's date-axis units (milliseconds)."""
    return round(span.total_seconds() * 1000)


def _marker_time(at: datetime) -> str:
    """A marker's instant, short enough for a phone: "Sep 16 09:00 UTC"."""
    return f"{at:%b} {at.day} {at:%H:%M} UTC"


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
        # The marker's number in bold: parts[0] starts with it.
        lines.append(plotly_label("<b>{}</b>{}", number, parts[0].removeprefix(str(number))))
        lines.extend(_KEY_HANG + plotly_text(part) for part in parts[1:])
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
    fig = new_figure(title, height=height + key_height, fig=make_subplots(specs=[[{"secondary_y": True}]]))
    if not timeline.days:
        return add_note(fig, "No days in the window yet", hide_axes=True)
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
            plotly_label(
                "<b>{}</b><br>Cumulative adoption {}<br>{} active so far<br>"
                "New adopters {} · newly exposed {} · active that day {}",
                theme.fmt_date(day.day),
                theme.fmt_percent(rate),
                so_far,
                theme.fmt_count(day.new_adopters),
                theme.fmt_count(day.newly_exposed),
                theme.fmt_count(day.active),
            )
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
            text=plotly_label("<b>{}</b>", number),
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
        title=TITLE_PUSHES_PLOT,
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
        add_note(fig, "No adopters yet")
    return fig
