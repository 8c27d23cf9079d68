"""Service configuration, read from `LANDED_*` environment variables (or passed in by tests).

Nothing reads settings at import time: `create_app(settings)` and the command line build a
`Settings` and hand it down, so tests can run many services with different settings side by side.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
GiB = 1024 * MiB
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Every knob of the service. The README's configuration table documents each field."""

    model_config = SettingsConfigDict(env_prefix="LANDED_", extra="forbid", frozen=True)

    db_path: str = Field(
        default="landed.duckdb",
        description="DuckDB database file, created with the schema on first start; ':memory:' for tests.",
    )
    host: str = Field(default="127.0.0.1", description="Address the service listens on.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(default=8000, description="TCP port.")
    allow_public_bind: bool = Field(
        default=False,
        description="Must be true to listen on a non-loopback address (put TLS in front first).",
    )
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * MiB)] = Field(
        default=5 * MiB, description="Largest request body accepted on the wire (compressed)."
    )
    max_decompressed_bytes: Annotated[int, Field(ge=1024, le=512 * MiB)] = Field(
        default=32 * MiB, description="Largest request body after gzip/deflate decompression."
    )
    max_event_bytes: Annotated[int, Field(ge=256, le=16 * MiB)] = Field(
        default=1 * MiB, description="Largest single event; larger ones are rejected per event."
    )
    commit_max_events: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=50_000, description="Most events one group commit may gather from waiting requests."
    )
    checkpoint_mib: Annotated[int, Field(ge=1, le=65_536)] = Field(
        default=256,
        description=(
            "Write-ahead log size (MiB) at which DuckDB checkpoints into the database file; "
            "larger means fewer, longer write pauses and a longer replay after a crash."
        ),
    )
    max_batch_events: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=10_000, description="Most events one request may carry (413 above)."
    )
    rate_limit_events_per_second: Annotated[float, Field(ge=0)] = Field(
        default=100_000, description="Events per second each write key may send (429 above); 0 turns it off."
    )
    rate_limit_burst_events: Annotated[float, Field(ge=0)] = Field(
        default=200_000, description="Events a write key may send at once before the rate applies."
    )
    rate_limit_ip_events_per_second: Annotated[float, Field(ge=0)] = Field(
        default=200,
        description=(
            "Events per second each client address may send from a browser (requests with an Origin "
            "header, or with a key that has an origin list), on top of the key's limit; 0 turns it off."
        ),
    )
    rate_limit_ip_burst_events: Annotated[float, Field(ge=0)] = Field(
        default=2_000, description="Events one client address may send at once from a browser."
    )
    cors_max_age_seconds: Annotated[int, Field(ge=0, le=86_400)] = Field(
        default=7_200, description="How long browsers may cache the answer to an ingestion preflight."
    )
    retry_after_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=5, description="Retry-After sent with 503 when storage is unavailable."
    )
    max_import_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=10 * GiB,
        description="Largest file `POST /api/import` accepts (413 above); it is spooled to a temporary file.",
    )
    backup_dir: str | None = Field(
        default=None,
        description=(
            "Folder `POST /api/backup` writes a new timestamped backup into (default: `backups` beside "
            "the database file; required for an in-memory database)."
        ),
    )
    public_url: str | None = Field(
        default=None,
        description=(
            "The service's address as users reach it (e.g. https://landed.example.com), for the "
            "absolute links of exported reviews; default: the address the request came to."
        ),
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Secret that signs sign-in sessions; default: one generated once and kept in the database, "
            "so sessions survive restarts. Changing it signs everyone out."
        ),
    )
    session_hours: Annotated[float, Field(gt=0, le=24 * 90)] = Field(
        default=12, description="How long a dashboard sign-in lasts."
    )
    access_log_level: str = Field(
        default="INFO",
        description="Logging level of the access log line written per request (DEBUG hides them).",
    )
    metrics_require_key: bool = Field(
        default=False, description="Ask for a read key on /metrics (by default it needs none)."
    )

    @field_validator("db_path")
    @classmethod
    def _db_path_usable(cls, value: str) -> str:
        if value == ":memory:":
            return value
        parent = Path(value).expanduser().resolve().parent
        if not parent.is_dir():
            raise ValueError(f"the folder {parent} does not exist")
        return value

    @field_validator("access_log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return level

    @field_validator("public_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be an http(s) address such as https://landed.example.com")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if not self.allow_public_bind and not _is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address; set LANDED_ALLOW_PUBLIC_BIND=true "
                "once the service is behind TLS"
            )
        if self.max_decompressed_bytes < self.max_body_bytes:
            raise ValueError("max_decompressed_bytes must be at least max_body_bytes")
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
