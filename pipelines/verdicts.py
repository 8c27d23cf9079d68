"""KPI and launch verdicts: how an interval is judged against a target set before launch.

Verdicts depend on the interval, never on the point estimate alone, so a small cohort that
happens to clear the target is "inconclusive" rather than "met". Kept apart from the metric
computations so the rules of spec section 5 read in one screen; they apply unchanged to the
always-valid interval a provisional KPI is judged on (section 7).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pipelines.report_models import Interval, KpiVerdict, LaunchVerdict

Comparator = Literal[">=", "<="]


def kpi_verdict(
    interval: Interval | None, n: int, *, comparator: Comparator, target: float, min_sample: int
) -> KpiVerdict:
    """met / missed / inconclusive from the interval, or insufficient_data below min_sample.

    A metric without an interval despite enough users (stickiness before the first full day)
    has nothing to judge yet, which is also insufficient data.
    """
    if n < min_sample or interval is None:
        return "insufficient_data"
    if comparator == ">=":
        if interval.low >= target:
            return "met"
        if interval.high < target:
            return "missed"
        return "inconclusive"
    if interval.high <= target:
        return "met"
    if interval.low > target:
        return "missed"
    return "inconclusive"


def launch_verdict(verdicts: Sequence[KpiVerdict]) -> LaunchVerdict:
    """landed when every KPI is met, missed when any is missed, else inconclusive.

    A launch without KPIs has nothing to land on, so it is inconclusive rather than landed.
    """
    if any(v == "missed" for v in verdicts):
        return "missed"
    if verdicts and all(v == "met" for v in verdicts):
        return "landed"
    return "inconclusive"
