"""Naive-UTC time, defined once for the app and the pipelines alike.

Every stored and computed time is naive UTC: the events table holds naive timestamps, and the
report's frames compare naive datetimes, so mixing aware and naive ones would fail. Aware times
enter from outside (launch specs, API parameters, ISO text) and are converted here on the way
in; on the way out (JSON, messages) they are labelled UTC again with a trailing "Z". Only the
standard library is used, so both `app` and `pipelines` may import this module.
"""

from __future__ import annotations

from datetime import UTC, datetime


def naive_utc(value: datetime) -> datetime:
    """An aware datetime converted to UTC and stripped; a naive one is taken as UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def as_utc(value: datetime) -> datetime:
    """The instant as an aware UTC datetime. A naive one is UTC already, so it is only
    labelled: `astimezone` would read it as the server's local time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now_utc() -> datetime:
    """The current time, naive UTC like every stored time."""
    return datetime.now(UTC).replace(tzinfo=None)


def utc_text(value: datetime, *, timespec: str = "auto") -> str:
    """The instant as RFC 3339 text in UTC with a "Z", e.g. 2024-03-01T12:00:00Z."""
    return as_utc(value).isoformat(timespec=timespec).replace("+00:00", "Z")
