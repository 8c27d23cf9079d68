"""The periods a launch report measures: the window, a KPI's by_day window, their baselines.

Spec section 3 fixes the window as [launched_at, launched_at + window_days), cut at as_of when
that is earlier (then provisional). Everything here is naive UTC, the form the frames carry, so
comparisons never mix aware and naive datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pipelines.report_models import Window

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Span:
    """The stretch of time one report reads: [lookback, end), the launch at `start`."""

    lookback: datetime
    start: datetime
    end: datetime


def window_end(start: datetime, days: int) -> datetime:
    """The end of a window of `days` days from `start`, before any cut: the one definition
    behind a launch's window end and every KPI's by_day window."""
    return start + timedelta(days=days)


def evaluation_window(start: datetime, days: int, as_of: datetime) -> Window:
    """[start, start + days) cut at as_of; an as_of at or before the start leaves it empty."""
    full_end = window_end(start, days)
    end = max(start, min(full_end, as_of))
    return Window(
        start=start,
        end=end,
        full_end=full_end,
        as_of=as_of,
        days=(end - start) / DAY,
        provisional=as_of < full_end,
    )


def baseline_start(window: Window) -> datetime:
    """Start of the pre-launch comparison period: as long as the window after its cut."""
    return window.start - (window.end - window.start)


def _floor_day(value: datetime) -> date:
    return value.date()


def _ceil_day(value: datetime) -> date:
    midnight = datetime.combine(value.date(), datetime.min.time())
    return value.date() if value == midnight else value.date() + DAY


def full_days(window: Window) -> tuple[date, int]:
    """The first UTC day lying wholly inside the window, and how many such days there are."""
    first = _ceil_day(window.start)
    return first, max(0, (_floor_day(window.end) - first).days)


def touched_days(window: Window) -> list[date]:
    """Every UTC day that overlaps the window (for a cut window, up to the as_of day)."""
    if window.end <= window.start:
        return []
    first = window.start.date()
    last = (window.end - timedelta(microseconds=1)).date()
    return [first + DAY * i for i in range((last - first).days + 1)]
