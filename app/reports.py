"""Builds launch reports: asks storage for the narrow frames a launch needs, hands them to the
Polars pipeline, and caches results per launch, as_of and segment until new events arrive."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import polars as pl

from app import launches
from app.errors import InvalidInput
from app.launches import LaunchState
from app.storage import Storage
from pipelines.launch import LaunchSpec
from pipelines.plan import ReportPlan, audience_plan, matcher_check_plan, plan_report
from pipelines.readiness import Readiness, audience_size, check_matchers, kpi_resolutions
from pipelines.report import TRAITS_SCHEMA, ReportInputs, compute_report
from pipelines.report_models import LaunchReport
from pipelines.times import naive_utc

CACHE_SIZE = 128


def default_as_of(now: datetime) -> datetime:
    """Reports default to now, to the minute, so pages opened within a minute share a cache."""
    return naive_utc(now).replace(second=0, microsecond=0)


def launch_traits(storage: Storage, plan: ReportPlan) -> pl.DataFrame:
    """The plan's trait values; without trait names there is nothing to select."""
    if not plan.trait_names:
        return pl.DataFrame(schema=TRAITS_SCHEMA)
    return pl.from_arrow(storage.launch_traits(plan))  # type: ignore[return-value]


def report_inputs(storage: Storage, plan: ReportPlan) -> ReportInputs:
    """The three narrow frames of one report, selected by DuckDB as the plan says."""
    return ReportInputs(
        activity=pl.from_arrow(storage.launch_activity(plan)),  # type: ignore[arg-type]
        signals=pl.from_arrow(storage.launch_signals(plan)),  # type: ignore[arg-type]
        traits=launch_traits(storage, plan),
    )


class ReportObserver(Protocol):
    """Told about cache lookups and computations (the app's metrics); kind is report or readiness."""

    def report_lookup(self, kind: str, hit: bool) -> None: ...

    def report_computed(self, kind: str, seconds: float) -> None: ...


class ReportService:
    """Computes reports and keeps the recent ones; a launch change makes its reports stale, and
    so do new events, unless the caller accepts results computed since an earlier data
    version (`min_version`: what a refresh cycle pins at its start, so the reports it needs
    several times are computed once while events keep arriving)."""

    def __init__(
        self, storage: Storage, *, cache_size: int = CACHE_SIZE, observer: ReportObserver | None = None
    ) -> None:
        self._storage = storage
        # key -> (data version read before computing, result)
        self._cache: OrderedDict[tuple[object, ...], tuple[int, LaunchReport | Readiness]] = OrderedDict()
        self._lock = threading.Lock()
        self._cache_size = cache_size
        self._observer = observer

    def report(self, key: str, *, as_of: datetime, segment: str | None = None) -> LaunchReport:
        state = launches.load_launch(self._storage, key)
        return self.report_for(state, as_of=as_of, segment=segment)

    def report_for(
        self,
        state: LaunchState,
        *,
        as_of: datetime,
        segment: str | None = None,
        min_version: int | None = None,
    ) -> LaunchReport:
        if segment is not None and not segment.strip():
            raise InvalidInput("segment must name a trait, e.g. plan", "query parameter: segment")
        spec = state.spec
        # Past the window's end every as_of gives the same report: share one cache entry.
        effective = min(naive_utc(as_of), naive_utc(spec.window_end))
        cache_key = (spec.key, state.latest.version, len(state.amendments), effective, segment)
        cached = self._cached(
            "report",
            cache_key,
            lambda: self._compute(plan_report(spec, effective, kpis=state.kpi_records, segment=segment)),
            min_version,
        )
        assert isinstance(cached, LaunchReport)
        return cached

    def _compute(self, plan: ReportPlan) -> LaunchReport:
        return compute_report(report_inputs(self._storage, plan), plan)

    def _cached(
        self,
        kind: str,
        key: tuple[object, ...],
        compute: Callable[[], LaunchReport | Readiness],
        min_version: int | None,
    ) -> LaunchReport | Readiness:
        wanted = self._storage.data_version if min_version is None else min_version
        with self._lock:
            entry = self._cache.get(key)
            hit = entry[1] if entry is not None and entry[0] >= wanted else None
            if hit is not None:
                self._cache.move_to_end(key)
        if self._observer is not None:
            self._observer.report_lookup(kind, hit is not None)
        if hit is not None:
            return hit
        version = self._storage.data_version  # read before reading events: never newer than them
        started = time.perf_counter()
        value = compute()
        if self._observer is not None:
            self._observer.report_computed(kind, time.perf_counter() - started)
        with self._lock:
            known = self._cache.get(key)
            if known is None or known[0] <= version:
                self._cache[key] = (version, value)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    def readiness(self, key: str, *, as_of: datetime) -> Readiness:
        """Signal matchers against recent events; before launch, whether KPIs can be judged.
        Cached like reports: until new events arrive or the launch changes."""
        return self.readiness_for(launches.load_launch(self._storage, key), as_of=as_of)

    def readiness_for(
        self, state: LaunchState, *, as_of: datetime, min_version: int | None = None
    ) -> Readiness:
        as_of = naive_utc(as_of)
        cache_key = ("readiness", state.spec.key, state.latest.version, len(state.amendments), as_of)
        cached = self._cached("readiness", cache_key, lambda: self._readiness(state, as_of), min_version)
        assert isinstance(cached, Readiness)
        return cached

    def _readiness(self, state: LaunchState, as_of: datetime) -> Readiness:
        spec = state.spec
        live = state.is_locked(as_of)
        plan = matcher_check_plan(spec, as_of)
        since = plan.span.lookback
        checks = check_matchers(
            pl.from_arrow(self._storage.launch_signals(plan)),  # type: ignore[arg-type]
            launch=spec,
            property_names=plan.property_names,
            as_of=as_of,
            known_events=self._storage.event_names(since, as_of),
            since=since,
        )
        expected: dict[int, int] = {}
        if not live:
            for days in sorted({spec.window_days, *(k.by_day for k in spec.kpis if k.by_day)}):
                expected[days] = self._recent_active(spec, as_of, days)
        resolutions = kpi_resolutions(spec, expected_active=expected) if not live else []
        warnings = [c.warning for c in checks if c.warning] + [r.message for r in resolutions if r.warning]
        return Readiness(
            launch_key=spec.key,
            as_of=as_of,
            live=live,
            matchers=checks,
            expected_active=expected.get(spec.window_days),
            kpis=resolutions,
            warnings=warnings,
        )

    def _recent_active(self, spec: LaunchSpec, as_of: datetime, days: int) -> int:
        # The audience the window would hold had it started `days` days ago: activity and
        # traits of those days only, never the signals or a whole report.
        plan = audience_plan(spec, as_of, days)
        activity = pl.from_arrow(self._storage.launch_activity(plan))
        return audience_size(activity, launch_traits(self._storage, plan), plan=plan)  # type: ignore[arg-type]
