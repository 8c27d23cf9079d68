"""Rates and medians as the report's result models, with their intervals.

Every rate on a launch report is built here, so "k of n, None when n is 0, Wilson interval on
n" holds in one place. Stickiness is a mean of daily shares rather than a count of successes, so
it needs the Wilson interval evaluated at a proportion instead of at k; that variant lives here
too because `pipelines.stats` takes integer counts only. The always-valid intervals a
provisional KPI is judged on are built here as well, as the same `Interval` models.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.report_models import Interval, Median, Rate
from pipelines.stats import (
    always_valid_interval,
    always_valid_median_interval,
    median_with_interval,
    wilson_interval,
)


def share(k: int, n: int) -> float | None:
    """k / n, or None when there is nothing to divide by."""
    return k / n if n else None


def rate(k: int, n: int) -> Rate:
    """k of n with its Wilson 95% interval; value and interval are None when n is 0."""
    if n == 0:
        return Rate(k=k, n=n, value=None, interval=None)
    low, high = wilson_interval(k, n)
    return Rate(k=k, n=n, value=k / n, interval=Interval(low=low, high=high))


def median_days(values: Sequence[float]) -> Median:
    """The median with its distribution-free 95% interval; None for no values."""
    value, bounds = median_with_interval(values)
    return Median(
        n=len(values),
        value=value,
        interval=None if bounds is None else Interval(low=bounds[0], high=bounds[1]),
    )


def always_valid_rate_interval(rated: Rate) -> Interval | None:
    """The rate's always-valid 95% interval (safe to look at every week); None when n is 0."""
    bounds = always_valid_interval(rated.k, rated.n)
    return None if bounds is None else Interval(low=bounds[0], high=bounds[1])


def always_valid_median(values: Sequence[float]) -> Interval | None:
    """The median's always-valid 95% interval; None for no values."""
    bounds = always_valid_median_interval(values)
    return None if bounds is None else Interval(low=bounds[0], high=bounds[1])
