"""Launch management (admin key): define, replace before launch, amend after, read history."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from app import launches
from app.deps import AdminKeyDep, ReadKeyDep, StorageDep
from app.http import error_responses
from app.ingest import now_utc
from pipelines.launch import Kpi, LaunchSpec
from pipelines.report_models import UtcTime

router = APIRouter(
    prefix="/api/launches", tags=["launches"], responses=error_responses(400, 401, 403, 404, 409, 422, 503)
)


class KpiOut(BaseModel):
    id: str
    first_set: Kpi
    current: Kpi
    amended: bool
    set_after_launch: bool


class LaunchOut(BaseModel):
    key: str
    live: bool
    version: int
    created_at: UtcTime
    updated_at: UtcTime
    spec: LaunchSpec
    kpis: list[KpiOut]
    result: Literal["created", "updated", "unchanged"] | None = None


class HistoryOut(BaseModel):
    kind: Literal["version", "amendment"]
    at: UtcTime
    by: str
    summary: str
    reason: str
    version: int | None
    kpi_id: str | None
    field: str | None
    old_value: Any
    new_value: Any


def launch_out(state: launches.LaunchState, result: str | None = None) -> LaunchOut:
    return LaunchOut(
        key=state.latest.spec.key,
        live=state.is_locked(now_utc()),
        version=state.latest.version,
        created_at=state.versions[0].recorded_at,
        updated_at=max([state.latest.recorded_at, *(a.amended_at for a in state.amendments)]),
        spec=state.spec,
        kpis=[
            KpiOut(
                id=r.id,
                first_set=r.first_set,
                current=r.current,
                amended=r.amended,
                set_after_launch=r.set_after_launch,
            )
            for r in state.kpi_records
        ],
        result=result,  # type: ignore[arg-type]
    )


@router.get("", response_model=list[LaunchOut], summary="Every launch")
def list_launches(storage: StorageDep, key: ReadKeyDep) -> list[LaunchOut]:
    return [launch_out(s) for s in launches.list_launches(storage)]


@router.get(
    "/{launch_key}", response_model=LaunchOut, summary="One launch, its KPIs as first set and as amended"
)
def get_launch(launch_key: str, storage: StorageDep, key: ReadKeyDep) -> LaunchOut:
    return launch_out(launches.load_launch(storage, launch_key))


@router.put(
    "/{launch_key}",
    response_model=LaunchOut,
    summary="Create or replace a launch (before launch); descriptive fields only after",
    responses={201: {"description": "created"}, 409: {"description": "locked after launch"}},
)
def put_launch(
    launch_key: str, spec: LaunchSpec, storage: StorageDep, key: AdminKeyDep, response: Response
) -> LaunchOut:
    state, result = launches.put_launch(storage, spec, by=key.name, now=now_utc(), key=launch_key)
    if result == "created":
        response.status_code = 201
    return launch_out(state, result)


@router.delete("/{launch_key}", status_code=204, summary="Delete a launch (before launch only)")
def delete_launch(launch_key: str, storage: StorageDep, key: AdminKeyDep) -> Response:
    launches.delete_launch(storage, launch_key, now=now_utc())
    return Response(status_code=204)


@router.post(
    "/{launch_key}/amendments",
    response_model=LaunchOut,
    summary="Amend KPIs after launch, with a reason (kept on record)",
)
def amend_launch(
    launch_key: str, request: launches.AmendmentRequest, storage: StorageDep, key: AdminKeyDep
) -> LaunchOut:
    return launch_out(launches.amend_launch(storage, launch_key, request, by=key.name, now=now_utc()))


@router.get("/{launch_key}/history", response_model=list[HistoryOut], summary="Every version and amendment")
def launch_history(launch_key: str, storage: StorageDep, key: ReadKeyDep) -> list[HistoryOut]:
    state = launches.load_launch(storage, launch_key)
    return [HistoryOut(**vars(item)) for item in launches.history(state)]
