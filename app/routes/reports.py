"""The launch report and readiness over HTTP (read key)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.deps import ReadKeyDep
from app.ingest import now_utc
from app.reports import ReportService, default_as_of
from pipelines.readiness import Readiness
from pipelines.report_models import LaunchReport

router = APIRouter(prefix="/api/launches", tags=["reports"])


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
    as_of: Annotated[
        datetime | None,
        Query(
            description="Report as of this time (ISO 8601; default now). "
            "Earlier than the window's end: provisional."
        ),
    ] = None,
    segment: Annotated[
        str | None, Query(max_length=200, description="Break each rate down by this trait, e.g. plan")
    ] = None,
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
    as_of: Annotated[datetime | None, Query(description="Check as of this time (default now)")] = None,
) -> Readiness:
    return reports.readiness(launch_key, as_of=as_of or now_utc())
