"""Learning across launches over HTTP (read key): launches side by side, and the target hints
that set a launch's KPI targets beside what past closed launches reached."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.compare import MAX_COMPARED, compare_launches, target_hints
from app.deps import ReadKeyDep, StorageDep
from app.http import error_responses
from app.ingest import now_utc
from app.reports import default_as_of
from app.routes.reports import ReportsDep
from pipelines.report_models import Comparison, TargetHints

router = APIRouter(tags=["reports"], responses=error_responses(400, 401, 403, 404, 422, 503))

LaunchKeys = Annotated[
    list[str],
    Query(
        alias="launch",
        description=f"A launch to compare, by key; repeat for each (at most {MAX_COMPARED})",
    ),
]


@router.get(
    "/api/compare",
    response_model=Comparison,
    summary="Launches side by side: cumulative curves aligned on day 0, KPI metrics at days 7, 14 "
    "and 28 with intervals, funnels",
)
def compare(storage: StorageDep, reports: ReportsDep, key: ReadKeyDep, launch: LaunchKeys) -> Comparison:
    return compare_launches(storage, reports, launch, as_of=default_as_of(now_utc()))


@router.get(
    "/api/launches/{launch_key}/target-hints",
    response_model=TargetHints,
    summary="Each KPI's target beside what past closed launches reached for its metric by the same day",
)
def launch_target_hints(
    launch_key: str, storage: StorageDep, reports: ReportsDep, key: ReadKeyDep
) -> TargetHints:
    return target_hints(storage, reports, launch_key, now=now_utc())
