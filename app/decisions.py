"""Decisions on record: a launch's owner records what a review decided (keep, iterate,
double-down, roll-back, sunset), why, who decided and an optional follow-up launch, and Landed
stores with it the evidence of that moment (`pipelines/decisions.py`: the verdict, each KPI's
value, interval and verdict, and as_of). A decision is never edited; a later one supersedes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from app import launches
from app.errors import Conflict, InvalidInput
from app.storage import DecisionRecord, Storage
from pipelines.decisions import (
    Decision,
    DecisionKind,
    Evidence,
    decided_at_utc,
    evidence_of,
    with_supersession,
)
from pipelines.launch import Slug
from pipelines.report_models import LaunchReport
from pipelines.times import naive_utc

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Who = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"),
]


class DecisionRequest(BaseModel):
    """A decision to record."""

    model_config = ConfigDict(extra="forbid")

    decision: DecisionKind = Field(description="keep, iterate, double-down, roll-back or sunset")
    reason: Reason = Field(description="why, in a sentence the review will show")
    decided_by: Who | None = Field(default=None, description="who decided (default: the key's name)")
    follow_up: Slug | None = Field(default=None, description="the key of a follow-up launch, if any")


def parse_request(data: object) -> DecisionRequest:
    """The request, or InvalidInput naming the first field that is wrong."""
    try:
        return DecisionRequest.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidInput(f"{field}: {first['msg']}", launches.describe(error)) from None


def _decision(record: DecisionRecord) -> Decision:
    return Decision(
        launch_key=record.launch_key,
        decision_id=record.decision_id,
        decision=record.decision,  # type: ignore[arg-type]
        reason=record.reason,
        decided_by=record.decided_by,
        follow_up=record.follow_up,
        decided_at=record.decided_at,
        evidence=Evidence.model_validate_json(record.evidence),
    )


def decisions_of(storage: Storage, launch_key: str | None = None) -> list[Decision]:
    """Decisions oldest first (of one launch, or of all), each marked with what superseded it."""
    by_launch: dict[str, list[Decision]] = {}
    for record in storage.decisions(launch_key):
        by_launch.setdefault(record.launch_key, []).append(_decision(record))
    return [d for key in sorted(by_launch) for d in with_supersession(by_launch[key])]


def latest_decisions(storage: Storage) -> dict[str, Decision]:
    """Each launch's current decision."""
    return {d.launch_key: d for d in decisions_of(storage) if d.current}


def record_decision(
    storage: Storage,
    launch_key: str,
    request: DecisionRequest,
    *,
    report: LaunchReport,
    by: str,
    now: datetime,
) -> Decision:
    """Records the decision with the evidence of `report` (the launch's report as the team sees
    it now); Conflict before launch, NotFound for an unknown launch."""
    state = launches.load_launch(storage, launch_key)
    if now < state.launched_at:
        raise Conflict(
            f"{launch_key} is not live yet",
            "a decision records what a review made of a live launch",
            code="launch_not_live",
        )
    if request.follow_up == launch_key:
        raise InvalidInput("follow_up: a launch cannot be its own follow-up", f"follow_up is {launch_key!r}")
    if report.launch_key != launch_key:
        raise InvalidInput(f"the evidence is of {report.launch_key}, not {launch_key}")
    storage.record_decision(
        launch_key,
        decision=request.decision,
        reason=request.reason,
        decided_by=request.decided_by or by,
        follow_up=request.follow_up,
        decided_at=decided_at_utc(now),
        evidence=orjson.dumps(evidence_of(report).model_dump(mode="json")).decode(),
    )
    return decisions_of(storage, launch_key)[-1]


def undecided_closed(states: Sequence[launches.LaunchState], storage: Storage, *, now: datetime) -> list[str]:
    """Keys of the launches whose window closed without a decision."""
    decided = {d.launch_key for d in decisions_of(storage)}
    return [
        state.spec.key
        for state in states
        if naive_utc(now) >= naive_utc(state.spec.window_end) and state.spec.key not in decided
    ]
