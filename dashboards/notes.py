"""What the pages show after the verdict: decisions on record (with the evidence they were
made on, in one line such as "Decided 2026-11-16: iterate, make the export button visible
(adoption 2.1%, missed)"), alerts raised between meetings, sends that failed, and launches
whose window closed without a decision. Plain models the app fills; the pages lay them out."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dashboards import theme

__all__ = [
    "ALERT_TITLES",
    "DECISION_CHOICES",
    "AlertNote",
    "Attention",
    "DecisionForm",
    "DecisionNote",
    "DeliveryNote",
    "KpiNote",
    "UndecidedNote",
    "decision_line",
]

DECISION_CHOICES = ("keep", "iterate", "double-down", "roll-back", "sunset")
ALERT_TITLES = {
    "silent_signal": "Nobody can notice it",
    "verdict_changed": "A verdict changed",
    "off_path": "Off the path",
}


class _Note(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KpiNote(_Note):
    id: str
    metric: str
    value: float | None
    verdict: str


class DecisionNote(_Note):
    """A decision and the evidence it was made on."""

    launch_key: str
    decision_id: int
    decision: str
    reason: str
    decided_by: str
    follow_up: str | None = None
    decided_at: datetime
    verdict: str
    as_of: datetime
    kpis: list[KpiNote] = Field(default_factory=list)
    superseded_by: int | None = None


def evidence_text(note: DecisionNote) -> str:
    """The evidence in brief: "adoption 2.1%, missed" per KPI, else the launch verdict."""
    if not note.kpis:
        return theme.verdict_label(note.verdict).lower()
    return "; ".join(
        f"{kpi.id} {theme.fmt_metric(kpi.metric, kpi.value)}, {theme.verdict_label(kpi.verdict).lower()}"
        for kpi in note.kpis
    )


def decision_line(note: DecisionNote) -> str:
    """ "Decided 2026-11-16: iterate, make the export button visible (adoption 2.1%, missed)"."""
    follow = f"; follow-up {note.follow_up}" if note.follow_up else ""
    return (
        f"Decided {theme.fmt_date(note.decided_at)}: {note.decision}, {note.reason}"
        f" ({evidence_text(note)}){follow}"
    )


class AlertNote(_Note):
    launch_key: str
    kind: str
    message: str
    raised_at: datetime
    cleared_at: datetime | None = None
    cleared_message: str | None = None
    scorecard_url: str

    @property
    def title(self) -> str:
        return ALERT_TITLES.get(self.kind, self.kind)


class DeliveryNote(_Note):
    """A send that failed: what, on which channel, the error, and when it is tried again."""

    subject: str
    channel: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None


class UndecidedNote(_Note):
    launch_key: str
    name: str
    closed_at: datetime
    scorecard_url: str


class Attention(_Note):
    """The portfolio's "needs attention": open alerts, failed sends, closed launches with no
    decision."""

    alerts: list[AlertNote] = Field(default_factory=list)
    failed_deliveries: list[DeliveryNote] = Field(default_factory=list)
    undecided: list[UndecidedNote] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.alerts or self.failed_deliveries or self.undecided)


class DecisionForm(_Note):
    """The scorecard's form for recording a decision (shown to an admin sign-in)."""

    action: str
    csrf_token: str
    choices: tuple[str, ...] = DECISION_CHOICES
    method: Literal["post"] = "post"
