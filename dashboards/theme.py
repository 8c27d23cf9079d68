"""The one look of Landed's dashboards: verdict colours and labels, how numbers, percents,
days and intervals are written, and the plotly template every figure uses. Figures and pages
format through here so that "6.5%" reads the same on a chart, a tile and in meeting notes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Final

import plotly.graph_objects as go

from pipelines.launch import is_rate_metric, retention_week
from pipelines.report_models import Interval, Rate

DASH: Final = "\u2013"
"""What a missing number (a rate over n = 0) is written as: an en dash."""

GREEN: Final = "#1a7f37"
RED: Final = "#cf222e"
AMBER: Final = "#b7791f"
GREY: Final = "#6e7781"
BLUE: Final = "#0969da"
LIGHT_BLUE: Final = "#8fb8ed"
INK: Final = "#1f2328"
MUTED: Final = "#57606a"
GRID: Final = "#e6e8eb"

VERDICT_COLOURS: Final[dict[str, str]] = {
    "met": GREEN,
    "landed": GREEN,
    "missed": RED,
    "inconclusive": AMBER,
    "insufficient_data": GREY,
}
VERDICT_LABELS: Final[dict[str, str]] = {
    "met": "Met",
    "landed": "Landed",
    "missed": "Missed",
    "inconclusive": "Inconclusive",
    "insufficient_data": "Insufficient data",
}
METRIC_LABELS: Final[dict[str, str]] = {
    "exposure_rate": "Exposure rate",
    "adoption_rate": "Adoption rate",
    "notice_to_try_rate": "Notice-to-try rate",
    "repeat_usage_rate": "Repeat usage rate",
    "conversion_rate": "Conversion rate",
    "baseline_conversion_rate": "Baseline conversion rate",
    "median_days_to_adopt": "Median days to adopt",
    "stickiness": "Stickiness",
}
PROVISIONAL: Final = "provisional"
# Beside a provisional KPI judged on its always-valid interval (spec section 7).
EARLY_VERDICT: Final = "early verdict: safe to check weekly"
EARLY_VERDICT_NOTE: Final = (
    "An early verdict is judged on an always-valid 95% interval, which holds at every weekly look "
    "at once, so checking each week does not make a false met or missed more likely. It is wider "
    "than the fixed-horizon interval, which takes over once the evaluation period ends."
)


def verdict_colour(verdict: str) -> str:
    """The colour of a KPI or launch verdict; grey for anything unknown rather than failing."""
    return VERDICT_COLOURS.get(verdict, GREY)


def verdict_label(verdict: str) -> str:
    return VERDICT_LABELS.get(verdict, verdict.replace("_", " ").capitalize())


def metric_label(metric: str) -> str:
    week = retention_week(metric)
    if week is not None:
        return f"Week {week} retention"
    return METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())


def fmt_percent(x: float | None, *, digits: int = 1) -> str:
    """0.065 -> "6.5%"; None (a rate over nobody) -> DASH."""
    if x is None:
        return DASH
    return f"{x * 100:.{digits}f}%"


def fmt_points(x: float | None, *, digits: int = 1) -> str:
    """A difference of two rates in percentage points, signed: 0.032 -> "+3.2 pts"."""
    if x is None:
        return DASH
    return f"{x * 100:+.{digits}f} pts"


def fmt_days(x: float | None, *, digits: int = 1) -> str:
    """3.25 -> "3.2 days"; a day count keeps its decimals so 1.0 and 1.4 stay distinct."""
    if x is None:
        return DASH
    return f"{x:.{digits}f} days"


def fmt_count(n: int | None) -> str:
    """2841 -> "2,841"."""
    if n is None:
        return DASH
    return f"{n:,}"


def fmt_k_of_n(k: int, n: int) -> str:
    """The exact counts behind a rate, "48 of 740"."""
    return f"{fmt_count(k)} of {fmt_count(n)}"


def fmt_interval(interval: Interval | None, fmt: Callable[[float | None], str] = fmt_percent) -> str:
    """A 95% interval as "4.1% to 9.2%" with an en dash between the ends, each end written by
    `fmt`; DASH when there is none."""
    if interval is None:
        return DASH
    return f"{fmt(interval.low)} \u2013 {fmt(interval.high)}"


def fmt_points_interval(interval: Interval | None) -> str:
    """A difference's interval in points, "+1.0 to +5.0 pts" (a dash would read as minus)."""
    if interval is None:
        return DASH
    return f"{interval.low * 100:+.1f} to {interval.high * 100:+.1f} pts"


def fmt_rate(rate: Rate) -> str:
    """A rate with its counts: "6.5% (48 of 740)"."""
    return f"{fmt_percent(rate.value)} ({fmt_k_of_n(rate.k, rate.n)})"


def fmt_metric(metric: str, value: float | None) -> str:
    """A KPI value in its metric's unit: rates as percents, durations as days."""
    return fmt_percent(value) if is_rate_metric(metric) else fmt_days(value)


def fmt_metric_interval(metric: str, interval: Interval | None) -> str:
    return fmt_interval(interval, fmt_percent if is_rate_metric(metric) else fmt_days)


def as_utc(at: datetime) -> datetime:
    """An instant in UTC. The pipelines hand out naive datetimes that already are UTC;
    `astimezone` would read those as the server's local time, so they are only labelled."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def fmt_datetime(at: datetime) -> str:
    """An instant in UTC, minutes precision: "2025-03-04 09:00 UTC"."""
    return as_utc(at).strftime("%Y-%m-%d %H:%M UTC")


def fmt_date(day: date | datetime) -> str:
    if isinstance(day, datetime):
        day = as_utc(day).date()
    return day.isoformat()


FONT_FAMILY: Final = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'

# Built on plotly_white so that anything we do not set still looks deliberate; the font is a
# system stack because pages must not fetch web fonts (users may be offline).
TEMPLATE: Final = go.layout.Template(
    layout=go.Layout(
        font={"family": FONT_FAMILY, "size": 13, "color": INK},
        title={"font": {"size": 16}, "x": 0, "xanchor": "left", "xref": "paper"},
        colorway=[BLUE, AMBER, GREEN, RED, GREY, LIGHT_BLUE],
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin={"l": 60, "r": 30, "t": 60, "b": 50},
        hoverlabel={"bgcolor": "white", "font": {"family": FONT_FAMILY, "size": 12}},
        xaxis={"gridcolor": GRID, "linecolor": GRID, "zerolinecolor": GRID, "automargin": True},
        yaxis={"gridcolor": GRID, "linecolor": GRID, "zerolinecolor": GRID, "automargin": True},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        bargap=0.35,
    )
)

PLOTLY_CONFIG: Final[dict[str, object]] = {
    # plotly.js 4 shows a "Share chart" button by default that uploads the figure's data to
    # Plotly Cloud; launch numbers are internal and users may be offline, so it must stay off.
    "showSendToCloud": False,
    "displaylogo": False,
    "responsive": True,
}
