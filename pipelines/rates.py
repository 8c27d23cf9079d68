"""Rates and medians as the report's result models, with their intervals.

Every rate on a launch report is built here, so "k of n, None when n is 0, Wilson interval on
n" holds in one place. Stickiness is a mean of daily shares rather than a count of successes, so
it needs the Wilson interval evaluated at a proportion instead of at k; that variant lives here
too because `pipelines.stats` takes integer counts only.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from pipelines.report_models import Interval, Median, Rate
from pipelines.stats import median, median_interval, wilson_interval


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
    bounds = median_interval(values)
    return Median(
        n=len(values),
        value=median(values),
        interval=None if bounds is None else Interval(low=bounds[0], high=bounds[1]),
    )


def wilson_interval_at(p: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval at an observed proportion p on n trials.

    The same formula as `stats.wilson_interval`, but p need not be k / n for an integer k: a
    mean of daily shares (stickiness) is judged as if it were one share of n users.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got n={n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got p={p}")
    z = statistics.NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half_width = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    # As in stats.wilson_interval: rounding must not pretend 0 (or 1) is excluded.
    low = 0.0 if p == 0.0 else max(0.0, centre - half_width)
    high = 1.0 if p == 1.0 else min(1.0, centre + half_width)
    return (low, high)
