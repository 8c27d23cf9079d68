"""The compare page: any launches side by side, their cumulative adoption and exposure aligned on
day 0 on one chart, each KPI metric at days 7, 14 and 28 in a table with intervals, and their
funnels next to each other. A pure function of the `Comparison` the app computes (the same one
`GET /api/compare` returns); templates/compare.html lays it out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from dashboards import theme
from dashboards.compare_figures import comparison_chart, comparison_funnels_chart, launch_colour
from dashboards.layout import figure_html, plural, render_page
from pipelines.report_models import Comparison, LaunchComparison, MetricAtDay

__all__ = ["COMPARE_FIGURE_IDS", "compare_page"]

COMPARE_FIGURE_IDS: Final[dict[str, str]] = {"curves": "compare-chart", "funnels": "compare-funnels"}
"""The div id of each figure of the compare page, for the browser tests' selectors."""

# What a cell says when a launch has no number at that day, and why.
_NO_VALUE: Final[dict[str, str]] = {
    "not_reached": "not reached yet",
    "beyond_window": "beyond its window",
}


@dataclass(frozen=True)
class Cell:
    value: str
    detail: str


@dataclass(frozen=True)
class MetricTable:
    """One metric at each comparison day, a row per launch."""

    metric: str
    label: str
    rows: list[tuple[LaunchComparison, list[Cell]]]


def _cell(metric: MetricAtDay) -> Cell:
    if metric.status != "measured":
        return Cell(theme.DASH, _NO_VALUE[metric.status])
    interval = theme.fmt_metric_interval(metric.metric, metric.interval)
    detail = f"{interval} · n = {theme.fmt_count(metric.n)}"
    return Cell(theme.fmt_metric(metric.metric, metric.value), detail)


def _tables(result: Comparison) -> list[MetricTable]:
    tables = []
    for metric in result.metrics:
        rows = []
        for launch in result.launches:
            at_day = {m.day: m for m in launch.metrics if m.metric == metric}
            rows.append((launch, [_cell(at_day[day]) for day in result.days]))
        tables.append(MetricTable(metric, theme.metric_label(metric), rows))
    return tables


def compare_page(
    result: Comparison,
    *,
    scorecard_urls: Mapping[str, str],
    json_url: str,
    generated_at: datetime,
) -> str:
    """Launches side by side; `scorecard_urls` links each launch (by key) to its scorecard.
    Without launches the page says how to pick some."""
    figures = (
        {
            "curves": figure_html(comparison_chart(result), COMPARE_FIGURE_IDS["curves"]),
            "funnels": figure_html(comparison_funnels_chart(result), COMPARE_FIGURE_IDS["funnels"]),
        }
        if result.launches
        else {}
    )
    return render_page(
        "compare.html",
        charts=bool(result.launches),
        result=result,
        launches=plural(len(result.launches), "launch", "launches"),
        colours=[launch_colour(index) for index in range(len(result.launches))],
        scorecard_urls=scorecard_urls,
        json_url=json_url,
        figure=figures,
        tables=_tables(result),
        generated_at=generated_at,
    )
