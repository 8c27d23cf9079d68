"""Decisions on record: what a review decided for a launch, and the evidence it was decided on,
taken from the launch report of that moment (the verdict, each KPI's value, interval and
verdict, and as_of), so a decision stays traceable to its numbers after they move on."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from pipelines.report_models import Interval, KpiVerdict, LaunchReport, LaunchVerdict, UtcTime

DecisionKind = Literal["keep", "iterate", "double-down", "roll-back", "sunset"]
DECISIONS: tuple[DecisionKind, ...] = get_args(DecisionKind)


class KpiEvidence(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    metric: str
    comparator: Literal[">=", "<="]
    target: float
    value: float | None
    interval: Interval | None
    n: int
    verdict: KpiVerdict
    provisional: bool


class Evidence(BaseModel):
    """The report as it stood when the decision was made."""

    model_config = ConfigDict(frozen=True)

    verdict: LaunchVerdict
    provisional: bool
    as_of: UtcTime
    kpis: list[KpiEvidence]


def evidence_of(report: LaunchReport) -> Evidence:
    return Evidence(
        verdict=report.verdict,
        provisional=report.provisional,
        as_of=report.window.as_of,
        kpis=[
            KpiEvidence(
                id=kpi.id,
                metric=kpi.metric,
                comparator=kpi.comparator,
                target=kpi.target,
                value=kpi.value,
                interval=kpi.interval,
                n=kpi.n,
                verdict=kpi.verdict,
                provisional=kpi.provisional,
            )
            for kpi in report.kpis
        ],
    )


class Decision(BaseModel):
    """A recorded decision; `superseded_by` is the id of the later decision that replaced it."""

    model_config = ConfigDict(frozen=True)

    launch_key: str
    decision_id: int
    decision: DecisionKind
    reason: str
    decided_by: str
    follow_up: str | None
    decided_at: UtcTime
    evidence: Evidence
    superseded_by: int | None = None

    @property
    def current(self) -> bool:
        return self.superseded_by is None


def with_supersession(decisions: list[Decision]) -> list[Decision]:
    """A launch's decisions, oldest first, each marked with the one that superseded it."""
    ordered = sorted(decisions, key=lambda d: d.decision_id)
    return [
        d.model_copy(update={"superseded_by": ordered[i + 1].decision_id if i + 1 < len(ordered) else None})
        for i, d in enumerate(ordered)
    ]


def decided_at_utc(at: datetime) -> datetime:
    """Decisions are recorded to the second."""
    return at.replace(microsecond=0)
