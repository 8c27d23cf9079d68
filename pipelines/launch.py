"""The launch spec: what a product owner fixes before launch (signals, audience, window, KPI
targets). Pure pydantic models with validation messages a product owner can act on; the app
stores and locks them, the pipelines read them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from pipelines.times import as_utc
from pipelines.windows import window_end

RATE_METRICS = (
    "exposure_rate",
    "adoption_rate",
    "notice_to_try_rate",
    "repeat_usage_rate",
    "conversion_rate",
    "baseline_conversion_rate",
    "stickiness",
)
DURATION_METRICS = ("median_days_to_adopt",)
_RETENTION = re.compile(r"^week_([1-9][0-9]?)_retention$")
CONVERSION_METRICS = ("conversion_rate", "baseline_conversion_rate")

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Scalar = str | int | FiniteFloat | bool
WhereValue = Scalar | list[Scalar]


def valid_metrics() -> str:
    return ", ".join([*RATE_METRICS, *DURATION_METRICS, "week_<n>_retention (n = 1..99)"])


def is_rate_metric(metric: str) -> bool:
    return metric in RATE_METRICS or _RETENTION.match(metric) is not None


def retention_week(metric: str) -> int | None:
    match = _RETENTION.match(metric)
    return int(match.group(1)) if match else None


def as_text(value: Scalar) -> str:
    """A property value as DuckDB's json_extract_string renders it, so filters compare alike."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def in_supported_range(value: datetime) -> datetime:
    """Times between 2000 and 2100 (UTC): launches, announcements and report times."""
    try:
        utc = as_utc(value)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("the time must lie between 2000-01-01 and 2100-01-01 (UTC)")
    return value


def _utc(value: datetime) -> datetime:
    return as_utc(in_supported_range(value))


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Matcher(_Model):
    """One way an event can count as a signal: all given fields must match."""

    type: Literal["track", "page", "screen", "identify"] = "track"
    event: str | None = Field(default=None, min_length=1)
    where: dict[str, WhereValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_something(self) -> Matcher:
        if self.type == "track" and self.event is None:
            raise ValueError("a track matcher needs an event name")
        for prop, value in self.where.items():
            if isinstance(value, list) and not value:
                raise ValueError(f"where.{prop} lists no values")
        return self

    def allowed(self) -> dict[str, list[str]]:
        """Each property filter as the list of accepted values, in text form."""
        return {
            prop: [as_text(v) for v in (value if isinstance(value, list) else [value])]
            for prop, value in self.where.items()
        }


class Signals(_Model):
    exposed: list[Matcher] = Field(min_length=1)
    used: list[Matcher] = Field(min_length=1)
    converted: list[Matcher] = Field(default_factory=list)


class Audience(_Model):
    identified_only: bool = True
    where: dict[str, WhereValue] = Field(default_factory=dict)

    def allowed(self) -> dict[str, list[str]]:
        return {
            trait: [as_text(v) for v in (value if isinstance(value, list) else [value])]
            for trait, value in self.where.items()
        }


class Announcement(_Model):
    channel: str = Field(min_length=1)
    at: UtcDatetime
    note: str = ""


class Kpi(_Model):
    """A target fixed before launch: metric, comparator and target, judged on min_sample users."""

    id: Slug
    metric: str
    comparator: Literal[">=", "<="]
    target: FiniteFloat
    min_sample: int = Field(default=30, ge=1)
    by_day: int | None = Field(default=None, ge=1)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in RATE_METRICS and value not in DURATION_METRICS and not _RETENTION.match(value):
            raise ValueError(f"unknown metric {value!r}; valid metrics: {valid_metrics()}")
        return value

    @model_validator(mode="after")
    def _target_in_range(self) -> Kpi:
        if is_rate_metric(self.metric) and not 0.0 <= self.target <= 1.0:
            raise ValueError(
                f"{self.metric} is a rate between 0 and 1, so target {self.target} is out of range "
                "(write 20% as 0.2)"
            )
        if self.metric in DURATION_METRICS and self.target < 0:
            raise ValueError(f"{self.metric} is a number of days; target {self.target} is negative")
        return self


LOCKED_FIELDS = ("launched_at", "window_days", "audience", "signals", "kpis")


class LaunchSpec(_Model):
    """A launch as a product owner writes it (YAML or JSON)."""

    key: Slug
    name: str = Field(min_length=1, max_length=200)
    owner: str = Field(min_length=1, max_length=200)
    description: str = ""
    launched_at: UtcDatetime
    window_days: int = Field(default=28, ge=1, le=366)
    audience: Audience = Field(default_factory=Audience)
    signals: Signals
    channel_property: str = Field(default="channel", min_length=1)
    announcements: list[Announcement] = Field(default_factory=list)
    kpis: list[Kpi] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> LaunchSpec:
        seen: set[str] = set()
        for kpi in self.kpis:
            if kpi.id in seen:
                raise ValueError(f"KPI id {kpi.id!r} is used twice; each KPI needs its own id")
            seen.add(kpi.id)
            if kpi.by_day is not None and kpi.by_day > self.window_days:
                raise ValueError(
                    f"KPI {kpi.id!r}: by_day {kpi.by_day} is beyond the {self.window_days}-day window"
                )
            if kpi.metric in CONVERSION_METRICS and not self.signals.converted:
                raise ValueError(f"KPI {kpi.id!r} measures {kpi.metric} but signals.converted is empty")
        return self

    @property
    def window_end(self) -> datetime:
        return window_end(self.launched_at, self.window_days)

    def locked_part(self) -> dict[str, Any]:
        """What may not change after launch, for comparing two versions (KPI order aside)."""
        locked = self.model_dump(mode="json", include=set(LOCKED_FIELDS))
        locked["kpis"] = sorted(locked["kpis"], key=lambda k: k["id"])
        return locked


class AmendmentNote(_Model):
    """Why a spec file changes KPIs of a launch that is already live: kept with each change."""

    reason: str = Field(min_length=1, max_length=2000, description="why the KPIs change after launch")
    author: str | None = Field(
        default=None, max_length=200, description="who asks (default: whoever applies the file)"
    )

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required: say why the KPIs change after launch")
        return value.strip()


class LaunchFile(LaunchSpec):
    """A launch spec file: the spec, plus, once the launch is live, the amendment that explains a
    change to its KPIs. The amendment is not part of the spec: it is recorded with the change."""

    amendment: AmendmentNote | None = Field(
        default=None,
        description="After launch: the reason for the KPI changes this file makes (targets, "
        "min_sample, by_day, or a new KPI), recorded as an amendment when applied.",
    )

    def spec(self) -> LaunchSpec:
        """The launch spec alone, as stored in versions (no amendment)."""
        return LaunchSpec.model_validate(self.model_dump(exclude={"amendment"}))


class KpiRecord(_Model):
    """A KPI as the report judges it: the version first set (fixed at launch, or first recorded
    after it), the current version after amendments, and the flags the report shows."""

    first_set: Kpi
    current: Kpi
    set_after_launch: bool = False
    amended: bool = False

    @property
    def id(self) -> str:
        return self.first_set.id
