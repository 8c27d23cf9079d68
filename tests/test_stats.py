"""Tests for pipelines.stats against statsmodels/scipy reference implementations."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy.stats import binom
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from pipelines import stats
from pipelines.stats import (
    _float_median_rank,
    _median_rank,
    _walk_median_rank,
    median,
    median_interval,
    newcombe_difference_interval,
    wilson_interval,
)

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
