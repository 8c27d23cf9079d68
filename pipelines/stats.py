"""Small-sample statistics for Landed's launch reports.

Launch cohorts are often tiny (a handful of sign-ups on day one) and
sometimes empty, so the usual normal-approximation intervals mislead exactly
when readers look at them most. This module provides intervals that stay
honest there: the Wilson score interval for a conversion rate, Newcombe's
hybrid score interval for the difference between two rates, and a
distribution-free interval for a median built from order statistics with an
exact binomial rule. A provisional report is looked at every week, so it also
provides always-valid intervals (Robbins' mixture confidence sequence, which
holds at every look at once) for a rate and for a median. It depends on the
standard library only, so it can run inside any pipeline worker without
pulling in numpy or scipy.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = [
    "always_valid_interval",
    "always_valid_median_interval",
    "median",
    "median_interval",
    "median_with_interval",
    "newcombe_difference_interval",
    "wilson_interval",
]

# P(Bin(n, 1/2) <= j) >= 1/40 is tested as 40 * sum(C(n, i)) >= 2**n so the
# comparison is exact integer arithmetic rather than a rounded float.
_MEDIAN_TAIL_DENOMINATOR = 40

# Summing every C(n, i) from i = 0 costs O(n) big-integer steps, about a
# second at n = 100_000. Starting this many standard deviations below n/2
# keeps the walk to O(sqrt(n)) steps. A rigorous upper bound on the skipped
# tail still decides each comparison exactly; if it ever cannot, we fall back
# to the full sum rather than guess.
_SKIPPED_TAIL_SIGMAS = 10

# Above this n the exact walk's big integers (n bits each, O(sqrt(n)) steps) cost seconds, so
# the rank is found in floating point first. Its only error is lgamma's rounding, a relative
# error near 1e-8 at n = 10**7; a result whose tail probabilities lie within _FLOAT_MARGIN
# (relative) of 1/40 is re-decided by the exact walk instead of being trusted.
_FLOAT_RANK_FROM = 5_000
_FLOAT_MARGIN = 1e-6

# The always-valid intervals are 95% ones, as every other interval on a report.
ALWAYS_VALID_ALPHA = 0.05

# Whether 1/2 lies inside the always-valid interval of j of n is a sign of a sum of lgamma values
# as large as lgamma(n + 2); each carries a relative rounding error of a few 1e-16. A sign within
# this margin (relative to that size) is re-decided with exact integers instead of being trusted.
_ALWAYS_VALID_MARGIN = 1e-13


def _z_score(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return statistics.NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _check_counts(k: int, n: int) -> None:
    if n < 0:
        raise ValueError(f"trial count n must be non-negative, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"success count k must satisfy 0 <= k <= n, got k={k}, n={n}")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval for the proportion ``k / n``.

    Raises ``ValueError`` unless ``0 <= k <= n`` and ``0 < confidence < 1``.
    """
    _check_counts(k, n)
    _z_score(confidence)
    if n == 0:
        # With no trials the data say nothing about the rate, so the only
        # defensible interval is the whole parameter space.
        return (0.0, 1.0)
    return wilson_interval_at(k / n, n, confidence)


def wilson_interval_at(p: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval at an observed share p on n trials.

    p need not be k / n for an integer k: a mean of daily shares (stickiness) is judged as if
    it were one share of n users, and readiness searches for the shares a target can resolve.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got n={n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got p={p}")
    z = _z_score(confidence)
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half_width = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    # At p == 0 (p == 1) the lower (upper) bound is exactly 0 (1), but
    # sqrt-of-a-square rounding can leave it a few ulps off either side;
    # a rate of 1e-20 would be a spurious claim that zero is excluded.
    low = 0.0 if p == 0.0 else max(0.0, centre - half_width)
    high = 1.0 if p == 1.0 else min(1.0, centre + half_width)
    return (low, high)


def newcombe_difference_interval(
    k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``k1/n1 - k2/n2``.

    This is method 10 of Newcombe (1998), "Interval estimation for the
    difference between independent proportions", built from the two Wilson
    intervals. Raises ``ValueError`` on invalid counts or confidence.
    """
    _check_counts(k1, n1)
    _check_counts(k2, n2)
    _z_score(confidence)
    if n1 == 0 or n2 == 0:
        # One arm carries no information, so any difference remains possible.
        return (-1.0, 1.0)
    p1 = k1 / n1
    p2 = k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (max(-1.0, low), min(1.0, high))


def _check_no_nan(values: Sequence[float]) -> None:
    # NaN compares false with everything, so sorting would silently scatter
    # it and every order statistic after it would be meaningless.
    if any(math.isnan(v) for v in values):
        raise ValueError("values must not contain NaN")


def median(values: Sequence[float]) -> float | None:
    """Sample median, or ``None`` for empty input.

    With an even count this is the mean of the two middle values.
    """
    return median_with_interval(values)[0]


def _walk_median_rank(n: int, start: int) -> int | None:
    """Smallest ``j >= start`` with ``40 * S(j) >= 2**n``, where ``S`` is the
    cumulative sum of ``C(n, i)``; ``None`` if the skipped tail makes it
    undecidable."""
    threshold = 1 << n
    term = math.comb(n, start)
    if start == 0:
        tail_bound = 0
    else:
        # C(n, i-1) / C(n, i) = i / (n-i+1) grows with i, so every term below
        # ``start`` shrinks by at least rho = start / (n-start+1) per step and
        # the geometric series gives term * start / (n - 2*start + 1).
        tail_bound = -(-term * start // (n - 2 * start + 1))
        if _MEDIAN_TAIL_DENOMINATOR * tail_bound >= threshold:
            return None
    partial = 0
    i = start
    while True:
        partial += term
        if _MEDIAN_TAIL_DENOMINATOR * partial >= threshold:
            return i
        if _MEDIAN_TAIL_DENOMINATOR * (partial + tail_bound) >= threshold:
            return None
        term = term * (n - i) // (i + 1)
        i += 1


def _float_median_rank(n: int) -> int | None:
    """Smallest ``j`` with ``P(Bin(n, 1/2) <= j) >= 1/40`` in floating point, or ``None`` when
    the answer is too close to call without exact arithmetic."""
    target = 1.0 / _MEDIAN_TAIL_DENOMINATOR
    start = max(0, math.floor(n / 2.0 - _SKIPPED_TAIL_SIGMAS * math.sqrt(n) / 2.0))
    # P(X = start), in logs so nothing overflows; the tail below start is under 1e-22.
    term = math.exp(
        math.lgamma(n + 1) - math.lgamma(start + 1) - math.lgamma(n - start + 1) - n * math.log(2.0)
    )
    below, i = 0.0, start
    while below + term < target:
        below += term
        term *= (n - i) / (i + 1)
        i += 1
    # P(X <= i - 1) = below < 1/40 <= P(X <= i) = below + term: decided only with room to spare.
    if target - below <= _FLOAT_MARGIN * target or below + term - target <= _FLOAT_MARGIN * target:
        return None
    return i


def _median_rank(n: int) -> int:
    """1-based rank ``j`` of the lower order statistic in the median interval."""
    rank = _float_median_rank(n) if n >= _FLOAT_RANK_FROM else None
    if rank is not None:
        return max(1, rank)
    sigma = math.sqrt(n) / 2.0
    start = max(0, math.floor(n / 2.0 - _SKIPPED_TAIL_SIGMAS * sigma))
    rank = _walk_median_rank(n, start)
    if rank is None:
        # The fast path could not decide; the full sum is slow but exact.
        rank = _walk_median_rank(n, 0)
        assert rank is not None  # with no skipped tail the walk always decides
    # j = 0 would mean x(0), which does not exist; the sample extremes are the
    # widest interval the data can support.
    return max(1, rank)


def median_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """Distribution-free 95% confidence interval for the median.

    Returns ``(x(j), x(n-j+1))`` from the sorted values, where ``j`` is the
    smallest integer with ``P(Bin(n, 1/2) <= j) >= 0.025`` and at least 1.
    Returns ``None`` for empty input; raises ``ValueError`` on NaN.
    """
    return median_with_interval(values)[1]


def median_with_interval(values: Sequence[float]) -> tuple[float | None, tuple[float, float] | None]:
    """The median and its 95% interval (see ``median`` and ``median_interval``), sorting once."""
    n = len(values)
    if n == 0:
        return None, None
    _check_no_nan(values)
    ordered = sorted(values)
    middle = n // 2
    centre = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0
    j = _median_rank(n)
    return float(centre), (float(ordered[j - 1]), float(ordered[n - j]))


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")


def _log_beta(k: int, n: int) -> float:
    """log B(k + 1, n - k + 1): the log of the uniform mixture of p^k (1 - p)^(n - k)."""
    return math.lgamma(k + 1) + math.lgamma(n - k + 1) - math.lgamma(n + 2)


def _low_end(k: int, n: int, alpha: float) -> float:
    """The low end of the always-valid interval of k of n, 0 < k <= n, by bisection.

    g(p) = log B(k+1, n-k+1) - k log p - (n-k) log(1-p) - log(1/alpha) is convex with its
    minimum at k/n, where it is negative (the mixture never exceeds its largest integrand), and
    tends to +inf as p -> 0: the low end is its one root in (0, k/n).
    """
    offset = _log_beta(k, n) - math.log(1.0 / alpha)
    failures = n - k

    def g(p: float) -> float:
        # (n - k) log(1 - p) is left out when there are no failures: 0 * log(0) would fail at p = 1.
        return offset - k * math.log(p) - (failures * math.log1p(-p) if failures else 0.0)

    low, high = 0.0, k / n  # g(low) > 0 (as a limit), g(high) < 0
    while True:
        middle = (low + high) / 2.0
        # Halving until the midpoint is one of the ends resolves the root to the last bit; from
        # a bracket [0, k/n] that is about 60 steps plus log2 of how far below k/n the root is.
        if middle <= low or middle >= high:
            # low is just outside the set (g > 0): returning it errs, by one bit, on the wide side.
            return low
        value = g(middle)
        if value == 0.0:
            return middle
        if value > 0.0:
            low = middle
        else:
            high = middle


def always_valid_interval(k: int, n: int, alpha: float = ALWAYS_VALID_ALPHA) -> tuple[float, float] | None:
    """The always-valid 1 - alpha interval for the proportion ``k / n``; None when n = 0.

    It is Robbins' mixture confidence sequence with a uniform mixing distribution: the p in
    [0, 1] with B(k+1, n-k+1) / (p^k (1-p)^(n-k)) < 1/alpha. By Ville's inequality it covers the
    true rate at every n at once with probability 1 - alpha, so a report may be looked at as
    often as anyone likes. The ends are found by bisection on the log of that ratio, never by a
    normal approximation; the low end is 0 when k = 0 and the high end 1 when k = n.
    """
    _check_counts(k, n)
    _check_alpha(alpha)
    if n == 0:
        return None
    low = 0.0 if k == 0 else _low_end(k, n, alpha)
    # The ratio at p for k of n is the ratio at 1 - p for n - k of n: the high end mirrors a low
    # end, so one root finder serves both and the interval of n - k is exactly the mirror image.
    high = 1.0 if k == n else 1.0 - _low_end(n - k, n, alpha)
    return (low, high)


def _half_inside(j: int, n: int) -> bool:
    """Whether 1/2 lies inside the always-valid 95% interval of j of n (decided exactly).

    At p = 1/2 the ratio is 2^n / ((n + 1) C(n, j)), so 1/2 is inside when
    20 (n + 1) C(n, j) > 2^n; the two sides are never equal (5 divides one side only).
    """
    log_gap = (
        math.log(1.0 / ALWAYS_VALID_ALPHA)
        + math.log(n + 1)
        + math.lgamma(n + 1)
        - math.lgamma(j + 1)
        - math.lgamma(n - j + 1)
        - n * math.log(2.0)
    )
    if abs(log_gap) > _ALWAYS_VALID_MARGIN * (math.lgamma(n + 2) + n + 1.0):
        return log_gap > 0.0
    # Too close to call in floating point: exact integers are slow at large n (seconds near
    # n = 10**6) but this is reached about once in thousands of sample sizes.
    return 20 * (n + 1) * math.comb(n, j) > 1 << n


def _always_valid_median_rank(n: int) -> int:
    """Smallest j >= 1 for which 1/2 lies inside the always-valid interval of j of n.

    C(n, j) grows with j up to n/2, so "inside" holds from some j on; at j = floor(n/2) it always
    holds (C(n, n/2) >= 2^n / (n + 1)), so a bisection over [1, max(1, n // 2)] finds it.
    """
    low, high = 1, max(1, n // 2)
    while low < high:
        middle = (low + high) // 2
        if _half_inside(middle, n):
            high = middle
        else:
            low = middle + 1
    return low


def always_valid_median_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """The always-valid 95% interval for the median: ``(x(j), x(n-j+1))`` of the sorted values,
    j the smallest integer >= 1 for which 1/2 lies inside the always-valid interval of j of n.

    Returns ``None`` for empty input; raises ``ValueError`` on NaN.
    """
    n = len(values)
    if n == 0:
        return None
    _check_no_nan(values)
    ordered = sorted(values)
    j = _always_valid_median_rank(n)
    return (float(ordered[j - 1]), float(ordered[n - j]))
