"""Tests for pipelines.stats against statsmodels/scipy reference implementations, and a simulation
of weekly looks showing why provisional KPIs are judged on always-valid intervals."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import betaln, xlog1py, xlogy
from scipy.stats import binom
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from pipelines import stats
from pipelines.rates import always_valid_rate_interval, rate
from pipelines.report_models import Interval
from pipelines.stats import (
    _always_valid_median_rank,
    _float_median_rank,
    _median_rank,
    _walk_median_rank,
    always_valid_interval,
    always_valid_median_interval,
    median,
    median_interval,
    newcombe_difference_interval,
    wilson_interval,
)
from pipelines.verdicts import kpi_verdict

WILSON_GRID = [
    (0, 1),
    (1, 1),
    (0, 2),
    (1, 2),
    (2, 2),
    (0, 10),
    (3, 10),
    (10, 10),
    (1, 7),
    (6, 7),
    (17, 40),
    (0, 10_000),
    (1, 10_000),
    (5_000, 10_000),
    (9_999, 10_000),
    (10_000, 10_000),
]


def _reference_median_rank(n: int) -> int:
    cdf = binom.cdf(np.arange(n + 1), n, 0.5)
    return max(1, int(np.argmax(cdf >= 0.025)))


@pytest.mark.parametrize(("k", "n"), WILSON_GRID)
@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99])
def test_wilson_matches_statsmodels(k: int, n: int, confidence: float) -> None:
    ref_low, ref_high = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    low, high = wilson_interval(k, n, confidence)
    assert low == pytest.approx(float(ref_low), abs=1e-12)
    assert high == pytest.approx(float(ref_high), abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_literal_value() -> None:
    # Hand-checked: k=3, n=10, z=1.959964 gives roughly (0.1078, 0.6032).
    low, high = wilson_interval(3, 10)
    assert low == pytest.approx(0.10779126740630167, abs=1e-12)
    assert high == pytest.approx(0.6032218525388546, abs=1e-12)


@pytest.mark.parametrize("n", [1, 10, 50, 10_000])
@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_wilson_extremes_are_exact_bounds(n: int, confidence: float) -> None:
    assert wilson_interval(0, n, confidence)[0] == 0.0
    assert wilson_interval(n, n, confidence)[1] == 1.0


def test_wilson_zero_trials_is_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("k", "n"),
    [(5, 4), (1, 0), (-1, 10), (0, -1), (-2, -1)],
)
def test_wilson_rejects_invalid_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="must"):
        wilson_interval(k, n)


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_wilson_rejects_invalid_confidence(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(3, 10, confidence)


NEWCOMBE_GRID = [
    (0, 1, 0, 1),
    (1, 1, 0, 1),
    (0, 10, 10, 10),
    (5, 10, 5, 10),
    (3, 10, 7, 12),
    (56, 70, 48, 80),  # Newcombe (1998) example (a)
    (9, 10, 3, 10),
    (0, 10_000, 1, 10_000),
    (123, 10_000, 4_321, 9_876),
    (10_000, 10_000, 9_999, 10_000),
]


@pytest.mark.parametrize(("k1", "n1", "k2", "n2"), NEWCOMBE_GRID)
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_newcombe_matches_statsmodels(k1: int, n1: int, k2: int, n2: int, confidence: float) -> None:
    ref_low, ref_high = confint_proportions_2indep(
        k1, n1, k2, n2, method="newcomb", compare="diff", alpha=1 - confidence
    )
    low, high = newcombe_difference_interval(k1, n1, k2, n2, confidence)
    assert low == pytest.approx(float(ref_low), abs=1e-9)
    assert high == pytest.approx(float(ref_high), abs=1e-9)
    assert -1.0 <= low <= k1 / n1 - k2 / n2 <= high <= 1.0


def test_newcombe_published_example() -> None:
    # Newcombe (1998), Table II, example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339.
    low, high = newcombe_difference_interval(56, 70, 48, 80)
    assert round(low, 4) == 0.0524
    assert round(high, 4) == 0.3339


@pytest.mark.parametrize(("k1", "n1", "k2", "n2"), [(0, 0, 3, 10), (3, 10, 0, 0), (0, 0, 0, 0)])
def test_newcombe_zero_trials_is_uninformative(k1: int, n1: int, k2: int, n2: int) -> None:
    assert newcombe_difference_interval(k1, n1, k2, n2) == (-1.0, 1.0)


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2"),
    [(11, 10, 3, 10), (3, 10, 11, 10), (-1, 10, 3, 10), (3, 10, -1, 10), (1, 0, 3, 10)],
)
def test_newcombe_rejects_invalid_counts(k1: int, n1: int, k2: int, n2: int) -> None:
    with pytest.raises(ValueError, match="must"):
        newcombe_difference_interval(k1, n1, k2, n2)


@pytest.mark.parametrize("n", [*range(1, 61), 1000, 10_007])
def test_median_interval_rank_matches_scipy(n: int) -> None:
    j = _reference_median_rank(n)
    values = [float(v) for v in range(1, n + 1)]
    random.Random(n).shuffle(values)
    assert median_interval(values) == (float(j), float(n - j + 1))


@pytest.mark.parametrize("n", [1000, 10_007, 100_000])
def test_fast_rank_agrees_with_full_exact_sum(n: int) -> None:
    assert _median_rank(n) == _walk_median_rank(n, 0)


def test_walk_reports_undecidable_when_skipped_tail_is_too_large() -> None:
    # Starting at the answer leaves a tail that alone exceeds 2**n / 40.
    assert _walk_median_rank(1000, 469) is None


def test_median_interval_large_n() -> None:
    values = [float(v) for v in range(100_000)]
    assert median_interval(values) == (49_689.0, 50_310.0)


@pytest.mark.parametrize("n", [5_000, 5_001, 7_919, 12_345, 65_536, 99_999])
def test_float_rank_agrees_with_the_exact_walk(n: int) -> None:
    assert _float_median_rank(n) == _walk_median_rank(n, 0)


@pytest.mark.parametrize("n", [610_000, 999_999, 3_000_000, 30_000_000])
def test_rank_of_large_samples_matches_scipy(n: int) -> None:
    # Samples of millions of adopters: j is where the binomial CDF first reaches 2.5%.
    j = _median_rank(n)
    assert binom.cdf(j - 1, n, 0.5) < 0.025 <= binom.cdf(j, n, 0.5)


def test_a_float_rank_too_close_to_call_is_decided_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a margin no floating-point answer can clear, the exact walk decides.
    monkeypatch.setattr(stats, "_FLOAT_MARGIN", 1e6)
    assert stats._float_median_rank(10_007) is None
    assert _median_rank(10_007) == _reference_median_rank(10_007)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([float(v) for v in range(1, 11)], (2.0, 9.0)),
        ([10.0, 3.0, 7.0, 1.0, 9.0, 2.0, 8.0, 5.0, 4.0, 6.0], (2.0, 9.0)),
        ([4.5], (4.5, 4.5)),
        ([3.0, -1.0], (-1.0, 3.0)),
        ([5.0, 1.0, 4.0, 2.0, 3.0], (1.0, 5.0)),
        ([float(v) for v in range(20, 0, -1)], (6.0, 15.0)),
    ],
)
def test_median_interval_literal_cases(values: list[float], expected: tuple[float, float]) -> None:
    assert median_interval(values) == expected


def test_median_interval_does_not_mutate_input() -> None:
    values = [3.0, 1.0, 2.0]
    median_interval(values)
    assert values == [3.0, 1.0, 2.0]


def test_median_interval_empty_is_none() -> None:
    assert median_interval([]) is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([7.0], 7.0),
        ([3.0, 1.0, 2.0], 2.0),
        ([4.0, 1.0, 3.0, 2.0], 2.5),
        ([1.0, 10.0], 5.5),
    ],
)
def test_median(values: list[float], expected: float | None) -> None:
    assert median(values) == expected


@pytest.mark.parametrize("func", [median, median_interval])
def test_nan_is_rejected(func: object) -> None:
    assert callable(func)
    with pytest.raises(ValueError, match="NaN"):
        func([1.0, math.nan, 2.0])


# -- always-valid intervals (section 7) ----------------------------------------------------------

ALWAYS_VALID_NS = [1, 2, 3, 7, 10, 40, 57, 1_825, 10_000, 123_457, 1_000_000]


def _always_valid_grid() -> list[tuple[int, int]]:
    grid: set[tuple[int, int]] = set()
    for n in ALWAYS_VALID_NS:
        for k in (0, 1, 2, n // 100, n // 3, n // 2, n - 2, n - 1, n):
            if 0 <= k <= n:
                grid.add((k, n))
    return sorted(grid)


def _reference_always_valid(k: int, n: int) -> tuple[float, float]:
    """The confidence sequence by scipy: betaln and brentq on the log of the mixture ratio."""

    def log_ratio(p: float) -> float:
        # xlogy and xlog1py make 0 * log(0) zero, so k = 0 and k = n need no special case.
        return float(betaln(k + 1, n - k + 1) - xlogy(k, p) - xlog1py(n - k, -p) - math.log(20.0))

    low = 0.0 if k == 0 else brentq(log_ratio, 5e-324, k / n, xtol=1e-300, rtol=1e-15)
    high = 1.0 if k == n else brentq(log_ratio, k / n, math.nextafter(1.0, 0.0), xtol=1e-300, rtol=1e-15)
    return (float(low), float(high))


@pytest.mark.parametrize(("k", "n"), _always_valid_grid())
def test_always_valid_interval_matches_scipy(k: int, n: int) -> None:
    low, high = always_valid_interval(k, n) or (math.nan, math.nan)
    ref_low, ref_high = _reference_always_valid(k, n)
    assert low == pytest.approx(ref_low, rel=1e-9, abs=1e-15)
    assert high == pytest.approx(ref_high, rel=1e-9, abs=1e-15)
    assert (low == 0.0) == (k == 0) and (high == 1.0) == (k == n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    # The low end is where the mixture ratio reaches 1/alpha = 20. (A high end near 1 is too
    # coarse in floating point to check this way; it is the mirror of the low end of n - k.)
    if k > 0:
        log_ratio = betaln(k + 1, n - k + 1) - xlogy(k, low) - xlog1py(n - k, -low)
        assert log_ratio == pytest.approx(math.log(20.0), abs=1e-6)
    mirror_low, mirror_high = always_valid_interval(n - k, n) or (math.nan, math.nan)
    assert (1.0 - mirror_high, 1.0 - mirror_low) == pytest.approx((low, high), abs=1e-15)


def test_always_valid_interval_of_the_sample_reach() -> None:
    # 218 of 1,825 users: about twice as wide as Wilson's 10.5%-13.5%.
    low, high = always_valid_interval(218, 1_825) or (math.nan, math.nan)
    assert (round(low, 3), round(high, 3)) == (0.093, 0.150)
    wilson_low, wilson_high = wilson_interval(218, 1_825)
    assert (round(wilson_low, 3), round(wilson_high, 3)) == (0.105, 0.135)
    assert 1.8 < (high - low) / (wilson_high - wilson_low) < 2.0


def test_always_valid_interval_closed_forms_at_the_extremes() -> None:
    # k = 0: B(1, n+1) = 1/(n+1), so the high end solves (1-p)^(-n) = 20 (n+1).
    for n in (1, 10, 1_000):
        assert always_valid_interval(0, n) == (0.0, pytest.approx(1 - (20 * (n + 1)) ** (-1 / n), abs=1e-15))
    # k = n: B(n+1, 1) = 1/(n+1), so the low end solves p^(-n) = 20 (n+1).
    for n in (1, 10, 1_000):
        assert always_valid_interval(n, n) == (pytest.approx((20 * (n + 1)) ** (-1 / n), abs=1e-15), 1.0)


def test_always_valid_interval_is_none_without_trials_and_checks_its_input() -> None:
    assert always_valid_interval(0, 0) is None
    for k, n in [(5, 4), (-1, 10), (0, -1)]:
        with pytest.raises(ValueError):
            always_valid_interval(k, n)
    for alpha in (0.0, 1.0):
        with pytest.raises(ValueError, match="alpha"):
            always_valid_interval(1, 2, alpha)


def _reference_always_valid_median_rank(n: int) -> int:
    """Smallest j >= 1 whose always-valid interval (of j of n) holds 1/2, by scipy's betaln."""
    j = np.arange(1, n + 1)
    inside = betaln(j + 1, n - j + 1) + n * math.log(2.0) < math.log(20.0)
    return int(j[np.argmax(inside)])


@pytest.mark.parametrize("n", [*range(1, 81), 1_000, 10_007, 123_457])
def test_always_valid_median_rank_matches_scipy(n: int) -> None:
    j = _reference_always_valid_median_rank(n)
    values = [float(v) for v in range(1, n + 1)]
    random.Random(n).shuffle(values)
    assert always_valid_median_interval(values) == (float(j), float(n - j + 1))
    # never narrower than the fixed-horizon interval
    assert j <= _median_rank(n)


def test_an_always_valid_rank_too_close_to_call_is_decided_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a margin no floating-point sign can clear, every comparison is made with integers.
    floats = [_always_valid_median_rank(n) for n in (1, 2, 12, 100, 1_001)]
    monkeypatch.setattr(stats, "_ALWAYS_VALID_MARGIN", 1e6)
    assert [_always_valid_median_rank(n) for n in (1, 2, 12, 100, 1_001)] == floats


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([4.5], (4.5, 4.5)),
        ([float(v) for v in range(11, -1, -1)], (1.0, 10.0)),  # n = 12: j = 2 (fixed: j = 3)
        ([float(v) for v in range(1, 101)], (35.0, 66.0)),  # n = 100: j = 35 (fixed: j = 40)
    ],
)
def test_always_valid_median_interval_literal_cases(
    values: list[float], expected: tuple[float, float]
) -> None:
    assert always_valid_median_interval(values) == expected


def test_always_valid_median_interval_of_nothing_and_of_nan() -> None:
    assert always_valid_median_interval([]) is None
    with pytest.raises(ValueError, match="NaN"):
        always_valid_median_interval([1.0, math.nan])


def test_weekly_looks_stay_honest_with_the_always_valid_interval() -> None:
    """8 weekly looks at launches whose true reach equals the 12% target: a verdict of met or
    missed at any look is false. Wilson at every look makes one far more often than 5%; the
    always-valid interval, judged by the same rule, stays under 5% across all looks at once."""
    launches, looks, weekly_users, target = 10_000, 8, 230, 0.12
    rng = np.random.default_rng(20_241_106)
    reached = rng.binomial(weekly_users, target, size=(launches, looks)).cumsum(axis=1)

    def judged(interval: Interval | None, n: int) -> bool:
        return kpi_verdict(interval, n, comparator=">=", target=target, min_sample=30) in ("met", "missed")

    # The pipeline's own intervals and verdict rule, once per distinct k of a look's n.
    false_calls = {kind: np.zeros((launches, looks), dtype=bool) for kind in ("wilson", "always_valid")}
    for look in range(looks):
        n = weekly_users * (look + 1)
        ks, where = np.unique(reached[:, look], return_inverse=True)
        rates = [rate(int(k), n) for k in ks]
        false_calls["wilson"][:, look] = np.array([judged(r.interval, n) for r in rates])[where]
        false_calls["always_valid"][:, look] = np.array(
            [judged(always_valid_rate_interval(r), n) for r in rates]
        )[where]
    wilson_8 = float(false_calls["wilson"].any(axis=1).mean())
    wilson_4 = float(false_calls["wilson"][:, :4].any(axis=1).mean())
    wilson_1 = float(false_calls["wilson"][:, 0].mean())
    always_valid_8 = float(false_calls["always_valid"].any(axis=1).mean())
    figures = (
        f"false met-or-missed over {launches:,} launches at the target rate: Wilson {wilson_1:.1%} at one "
        f"look, {wilson_4:.1%} over 4 weekly looks, {wilson_8:.1%} over 8; always-valid {always_valid_8:.1%} "
        "over 8"
    )
    assert always_valid_8 < 0.05 < wilson_4 < wilson_8, figures
    assert wilson_8 > 0.12, figures
