"""Plotly figures of a launch report, one pure function per result model: data first, keyword
options after, a `go.Figure` out. Each trace carries hover text with the exact counts behind
its rates (k of n), interval error bars are the report's own Wilson/Newcombe bounds (never
recomputed here), and every figure draws something readable for an empty report instead of
raising: a window that has not started, no channels, a rate over n = 0.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
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
)

__all__ = [
    "SEGMENT_METRICS",
    "STEP_LABELS",
    "SegmentMetric",
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

# A title at the top of the figure that moves the plot (and a legend above it) down to make
# room for itself, however many lines it and the legend take on a narrow screen.
TITLE_PUSHES_PLOT: Final[dict[str, Any]] = {
    "automargin": True,
    "yref": "container",
    "y": 1,
    "yanchor": "top",
    "pad": {"t": 8},
}


# The helpers below (the ones without a leading underscore) are shared with the adoption
# timeline, dashboards/timeline.py.


def plotly_text(value: object) -> str:
    """Text for plotly: plotly.js reads labels as a small HTML dialect, so a channel called
    `<b>x` would turn bold; escaping makes it show literally."""
    return html.escape(str(value), quote=False)


def plotly_label(template: str, *values: object) -> str:
    """A label in plotly's HTML dialect: `template` holds the markup (`<b>{}</b><br>{} users`)
    and every value filling its `{}` is escaped on the way in, so no label is built by hand
    and none can miss an escape."""
    return template.format(*(plotly_text(value) for value in values))


def new_figure(title: str, *, height: int, fig: Any = None) -> go.Figure:
    """`fig` (or a new figure) in the theme, with its title and height."""
    figure = fig if fig is not None else go.Figure()
    figure.update_layout(template=theme.TEMPLATE, title={"text": title}, height=height)
    return figure


def add_note(fig: go.Figure, message: str, *, hide_axes: bool = False) -> go.Figure:
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
    return plotly_label(
        "<b>{}</b><br>{} {}<br>{} {}<br>95% interval {}",
        heading,
        label,
        theme.fmt_percent(rate.value),
        theme.fmt_k_of_n(rate.k, rate.n),
        denominator,
        theme.fmt_interval(rate.interval),
    )


def _step_hover(step: FunnelStep, users: Mapping[str, int]) -> str:
    lines = [plotly_label("<b>{}</b>", STEP_LABELS[step.step]), f"{theme.fmt_count(step.users)} users"]
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
    fig = new_figure(title, height=380)
    if not funnel.steps:
        return add_note(fig, "No funnel yet: the window has not started", hide_axes=True)
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
        add_note(fig, "No active users in the window yet")
    return fig


def channels_chart(
    channels: Sequence[Channel], *, active: int | None = None, title: str = "Channels"
) -> go.Figure:
    """Per channel: its reach (users exposed through it / active, left) and the rate of those
    who tried the feature after that exposure with its 95% interval (right). Give `active`
    (the report's active count) to show the reach's exact denominator on hover."""
    height = max(300, 120 + 44 * len(channels))
    fig = new_figure(
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
        return add_note(fig, "No exposures by channel yet", hide_axes=True)
    names = [plotly_text(channel.channel) for channel in channels]
    reach_hover = [
        plotly_label(
            "<b>{}</b><br>Reach {}<br>{}",
            channel.channel,
            theme.fmt_percent(channel.reach),
            f"{theme.fmt_k_of_n(channel.exposed, active)} active users exposed here"
            if active is not None
            else f"{theme.fmt_count(channel.exposed)} users exposed here",
        )
        for channel in channels
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
                _rate_hover(channel.channel, "Tried after exposure", rate, "exposed here")
                for channel, rate in zip(channels, tried, strict=True)
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
        add_note(fig, "Nobody was exposed through a channel yet")
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
        plotly_label("{} by {}", label, segments.trait) if segments is not None else f"{label} by segment"
    )
    fig = new_figure(heading, height=max(300, 120 + 40 * len(rows)))
    if segments is None or not rows:
        return add_note(fig, "No segment breakdown for this report", hide_axes=True)
    names = [plotly_text(row.value) for row in rows]
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
                "<br>".join(
                    [
                        _rate_hover(f"{segments.trait} = {row.value}", label, rate, "users"),
                        f"{theme.fmt_count(row.active)} active in segment",
                    ]
                )
                for rate, row in zip(rates, rows, strict=True)
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
        add_note(fig, "No users in these segments yet")
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
    fig = new_figure(title, height=360)
    fig.update_yaxes(tickformat=".0%", range=[0, 1], fixedrange=True)
    if not weeks:
        return add_note(fig, "No adopter has been around for a full week yet", hide_axes=True)
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
                text=plotly_label("not yet<br>measurable:<br>no adopter's<br>week {} is over", week.week),
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
        add_note(fig, "No adopter has been around for a full week yet")
    return fig


def conversion_comparison_chart(cmp: ConversionComparison, *, title: str = "Conversion rate") -> go.Figure:
    """Adopters' conversion beside active non-adopters', each with its 95% interval and its
    value written above the interval's top, and the difference with its Newcombe interval in
    the title. The report's caution (`cmp.note`) is the page's to show, once, as text."""
    fig = new_figure(title, height=380)
    if cmp.difference is not None:
        # A subtitle of two short lines: one line of both would not fit a phone's chart.
        fig.update_layout(
            title={
                "subtitle": {
                    "text": plotly_label(
                        "Difference {}<br>95% interval {}",
                        theme.fmt_points(cmp.difference),
                        theme.fmt_points_interval(cmp.interval),
                    )
                },
                **TITLE_PUSHES_PLOT,
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
        add_note(fig, "No active users yet")
    elif cmp.adopters.n == 0:
        add_note(fig, "No adopters yet")
    elif cmp.non_adopters.n == 0:
        add_note(fig, "No active non-adopters to compare with")
    return fig


def prepare_rendering() -> None:
    """Draws and serialises one tiny figure, so plotly's lazy imports (pandas, numpy, its
    validators) happen once, in one thread, before pages are served: two request threads
    importing pandas for the first time at once can leave it half-initialised."""
    go.Figure(go.Bar(x=[0], y=[0], error_y={"type": "data", "array": [0]})).to_html(
        full_html=False, include_plotlyjs=False
    )
