"""Builds launch reports: asks storage for the narrow frames a launch needs, hands them to the
Polars pipeline, and caches results per launch, as_of and segment until new events arrive."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import polars as pl
import pyarrow as pa

from app import launches
from app.errors import InvalidInput
from app.launches import LaunchState, naive_utc
from app.storage import Storage
from pipelines.launch import LaunchSpec
from pipelines.readiness import Readiness, check_matchers, kpi_resolutions
from pipelines.report import ReportInputs, compute_report, signal_property_names, trait_names
from pipelines.report_models import LaunchReport, Window
from pipelines.windows import baseline_start, evaluation_window, touched_days

EPOCH = datetime(1970, 1, 1)

CACHE_SIZE = 128


def default_as_of(now: datetime) -> datetime:
    """Reports default to now, to the minute, so pages opened within a minute share a cache."""
    return naive_utc(now).replace(second=0, microsecond=0)


def report_window(spec: LaunchSpec, as_of: datetime) -> Window:
    """The report's window: [launched_at, launched_at + window_days) cut at as_of. The events a
    report reads also cover the pre-launch baseline period of the same length."""
    return evaluation_window(naive_utc(spec.launched_at), spec.window_days, naive_utc(as_of))


def launch_signals(
    storage: Storage, spec: LaunchSpec, start: datetime, end: datetime, *, identified_only: bool = False
) -> pa.Table:
    """The launch's candidate signal events in [start, end), with its matchers' properties."""
    matchers = [*spec.signals.exposed, *spec.signals.used, *spec.signals.converted]
    return storage.launch_signals(
        start,
        end,
        event_names=sorted({m.event for m in matchers if m.event is not None}),
        any_types=sorted({m.type for m in matchers if m.event is None}),
        property_names=signal_property_names(spec),
        channel_property=spec.channel_property,
        identified_only=identified_only,
    )


def report_inputs(storage: Storage, spec: LaunchSpec, as_of: datetime, segment: str | None) -> ReportInputs:
    """The three narrow frames of one report, selected by DuckDB with parameters bound."""
    window = report_window(spec, as_of)
    start, launched, end = baseline_start(window), window.start, window.end
    properties = signal_property_names(spec)
    traits = trait_names(spec, segment)
    identified_only = spec.audience.identified_only
    activity = storage.launch_activity(
        start,
        launched,
        end,
        days=len(touched_days(window)),
        identified_only=identified_only,
    )
    signals = launch_signals(storage, spec, start, end, identified_only=identified_only)
    trait_rows = storage.launch_traits(end, traits) if traits else None
    return ReportInputs(
        activity=pl.from_arrow(activity),  # type: ignore[arg-type]
        signals=pl.from_arrow(signals),  # type: ignore[arg-type]
        traits=pl.from_arrow(trait_rows) if trait_rows is not None else _empty_traits(),  # type: ignore[arg-type]
        property_names=properties,
    )


def _empty_traits() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "user_id": pl.String,
            "occurred_at": pl.Datetime("us"),
            "trait": pl.String,
            "value": pl.String,
        }
    )


class ReportObserver(Protocol):
    """Told about cache lookups and computations (the app's metrics); kind is report or readiness."""

    def report_lookup(self, kind: str, hit: bool) -> None: ...

    def report_computed(self, kind: str, seconds: float) -> None: ...


class ReportService:
    """Computes reports and keeps the recent ones; new events or launch changes make them stale."""

    def __init__(
        self, storage: Storage, *, cache_size: int = CACHE_SIZE, observer: ReportObserver | None = None
    ) -> None:
        self._storage = storage
        self._cache: OrderedDict[tuple[object, ...], LaunchReport | Readiness] = OrderedDict()
        self._lock = threading.Lock()
        self._cache_size = cache_size
        self._observer = observer

    def report(self, key: str, *, as_of: datetime, segment: str | None = None) -> LaunchReport:
        state = launches.load_launch(self._storage, key)
        return self.report_for(state, as_of=as_of, segment=segment)

    def report_for(self, state: LaunchState, *, as_of: datetime, segment: str | None = None) -> LaunchReport:
        if segment is not None and not segment.strip():
            raise InvalidInput("segment must name a trait, e.g. plan", "query parameter: segment")
        spec = state.spec
        as_of = naive_utc(as_of)
        full_end = naive_utc(spec.launched_at) + timedelta(days=spec.window_days)
        # Past the window's end every as_of gives the same report: share one cache entry.
        effective = min(as_of, full_end)
        cache_key = (
            spec.key,
            state.latest.version,
            len(state.amendments),
            effective,
            segment,
            self._storage.data_version,
        )
        cached = self._cached(
            "report",
            cache_key,
            lambda: compute_report(
                report_inputs(self._storage, spec, effective, segment),
                launch=spec,
                kpis=state.kpi_records,
                as_of=effective,
                segment=segment,
            ),
        )
        assert isinstance(cached, LaunchReport)
        return cached

    def _cached(
        self, kind: str, key: tuple[object, ...], compute: Callable[[], LaunchReport | Readiness]
    ) -> LaunchReport | Readiness:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if self._observer is not None:
            self._observer.report_lookup(kind, hit is not None)
        if hit is not None:
            return hit
        started = time.perf_counter()
        value = compute()
        if self._observer is not None:
            self._observer.report_computed(kind, time.perf_counter() - started)
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    def readiness(self, key: str, *, as_of: datetime) -> Readiness:
        """Signal matchers against recent events; before launch, whether KPIs can be judged.
        Cached like reports: until new events arrive or the launch changes."""
        state = launches.load_launch(self._storage, key)
        as_of = naive_utc(as_of)
        cache_key = (
            "readiness",
            key,
            state.latest.version,
            len(state.amendments),
            as_of,
            self._storage.data_version,
        )
        cached = self._cached("readiness", cache_key, lambda: self._readiness(state, as_of))
        assert isinstance(cached, Readiness)
        return cached

    def _readiness(self, state: LaunchState, as_of: datetime) -> Readiness:
        spec = state.spec
        live = state.is_locked(as_of)
        properties = signal_property_names(spec)
        signals = launch_signals(self._storage, spec, EPOCH, as_of)
        checks = check_matchers(
            pl.from_arrow(signals),  # type: ignore[arg-type]
            launch=spec,
            property_names=properties,
            as_of=as_of,
            known_events=self._storage.event_names(as_of),
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
        # The audience the window would hold had it started `days` days ago: the same audience
        # rules (identified users, traits as of the start) applied to recent traffic.
        start = as_of - timedelta(days=days)
        recent = spec.model_copy(
            update={"launched_at": start.replace(tzinfo=UTC), "window_days": days, "kpis": []}
        )
        inputs = report_inputs(self._storage, recent, as_of, None)
        return compute_report(inputs, launch=recent, kpis=[], as_of=as_of).counts.active
