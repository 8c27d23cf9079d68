"""The dashboard pages (read key, from a login form or HTTP Basic, remembered as a signed,
expiring sign-in session: see app/sessions.py) and the plotly.js they load, served by the
service itself so pages work offline."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.deps import READ_SCOPES, StorageDep, session_key
from app.errors import Forbidden, Unauthorized
from app.http import key_from_headers
from app.ingest import now_utc
from app.reports import default_as_of
from app.review import current_week, portfolio_rows, review_sections, scorecard_context
from app.routes.reports import AsOf, ReportsDep
from app.sessions import Sessions
from app.storage import ApiKey
from dashboards.figures import SegmentMetric
from dashboards.pages import (
    FAVICON_SVG,
    login_page,
    plotly_js,
    portfolio_page,
    review_page,
    scorecard_page,
)

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


@router.get("/favicon.ico")
def favicon() -> Response:
    """The pages' icon, for browsers showing a response that declares none (JSON, say)."""
    return Response(
        FAVICON_SVG, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/static/plotly.min.js")
def plotly_bundle() -> Response:
    return Response(
        plotly_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


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
