"""Reports and the weekly review as files (read key): the launch report as Markdown for meeting
notes, the weekly review as Markdown, and the weekly review as one self-contained HTML file to
send by mail, its links absolute (`LANDED_PUBLIC_URL`, else the address the request came to)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from app.deps import ReadKeyDep, SettingsDep, StorageDep
from app.http import json_error_responses
from app.ingest import now_utc
from app.page_data import review_export
from app.reports import default_as_of
from app.routes.reports import AsOf, ReportAsOf, ReportsDep, ReportSegment
from dashboards.markdown import report_markdown

router = APIRouter(tags=["exports"], responses=json_error_responses(400, 401, 403, 422, 503))

Week = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-W\d{2}$", description="ISO week, e.g. 2026-W47 (default: the week of as_of)"),
]
ReviewAsOf = Annotated[
    AsOf | None, Query(description="The review as it stood at this time (ISO 8601; default now)")
]


class MarkdownResponse(PlainTextResponse):
    media_type = "text/markdown"


@router.get(
    "/api/launches/{launch_key}/report.md",
    response_class=MarkdownResponse,
    responses=json_error_responses(404),
    summary="The launch report as Markdown (as `landed report --format md`)",
)
def report_md(
    launch_key: str,
    reports: ReportsDep,
    key: ReadKeyDep,
    as_of: ReportAsOf = None,
    segment: ReportSegment = None,
) -> MarkdownResponse:
    report = reports.report(launch_key, as_of=as_of or default_as_of(now_utc()), segment=segment)
    return MarkdownResponse(report_markdown(report))


@router.get(
    "/api/review.md", response_class=MarkdownResponse, summary="The weekly review as Markdown (meeting notes)"
)
def review_md(
    storage: StorageDep, reports: ReportsDep, key: ReadKeyDep, week: Week = None, as_of: ReviewAsOf = None
) -> MarkdownResponse:
    text = review_export(storage, reports, fmt="md", now=as_of or now_utc(), week=week)
    return MarkdownResponse(text)


@router.get(
    "/api/review.html",
    response_class=HTMLResponse,
    summary="The weekly review as one self-contained HTML file (plotly.js inlined, links absolute)",
)
def review_html(
    request: Request,
    storage: StorageDep,
    settings: SettingsDep,
    reports: ReportsDep,
    key: ReadKeyDep,
    week: Week = None,
    as_of: ReviewAsOf = None,
) -> HTMLResponse:
    base_url = settings.public_url or str(request.base_url).rstrip("/")
    text = review_export(storage, reports, fmt="html", now=as_of or now_utc(), week=week, base_url=base_url)
    return HTMLResponse(text)
