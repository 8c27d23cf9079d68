"""Decisions on record: recorded with an admin key (the API, `landed launch decide`) or from the
scorecard's form (the admin sign-in session with the form's CSRF token, the launch editor's
tokens: app/csrf.py), and read with a read key.

The evidence stored with a decision is the launch's report as the pages show it at that moment
(its snapshot, app/snapshots.py), so the decision matches what the meeting looked at.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from app import launches
from app.csrf import admin_key_for_form, csrf_tokens
from app.decisions import DecisionRequest, decisions_of, parse_request, record_decision
from app.deps import AdminKeyDep, ReadKeyDep, StorageDep
from app.http import error_responses
from app.ingest import now_utc
from app.sessions import SESSION_COOKIE
from app.snapshots import Snapshots
from app.storage import ApiKey, Storage
from dashboards.notes import DecisionForm
from pipelines.decisions import Decision
from pipelines.report_models import LaunchReport

router = APIRouter(tags=["decisions"], responses=error_responses(400, 401, 403, 404, 409, 422, 503))

CSRF_FIELD = "csrf_token"


def _shown_report(request: Request, storage: Storage, launch_key: str) -> LaunchReport:
    """The launch's report as the pages show it now."""
    snapshots: Snapshots = request.app.state.snapshots
    state = launches.load_launch(storage, launch_key)
    return snapshots.get(state, snapshots.default_segment()).report


def _record(
    request: Request, storage: Storage, launch_key: str, body: DecisionRequest, key: ApiKey
) -> Decision:
    report = _shown_report(request, storage, launch_key)
    return record_decision(storage, launch_key, body, report=report, by=key.name, now=now_utc())


@router.post(
    "/api/launches/{launch_key}/decisions",
    status_code=201,
    response_model=Decision,
    summary="Record a review's decision on a launch, with the evidence of this moment",
)
def decide(
    launch_key: str, body: DecisionRequest, request: Request, storage: StorageDep, key: AdminKeyDep
) -> Decision:
    return _record(request, storage, launch_key, body, key)


@router.get(
    "/api/launches/{launch_key}/decisions",
    response_model=list[Decision],
    summary="A launch's decisions, oldest first; superseded_by names the one that replaced each",
)
def list_decisions(launch_key: str, storage: StorageDep, key: ReadKeyDep) -> list[Decision]:
    launches.load_launch(storage, launch_key)
    return decisions_of(storage, launch_key)


def form_key(request: Request, storage: StorageDep, form: dict[str, str]) -> ApiKey:
    """The admin key a post of the scorecard's form acts for: one the caller sends, or the admin
    sign-in session with the form's CSRF token (the cookie alone counts for nothing: 401)."""
    return admin_key_for_form(
        request,
        storage,
        form.get(CSRF_FIELD),
        doing="recording a decision",
        again="reload the scorecard and record it again",
    )


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}


FormDep = Annotated[dict[str, str], Depends(_form)]


@router.post("/launches/{launch_key}/decisions", include_in_schema=False)
def decide_from_scorecard(
    launch_key: str, request: Request, storage: StorageDep, form: FormDep
) -> RedirectResponse:
    """The scorecard's form: records the decision, then shows the scorecard's decisions."""
    key = form_key(request, storage, form)
    fields = {name: value for name, value in form.items() if name != CSRF_FIELD and value.strip()}
    _record(request, storage, launch_key, parse_request(fields), key)
    return RedirectResponse(f"/launches/{quote(launch_key)}#decisions", status_code=303)


def csrf_token(request: Request, storage: Storage) -> str:
    """The token the scorecard's form carries for this sign-in session."""
    return csrf_tokens(request, storage).token(request.cookies.get(SESSION_COOKIE, ""))


def decision_form(request: Request, storage: Storage, launch_key: str) -> DecisionForm:
    """The scorecard's form for an admin viewer, with the token for this sign-in session."""
    return DecisionForm(
        action=f"/launches/{quote(launch_key)}/decisions", csrf_token=csrf_token(request, storage)
    )
