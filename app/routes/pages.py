"""The dashboard pages (read key, from a login form or HTTP Basic, remembered as a signed,
expiring sign-in session: see app/sessions.py) and the stylesheet, plotly.js and icon they
load, served by the service itself so pages work offline."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote, urlencode

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
    freshness,
    launch_snapshots,
    parse_week,
    portfolio_attention,
    portfolio_rows,
    refresh_link,
    review_sections,
    scorecard_context,
    scorecard_url,
)
from app.reports import default_as_of
from app.routes.decisions import decision_form
from app.routes.reports import AsOf, ReportsDep
from app.sessions import Sessions
from app.snapshots import Snapshots
from app.storage import ADMIN_SCOPES, READ_SCOPES, ApiKey
from dashboards.compare import compare_page
from dashboards.editor import editor_js
from dashboards.figures import SegmentMetric
from dashboards.layout import FAVICON_SVG, plotly_js, stylesheet
from dashboards.login import login_page
from dashboards.portfolio import portfolio_page
from dashboards.review import review_page
from dashboards.scorecard import scorecard_page

router = APIRouter(tags=["pages"], include_in_schema=False)

# `?refresh=1` on a page: compute its numbers now, then show the page at its own address.
Refresh = Annotated[bool, Query(description="compute the page's numbers now")]


def _snapshots(request: Request) -> Snapshots:
    snapshots: Snapshots = request.app.state.snapshots
    return snapshots


def _without_refresh(request: Request) -> RedirectResponse:
    """After a refresh, the page at its address without `refresh`, so reloading it does not
    ask again."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "refresh"])
    return RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)


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


@router.get("/static/editor.js")
def editor_script() -> Response:
    """The launch editor's script (dashboards/static/editor.js), served like the stylesheet."""
    return _static(editor_js(), "text/javascript")


def _can_edit(request: Request, storage: StorageDep, header_key: ApiKey | None) -> bool:
    """Whether the viewer may define and change launches: shows the editor's links."""
    if header_key is not None:
        return header_key.scope == "admin"
    try:
        return key_from_headers(request) is None and session_key(request, storage, ADMIN_SCOPES) is not None
    except (Unauthorized, Forbidden):
        return False


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
def portfolio(request: Request, storage: StorageDep, refresh: Refresh = False) -> Response:
    allowed, header_key = _page_auth(request, storage)
    if not allowed:
        return _login_redirect(request)
    snapshots = _snapshots(request)
    shown = launch_snapshots(storage, snapshots, refresh=refresh)
    if refresh:
        return _without_refresh(request)
    now = snapshots.now()
    fresh = freshness(shown, now=now, refresh_url=refresh_link("/"))
    return _html(
        portfolio_page(
            portfolio_rows(shown),
            generated_at=now,
            freshness=fresh,
            can_edit=_can_edit(request, storage, header_key),
            attention=portfolio_attention(storage, now=now, states=[s.state for s in shown]),
        ),
        request,
        header_key,
    )


@router.get("/launches/{launch_key}", response_class=HTMLResponse)
def scorecard(
    launch_key: str,
    request: Request,
    storage: StorageDep,
    reports: ReportsDep,
    segment: Annotated[str | None, Query(max_length=200)] = None,
    metric: SegmentMetric | None = None,
    as_of: AsOf | None = None,
    refresh: Refresh = False,
) -> Response:
    """A launch's scorecard: as of now from its results computed ahead, or as of `as_of`."""
    allowed, header_key = _page_auth(request, storage)
    if not allowed:
        return _login_redirect(request)
    ctx = scorecard_context(
        storage,
        reports,
        _snapshots(request),
        launch_key,
        as_of=as_of,
        segment=segment,
        segment_metric=metric,
        refresh=refresh,
    )
    if refresh:
        return _without_refresh(request)
    ctx = ctx.model_copy(update={"can_edit": _can_edit(request, storage, header_key)})
    if ctx.can_edit:
        ctx = ctx.model_copy(update={"decision_form": decision_form(request, storage, launch_key)})
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
    refresh: Refresh = False,
) -> Response:
    """The weekly review; the week under way shows the launches' results computed ahead."""
    allowed, header_key = _page_auth(request, storage)
    if not allowed:
        return _login_redirect(request)
    snapshots = _snapshots(request)
    now = snapshots.now()
    week = week or current_week(now)
    under_way = parse_week(week)[1] > now
    shown = launch_snapshots(storage, snapshots, refresh=refresh) if under_way else []
    if refresh:
        return _without_refresh(request)
    sections = review_sections(storage, reports, week=week, now=now, snapshots=shown)
    shown_keys = {section.current.launch_key for section in sections}
    fresh = freshness(
        [s for s in shown if s.key in shown_keys],
        now=now,
        refresh_url=refresh_link("/review", {"week": week}),
    )
    return _html(review_page(week, sections, generated_at=now, freshness=fresh), request, header_key)
