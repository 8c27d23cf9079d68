"""Managing the running service (admin key): keys, imports of event files, online backups.

DuckDB lets one process write the database, so while the service runs these routes are how
keys are made and revoked, files backfilled and backups taken; a key made here works at once
and a revoked one is refused on its next request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app import admin
from app.backup import backup_now, backup_root
from app.deps import AdminKeyDep, SettingsDep, StorageDep
from app.http import error_responses
from app.importer import ImportSummary
from app.storage import ApiKey, Scope
from pipelines.report_models import UtcTime

router = APIRouter(prefix="/api", tags=["admin"], responses=error_responses(400, 401, 403, 422, 503))

KeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"),
]


class KeyIn(BaseModel):
    """A key to create. Write keys may list the web origins browsers may send with them."""

    model_config = ConfigDict(extra="forbid")

    name: KeyName = Field(description="What the key is for, e.g. web, ios, dashboards")
    scope: Scope = "write"
    origins: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list,
        max_length=100,
        description="Write keys used in browsers: origins allowed to send with the key (none: any)",
    )


class KeyOut(BaseModel):
    """A key as listed: never its secret, which only its creation reply holds."""

    key_id: str
    name: str
    scope: str
    created_at: UtcTime
    revoked_at: UtcTime | None
    origins: list[str]

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            key_id=key.key_id,
            name=key.name,
            scope=key.scope,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            origins=list(key.origins),
        )


class KeyCreated(KeyOut):
    secret: str = Field(description="The key itself, shown this once; only its hash is stored")


class Revoked(BaseModel):
    revoked: list[str] = Field(description="Ids of the keys revoked")


class ImportOut(BaseModel):
    """What an import did: events read, and of them inserted, duplicates and rejected (with
    the count per rejection reason)."""

    files: int
    events: int
    inserted: int
    duplicates: int
    rejected: int
    reasons: dict[str, int]

    @classmethod
    def of(cls, summary: ImportSummary) -> ImportOut:
        return cls(
            files=summary.files,
            events=summary.events,
            inserted=summary.inserted,
            duplicates=summary.duplicates,
            rejected=summary.rejected,
            reasons=dict(summary.reasons.most_common()),
        )


class BackupOut(BaseModel):
    path: str = Field(description="The new backup folder on the service's machine")
    rows: dict[str, int] = Field(description="Rows per table, as the manifest records them")


@router.post("/keys", status_code=201, response_model=KeyCreated, summary="Create a key (shown once)")
def create_key(body: KeyIn, storage: StorageDep, key: AdminKeyDep) -> KeyCreated:
    created, secret = storage.create_key(body.name, body.scope, origins=body.origins)
    return KeyCreated(**KeyOut.of(created).model_dump(), secret=secret)


@router.get("/keys", response_model=list[KeyOut], summary="Every key, revoked ones too (never secrets)")
def list_keys(storage: StorageDep, key: AdminKeyDep) -> list[KeyOut]:
    return [KeyOut.of(k) for k in storage.list_keys()]


@router.delete(
    "/keys/{key_id_or_name}",
    response_model=Revoked,
    responses=error_responses(404),
    summary="Revoke a key by id, or every live key of that name; refused from its next request on",
)
def revoke_key(
    key_id_or_name: Annotated[str, Path(min_length=1, max_length=200)], storage: StorageDep, key: AdminKeyDep
) -> Revoked:
    return Revoked(revoked=storage.revoke_key(key_id_or_name))


_IMPORT_BODY = {
    "required": True,
    "content": {
        media_type: {"schema": {"type": "string", "format": "binary"}}
        for media_type in ("application/x-ndjson", "application/vnd.apache.parquet")
    },
}


@router.post(
    "/import",
    response_model=ImportOut,
    responses=error_responses(413, 415),
    summary="Backfill events from an NDJSON (optionally gzipped) or Parquet file sent as the body",
    description="The body is streamed to a temporary file, never held in memory, then imported with "
    "the same validation and dedupe as ingestion; events keep their own receivedAt. Gzip is "
    "recognised by Content-Encoding or by its magic bytes, Parquet by its Content-Type or its magic.",
    openapi_extra={"requestBody": _IMPORT_BODY},
)
async def import_events(
    request: Request,
    storage: StorageDep,
    settings: SettingsDep,
    key: AdminKeyDep,
    source: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="The write key (id or name) the events first came through, so the import "
            "dedupes against what it sent; default: the `import` source",
        ),
    ] = None,
) -> ImportOut:
    writer_key = admin.import_source(storage, source)
    return ImportOut.of(await admin.import_upload(request, storage, settings, source=writer_key))


@router.post(
    "/backup",
    status_code=201,
    response_model=BackupOut,
    responses=error_responses(409),
    summary="Write a consistent Parquet backup into a new folder under the backup folder",
)
def take_backup(storage: StorageDep, settings: SettingsDep, key: AdminKeyDep) -> BackupOut:
    path, rows = backup_now(storage, backup_root(settings))
    return BackupOut(path=str(path), rows=rows)
