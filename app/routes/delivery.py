"""The weekly review sent by hand, what was sent where, and the alerts raised between meetings.

`POST /api/review/send` is what `landed review --send` calls: it sends the week's review on
each configured channel it was not sent on yet (a failed send is tried again at once).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from app.delivery import Delivery, Outcome
from app.deps import AdminKeyDep, ReadKeyDep, StorageDep
from app.http import error_responses
from app.page_data import parse_week
from pipelines.report_models import UtcTime

router = APIRouter(prefix="/api", tags=["delivery"], responses=error_responses(400, 401, 403, 409, 422, 503))


class ChannelOut(BaseModel):
    channel: str = Field(description="email or webhook")
    status: str = Field(description="sent, failed, or taken (already sent, or being sent elsewhere)")
    attempts: int
    error: str | None
    next_attempt_at: UtcTime | None

    @classmethod
    def of(cls, outcome: Outcome) -> ChannelOut:
        return cls(
            channel=outcome.channel,
            status=outcome.status,
            attempts=outcome.attempts,
            error=outcome.error,
            next_attempt_at=outcome.next_attempt_at,
        )


class SendOut(BaseModel):
    week: str
    channels: list[ChannelOut]


class DeliveryOut(BaseModel):
    subject: str = Field(description="review:<week> or alert:<launch>/<kind>/<subject>/<occurrence>")
    channel: str
    status: str = Field(description="sending, sent or failed (failed without next_attempt_at: given up)")
    attempts: int
    next_attempt_at: UtcTime | None
    sent_at: UtcTime | None
    last_error: str | None
    updated_at: UtcTime


class AlertOut(BaseModel):
    launch_key: str
    kind: str = Field(description="silent_signal, verdict_changed or off_path")
    subject: str = Field(description="what it is about: a signal's matcher (exposed:0), kpi:<id>, launch")
    occurrence: int
    state: str
    message: str
    raised_at: UtcTime
    as_of: UtcTime
    cleared_at: UtcTime | None
    cleared_message: str | None


Week = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-W\d{2}$", description="ISO week, e.g. 2026-W47 (default: this week)"),
]


def _delivery(request: Request) -> Delivery:
    delivery: Delivery = request.app.state.delivery
    return delivery


@router.post("/review/send", response_model=SendOut, summary="Send the weekly review now (once per channel)")
def send_review(request: Request, key: AdminKeyDep, week: Week = None) -> SendOut:
    delivery = _delivery(request)
    chosen = week or delivery.local_week()
    parse_week(chosen)
    return SendOut(
        week=chosen, channels=[ChannelOut.of(o) for o in delivery.send_review(chosen, by_hand=True)]
    )


@router.get("/deliveries", response_model=list[DeliveryOut], summary="What was sent where, newest first")
def list_deliveries(storage: StorageDep, key: AdminKeyDep) -> list[DeliveryOut]:
    return [DeliveryOut.model_validate(d, from_attributes=True) for d in storage.deliveries()]


@router.get("/alerts", response_model=list[AlertOut], summary="Alerts, newest first (open and cleared)")
def list_alerts(
    storage: StorageDep,
    key: ReadKeyDep,
    launch: Annotated[str | None, Query(max_length=200, description="only this launch's")] = None,
) -> list[AlertOut]:
    return [AlertOut.model_validate(a, from_attributes=True) for a in storage.alerts(launch)]
