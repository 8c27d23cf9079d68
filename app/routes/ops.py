"""What load balancers and Prometheus ask: liveness, readiness, metrics. None of them needs a
key (a probe has none to send), and none of them tells a secret; `/metrics` asks for a read key
when `LANDED_METRICS_REQUIRE_KEY` is set."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from app.deps import StorageDep, read_key
from app.http import error_responses, json_error_responses
from app.observability import METRICS_CONTENT_TYPE, Metrics
from app.settings import Settings

router = APIRouter(tags=["operations"])
# A readiness probe waits this long for the writer; a writer busier than that is not ready.
READY_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers (no storage access)")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Health,
    responses=error_responses(503),
    summary="Readiness: storage answers a read and the writer commits a write",
)
def readyz(storage: StorageDep) -> Health:
    storage.check_ready(READY_TIMEOUT_SECONDS)
    return Health()


class MetricsResponse(Response):
    media_type = METRICS_CONTENT_TYPE


@router.get(
    "/metrics",
    response_class=MetricsResponse,
    responses=json_error_responses(401, 403, 503),
    summary="Prometheus metrics (text format)",
)
def metrics(request: Request, storage: StorageDep) -> MetricsResponse:
    settings: Settings = request.app.state.settings
    if settings.metrics_require_key:
        read_key(request, storage)
    registry: Metrics = request.app.state.metrics
    return MetricsResponse(registry.exposition())
