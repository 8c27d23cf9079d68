"""The portfolio page: every launch on one table, with its owner, the day of its window, its KPI
verdicts, the launch verdict and what changed since a week earlier. A pure function of the rows
the app gathers; templates/portfolio.html lays them out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from dashboards import theme
from dashboards.layout import Freshness, kpi_target, plural, render_page
from dashboards.notes import Attention
from dashboards.review import kpi_moves
from pipelines.report_models import KpiResult, LaunchReport

__all__ = ["PortfolioRow", "portfolio_page"]


class PortfolioRow(BaseModel):
    """One launch on the portfolio: its report now and as of one week earlier (None when
    there was none yet, e.g. launched this week)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report: LaunchReport
    previous: LaunchReport | None = None
    days_since_launch: int
    scorecard_url: str


@dataclass(frozen=True)
class WindowDay:
    """Which day of its window a launch is on: "13 of 28" while measuring; once the window
    has closed, "28 of 28" and how long ago it closed, so no day count runs past the window."""

    day: int
    of: int
    closed: str | None = None


def _window_day(row: PortfolioRow) -> WindowDay:
    window = row.report.window
    window_days = round((window.full_end - window.start).total_seconds() / 86400)
    if row.report.provisional or row.days_since_launch < window_days:
        return WindowDay(row.days_since_launch, window_days)
    since = row.days_since_launch - window_days
    return WindowDay(window_days, window_days, "today" if since == 0 else f"{plural(since, 'day')} ago")


def _changes(row: PortfolioRow) -> list[str]:
    """What changed since a week earlier, a line each."""
    current, previous = row.report, row.previous
    if previous is None:
        return ["new this week"]
    lines: list[str] = []
    if previous.verdict != current.verdict:
        lines.append(
            f"verdict {theme.verdict_label(previous.verdict)} → {theme.verdict_label(current.verdict)}"
        )
    lines.extend(move.text for move in kpi_moves(current, previous))
    if not current.kpis:
        before = theme.fmt_percent(previous.metrics.adoption_rate.value)
        after = theme.fmt_percent(current.metrics.adoption_rate.value)
        if before != after:
            lines.append(f"adoption {before} → {after}")
    return lines or ["no change"]


def _kpi_tooltip(kpi: KpiResult) -> str:
    """A KPI badge's tooltip: its value against its target, and whether the verdict is early."""
    early = f" ({theme.EARLY_VERDICT})" if kpi.interval_kind == "always_valid" else ""
    return (
        f"{theme.metric_label(kpi.metric)} {theme.fmt_metric(kpi.metric, kpi.value)}"
        f" vs target {kpi_target(kpi)}{early}"
    )


def portfolio_page(
    rows: Sequence[PortfolioRow],
    *,
    generated_at: datetime,
    freshness: Freshness | None = None,
    can_edit: bool = False,
    attention: Attention | None = None,
) -> str:
    """Every launch on one table: owner, day of its window, KPI verdicts, the launch verdict
    (marked provisional while its window is open) and what changed since a week earlier;
    `freshness` says when the numbers were computed."""
    return render_page(
        "portfolio.html",
        current="portfolio",
        rows=rows,
        launches=plural(len(rows), "launch", "launches"),
        generated_at=generated_at,
        freshness=freshness,
        window_day=_window_day,
        changes=_changes,
        kpi_tooltip=_kpi_tooltip,
        can_edit=can_edit,
        attention=attention,
    )
