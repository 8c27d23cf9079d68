"""Launch management (admin key): define, replace before launch, amend after, read history."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

import orjson
import yaml
from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from app import launches
from app.compare import hints_for_spec
from app.deps import AdminKeyDep, ReadKeyDep, StorageDep
from app.errors import InvalidInput
from app.http import error_responses, read_body
from app.ingest import now_utc
from app.routes.reports import ReportsDep
from pipelines.launch import Kpi, LaunchFile, LaunchSpec
from pipelines.report_models import TargetHint, UtcTime

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
    managed_from_git: bool = Field(
        default=False,
        description="its latest version came from spec files (`landed launch apply`): the editor shows "
        "it read-only",
    )
    result: Literal["created", "updated", "amended", "unchanged"] | None = None


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
        managed_from_git=state.managed_from_git,
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


YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class _JsonBody(Request):
    """The request with its body replaced by the JSON a YAML body stands for."""

    def __init__(self, request: Request, body: bytes) -> None:
        replaced = {b"content-type", b"content-length"}
        headers = [(k, v) for k, v in request.scope["headers"] if k not in replaced]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        super().__init__({**request.scope, "headers": headers}, request.receive)
        self._json_body = body

    async def body(self) -> bytes:
        return self._json_body


class YamlBodyRoute(APIRoute):
    """A route whose JSON body may also come as YAML, the format launch specs are documented
    in: the YAML is read into the same data and checked by the same model, so errors name the
    field alike. Anchors and aliases are refused, since an alias expands to a copy of what it
    names and a few lines could stand for gigabytes once written as JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            if media_type in YAML_TYPES:
                settings = request.app.state.settings
                body = await read_body(
                    request,
                    max_body_bytes=settings.max_body_bytes,
                    max_decompressed_bytes=settings.max_decompressed_bytes,
                )
                request = _JsonBody(request, _yaml_as_json(body))
            return await handler(request)

        return route


def _yaml_as_json(body: bytes) -> bytes:
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(body, Loader=yaml.SafeLoader)):
            raise InvalidInput("YAML anchors and aliases are not supported", "write each value out")
        data = yaml.safe_load(body)
    except yaml.YAMLError as error:
        raise InvalidInput("the body is not valid YAML", str(error), code="malformed_yaml") from None
    try:
        # YAML reads times as datetimes; JSON carries them as ISO 8601 text, a zone if they had one.
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError) as error:
        raise InvalidInput("the YAML body holds a value JSON cannot carry", str(error)) from None


class PutOut(LaunchOut):
    changes: list[str] = Field(
        description="What the request changed (or, with dry_run, would change), one line per field or KPI"
    )
    target_hints: list[TargetHint] = Field(
        default_factory=list,
        description="Before launch: each KPI's target beside what past closed launches reached for its "
        "metric by the same day (empty once the launch is live)",
    )


def put_launch(
    launch_key: str,
    spec: LaunchFile,
    storage: StorageDep,
    reports: ReportsDep,
    key: AdminKeyDep,
    response: Response,
    dry_run: Annotated[
        bool, Query(description="Only say what would change (result and changes); store nothing")
    ] = False,
    author: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="who records the change (default: the key's name)"),
    ] = None,
    source: Annotated[
        Literal["git"] | None,
        Query(description="`git`: the spec comes from files kept in git (what `landed launch apply` "
        "sends); the launch is then managed from git and the editor shows it read-only"),
    ] = None,
) -> PutOut:
    now = now_utc()
    state, result, changes = launches.apply_file(
        storage, spec, by=author or key.name, now=now, key=launch_key, dry_run=dry_run, source=source
    )
    if result == "created" and not dry_run:
        response.status_code = 201
    # Targets are set before launch: that is when past launches can still ground them.
    hints = [] if state.is_locked(now) else hints_for_spec(storage, reports, state.spec, now=now)
    return PutOut(**launch_out(state, result).model_dump(), changes=changes, target_hints=hints)


_LAUNCH_FILE_SCHEMA = {"$ref": "#/components/schemas/LaunchFile"}

router.add_api_route(
    "/{launch_key}",
    put_launch,
    methods=["PUT"],
    response_model=PutOut,
    summary="Create or replace a launch (before launch); after it, descriptive fields, and KPIs "
    "with an amendment reason",
    description="The body is the launch spec as JSON, or as YAML (Content-Type application/yaml, "
    "text/yaml or application/x-yaml), the format of spec files.",
    responses={201: {"description": "created"}, 409: {"description": "locked after launch"}},
    route_class_override=YamlBodyRoute,
    # FastAPI documents the JSON body; the YAML one reads into the same model.
    openapi_extra={"requestBody": {"content": {"application/yaml": {"schema": _LAUNCH_FILE_SCHEMA}}}},
)


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


@router.get(
    "/{launch_key}/spec.yaml",
    summary="The launch's current spec as a YAML file `landed launch apply` takes unchanged",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}}},
)
def launch_yaml(launch_key: str, storage: StorageDep, key: ReadKeyDep) -> Response:
    state = launches.load_launch(storage, launch_key)
    return Response(
        launches.spec_yaml(state),
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{state.latest.spec.key}.yaml"'},
    )


@router.get("/{launch_key}/history", response_model=list[HistoryOut], summary="Every version and amendment")
def launch_history(launch_key: str, storage: StorageDep, key: ReadKeyDep) -> list[HistoryOut]:
    state = launches.load_launch(storage, launch_key)
    return [HistoryOut(**vars(item)) for item in launches.history(state)]
