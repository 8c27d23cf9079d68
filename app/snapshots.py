"""Results computed ahead: what the pages show of each launch (its report now, its report a
week earlier, and readiness at both times), kept as one snapshot per launch and segment and
recomputed in the background when new events have arrived, at most every
`LANDED_REFRESH_SECONDS`.

A page never waits for a snapshot it has once seen: it gets the latest one at once, with the
time it was computed, and the refresher replaces it when it is due. Only the first view of a
snapshot never computed (a new launch, a launch just changed, a segment not viewed before)
computes it there and then. The portfolio, the scorecard and the weekly review all read the
same snapshots, so at any moment they show a launch with the same numbers.

With `refresh_seconds` 0 there is no background work: a view recomputes a snapshot whenever
new events have arrived, so every page is exact and slow on large data (what tests use).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app import launches
from app.compare import target_hints
from app.errors import LandedError
from app.launches import LaunchState
from app.reports import ReportService, default_as_of
from app.storage import Storage
from pipelines.readiness import Readiness
from pipelines.report_models import LaunchReport, TargetHint
from pipelines.times import naive_utc

log = logging.getLogger("landed.refresh")

WEEK = timedelta(days=7)
# Snapshots of segments nobody has viewed for this long are no longer refreshed (the default
# segment of every launch always is).
IDLE_SEGMENT = timedelta(minutes=30)


def launch_stamp(state: LaunchState) -> tuple[int, int]:
    """Changes whenever the launch is replaced or amended."""
    return (state.latest.version, len(state.amendments))


def default_segment(traits: Sequence[str]) -> str | None:
    """The trait a scorecard breaks rates down by unless asked otherwise: `plan` when events
    carry it (paid plans are what launches are judged on), else the most common of `traits`."""
    return "plan" if "plan" in traits else (traits[0] if traits else None)


@dataclass(frozen=True)
class LaunchSnapshot:
    """One launch as the pages show it, computed at `computed_at` (naive UTC).

    report: as of `as_of`, broken down by `segment`; previous: as of a week before (None
    before the launch's first week); readiness and previous_readiness at those two times;
    target_hints: what past launches reached on this launch's KPIs."""

    state: LaunchState
    segment: str | None
    as_of: datetime
    computed_at: datetime
    data_version: int
    report: LaunchReport
    previous: LaunchReport | None
    readiness: Readiness
    previous_readiness: Readiness | None
    target_hints: list[TargetHint]

    @property
    def key(self) -> str:
        return self.state.spec.key

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (naive_utc(now) - self.computed_at).total_seconds())


class Snapshots:
    """The latest snapshot of each (launch, segment), and the rules for refreshing them."""

    def __init__(
        self,
        storage: Storage,
        reports: ReportService,
        *,
        refresh_seconds: float,
        clock: Callable[[], datetime] | None = None,
        on_refresh: Callable[[float], None] | None = None,
    ) -> None:
        self._storage = storage
        self._reports = reports
        self.refresh_seconds = refresh_seconds
        # Told the seconds of each background refresh that recomputed anything (the app's metrics).
        self._on_refresh = on_refresh
        self._clock = clock or (lambda: naive_utc(datetime.now().astimezone()))
        self._snapshots: dict[tuple[str, str | None], LaunchSnapshot] = {}
        self._viewed: dict[tuple[str, str | None], datetime] = {}
        self._lock = threading.Lock()
        # One computation per (launch, segment) at a time: a view and the refresher asking
        # for the same snapshot share the work.
        self._computing: dict[tuple[str, str | None], threading.Lock] = {}
        # (computed at, data version, names): the trait names events carry, kept like snapshots.
        self._traits: tuple[datetime, int, list[str]] | None = None
        # (seconds, snapshots) of the last refresh that recomputed any: for operators and benchmarks.
        self.last_cycle: tuple[float, int] | None = None

    # -- reading ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock()

    def get(self, state: LaunchState, segment: str | None) -> LaunchSnapshot:
        """The snapshot the pages show for the launch, computing it only if there is none for
        this version of the launch (or, with refresh_seconds 0, none for the current data)."""
        key = (state.spec.key, segment)
        now = self.now()
        with self._lock:
            self._viewed[key] = now
            snapshot = self._snapshots.get(key)
        current = snapshot is not None and launch_stamp(snapshot.state) == launch_stamp(state)
        if snapshot is not None and current and (self.refresh_seconds > 0 or not self._stale(snapshot, now)):
            return snapshot
        return self._compute(state, segment, since=snapshot)

    def trait_keys(self) -> list[str]:
        """The trait names events carry, most common first (a scan of every event's traits,
        so kept and refreshed like the snapshots)."""
        with self._lock:
            cached = self._traits
        if cached is None or (self.refresh_seconds <= 0 and cached[1] != self._storage.data_version):
            cached = self._load_traits()
        return list(cached[2])

    def default_segment(self) -> str | None:
        return default_segment(self.trait_keys())

    def _load_traits(self) -> tuple[datetime, int, list[str]]:
        version = self._storage.data_version
        loaded = (self.now(), version, self._storage.trait_keys())
        with self._lock:
            self._traits = loaded
        return loaded

    def for_launches(self, states: Iterable[LaunchState], segment: str | None) -> list[LaunchSnapshot]:
        return [self.get(state, segment) for state in states]

    def refresh_now(self, states: Iterable[LaunchState], segment: str | None) -> list[LaunchSnapshot]:
        """Recomputes the launches' snapshots now (a page's "refresh now"), unless one is
        already current: computed for the data there is, as of this minute."""
        now = self.now()
        results = []
        for state in states:
            with self._lock:
                snapshot = self._snapshots.get((state.spec.key, segment))
            if (
                snapshot is None
                or launch_stamp(snapshot.state) != launch_stamp(state)
                or self._stale(snapshot, now)
            ):
                snapshot = self._compute(state, segment, since=snapshot)
            results.append(snapshot)
        return results

    # -- refreshing ------------------------------------------------------------------------------

    def _stale(self, snapshot: LaunchSnapshot, now: datetime) -> bool:
        """New events arrived since it was computed, or (window still open) time moved on."""
        if snapshot.data_version != self._storage.data_version:
            return True
        as_of = self._effective(snapshot.state, default_as_of(now))
        return as_of != snapshot.as_of

    @staticmethod
    def _effective(state: LaunchState, as_of: datetime) -> datetime:
        # Past the window's end every as_of gives the same report.
        return min(naive_utc(as_of), naive_utc(state.spec.window_end))

    def _compute(
        self,
        state: LaunchState,
        segment: str | None,
        *,
        since: LaunchSnapshot | None,
        version: int | None = None,
    ) -> LaunchSnapshot:
        key = (state.spec.key, segment)
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                current = self._snapshots.get(key)
            done = current is not None and current is not since
            if current is not None and done and launch_stamp(current.state) == launch_stamp(state):
                return current  # computed by someone else while this one waited
            snapshot = self._build(state, segment, version)
            with self._lock:
                self._snapshots[key] = snapshot
            return snapshot

    def _build(self, state: LaunchState, segment: str | None, version: int | None = None) -> LaunchSnapshot:
        """The launch's snapshot; the reports it needs (its own, and past launches' for the
        hints) are reused if computed since data version `version` (default: now). A refresh
        cycle pins one version for all its snapshots, so the hints' reports are computed once
        per cycle while events keep arriving."""
        now = self.now()
        # Read first, so the snapshot never claims newer data than it read.
        version = self._storage.data_version if version is None else version
        as_of = self._effective(state, default_as_of(now))
        reports = self._reports
        previous_as_of = as_of - WEEK
        had_previous = previous_as_of > state.launched_at
        previous = previous_readiness = None
        if had_previous:
            previous = reports.report_for(state, as_of=previous_as_of, min_version=version)
            previous_readiness = reports.readiness_for(state, as_of=previous_as_of, min_version=version)
        return LaunchSnapshot(
            state=state,
            segment=segment,
            as_of=as_of,
            computed_at=now,
            data_version=version,
            report=reports.report_for(state, as_of=as_of, segment=segment, min_version=version),
            previous=previous,
            readiness=reports.readiness_for(state, as_of=as_of, min_version=version),
            previous_readiness=previous_readiness,
            target_hints=target_hints(
                self._storage, reports, state.spec.key, now=default_as_of(now), min_version=version
            ).hints,
        )

    def due(self) -> list[tuple[LaunchState, str | None]]:
        """The snapshots the refresher should recompute now: stale, older than refresh_seconds,
        of a launch that still exists, and of a segment viewed lately (the default segment
        of every launch always)."""
        now = self.now()
        states = {state.spec.key: state for state in launches.list_launches(self._storage)}
        with self._lock:
            traits = self._traits
        stale = traits is not None and traits[1] != self._storage.data_version
        if stale and traits is not None and (now - traits[0]).total_seconds() >= self.refresh_seconds:
            self._load_traits()
        wanted = self.default_segment()
        with self._lock:
            for gone in [k for k in self._snapshots if k[0] not in states]:
                del self._snapshots[gone]
                self._viewed.pop(gone, None)
            entries = dict(self._snapshots)
            viewed = dict(self._viewed)
        due: list[tuple[LaunchState, str | None]] = []
        for launch_key, state in states.items():
            if (launch_key, wanted) not in entries:
                due.append((state, wanted))
        for (launch_key, segment), snapshot in entries.items():
            state = states[launch_key]
            if segment != wanted and now - viewed.get((launch_key, segment), now) > IDLE_SEGMENT:
                continue
            changed = launch_stamp(snapshot.state) != launch_stamp(state)
            old_enough = snapshot.age_seconds(now) >= self.refresh_seconds
            if changed or (old_enough and self._stale(snapshot, now)):
                due.append((state, segment))
        return due

    def refresh_due(self, stop: threading.Event | None = None) -> int:
        """Recomputes every snapshot that is due (until `stop` is set); returns how many."""
        started = time.perf_counter()
        pinned = self._storage.data_version
        done = 0
        for state, segment in self.due():
            if stop is not None and stop.is_set():
                break
            with self._lock:
                since = self._snapshots.get((state.spec.key, segment))
            self._compute(state, segment, since=since, version=pinned)
            done += 1
        if done:
            self.last_cycle = (time.perf_counter() - started, done)
            if self._on_refresh is not None:
                self._on_refresh(self.last_cycle[0])
        return done

    def oldest_age(self) -> float:
        """Seconds since the oldest snapshot was computed (0 when there is none)."""
        with self._lock:
            computed = [snapshot.computed_at for snapshot in self._snapshots.values()]
        return (self.now() - min(computed)).total_seconds() if computed else 0.0


class Refresher:
    """The background thread keeping the snapshots current (none when refresh_seconds is 0)."""

    def __init__(self, snapshots: Snapshots, *, tick_seconds: float | None = None) -> None:
        self._snapshots = snapshots
        seconds = snapshots.refresh_seconds
        self._tick = tick_seconds if tick_seconds is not None else max(0.5, min(5.0, seconds / 4))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cycles = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._snapshots.refresh_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="landed-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)  # the snapshot under way is finished first
            if self._thread.is_alive():
                log.warning("the refresh under way did not finish within 120 s; leaving it behind")
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                self._snapshots.refresh_due(self._stop)
            except LandedError as error:  # storage busy or a launch removed mid-way: next tick
                log.warning("refresh skipped: %s", error)
            except Exception:
                log.exception("refresh failed")
            self.cycles += 1
            self._stop.wait(max(0.0, self._tick - (time.perf_counter() - started)))
