"""How a running service tells the command line where it is. DuckDB lets one process write a
database file, so while `landed serve` (or `landed demo`) holds it, the CLI must go through the
service's API instead of opening the file. The service announces itself in a file beside the
database, `<database>.service.json`, holding its address and an admin key made for the local
CLI at startup; the file is created readable by its owner only (mode 0600), since that key can
do anything, and removed at a clean shutdown.

A file left behind by a service that died (its process is gone, or nothing answers at its
address) is ignored, so a crash never blocks the CLI from opening the database itself.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson

SUFFIX = ".service.json"
FORMAT = "landed-service-1"
# The admin key the service makes for the CLI of its own machine; its previous one is revoked.
LOCAL_KEY_NAME = "local-cli"
# How long the CLI waits for an announced service to accept a connection.
PROBE_SECONDS = 2.0


@dataclass(frozen=True)
class ServiceInfo:
    """What the discovery file holds."""

    format: str
    url: str
    key: str
    pid: int
    db_path: str
    started_at: str


class UnreadableAnnouncement(Exception):
    """The discovery file exists but this user may not read it (another user's service)."""


def service_file(db_path: str) -> Path | None:
    """The discovery file of the database at `db_path` (None for an in-memory database)."""
    if db_path == ":memory:":
        return None
    db = Path(db_path).expanduser().resolve()
    return db.with_name(db.name + SUFFIX)


def service_url(host: str, port: int) -> str:
    """The address a client on this machine reaches a service listening on host:port at."""
    if host in {"0.0.0.0", ""}:
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def announce(db_path: str, *, url: str, key: str) -> Path | None:
    """Writes the discovery file for a service now serving `db_path` at `url`; returns it."""
    path = service_file(db_path)
    if path is None:
        return None
    info = ServiceInfo(
        format=FORMAT,
        url=url,
        key=key,
        pid=os.getpid(),
        db_path=str(Path(db_path).expanduser().resolve()),
        started_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    # Written under a temporary name created 0600 from the start (never world-readable, even
    # for a moment), then renamed over the final name, so a reader never sees half a file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(orjson.dumps(asdict(info), option=orjson.OPT_INDENT_2))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def withdraw(db_path: str) -> None:
    """Removes the discovery file if this process wrote it (a later service's file stays)."""
    path = service_file(db_path)
    if path is None:
        return
    with contextlib.suppress(OSError, ValueError, TypeError):
        if orjson.loads(path.read_bytes()).get("pid") == os.getpid():
            path.unlink()


def read_announcement(db_path: str) -> ServiceInfo | None:
    """The discovery file's content, or None if there is none or it is not one."""
    path = service_file(db_path)
    if path is None:
        return None
    try:
        data = orjson.loads(path.read_bytes())
        return ServiceInfo(**{name: data[name] for name in ServiceInfo.__dataclass_fields__})
    except FileNotFoundError:
        return None
    except PermissionError as error:
        raise UnreadableAnnouncement(str(path)) from error
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


def find_service(db_path: str) -> ServiceInfo | None:
    """The service serving `db_path`, if its discovery file names a live process that accepts
    connections at the address it gives; None when no service runs."""
    info = read_announcement(db_path)
    if info is None or info.format != FORMAT or not _alive(info.pid):
        return None
    return info if _accepts(info.url) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    except (OverflowError, ValueError):
        return False
    return True


def _accepts(url: str) -> bool:
    parts = urlsplit(url)
    if parts.hostname is None:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=PROBE_SECONDS):
            return True
    except OSError:
        return False
