"""Warnings between meetings: the alert conditions of `pipelines/alerts.py` checked against the
pages' results computed ahead (app/snapshots.py), raised once, stored, cleared when they stop
holding, and handed to delivery when raised.

The evaluation reads only snapshots (every live launch's report and readiness, already
computed), and only when one of them was recomputed since the last evaluation, so it costs a
few dictionary lookups and one small write. It runs in the background every
`LANDED_ALERT_SECONDS` (app/delivery.py's scheduler).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from app import launches
from app.errors import LandedError
from app.snapshots import LaunchSnapshot, Snapshots
from app.storage import AlertChange, AlertRecord, LaunchEvaluation, Storage
from pipelines.alerts import AlertCondition, launch_conditions, report_verdicts
from pipelines.times import naive_utc

log = logging.getLogger("landed.alerts")


def _cleared_text(alert: AlertRecord, snapshot: LaunchSnapshot, verdicts: dict[str, str]) -> str:
    """Why an alert no longer holds, in a few words."""
    if alert.kind == "silent_signal":
        if snapshot.as_of >= naive_utc(snapshot.state.spec.window_end):
            return "the window has closed"
        return "its signal matches events again"
    now = verdicts.get(alert.subject)
    if now is None:
        return "the KPI is no longer part of the launch"
    if alert.kind == "verdict_changed":
        return f"the verdict changed again, to {now.replace('_', ' ')}"
    kpi_id = alert.subject.removeprefix("kpi:")
    kpi = next((k for k in snapshot.report.kpis if k.id == kpi_id), None)
    if kpi is not None and not kpi.window.provisional:
        return f"its evaluation day has come: {now.replace('_', ' ')}"
    return f"no longer missed: {now.replace('_', ' ')}"


def _still_holds(
    alert: AlertRecord, conditions: Mapping[tuple[str, str], AlertCondition], verdicts: dict[str, str]
) -> bool:
    if alert.kind == "verdict_changed":
        # A change is news while the verdict stays where it moved to.
        return verdicts.get(alert.subject) == alert.state
    condition = conditions.get((alert.kind, alert.subject))
    return condition is not None and condition.state == alert.state


def evaluate_snapshots(
    storage: Storage, shown: Sequence[LaunchSnapshot], *, now: datetime
) -> list[AlertRecord]:
    """Checks every live launch among `shown`: raises each condition that holds and has no
    open alert, clears each open alert whose condition stopped holding, keeps the verdicts for
    the next evaluation; the alerts raised."""
    previous: dict[str, dict[str, Any]] = {
        key: orjson.loads(verdicts) for key, verdicts in storage.launch_evaluations().items()
    }
    open_alerts: dict[str, list[AlertRecord]] = {}
    for alert in storage.alerts():
        if alert.cleared_at is None:
            open_alerts.setdefault(alert.launch_key, []).append(alert)
    raised: list[AlertChange] = []
    cleared: list[AlertChange] = []
    evaluations: list[LaunchEvaluation] = []
    for snapshot in shown:
        state, report, key = snapshot.state, snapshot.report, snapshot.key
        if snapshot.as_of < state.launched_at:
            continue  # not live yet: nothing to warn about
        verdicts = report_verdicts(report)
        conditions: dict[tuple[str, str], AlertCondition] = {
            (c.kind, c.subject): c
            for c in launch_conditions(
                report,
                snapshot.readiness,
                launched_at=state.launched_at,
                window_end=state.spec.window_end,
                previous_verdicts=previous.get(key),
            )
        }
        still_open: set[tuple[str, str]] = set()
        for alert in open_alerts.get(key, []):
            if _still_holds(alert, conditions, verdicts):
                still_open.add((alert.kind, alert.subject))
            else:
                cleared.append(
                    AlertChange(
                        key, alert.kind, alert.subject, message=_cleared_text(alert, snapshot, verdicts)
                    )
                )
        raised += [
            AlertChange(key, c.kind, c.subject, c.state, c.message, as_of=snapshot.as_of)
            for ident, c in conditions.items()
            if ident not in still_open
        ]
        evaluations.append(LaunchEvaluation(key, orjson.dumps(verdicts).decode(), snapshot.as_of))
    if not raised and not cleared and not evaluations:
        return []
    return storage.record_alert_evaluation(cleared=cleared, raised=raised, evaluations=evaluations, now=now)


class AlertEvaluator:
    """Evaluates the alerts from the pages' snapshots when any was recomputed since last time,
    and hands the raised ones to `deliver`."""

    def __init__(
        self,
        storage: Storage,
        snapshots: Snapshots,
        *,
        deliver: Callable[[Sequence[AlertRecord]], object] | None = None,
    ) -> None:
        self.storage = storage
        self.snapshots = snapshots
        self.deliver = deliver
        self._seen: tuple[tuple[str, datetime, int], ...] | None = None

    def evaluate(self, *, force: bool = False) -> list[AlertRecord]:
        """The alerts raised by this evaluation (none when no snapshot changed, unless `force`)."""
        segment = self.snapshots.default_segment()
        shown = [self.snapshots.get(state, segment) for state in launches.list_launches(self.storage)]
        seen = tuple((s.key, s.computed_at, s.data_version) for s in shown)
        if seen == self._seen and not force:
            return []
        new = evaluate_snapshots(self.storage, shown, now=self.snapshots.now())
        self._seen = seen
        if new and self.deliver is not None:
            self.deliver(new)
        return new

    def run(self) -> None:
        """The background job: never raises (the next run tries again)."""
        try:
            self.evaluate()
        except LandedError as error:
            log.warning("alert evaluation skipped: %s", error)
        except Exception:
            log.exception("alert evaluation failed")
