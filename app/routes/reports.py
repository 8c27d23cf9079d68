"""The launch report and readiness over HTTP (read key)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator

from app.deps import ReadKeyDep
from app.http import error_responses
from app.ingest import now_utc
from app.reports import ReportService, default_as_of
from pipelines.launch import in_supported_range
from pipelines.readiness import Readiness
from pipelines.report_models import LaunchReport

router = APIRouter(
    prefix="/api/launches", tags=["reports"], responses=error_responses(400, 401, 403, 404, 422, 503)
)

# Report times are checked like launch times, so date arithmetic never leaves the calendar.
AsOf = Annotated[datetime, AfterValidator(in_supported_range)]
ReportAsOf = Annotated[
    AsOf | None,
    Query(
        description="Report as of this time (ISO 8601; default now). "
        "Earlier than the window's end: provisional."
    ),
]
ReportSegment = Annotated[
    str | None, Query(max_length=200, description="Break each rate down by this trait, e.g. plan")
]


def get_reports(request: Request) -> ReportService:
    reports: ReportService = request.app.state.reports
    return reports


ReportsDep = Annotated[ReportService, Depends(get_reports)]


@router.get(
    "/{launch_key}/report",
    response_model=LaunchReport,
    summary="The launch report: metrics, KPI verdicts, funnel, channels, segments, timeline",
)
def launch_report(
    launch_key: str,
    reports: ReportsDep,
    key: ReadKeyDep,
    as_of: ReportAsOf = None,
    segment: ReportSegment = None,
) -> LaunchReport:
    return reports.report(launch_key, as_of=as_of or default_as_of(now_utc()), segment=segment)


@router.get(
    "/{launch_key}/readiness",
    response_model=Readiness,
    summary="Do the signal matchers match real events? Can the KPIs be judged by the window's end?",
)
def launch_readiness(
    launch_key: str,
    reports: ReportsDep,
    key: ReadKeyDep,
    as_of: Annotated[AsOf | None, Query(description="Check as of this time (default now)")] = None,
) -> Readiness:
    return reports.readiness(launch_key, as_of=as_of or now_utc())
