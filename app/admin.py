"""Managing a running service over HTTP (admin key): the first admin key of a new database,
imports of uploaded files, and which write key an import stands for.

An upload may be many gigabytes, so it is never held in memory: the body is streamed to a
temporary file beside the database (Parquet keeps its index at the end of the file, and a
folder such as /tmp may live in memory), then imported from that file by the importer the
command line uses, chunk by chunk, through the writer, so SDK traffic goes on meanwhile.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import zlib
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from app.errors import InvalidInput, PayloadTooLarge, StorageUnavailable, UnsupportedEncoding
from app.importer import DEFAULT_SOURCE, GZIP_MAGIC, PARQUET_MAGIC, Format, ImportSummary, import_file
from app.observability import Metrics
from app.settings import Settings
from app.storage import ApiKey, Storage, WriteResult

FIRST_ADMIN_NAME = "admin"
# What an upload may say it is; the bytes decide between NDJSON, gzip and Parquet.
NDJSON_TYPES = frozenset(
    {
        "",
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/json-lines",
        "application/json",
        "text/plain",
        "application/octet-stream",
        "application/gzip",
        "application/x-gzip",
    }
)
PARQUET_TYPES = frozenset({"application/vnd.apache.parquet", "application/x-parquet"})
_WRITE_STEP = 1024 * 1024


def first_admin_key(storage: Storage) -> str | None:
    """A new admin key's secret when the database has no live admin key (a new database), so
    a newcomer can manage the service over HTTP from the first start; None otherwise."""
    if any(k.scope == "admin" and k.revoked_at is None for k in storage.list_keys()):
        return None
    return storage.create_key(FIRST_ADMIN_NAME, "admin")[1]


def import_source(storage: Storage, name: str | None) -> ApiKey | None:
    """The write key an import stands for, by id or name (None: the `import` source). Events
    are deduplicated per source, so a backfill under the key that sent them live adds only what
    is missing."""
    if name is None:
        return None
    writes = [k for k in storage.list_keys() if k.scope == "write"]
    matches = [k for k in writes if k.key_id == name] or [k for k in writes if k.name == name]
    if len(matches) > 1:
        matches = [k for k in matches if k.revoked_at is None]
    if not matches:
        raise InvalidInput(f"no write key has the id or name {name!r}", "query parameter: source")
    if len(matches) > 1:
        ids = ", ".join(k.key_id for k in matches)
        raise InvalidInput(
            f"several write keys are named {name!r}", f"query parameter: source; pass one key id of {ids}"
        )
    return matches[0]


def _declared(request: Request) -> tuple[str, bool]:
    """(media type, gzip-encoded) the request declares; 415 for what cannot be imported."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in NDJSON_TYPES and media_type not in PARQUET_TYPES:
        raise UnsupportedEncoding(
            f"Content-Type {media_type[:80]!r} cannot be imported",
            "send the file itself as the body (curl --data-binary @FILE) as application/x-ndjson "
            "or application/vnd.apache.parquet",
            code="unsupported_media_type",
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in {"", "identity", "gzip", "x-gzip"}:
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding[:40]!r} is not supported", "send identity or gzip"
        )
    return media_type, encoding in {"gzip", "x-gzip"}


async def spool(request: Request, path: Path, *, max_bytes: int) -> int:
    """Streams the request body into `path` (413 past `max_bytes`); returns its size."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    with path.open("wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(size, max_bytes)
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= _WRITE_STEP:
                # Written off the event loop, in steps of a MiB: a slow disk must not stall
                # the requests the loop serves meanwhile.
                await run_in_threadpool(out.write, b"".join(pending))
                pending, pending_size = [], 0
        if pending:
            await run_in_threadpool(out.write, b"".join(pending))
    return size


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "the upload is too large",
        f"{size}+ bytes; the limit is {limit} bytes (LANDED_MAX_IMPORT_BYTES). Split the file.",
    )


def _gunzip(source: Path, target: Path, *, max_bytes: int) -> None:
    """Decompresses a gzip file into `target` in bounded steps, refusing more than `max_bytes`."""
    written = 0
    try:
        with gzip.open(source, "rb") as packed, target.open("wb") as out:
            while block := packed.read(_WRITE_STEP):
                written += len(block)
                if written > max_bytes:
                    raise _too_large(written, max_bytes)
                out.write(block)
    except (OSError, EOFError, zlib.error) as error:
        raise InvalidInput(
            "the gzip data is corrupt or truncated", str(error), code="invalid_encoding"
        ) from None


def _format_of(path: Path, *, media_type: str, max_bytes: int) -> tuple[Path, Format]:
    """The file to import and its format, told by its bytes. A gzip file holding Parquet (rare:
    Parquet is compressed already) is decompressed first, since Parquet is read from its end."""
    with path.open("rb") as stream:
        head = stream.read(4)
    if head.startswith(GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as packed:
                inner = packed.read(4)
        except (OSError, EOFError, zlib.error) as error:
            raise InvalidInput(
                "the gzip data is corrupt or truncated", str(error), code="invalid_encoding"
            ) from None
        if inner != PARQUET_MAGIC:
            return path, "ndjson.gz"
        unpacked = path.with_name("upload.parquet")
        _gunzip(path, unpacked, max_bytes=max_bytes)
        path.unlink()
        return unpacked, "parquet"
    if head == PARQUET_MAGIC:
        return path, "parquet"
    if media_type in PARQUET_TYPES:
        raise InvalidInput(
            "the body is not a Parquet file", "it does not start with PAR1", code="invalid_encoding"
        )
    return path, "ndjson"


def spool_dir(settings: Settings) -> Path | None:
    """Where uploads are spooled: beside the database, whose disk has room for data (None: the
    system's temporary folder, for an in-memory database)."""
    if settings.db_path == ":memory:":
        return None
    return Path(settings.db_path).expanduser().resolve().parent


async def import_upload(
    request: Request, storage: Storage, settings: Settings, *, source: ApiKey | None
) -> ImportSummary:
    """Imports the file in the request body (NDJSON, gzipped NDJSON or Parquet) as `source`."""
    media_type, gzip_encoded = _declared(request)
    try:
        folder = Path(tempfile.mkdtemp(prefix=".landed-import-", dir=spool_dir(settings)))
    except OSError as error:
        raise StorageUnavailable("cannot make a temporary file for the upload", str(error)) from error
    try:
        upload = folder / "upload"
        try:
            size = await spool(request, upload, max_bytes=settings.max_import_bytes)
        except OSError as error:  # a full disk, say: the client may retry once there is room
            raise StorageUnavailable("cannot store the upload", str(error)) from error
        if size == 0:
            raise InvalidInput("the request body is empty", "send an NDJSON or Parquet file as the body")
        path, fmt = await run_in_threadpool(
            _format_of, upload, media_type=media_type, max_bytes=settings.max_import_bytes
        )
        if gzip_encoded and fmt == "ndjson":
            raise InvalidInput(
                "Content-Encoding says gzip but the body is not gzip", "", code="invalid_encoding"
            )
        summary = await run_in_threadpool(
            import_file,
            storage,
            path,
            source=source.key_id if source else DEFAULT_SOURCE,
            max_event_bytes=settings.max_event_bytes,
            fmt=fmt,
        )
    finally:
        await run_in_threadpool(shutil.rmtree, folder, True)
    metrics: Metrics = request.app.state.metrics
    result = WriteResult(summary.inserted, summary.duplicates, summary.rejected)
    metrics.record_events("import", source.name if source else DEFAULT_SOURCE, result)
    return summary
