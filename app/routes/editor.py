"""The launch editor in the browser (admin scope): its pages, the posts that save a launch with
the API's own rules (validation, the lock at launch, amendments with a reason, the history),
and the small JSON helpers the page calls while a product owner types (suggestions of what
Landed has seen; a draft's matcher counts, KPI readiness and target hints).

A post from the page is authorised by the admin sign-in session together with a CSRF token the
page carries: an itsdangerous signature, with the service's own secret, of a digest of that
session's cookie, so a token is worth nothing with another session and a cookie nothing without
its token. A caller sending an admin key itself (HTTP Basic or Bearer) needs no token, as with
the API: a cross-site form can neither set that header nor post JSON.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from app import launches
from app.compare import hints_for_spec
from app.csrf import admin_key_for_form, csrf_tokens
from app.deps import ReadKeyDep, StorageDep, session_key
from app.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from app.http import error_responses, key_from_headers
from app.ingest import now_utc
from app.reports import default_as_of
from app.routes.reports import ReportsDep
from app.sessions import SESSION_COOKIE, Sessions
from app.storage import READ_SCOPES, ApiKey, Storage
from dashboards.editor import (
    EditorForm,
    EditorPage,
    FieldError,
    editor_page,
    form_from_spec,
    kpis_changed,
    spec_from_form,
)
from dashboards.login import login_page
from pipelines.launch import AmendmentNote, LaunchFile, LaunchSpec

router = APIRouter(tags=["editor"], responses=error_responses(400, 401, 403, 404, 409, 422, 503))

CSRF_HEADER = "x-csrf-token"
SUGGESTION_DAYS = 30


# ----------------------------------------------------------------------------- CSRF


def editor_key(request: Request, storage: StorageDep) -> ApiKey:
    """The admin key a post from the editor acts for: one the caller sends (as the API takes it),
    or the admin sign-in session together with its CSRF token. The cookie alone counts for
    nothing (401), as on every write; a wrong or stale token is 403 `csrf_failed`."""
    return admin_key_for_form(
        request,
        storage,
        request.headers.get(CSRF_HEADER),
        doing="changing launches",
        again="reload the editor and save again",
    )


EditorKeyDep = Annotated[ApiKey, Depends(editor_key)]


# ----------------------------------------------------------------------------- pages


def _page_access(request: Request, storage: Storage) -> tuple[ApiKey | None, Response | None]:
    """(the admin key to show the editor to, or the response instead: the sign-in form, or 403
    for a read-only session). A key sent as HTTP Basic also signs in, as on every page."""
    secret = key_from_headers(request)
    try:
        key = (
            storage.authenticate(secret, READ_SCOPES)
            if secret
            else session_key(request, storage, READ_SCOPES)
        )
    except (Unauthorized, Forbidden):
        return None, RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    if key.scope != "admin":
        message = "Defining and changing launches needs an admin key: sign in with one."
        return None, HTMLResponse(login_page(message, next_url=request.url.path), status_code=403)
    return key, None


def _render(request: Request, storage: Storage, key: ApiKey, page: EditorPage) -> HTMLResponse:
    response = HTMLResponse(editor_page(page))
    if key_from_headers(request):
        sessions: Sessions = request.app.state.sessions
        sessions.sign_in(response, request, key)
    return response


def _csrf_token(request: Request, storage: Storage) -> str:
    return csrf_tokens(request, storage).token(request.cookies.get(SESSION_COOKIE, ""))


@router.get("/launches/new", response_class=HTMLResponse, include_in_schema=False)
def new_launch_page(request: Request, storage: StorageDep) -> Response:
    key, refused = _page_access(request, storage)
    if key is None:
        assert refused is not None
        return refused
    page = EditorPage(mode="new", form=EditorForm(), csrf_token=_csrf_token(request, storage))
    return _render(request, storage, key, page)


@router.get("/launches/{launch_key}/edit", response_class=HTMLResponse, include_in_schema=False)
def edit_launch_page(launch_key: str, request: Request, storage: StorageDep) -> Response:
    key, refused = _page_access(request, storage)
    if key is None:
        assert refused is not None
        return refused
    state = launches.load_launch(storage, launch_key)
    page = EditorPage(
        mode="edit",
        form=form_from_spec(state.spec, version=state.latest.version),
        csrf_token=_csrf_token(request, storage),
        live=state.is_locked(now_utc()),
        managed_from_git=state.managed_from_git,
        spec_yaml=launches.spec_yaml(state),
        launched_at=state.launched_at,
        kpi_ids=[record.id for record in state.kpi_records],
    )
    return _render(request, storage, key, page)


# ----------------------------------------------------------------------------- saving


def _invalid(errors: list[FieldError]) -> JSONResponse:
    """422 in the API's error shape, with each message for its field in `fields`."""
    body = {
        "code": "invalid_input",
        "message": "the launch is not valid",
        "detail": "; ".join(f"{e.field}: {e.message}" for e in errors),
        "fields": [e.model_dump() for e in errors],
    }
    return JSONResponse(body, status_code=422)


def _launch_file(spec: LaunchSpec, amendment: AmendmentNote | None = None) -> LaunchFile:
    return LaunchFile.model_validate({**spec.model_dump(), "amendment": amendment})


def _saved(state: launches.LaunchState, result: str, *, status: int) -> JSONResponse:
    key = state.latest.spec.key
    return JSONResponse({"key": key, "url": f"/launches/{key}", "result": result}, status_code=status)


def _exists(storage: Storage, key: str) -> bool:
    try:
        launches.load_launch(storage, key)
    except NotFound:
        return False
    return True


@router.post("/launches/new", include_in_schema=False)
def create_launch(form: EditorForm, storage: StorageDep, key: EditorKeyDep) -> JSONResponse:
    """Creates the launch the form describes (201), or says what to change, field by field (422)."""
    spec, errors = spec_from_form(form)
    if spec is not None and _exists(storage, spec.key):
        errors = [
            FieldError(
                field="key", message=f"a launch with key {spec.key!r} exists already; pick another key"
            )
        ]
    if spec is None or errors:
        return _invalid(errors)
    state, result, _ = launches.apply_file(
        storage, _launch_file(spec), by=key.name, now=now_utc(), source="editor"
    )
    return _saved(state, result, status=201)


@router.post("/launches/{launch_key}/edit", include_in_schema=False)
def save_launch(launch_key: str, form: EditorForm, storage: StorageDep, key: EditorKeyDep) -> JSONResponse:
    """Saves the form over the launch: before launch a new version; after it, the descriptive
    fields, and KPI changes as amendments with the form's reason. A launch managed from git
    is refused (409 `managed_from_git`), as is a form opened before another change (409)."""
    now = now_utc()
    state = launches.load_launch(storage, launch_key)
    if state.managed_from_git:
        raise Conflict(
            f"launch {launch_key!r} is managed from git",
            "change its spec file in the repository and apply it (`landed launch apply`)",
            code="managed_from_git",
        )
    if form.version is not None and form.version != state.latest.version:
        raise Conflict(
            f"launch {launch_key!r} changed since the editor was opened",
            "reload the editor and make the change again",
            code="launch_changed",
        )
    live = state.is_locked(now)
    spec, errors = spec_from_form(form, stored=state.spec, live=live)
    amendment = None
    if spec is not None and live and kpis_changed(spec, state.spec):
        if form.reason.strip():
            amendment = AmendmentNote(reason=form.reason.strip())
        else:
            errors.append(
                FieldError(
                    field="reason",
                    message="the launch is live: say why the KPIs change; the reason is kept in the history",
                )
            )
    if spec is None or errors:
        return _invalid(errors)
    try:
        state, result, _ = launches.apply_file(
            storage, _launch_file(spec, amendment), by=key.name, now=now, key=launch_key, source="editor"
        )
    except Conflict as error:
        if error.code != "launch_locked":
            raise
        where = "reason" if "reason" in error.message else "kpis"
        return _invalid([FieldError(field=where, message=f"{error.message} ({error.detail})")])
    return _saved(state, result, status=200)


# ----------------------------------------------------------------------------- helpers while typing


class Suggestion(BaseModel):
    value: str
    count: int | None = None


class Suggestions(BaseModel):
    kind: str
    values: list[Suggestion]


SuggestionKind = Literal["events", "properties", "property_values", "traits", "trait_values"]


def _required(value: str | None, name: str, kind: str) -> str:
    if not value or not value.strip():
        raise InvalidInput(f"{name} is required with kind={kind}", f"field: {name}")
    return value.strip()


def suggestions(
    storage: Storage,
    kind: SuggestionKind,
    *,
    event: str | None,
    prop: str | None,
    trait: str | None,
    now: datetime,
) -> list[Suggestion]:
    """What Landed has seen, most common first: event names of the last 30 days, an event's
    properties and their values, traits and a trait's values."""
    start, end = now - timedelta(days=SUGGESTION_DAYS), now + timedelta(days=1)
    if kind == "events":
        return [Suggestion(value=name) for name in storage.event_names(start, end)]
    if kind == "traits":
        return [Suggestion(value=name) for name in storage.trait_keys()]
    if kind == "trait_values":
        return [
            Suggestion(value=v, count=n) for v, n in storage.trait_values(_required(trait, "trait", kind))
        ]
    rows = storage.event_properties(_required(event, "event", kind), start, end)
    if kind == "property_values":
        wanted = _required(prop, "property", kind)
        return [Suggestion(value=v, count=n) for p, v, n in rows if p == wanted and v is not None]
    counts: dict[str, int] = {}
    for name, _, n in rows:
        counts[name] = counts.get(name, 0) + n
    return [
        Suggestion(value=name, count=n) for name, n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))
    ]


@router.get("/api/editor/suggestions", response_model=Suggestions, summary="What the editor suggests")
def editor_suggestions(
    storage: StorageDep,
    key: ReadKeyDep,
    kind: SuggestionKind,
    event: Annotated[str | None, Query(max_length=500)] = None,
    property: Annotated[str | None, Query(max_length=500)] = None,
    trait: Annotated[str | None, Query(max_length=500)] = None,
) -> Suggestions:
    """`kind=events`, `properties` (of `event`), `property_values` (of `event`'s `property`),
    `traits` or `trait_values` (of `trait`); 400 naming the parameter a kind needs."""
    found = suggestions(storage, kind, event=event, prop=property, trait=trait, now=now_utc())
    return Suggestions(kind=kind, values=found)


class DraftCheck(EditorForm):
    """The editor's form as typed, and whether it is a new launch or an existing one."""

    mode: Literal["new", "edit"] = "new"


class MatcherCheck(BaseModel):
    signal: str
    index: int
    events_7d: int
    users_7d: int
    last_seen_at: str | None
    warning: str | None


class KpiCheck(BaseModel):
    index: int
    kpi_id: str
    message: str
    warning: bool


class HintCheck(BaseModel):
    index: int
    kpi_id: str
    sentence: str


class CheckOut(BaseModel):
    fields: list[FieldError]
    matchers: list[MatcherCheck]
    kpis: list[KpiCheck]
    hints: list[HintCheck]


def _draft_state(spec: LaunchSpec, now: datetime) -> launches.LaunchState:
    # Readiness is cached by launch key and version: a draft gets a negative version made from
    # its content, so drafts never share a stored launch's entry and the same draft reuses its own.
    digest = int(hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:12], 16)
    return launches.LaunchState([launches.Version(-1 - digest, spec, now, "editor")], [])


@router.post("/api/editor/check", response_model=CheckOut, summary="Check a draft launch as the editor types")
def check_draft(draft: DraftCheck, storage: StorageDep, reports: ReportsDep, key: ReadKeyDep) -> CheckOut:
    """The draft's problems field by field (the same as saving it would give), and once it is
    valid: each matcher's events and users in the last 7 days and its last match, whether each
    rate KPI can be judged at the current traffic (before launch), and what past launches reached."""
    now = now_utc()
    form = EditorForm.model_validate(draft.model_dump(exclude={"mode"}))
    stored: launches.LaunchState | None = None
    if draft.mode == "edit":
        try:
            stored = launches.load_launch(storage, form.key)
        except NotFound:
            stored = None
    live = stored is not None and stored.is_locked(now)
    spec, errors = spec_from_form(form, stored=stored.spec if stored else None, live=live)
    if spec is not None and draft.mode == "new" and _exists(storage, spec.key):
        errors = [
            FieldError(
                field="key", message=f"a launch with key {spec.key!r} exists already; pick another key"
            )
        ]
    if spec is None:
        return CheckOut(fields=errors, matchers=[], kpis=[], hints=[])
    readiness = reports.readiness_for(_draft_state(spec, now), as_of=default_as_of(now))
    index = {kpi.id: i for i, kpi in enumerate(spec.kpis)}
    hints = [] if live else hints_for_spec(storage, reports, spec, now=now)
    return CheckOut(
        fields=errors,
        matchers=[
            MatcherCheck(
                signal=m.signal,
                index=m.index,
                events_7d=m.events_7d,
                users_7d=m.users_7d,
                last_seen_at=None if m.last_seen_at is None else m.last_seen_at.isoformat() + "Z",
                warning=m.warning,
            )
            for m in readiness.matchers
        ],
        kpis=[
            KpiCheck(index=index[k.kpi_id], kpi_id=k.kpi_id, message=k.message, warning=k.warning)
            for k in readiness.kpis
        ],
        hints=[
            HintCheck(index=index[h.kpi_id], kpi_id=h.kpi_id, sentence=h.sentence)
            for h in hints
            if h.kpi_id in index and h.sentence
        ],
    )
