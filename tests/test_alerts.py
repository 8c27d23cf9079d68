"""Warnings between meetings (pipelines/alerts.py, app/alerts.py), on literal journeys: each
condition raised once when it starts to hold, not raised when it does not, and shown cleared
when it stops; evaluated from the pages' snapshots; delivered through the review's channels
with a link to the scorecard; listed on the portfolio and the scorecard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import launches
from app.alerts import AlertEvaluator
from app.delivery import Delivery, Message
from app.ingest import parse_events
from app.main import create_app
from app.reports import ReportService
from app.settings import Settings
from app.snapshots import Snapshots
from app.storage import Storage
from pipelines.alerts import report_verdicts
from tests.helpers.builders import build_report, launch_spec, track
from tests.helpers.live import Keys

pytestmark = pytest.mark.backends

LAUNCHED = datetime(2026, 10, 5, 9)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def put(storage: Storage, key: str = "alpha", **kpi: Any) -> None:
    spec = launch_spec(key, LAUNCHED.replace(tzinfo=UTC))
    if kpi:
        spec["kpis"] = [{**spec["kpis"][0], **kpi}]
    launches.put_launch(storage, launches.parse_spec(spec), by="test", now=LAUNCHED - timedelta(days=1))


def send(storage: Storage, rows: list[tuple[str, str, timedelta]]) -> None:
    """(user, event, time after launch) each."""
    events = [
        track(
            user,
            f"{user}-{event}-{at.total_seconds()}",
            event=event,
            timestamp=(LAUNCHED + at).isoformat() + "Z",
        )
        for user, event, at in rows
    ]
    received = LAUNCHED + max(at for _, _, at in rows)
    parsed = parse_events(
        events, source="web", received_at=received, max_event_bytes=1 << 20, body_bytes=1 << 20
    )
    storage.write_events("web", parsed, received).result()


def crowd(n: int, event: str, at: timedelta, prefix: str = "u") -> list[tuple[str, str, timedelta]]:
    return [(f"{prefix}{i}", event, at) for i in range(n)]


class Harness:
    def __init__(self, storage: Storage, now: datetime) -> None:
        self.clock = Clock(now)
        self.storage = storage
        self.snapshots = Snapshots(storage, ReportService(storage), refresh_seconds=0, clock=self.clock)
        self.sent: list[Message] = []

        class Recording:
            name = "webhook"

            def send(inner, message: Message) -> None:
                self.sent.append(message)

        settings = Settings(db_path=":memory:", public_url="https://landed.example.com")
        self.delivery = Delivery(
            storage, ReportService(storage), settings, channels=[Recording()], clock=self.clock
        )
        self.evaluator = AlertEvaluator(storage, self.snapshots, deliver=self.delivery.send_alerts)

    def at(self, after_launch: timedelta) -> list[tuple[str, str, str]]:
        """Evaluates at launch + `after_launch`; the alerts raised, as (launch, kind, subject)."""
        self.clock.now = LAUNCHED + after_launch
        return [(a.launch_key, a.kind, a.subject) for a in self.evaluator.evaluate()]

    def alerts(self) -> list[tuple[str, str, str, bool]]:
        """Every alert, oldest first: (kind, subject, state, open)."""
        return [
            (a.kind, a.subject, a.state, a.cleared_at is None)
            for a in sorted(
                self.storage.alerts(), key=lambda a: (a.raised_at, a.kind, a.subject, a.occurrence)
            )
        ]


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def test_nobody_can_notice_it_raised_once_and_cleared(storage: Storage) -> None:
    put(storage)
    send(storage, crowd(5, "Feature Used", 2 * HOUR))  # used, but the exposure is never seen
    h = Harness(storage, LAUNCHED)
    assert h.at(12 * HOUR) == []  # not 24 hours yet
    assert h.at(25 * HOUR) == [("alpha", "silent_signal", "exposed:0")]
    assert h.at(26 * HOUR) == []  # raised once
    assert h.alerts() == [("silent_signal", "exposed:0", "silent", True)]
    (message,) = h.sent
    assert message.subject == "Landed alert: Alpha: nobody can notice it"
    assert "has matched no event since launch (25 hours)" in message.text
    assert "Scorecard: https://landed.example.com/launches/alpha" in message.text

    send(storage, crowd(3, "Feature Seen", 26 * HOUR))
    assert h.at(27 * HOUR) == []
    (alert,) = storage.alerts()
    assert (alert.cleared_at, alert.cleared_message) == (
        LAUNCHED + 27 * HOUR,
        "its signal matches events again",
    )

    # Silent again for the last 7 days while the window is open: a new occurrence.
    # used was last seen 2 hours after launch, exposed 26 hours after.
    assert h.at(8 * DAY) == [("alpha", "silent_signal", "used:0")]
    assert h.at(9 * DAY) == [("alpha", "silent_signal", "exposed:0")]
    assert "in the last 7 days" in h.sent[-1].text
    # Once the window closes, the warning no longer holds.
    assert h.at(29 * DAY) == []
    assert [(a.subject, a.occurrence, a.cleared_message) for a in storage.alerts() if a.occurrence == 2] == [
        ("exposed:0", 2, "the window has closed")
    ]


def test_a_launch_with_both_signals_firing_or_not_live_raises_nothing(storage: Storage) -> None:
    put(storage, "busy")
    put(storage, "later")
    later = launches.load_launch(storage, "later").spec.model_copy(
        update={"launched_at": (LAUNCHED + 60 * DAY).replace(tzinfo=UTC)}
    )
    launches.put_launch(storage, later, by="test", now=LAUNCHED - timedelta(hours=12))
    send(storage, [*crowd(3, "Feature Seen", 3 * HOUR), *crowd(3, "Feature Used", 3 * HOUR)])
    h = Harness(storage, LAUNCHED)
    assert h.at(30 * HOUR) == []
    assert h.at(3 * DAY) == []
    assert storage.alerts() == [] and h.sent == []
    assert set(storage.launch_evaluations()) == {"busy"}  # the launch not live yet is not evaluated


def test_a_verdict_change_is_raised_once_and_cleared_when_it_moves_again(storage: Storage) -> None:
    put(storage)
    h = Harness(storage, LAUNCHED)
    send(storage, [*crowd(3, "Feature Seen", HOUR), *crowd(3, "Feature Used", HOUR)])
    assert h.at(2 * HOUR) == []  # first evaluation: nothing to compare with
    assert (
        storage.launch_evaluations()["alpha"]
        == '{"launch":"inconclusive","kpi:adoption":"insufficient_data"}'
    )

    # 200 users see it, 2 use it: adoption clearly below its 20% target.
    send(storage, [*crowd(200, "Feature Seen", 3 * HOUR, "v"), *crowd(2, "Feature Used", 3 * HOUR, "v")])
    assert sorted(h.at(4 * HOUR)) == [
        ("alpha", "verdict_changed", "kpi:adoption"),
        ("alpha", "verdict_changed", "launch"),
    ]
    assert h.at(5 * HOUR) == []  # raised once: the verdict stays missed
    assert sorted(m.text.splitlines()[0] for m in h.sent) == [
        "Alpha: KPI adoption changed from insufficient data to missed.",
        "Alpha: the launch verdict changed from inconclusive to missed.",
    ]

    # Adoption climbs back: both change again; the earlier alerts are shown cleared.
    send(storage, crowd(120, "Feature Used", 6 * HOUR, "v"))
    assert sorted(h.at(7 * HOUR)) == [
        ("alpha", "verdict_changed", "kpi:adoption"),
        ("alpha", "verdict_changed", "launch"),
    ]
    assert h.alerts()[:2] == [
        ("verdict_changed", "kpi:adoption", "missed", False),
        ("verdict_changed", "launch", "missed", False),
    ]
    cleared = {a.subject: a.cleared_message for a in storage.alerts() if a.cleared_at is not None}
    assert cleared == {
        "kpi:adoption": "the verdict changed again, to met",
        "launch": "the verdict changed again, to landed",
    }


def test_off_the_path_raised_before_the_evaluation_day_and_cleared_on_it(storage: Storage) -> None:
    put(storage, "byday", by_day=14)
    put(storage, "whole")  # the same numbers, no by_day: never off the path
    send(storage, [*crowd(200, "Feature Seen", 2 * HOUR), *crowd(2, "Feature Used", 2 * HOUR)])
    h = Harness(storage, LAUNCHED)
    # Already missed on its always-valid interval, 11 days before its evaluation day.
    assert h.at(3 * HOUR) == [("byday", "off_path", "kpi:adoption")]
    (alert,) = [a for a in storage.alerts() if a.kind == "off_path"]
    assert alert.message.startswith(
        "Byday: off the path. KPI adoption is already missed on day 0 of 14: 1.0%"
    )
    assert "target >= 20.0%" in alert.message
    assert h.at(5 * DAY) == []  # raised once
    assert [a.kind for a in storage.alerts() if a.kind == "off_path" and a.cleared_at is None] == ["off_path"]
    h.at(15 * DAY)
    (done,) = [a for a in storage.alerts() if a.kind == "off_path"]
    assert done.cleared_message == "its evaluation day has come: missed"


def test_report_verdicts_and_an_empty_launch(storage: Storage) -> None:
    report = build_report()
    assert report_verdicts(report) == {
        "launch": report.verdict,
        **{f"kpi:{kpi.id}": kpi.verdict for kpi in report.kpis},
    }
    put(storage)  # no events at all: both signals silent, no verdict to compare, nothing missed
    h = Harness(storage, LAUNCHED)
    assert sorted(h.at(2 * DAY)) == [
        ("alpha", "silent_signal", "exposed:0"),
        ("alpha", "silent_signal", "used:0"),
    ]


def test_alerts_show_on_the_portfolio_and_the_scorecard(
    settings: Settings, storage: Storage, keys: Keys
) -> None:
    put(storage)
    send(storage, crowd(5, "Feature Used", 2 * HOUR))
    h = Harness(storage, LAUNCHED)
    h.at(25 * HOUR)
    with TestClient(create_app(settings, storage)) as client:
        read = {"Authorization": f"Bearer {keys.read}"}
        portfolio = client.get("/", headers=read).text
        assert 'class="alert" data-launch="alpha" data-kind="silent_signal"' in portfolio
        assert "Nobody can notice it" in portfolio
        client.cookies.clear()
        scorecard = client.get("/launches/alpha", headers=read).text
        assert 'id="alerts"' in scorecard and "has matched no event since launch" in scorecard
        listed = client.get("/api/alerts", headers=read, params={"launch": "alpha"}).json()
        assert [(a["kind"], a["subject"], a["cleared_at"]) for a in listed] == [
            ("silent_signal", "exposed:0", None)
        ]
