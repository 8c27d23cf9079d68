"""The weekly review page: each live launch in meeting order (changed verdicts first, then
missed, inconclusive, landed), with how its verdict moved, the KPIs that moved and its new
readiness warnings since a week earlier, and its adoption over time. Also what "moved" means,
for the portfolio's "since last week" column and the review's Markdown. A pure function of the
sections the app gathers; templates/review.html lays them out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import quote

from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from dashboards import theme
from dashboards.layout import Freshness, figure_html, plural, render, render_page, verdict_counts
from dashboards.notes import DecisionNote, decision_line
from dashboards.timeline import adoption_timeline_chart
from pipelines.report_models import LaunchReport

__all__ = [
    "KpiMove",
    "ReviewSection",
    "kpi_moves",
    "review_mail_page",
    "review_order",
    "review_page",
    "verdict_line",
]


class ReviewSection(BaseModel):
    """One live launch in the weekly review: its report and readiness warnings now and a
    week earlier (previous None: the launch is new to the review)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    current: LaunchReport
    previous: LaunchReport | None = None
    warnings: list[str] = Field(default_factory=list)
    previous_warnings: list[str] = Field(default_factory=list)
    scorecard_url: str | None = None
    decisions: list[DecisionNote] = Field(default_factory=list, description="decisions on record by then")

    @property
    def decision(self) -> DecisionNote | None:
        """The decision in force: the latest one."""
        return self.decisions[-1] if self.decisions else None

    @property
    def verdict_changed(self) -> bool:
        """A launch new to the review counts as changed: its first verdict is news."""
        return self.previous is None or self.previous.verdict != self.current.verdict

    @property
    def new_warnings(self) -> list[str]:
        before = set(self.previous_warnings)
        return [warning for warning in self.warnings if warning not in before]


@dataclass(frozen=True)
class KpiMove:
    """A KPI whose shown value or verdict differs from a week earlier."""

    kpi_id: str
    metric: str
    before: str
    after: str
    verdict_before: str
    verdict_after: str

    @property
    def text(self) -> str:
        line = f"{self.kpi_id} {self.before} → {self.after}"
        if self.verdict_before != self.verdict_after:
            line += (
                f", now {theme.verdict_label(self.verdict_after).lower()}"
                f" (was {theme.verdict_label(self.verdict_before).lower()})"
            )
        return line


def kpi_moves(current: LaunchReport, previous: LaunchReport | None) -> list[KpiMove]:
    """KPIs that moved since `previous`, compared as displayed: a change below the shown
    precision is noise to a reader, not news."""
    if previous is None:
        return []
    before = {kpi.id: kpi for kpi in previous.kpis}
    moves: list[KpiMove] = []
    for kpi in current.kpis:
        old = before.get(kpi.id)
        old_text = theme.fmt_metric(kpi.metric, old.value) if old else "not set"
        new_text = theme.fmt_metric(kpi.metric, kpi.value)
        old_verdict = old.verdict if old else kpi.verdict
        if old_text != new_text or old_verdict != kpi.verdict:
            moves.append(KpiMove(kpi.id, kpi.metric, old_text, new_text, old_verdict, kpi.verdict))
    return moves


_SEVERITY: Final[dict[str, int]] = {"missed": 0, "inconclusive": 1, "landed": 2}


def review_order(sections: Iterable[ReviewSection]) -> list[ReviewSection]:
    """As a meeting reads them: changed verdicts first, then missed, inconclusive, landed."""
    return sorted(
        sections,
        key=lambda s: (
            not s.verdict_changed,
            _SEVERITY.get(s.current.verdict, 3),
            s.current.name.casefold(),
        ),
    )


def verdict_line(section: ReviewSection) -> str:
    """How the launch verdict moved this week."""
    now = theme.verdict_label(section.current.verdict)
    if section.previous is None:
        return f"first review: {now}"
    before = theme.verdict_label(section.previous.verdict)
    if section.verdict_changed:
        return f"{before} → {now}"
    return f"unchanged: {now}"


def _adoption_chart(section: ReviewSection, index: int) -> Markup:
    report = section.current
    fig = adoption_timeline_chart(report.timeline, start=report.window.start, height=320)
    return figure_html(fig, f"review-adoption-{index}")


def review_page(
    week: str,
    sections: Sequence[ReviewSection],
    *,
    generated_at: datetime | None = None,
    self_contained: bool = False,
    base_url: str = "",
    freshness: Freshness | None = None,
) -> str:
    """The weekly review of live launches, in meeting order. `self_contained` makes the file to
    send by mail: plotly.js (about 5 MB) and the stylesheet inlined so it opens anywhere,
    offline, without the service, and its nav's links starting with `base_url`."""
    return render_page(
        "review.html",
        current="review",
        charts=True,
        self_contained=self_contained,
        base_url=base_url,
        review_url=f"{base_url}/review?week={quote(week)}" if self_contained else "/review",
        week=week,
        sections=review_order(sections),
        live=plural(len(sections), "live launch", "live launches"),
        generated_at=generated_at,
        freshness=None if self_contained else freshness,
        kpi_moves=kpi_moves,
        verdict_line=verdict_line,
        verdict_counts=verdict_counts,
        adoption_chart=_adoption_chart,
        decision_line=decision_line,
    )


def review_mail_page(
    week: str, sections: Sequence[ReviewSection], *, generated_at: datetime, base_url: str
) -> str:
    """The review as a mail's HTML body: light (no charts, no script, styles inline), in meeting
    order, each launch linked to its scorecard; the full review travels as the attachment."""
    return render(
        "review_mail.html",
        week=week,
        sections=review_order(sections),
        live=plural(len(sections), "live launch", "live launches"),
        generated_at=generated_at,
        review_url=f"{base_url}/review?week={quote(week)}",
        kpi_moves=kpi_moves,
        verdict_line=verdict_line,
        verdict_counts=verdict_counts,
        decision_line=decision_line,
    )
