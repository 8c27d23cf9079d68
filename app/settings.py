"""Service configuration, read from `LANDED_*` environment variables (or passed in by tests).

Nothing reads settings at import time: `create_app(settings)` and the command line build a
`Settings` and hand it down, so tests can run many services with different settings side by side.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
GiB = 1024 * MiB
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Every knob of the service. The README's configuration table documents each field."""

    # hide_input_in_errors: an error must never print a mail password or a webhook secret.
    model_config = SettingsConfigDict(
        env_prefix="LANDED_", extra="forbid", frozen=True, hide_input_in_errors=True
    )

    db_path: str = Field(
        default="landed.duckdb",
        description="DuckDB database file, created with the schema on first start; ':memory:' for tests.",
    )
    storage: Literal["duckdb", "clickhouse"] = Field(
        default="duckdb",
        description=(
            "Where events and launches are kept: `duckdb` (the embedded default, the `db_path` file) "
            "or `clickhouse` (`clickhouse_url`; needs `pip install 'landed[clickhouse]'`, see docs/scale.md)."
        ),
    )
    clickhouse_url: SecretStr | None = Field(
        default=None,
        description=(
            "With `storage=clickhouse`: `clickhouse://user:password@host:8123/database` for a server or "
            "cluster, or `chdb:///path/to/dir` (`chdb://memory`) for embedded ClickHouse."
        ),
    )
    clickhouse_insert_quorum: Annotated[int, Field(ge=0, le=16)] = Field(
        default=0,
        description=(
            "With ClickHouse on a replicated cluster: replicas that must hold an insert before it is "
            "acknowledged (`insert_quorum`); 0 leaves it to the server (docs/scale.md)."
        ),
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
    refresh_seconds: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=60,
        description=(
            "Pages show results computed ahead, recomputed in the background when new events have "
            "arrived, at most this often (seconds). 0: no background work; a page recomputes on view "
            "whenever new events have arrived (exact, and slow on large data)."
        ),
    )
    metrics_require_key: bool = Field(
        default=False, description="Ask for a read key on /metrics (by default it needs none)."
    )
    # -- the weekly review delivered, and alerts (app/delivery.py, app/alerts.py) ----------------
    smtp_url: SecretStr | None = Field(
        default=None,
        description=(
            "Mail server the weekly review and alerts are sent through: smtp://user:pass@host:port "
            "(STARTTLS when the server offers it) or smtps://... (TLS from the start); none: no email."
        ),
    )
    mail_from: str | None = Field(default=None, description="Sender address of the review and alert mail.")
    review_to: str | None = Field(
        default=None, description="Recipients of the review and alert mail, comma-separated."
    )
    webhook_url: SecretStr | None = Field(
        default=None,
        description="A Slack-compatible incoming webhook the review and alerts are posted to (Markdown).",
    )
    review_schedule: str = Field(
        default="mon 09:00",
        description=(
            "When the weekly review is sent: a day and time ('mon 09:00') or a cron expression "
            "('0 9 * * mon'), in LANDED_REVIEW_TIMEZONE."
        ),
    )
    review_timezone: str = Field(
        default="UTC", description="Time zone of the review schedule (IANA name, e.g. Europe/Berlin)."
    )
    delivery_retry_seconds: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=60,
        description="Wait before retrying a failed send; it doubles with each attempt (up to 6 hours).",
    )
    delivery_max_attempts: Annotated[int, Field(ge=1, le=100)] = Field(
        default=10, description="Attempts at one send before it is left failed (shown on the portfolio)."
    )
    alert_seconds: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=300,
        description=(
            "Alerts are evaluated in the background from the pages' results computed ahead, after "
            "new data arrived, at most this often (seconds); 0 turns the background evaluation off."
        ),
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

    @field_validator("smtp_url")
    @classmethod
    def _mail_server(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parts = urlsplit(value.get_secret_value().strip())
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("must look like smtp://user:pass@host:port or smtps://user:pass@host:port")
        try:
            parts.port  # noqa: B018 (a port that is not a number raises here)
        except ValueError as error:
            raise ValueError(f"has an invalid port: {error}") from None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parts = urlsplit(value.get_secret_value().strip())
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an http(s) address, e.g. https://hooks.slack.com/services/...")
        return value

    @field_validator("mail_from", "review_to")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() if value and value.strip() else None

    @field_validator("review_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone, e.g. UTC or Europe/Berlin") from None
        return value.strip()

    @field_validator("review_schedule")
    @classmethod
    def _crontab(cls, value: str) -> str:
        return review_crontab(value)

    @property
    def review_recipients(self) -> list[str]:
        return [address.strip() for address in (self.review_to or "").split(",") if address.strip()]

    @model_validator(mode="after")
    def _clickhouse_complete(self) -> Settings:
        if self.storage == "clickhouse":
            if self.clickhouse_url is None:
                raise ValueError("LANDED_STORAGE=clickhouse needs LANDED_CLICKHOUSE_URL")
            from app.storage import parse_clickhouse_url

            try:
                parse_clickhouse_url(self.clickhouse_url.get_secret_value())
            except ValueError as error:
                raise ValueError(f"LANDED_CLICKHOUSE_URL: {error}") from None
        return self

    @model_validator(mode="after")
    def _mail_complete(self) -> Settings:
        if self.smtp_url is not None and (not self.mail_from or not self.review_recipients):
            raise ValueError("LANDED_SMTP_URL needs LANDED_MAIL_FROM and LANDED_REVIEW_TO as well")
        return self

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


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_AND_TIME = re.compile(r"^([a-z]{3})[a-z]*\s+(\d{1,2}):(\d{2})$")


def review_crontab(schedule: str) -> str:
    """The review schedule as a five-field crontab: 'mon 09:00' (a day and time; 'monday 9:00'
    too) becomes '0 9 * * mon'; a crontab is checked as it is."""
    from apscheduler.triggers.cron import CronTrigger

    text = " ".join(schedule.strip().lower().split())
    match = _DAY_AND_TIME.match(text)
    if match:
        day, hour, minute = match.group(1), int(match.group(2)), int(match.group(3))
        if day not in _DAYS or hour > 23 or minute > 59:
            raise ValueError(f"{schedule!r}: write a day and time like 'mon 09:00'")
        text = f"{minute} {hour} * * {day}"
    try:
        CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as error:
        raise ValueError(
            f"{schedule!r} is neither a day and time ('mon 09:00') nor a cron expression "
            f"('0 9 * * mon'): {error}"
        ) from None
    return text
