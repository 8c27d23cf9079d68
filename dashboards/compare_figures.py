"""Plotly figures of a comparison of launches, pure functions of the `Comparison` result: the
cumulative adoption and exposure curves of every launch against days since launch on one chart
(day 0 is each launch's own launch day, so launches of any date line up), and their funnels
side by side as shares of each launch's active users, so launches of different sizes compare.
"""

from __future__ import annotations

from typing import Final

import plotly.graph_objects as go

from dashboards import theme
from dashboards.figures import (
    STEP_LABELS,
    TITLE_PUSHES_PLOT,
    add_note,
    new_figure,
    plotly_label,
    plotly_text,
)
from pipelines.report_models import Comparison, LaunchComparison

__all__ = ["comparison_chart", "comparison_funnels_chart", "launch_colour"]

# The title pushes the plot down and the legend hangs from under it (as on the adoption
# timeline), so a legend that wraps to several rows grows into the margin, never over the title.
_UNDER_THE_TITLE: Final[dict[str, object]] = {
    "title": TITLE_PUSHES_PLOT,
    "legend": {"yref": "paper", "y": 1.02, "yanchor": "bottom"},
    "margin": {"t": 40},
}

# Distinct enough side by side on one chart; launches beyond these cycle through them again.
LAUNCH_COLOURS: Final = (
    theme.BLUE,
    theme.AMBER,
    theme.GREEN,
    theme.RED,
    "#8250df",
    theme.GREY,
    "#1b7c83",
    "#bf3989",
)


def launch_colour(index: int) -> str:
    """The colour of the `index`-th compared launch, the same on every chart of the page."""
    return LAUNCH_COLOURS[index % len(LAUNCH_COLOURS)]


def _curve_hover(launch: LaunchComparison, what: str) -> list[str]:
    rates = [
        p.cumulative_adoption_rate if what == "adoption" else p.cumulative_exposure_rate for p in launch.curve
    ]
    return [
        plotly_label(
            "<b>{}</b><br>Day {} ({})<br>Cumulative {} {}",
            launch.name,
            point.day,
            theme.fmt_date(point.utc_date),
            what,
            theme.fmt_percent(value),
        )
        for point, value in zip(launch.curve, rates, strict=True)
    ]


def comparison_chart(result: Comparison, *, title: str = "Cumulative adoption and exposure") -> go.Figure:
    """Per launch, cumulative adoption (solid) and exposure (dotted, the same colour) by day
    since launch. The x axis starts at day 0, the launch's own UTC day, for every launch."""
    fig = new_figure(title, height=460)
    launches = [launch for launch in result.launches if launch.curve]
    if not launches:
        return add_note(fig, "No launch has a day in its window yet", hide_axes=True)
    for index, launch in enumerate(result.launches):
        if not launch.curve:
            continue  # not launched yet: nothing to draw, but its colour stays its own
        colour = launch_colour(index)
        days = [point.day for point in launch.curve]
        fig.add_trace(
            go.Scatter(
                name=plotly_text(f"{launch.name}: adoption"),
                legendgroup=launch.key,
                x=days,
                y=[point.cumulative_adoption_rate for point in launch.curve],
                mode="lines+markers",
                marker={"size": 5},
                line={"color": colour, "width": 2.5},
                hovertext=_curve_hover(launch, "adoption"),
                hoverinfo="text",
            )
        )
        fig.add_trace(
            go.Scatter(
                name=plotly_text(f"{launch.name}: exposure"),
                legendgroup=launch.key,
                x=days,
                y=[point.cumulative_exposure_rate for point in launch.curve],
                mode="lines",
                line={"color": colour, "width": 1.5, "dash": "dot"},
                hovertext=_curve_hover(launch, "exposure"),
                hoverinfo="text",
            )
        )
    last_day = max(point.day for launch in launches for point in launch.curve)
    fig.update_xaxes(
        title_text="Days since launch",
        range=[0, max(last_day, 1)],
        tick0=0,
        dtick=7 if last_day > 14 else 1,
        zeroline=False,
    )
    fig.update_yaxes(title_text="Share of active users so far", tickformat=".0%", rangemode="tozero")
    fig.update_layout(hovermode="closest", **_UNDER_THE_TITLE)
    return fig


def comparison_funnels_chart(result: Comparison, *, title: str = "Funnels") -> go.Figure:
    """Each launch's funnel steps as shares of its active users, the launches' bars side by
    side per step; hover gives the users behind each share."""
    fig = new_figure(title, height=max(360, 160 + 40 * len(result.launches)))
    if not result.launches:
        return add_note(fig, "No launches to compare", hide_axes=True)
    for index, launch in enumerate(result.launches):
        steps = launch.funnel.steps
        fig.add_trace(
            go.Bar(
                name=plotly_text(launch.name),
                orientation="h",
                y=[STEP_LABELS[step.step] for step in steps],
                x=[step.rate_from_active for step in steps],
                marker={"color": launch_colour(index)},
                hovertext=[
                    plotly_label(
                        "<b>{}</b><br>{}: {} users<br>{} of active",
                        launch.name,
                        STEP_LABELS[step.step],
                        theme.fmt_count(step.users),
                        theme.fmt_percent(step.rate_from_active),
                    )
                    for step in steps
                ],
                hoverinfo="text",
            )
        )
    fig.update_xaxes(title_text="Share of active users", tickformat=".0%", range=[0, 1.02])
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05, **_UNDER_THE_TITLE)
    return fig
