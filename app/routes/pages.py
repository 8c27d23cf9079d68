"""The dashboard pages (read key, from a login form or HTTP Basic, remembered as a signed,
expiring sign-in session: see app/sessions.py) and the stylesheet, plotly.js and icon they
load, served by the service itself so pages work offline."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.compare import MAX_COMPARED
from app.deps import StorageDep, session_key
from app.errors import Forbidden, Unauthorized
from app.http import key_from_headers
from app.ingest import now_utc
from app.page_data import (
    compare_data,
    compare_url,
    current_week,
    portfolio_rows,
    review_sections,
    scorecard_context,
    scorecard_url,
)
from app.reports import default_as_of
from app.routes.reports import AsOf, ReportsDep
from app.sessions import Sessions
from app.storage import READ_SCOPES, ApiKey
from dashboards.compare import compare_page
from dashboards.figures import SegmentMetric
from dashboards.layout import FAVICON_SVG, plotly_js, stylesheet
from dashboards.login import login_page
from dashboards.portfolio import portfolio_page
from dashboards.review import review_page
from dashboards.scorecard import scorecard_page

router = APIRouter(tags=["pages"], include_in_schema=False)


def _page_auth(request: Request, storage: StorageDep) -> tuple[bool, ApiKey | None]:
    """(may see pages, key from HTTP Basic to remember as a session)."""
    try:
        secret = key_from_headers(request)
        if secret:
            return True, storage.authenticate(secret, READ_SCOPES)
        session_key(request, storage, READ_SCOPES)
    except (Unauthorized, Forbidden):
        return False, None
    return True, None


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _html(body: str, request: Request, header_key: ApiKey | None) -> HTMLResponse:
    response = HTMLResponse(body)
    if header_key is not None:
        # HTTP Basic worked: sign in, so the browser need not send the key on every link.
        _sessions(request).sign_in(response, request, header_key)
    return response


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def _static(body: str, media_type: str) -> Response:
    """A file the pages load, the same for everyone: public, and cached for a day."""
    return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/favicon.ico")
def favicon() -> Response:
    """The pages' icon, for browsers showing a response that declares none (JSON, say)."""
    return _static(FAVICON_SVG, "image/svg+xml")


@router.get("/static/plotly.min.js")
def plotly_bundle() -> Response:
    return _static(plotly_js(), "text/javascript")


@router.get("/static/landed.css")
def pages_stylesheet() -> Response:
    """The pages' stylesheet. Pages link it with a version in the query string, so a day in a
    browser's cache never pairs a new page with old rules."""
    return _static(stylesheet(), "text/css")


@router.get("/login", response_class=HTMLResponse)
def login_form(next: str | None = None) -> HTMLResponse:
    return HTMLResponse(login_page(None, next_url=next))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, storage: StorageDep) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    secret = (form.get("key") or [""])[0].strip()
    target = (form.get("next") or ["/"])[0]
    if not target.startswith("/") or target.startswith("//"):
        target = "/"  # only paths on this service: no open redirect
    try:
        key = storage.authenticate(secret, READ_SCOPES)
    except (Unauthorized, Forbidden) as error:
        return HTMLResponse(login_page(error.message, next_url=target), status_code=401)
    response = RedirectResponse(target, status_code=303)
    _sessions(request).sign_in(response, request, key)
    return response


@router.get("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    Sessions.sign_out(response)
    return response


@router.get("/", response_class=HTMLResponse)
def portfolio(request: Request, storage: StorageDep, reports: ReportsDep) -> Response:
    allowed, header_key = _page_auth(request, storage)
    if not allowed:
        return _login_redirect(request)
    now = now_utc()
    rows = portfolio_rows(storage, reports, as_of=default_as_of(now))
    return _html(portfolio_page(rows, generated_at=now), request, header_key)


@router.get("/launches/{launch_key}", response_class=HTMLResponse)
def scorecard(
    launch_key: str,
    request: Request,
    storage: StorageDep,
    reports: ReportsDep,
    segment: Annotated[str | None, Query(max_length=200)] = None,
    metric: SegmentMetric | None = None,
    as_of: AsOf | None = None,
) -> Response:
    allowed, header_key = _page_auth(request, storage)
    if not allowed:
        return _login_redirect(request)
    ctx = scorecard_context(
        storage,
        reports,
        launch_key,
        as_of=as_of or default_as_of(now_utc()),
        segment=segment,
        segment_metric=metric,
    )
    return _html(scorecard_page(ctx), request, header_key)


@router.get("/compare", response_class=HTMLResponse)
def compare(
    request: Request,
    storage: StorageDep,
    reports: ReportsDep,
    launch: Annotated[list[str], Query(max_length=MAX_COMPARED)] = [],  # noqa: B006
) -> Response:
    """Launches side by side (`?launch=a&launch=b`, as the portfolio's Compare form sends them)."""
    allowed, header_key = _page_auth(request, storage)
    if not allowed:
        return _login_redirect(request)
    now = now_utc()
    keys = list(dict.fromkeys(launch))
    result = compare_data(storage, reports, keys, as_of=default_as_of(now))
    page = compare_page(
        result,
        scorecard_urls={key: scorecard_url(key) for key in keys},
        json_url=compare_url(keys, api=True),
        generated_at=now,
    )
    return _html(page, request, header_key)


@router.get("/review", response_class=HTMLResponse)
def review(
    request: Request,
    storage: StorageDep,
    reports: ReportsDep,
    week: Annotated[
        str | None, Query(pattern=r"^\d{4}-W\d{2}$", description="ISO week, e.g. 2026-W47")
    ] = None,
) -> Response:
    allowed, header_key = _page_auth(request, storage)
    if not allowed:
        return _login_redirect(request)
    now = now_utc()
    week = week or current_week(now)
    sections = review_sections(storage, reports, week=week, now=now)
    return _html(review_page(week, sections, generated_at=now), request, header_key)
