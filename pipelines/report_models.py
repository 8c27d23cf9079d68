"""The launch report as typed, frozen results: what the API returns as JSON and what the
dashboards draw. Rates are 0..1 floats; a rate whose denominator is 0 has value None."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from pipelines.times import utc_text

# Times are computed as naive UTC; in JSON they carry their zone (RFC 3339), e.g. "...Z".
UtcTime = Annotated[
    datetime,
    PlainSerializer(utc_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]

KpiVerdict = Literal["met", "missed", "inconclusive", "insufficient_data"]
# always_valid: a provisional KPI judged on an interval that holds at every weekly look at once;
# fixed: the fixed-horizon interval of section 5 (a closed period, or stickiness).
IntervalKind = Literal["always_valid", "fixed"]
LaunchVerdict = Literal["landed", "missed", "inconclusive"]
FunnelStepName = Literal["active", "exposed", "tried", "repeated", "converted"]


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class Interval(_Result):
    """A two-sided 95% interval."""

    low: float
    high: float


class Rate(_Result):
    """k of n, as a rate with its Wilson 95% interval; value and interval are None when n = 0."""

    k: int
    n: int
    value: float | None
    interval: Interval | None


class Median(_Result):
    """A median in days with its distribution-free 95% interval (None when n = 0)."""

    n: int
    value: float | None
    interval: Interval | None


class Stickiness(_Result):
    """Mean over the window's full UTC days of (adopters using it that day / adopters)."""

    value: float | None
    full_days: int
    adopters: int
    interval: Interval | None


class RetentionWeek(_Result):
    week: int
    rate: Rate


class Window(_Result):
    """The measured period: [start, end), cut at as_of when that is earlier (provisional)."""

    start: UtcTime
    end: UtcTime
    full_end: UtcTime
    as_of: UtcTime
    days: float
    provisional: bool


class Counts(_Result):
    active: int
    exposed: int
    adopters: int
    tried: int
    repeated: int
    converted: int


class Metrics(_Result):
    exposure_rate: Rate
    adoption_rate: Rate
    notice_to_try_rate: Rate
    repeat_usage_rate: Rate
    conversion_rate: Rate
    baseline_conversion_rate: Rate
    median_days_to_adopt: Median
    week_n_retention: list[RetentionWeek]
    stickiness: Stickiness


class KpiResult(_Result):
    """One KPI judged as first set; the amended target is shown beside it, never used.

    While its evaluation period is open (provisional) a KPI is judged on its always-valid
    interval, safe to check weekly; once the period is over, on the fixed-horizon interval.
    """

    id: str
    metric: str
    comparator: Literal[">=", "<="]
    target: float
    amended_target: float | None
    amended: bool
    set_after_launch: bool
    min_sample: int
    by_day: int | None
    window: Window
    value: float | None
    interval: Interval | None = Field(description="the 95% interval that judged the KPI (interval_kind)")
    fixed_interval: Interval | None = Field(
        description="the fixed-horizon 95% interval (Wilson, or order statistics for the median); "
        "the same as interval unless interval_kind is always_valid"
    )
    interval_kind: IntervalKind = Field(
        description="always_valid: provisional, judged on an interval safe to check weekly; "
        "fixed: judged on the fixed-horizon interval"
    )
    n: int
    verdict: KpiVerdict
    provisional: bool


class FunnelStep(_Result):
    step: FunnelStepName
    users: int
    parent: FunnelStepName | None = Field(description="the step this one's rate is taken from")
    rate_from_parent: float | None
    rate_from_active: float | None


class Funnel(_Result):
    steps: list[FunnelStep]
    largest_drop: FunnelStepName | None = Field(description="the step that loses the most users")
    summary: str


class Channel(_Result):
    """Users of E exposed through this channel, and of those, users whose first use in the
    window is at or after their earliest exposure through it."""

    channel: str
    exposed: int
    reach: float | None = Field(description="exposed through this channel / active")
    tried_after: Rate


class SegmentRow(_Result):
    value: str
    active: int
    exposure_rate: Rate
    adoption_rate: Rate
    notice_to_try_rate: Rate
    repeat_usage_rate: Rate
    conversion_rate: Rate


class Segments(_Result):
    """Each rate broken down by one trait, as of the window start; no value is `(none)`."""

    trait: str
    rows: list[SegmentRow]


class ConversionComparison(_Result):
    """Adopters' conversion against active non-adopters': an association, not an effect."""

    adopters: Rate
    non_adopters: Rate
    difference: float | None
    interval: Interval | None
    note: str


class TimelineDay(_Result):
    day: date
    active: int
    newly_exposed: int
    new_adopters: int
    cumulative_adoption_rate: float | None
    cumulative_exposure_rate: float | None = Field(
        default=None,
        description="users exposed so far / users of A whose first event in the window came so far",
    )


class Marker(_Result):
    label: str
    at: UtcTime


class Timeline(_Result):
    days: list[TimelineDay]
    target: float | None = Field(description="the adoption_rate KPI's target, if there is one")
    markers: list[Marker]


class LaunchReport(_Result):
    launch_key: str
    name: str
    owner: str
    window: Window
    provisional: bool
    counts: Counts
    metrics: Metrics
    kpis: list[KpiResult]
    verdict: LaunchVerdict
    funnel: Funnel
    channels: list[Channel]
    segments: Segments | None
    adopters_vs_non_adopters: ConversionComparison
    timeline: Timeline


# ----------------------------------------------------------------------------- across launches

# The days since launch at which launches are compared, and the statuses of a metric at a day.
COMPARISON_DAYS: tuple[int, ...] = (7, 14, 28)
MetricAtDayStatus = Literal["measured", "not_reached", "beyond_window"]


class CurvePoint(_Result):
    """One UTC day of a launch's window, counted from the launch's day (day 0)."""

    day: int = Field(description="days since launch: 0 is the UTC day the launch went live")
    utc_date: date
    cumulative_adoption_rate: float | None
    cumulative_exposure_rate: float | None


class MetricAtDay(_Result):
    """A metric over the launch's first `day` days, as a report as of launched_at + day gives it."""

    metric: str
    day: int
    status: MetricAtDayStatus = Field(
        description="measured; not_reached: the launch is not that many days old yet; "
        "beyond_window: the window is shorter"
    )
    value: float | None
    interval: Interval | None = Field(description="the fixed-horizon 95% interval")
    n: int


class LaunchComparison(_Result):
    """One launch as the compare page and `GET /api/compare` show it beside others."""

    key: str
    name: str
    owner: str
    launched_at: UtcTime
    window_days: int
    closed: bool = Field(description="the window has ended")
    verdict: LaunchVerdict
    curve: list[CurvePoint]
    metrics: list[MetricAtDay]
    funnel: Funnel


class Comparison(_Result):
    """Launches side by side, aligned on their launch day."""

    as_of: UtcTime
    days: list[int] = Field(description="the days since launch the metrics are compared at")
    metrics: list[str] = Field(description="adoption_rate and every compared launch's KPI metrics")
    launches: list[LaunchComparison]


class PastValue(_Result):
    """What one past closed launch reached for a metric by a day."""

    key: str
    name: str
    launched_at: UtcTime
    value: float
    n: int


class TargetHint(_Result):
    """A KPI's target beside what past closed launches reached for its metric by the same day."""

    kpi_id: str
    metric: str
    comparator: Literal[">=", "<="]
    target: float
    day: int = Field(description="the KPI's by_day, or the window's length when it has none")
    launches: list[PastValue] = Field(description="the past launches, most recently closed first")
    median: float | None
    low: float | None
    high: float | None
    is_stretch: bool = Field(
        description="no past launch reached the target (for <= KPIs: none got as low as it)"
    )
    sentence: str


class TargetHints(_Result):
    launch_key: str
    as_of: UtcTime
    hints: list[TargetHint]
