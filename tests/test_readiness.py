"""Readiness: matchers checked against seeded events (a misspelt event name is the usual
reason a launch looks dead), and before launch, whether each rate KPI can be judged."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app import launches
from app.cli import main
from app.ingest import parse_events
from app.reports import ReportService
from app.settings import Settings
from app.storage import Storage
from pipelines.readiness import resolvable_band

pytestmark = pytest.mark.backends

AS_OF = datetime(2026, 10, 20)
LAUNCH = datetime(2026, 10, 25, 9)


def _seed(storage: Storage) -> None:
    events = []
    for i in range(40):
        day = AS_OF - timedelta(days=1 + i % 5, hours=i % 7)
        events.append(
            {
                "type": "identify",
                "userId": f"u{i}",
                "traits": {"plan": "free"},
                "messageId": f"id{i}",
                "timestamp": (day - timedelta(days=20)).isoformat() + "Z",
            }
        )
        events.append(
            {
                "type": "track",
                "event": "Feature Used",
                "userId": f"u{i}",
                "properties": {"feature": "export"},
                "messageId": f"use{i}",
                "timestamp": day.isoformat() + "Z",
            }
        )
        if i < 10:
            events.append(
                {
                    "type": "page",
                    "name": "Export",
                    "userId": f"u{i}",
                    "properties": {"path": "/new/export"},
                    "messageId": f"page{i}",
                    "timestamp": (AS_OF - timedelta(days=9)).isoformat() + "Z",
                }
            )
    parsed = parse_events(events, source="s", received_at=AS_OF, max_event_bytes=1 << 20, body_bytes=1000)
    assert not parsed.rejected
    storage.write_events("s", parsed, AS_OF).result()
    spec = launches.parse_spec(
        {
            "key": "export",
            "name": "Export",
            "owner": "po",
            "launched_at": LAUNCH.isoformat() + "Z",
            "audience": {"where": {"plan": "free"}},
            "signals": {
                "exposed": [
                    {"event": "Anouncement Viewed"},
                    {"type": "page", "where": {"path": "/new/export"}},
                ],
                "used": [{"event": "Feature Used", "where": {"feature": "export"}}],
            },
            "kpis": [{"id": "adoption", "metric": "adoption_rate", "comparator": ">=", "target": 0.2}],
        }
    )
    launches.put_launch(storage, spec, by="po", now=AS_OF - timedelta(days=30))
    storage.write_events(
        "s",
        parse_events(
            [
                {
                    "type": "track",
                    "event": "Announcement Viewed",
                    "userId": "u1",
                    "messageId": "ann",
                    "timestamp": (AS_OF - timedelta(days=3)).isoformat() + "Z",
                }
            ],
            source="s",
            received_at=AS_OF,
            max_event_bytes=1 << 20,
            body_bytes=100,
        ),
        AS_OF,
    ).result()


def test_readiness_flags_the_misspelt_matcher(storage: Storage) -> None:
    _seed(storage)
    readiness = ReportService(storage).readiness("export", as_of=AS_OF)
    assert readiness.live is False
    summary = [
        (m.signal, m.index, m.events_7d, m.users_7d, m.last_seen_at is not None) for m in readiness.matchers
    ]
    # The page matcher matched 10 events 9 days ago: none in the last 7 days, but seen.
    assert summary == [("exposed", 0, 0, 0, False), ("exposed", 1, 0, 0, True), ("used", 0, 40, 40, True)]
    misspelt = readiness.matchers[0].warning
    assert misspelt is not None
    assert "has never matched an event" in misspelt and "did you mean 'Announcement Viewed'?" in misspelt
    assert (
        readiness.matchers[1].warning is not None
        and "matched nothing in the last 7 days" in readiness.matchers[1].warning
    )
    assert readiness.matchers[2].warning is None
    # Before launch: the 40 free users active in the last 28 days are the expected audience.
    assert readiness.expected_active == 40
    (adoption,) = readiness.kpis
    below, above = resolvable_band(0.2, 40)
    assert (adoption.expected_n, adoption.below, adoption.above) == (40, below, above)
    assert adoption.warning is True  # 40 users cannot separate 20% from its neighbours
    assert misspelt in readiness.warnings and adoption.message in readiness.warnings


def _misspelt_at(storage: Storage, message_id: str, at: datetime) -> None:
    """One event named as the misspelt matcher names it, at `at`."""
    event = {"type": "track", "event": "Anouncement Viewed", "userId": "u1", "messageId": message_id}
    event["timestamp"] = at.isoformat() + "Z"
    parsed = parse_events([event], source="s", received_at=at, max_event_bytes=1 << 20, body_bytes=100)
    storage.write_events("s", parsed, at).result()


def test_readiness_reads_only_the_period_it_reports_on(storage: Storage) -> None:
    """The matcher check reads from the launch's baseline start (a window before launch) or 7
    days before as_of, whichever is earlier: a match a year before says nothing about it."""
    _seed(storage)
    _misspelt_at(storage, "old", AS_OF - timedelta(days=365))
    misspelt = ReportService(storage).readiness("export", as_of=AS_OF).matchers[0]
    assert misspelt.last_seen_at is None
    since = (LAUNCH - timedelta(days=28)).isoformat(timespec="minutes")
    assert misspelt.warning is not None and f"has never matched an event since {since}Z" in misspelt.warning
    # Inside the period, the same event counts.
    recent = AS_OF - timedelta(days=20)
    _misspelt_at(storage, "recent", recent)
    assert ReportService(storage).readiness("export", as_of=AS_OF).matchers[0].last_seen_at == recent


def test_resolvable_band_matches_the_issue_example() -> None:
    below, above = resolvable_band(0.2, 2800)
    assert below is not None and above is not None
    assert (round(below * 100, 1), round(above * 100, 1)) == (18.5, 21.5)


def test_launch_check_prints_the_same(
    storage: Storage, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(storage)
    storage.close()
    where = ["--db", settings.db_path]
    if settings.storage == "clickhouse":
        assert settings.clickhouse_url is not None
        monkeypatch.setenv("LANDED_STORAGE", "clickhouse")
        monkeypatch.setenv("LANDED_CLICKHOUSE_URL", settings.clickhouse_url.get_secret_value())
        where = []
    # A matcher that never matched and a KPI that cannot be judged fail the check (exit 2).
    assert main(["launch", "check", "export", *where, "--as-of", AS_OF.isoformat()]) == 2
    out = capsys.readouterr().out
    assert "export: not live yet" in out
    assert "did you mean 'Announcement Viewed'?" in out
    assert "about 40 users" in out
    reopened = Storage.open(settings)  # so the fixture's close() has something to close
    storage.__dict__.update(reopened.__dict__)
