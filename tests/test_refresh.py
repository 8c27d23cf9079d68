"""Pages answer from results computed ahead (app/snapshots.py): a view gets the latest snapshot
at once, the refresher recomputes it when new events have arrived and it is older than the
freshness bound, a launch change is never served stale, and a refreshed snapshot equals a
report computed from scratch, whatever order, duplicates and late identity links the events
arrived with. Every test runs on both storage backends."""

from __future__ import annotations

import gzip
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient

from app import launches
from app.importer import import_file
from app.ingest import parse_events
from app.local_server import serving
from app.main import create_app
from app.reports import ReportService
from app.settings import Settings
from app.snapshots import Refresher, Snapshots
from app.storage import Storage
from pipelines.launch import LaunchSpec
from tests.helpers.builders import launch_spec
from tests.helpers.edge_users import edge_events
from tests.helpers.reference import reference_connection, reference_metrics, reference_params

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.backends

LAUNCHED = datetime(2026, 10, 1, 9)
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


class Clock:
    """A settable clock (naive UTC) for Snapshots."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _send(storage: Storage, events: list[dict[str, Any]], received_at: datetime) -> None:
    parsed = parse_events(
        events, source="web", received_at=received_at, max_event_bytes=1 << 20, body_bytes=1 << 20
    )
    assert not parsed.rejected, parsed.rejected
    storage.write_events("web", parsed, received_at).result()


def _adopters(storage: Storage, users: range, at: datetime) -> None:
    """Each user sees the feature and uses it at `at`."""
    events = []
    for i in users:
        for name in ("Feature Seen", "Feature Used"):
            events.append(
                {
                    "type": "track",
                    "event": name,
                    "userId": f"u{i}",
                    "messageId": f"{name}-{i}",
                    "timestamp": at.isoformat() + "Z",
                }
            )
    _send(storage, events, at)


def _launch(storage: Storage, key: str = "alpha") -> launches.LaunchState:
    spec = launches.parse_spec(launch_spec(key, LAUNCHED.replace(tzinfo=UTC)))
    launches.put_launch(storage, spec, by="test", now=LAUNCHED - timedelta(days=1))
    return launches.load_launch(storage, key)


def _snapshots(storage: Storage, clock: Clock, refresh_seconds: float = 60) -> Snapshots:
    return Snapshots(storage, ReportService(storage), refresh_seconds=refresh_seconds, clock=clock)


def test_a_view_gets_the_latest_snapshot_at_once_and_the_refresher_replaces_it(storage: Storage) -> None:
    clock = Clock(LAUNCHED + timedelta(days=3))
    state = _launch(storage)
    _adopters(storage, range(10), LAUNCHED + timedelta(days=1))
    snapshots = _snapshots(storage, clock)

    first = snapshots.get(state, None)  # never computed: this view computes it
    assert first.report.counts.adopters == 10
    assert first.computed_at == clock.now

    _adopters(storage, range(10, 15), LAUNCHED + timedelta(days=2))
    clock.advance(10)
    assert snapshots.get(state, None) is first  # served at once, not recomputed
    assert snapshots.due() == []  # new events, but computed 10 s ago: not due yet

    clock.advance(51)
    assert [(s.spec.key, seg) for s, seg in snapshots.due()] == [("alpha", None)]
    assert snapshots.refresh_due() == 1
    second = snapshots.get(state, None)
    assert second.report.counts.adopters == 15
    assert second.computed_at == clock.now
    assert snapshots.due() == []


def test_a_closed_window_without_new_events_is_never_recomputed(storage: Storage) -> None:
    clock = Clock(LAUNCHED + timedelta(days=40))  # the 28-day window closed 12 days ago
    state = _launch(storage)
    _adopters(storage, range(4), LAUNCHED + timedelta(days=1))
    snapshots = _snapshots(storage, clock)
    first = snapshots.get(state, None)
    clock.advance(3600)
    assert snapshots.due() == []
    assert snapshots.get(state, None) is first
    # A late event inside the window makes it due again.
    _adopters(storage, range(4, 5), LAUNCHED + timedelta(days=2))
    assert len(snapshots.due()) == 1


def test_a_changed_launch_is_computed_on_view_never_served_stale(storage: Storage) -> None:
    clock = Clock(LAUNCHED + timedelta(days=3))
    state = _launch(storage)
    _adopters(storage, range(3), LAUNCHED + timedelta(days=1))
    snapshots = _snapshots(storage, clock)
    assert snapshots.get(state, None).report.kpis[0].target == 0.2
    launches.amend_launch(
        storage,
        "alpha",
        launches.AmendmentRequest.model_validate(
            {"reason": "seen the segment sizes", "kpis": [{"id": "adoption", "target": 0.1}]}
        ),
        by="po",
        now=clock.now,
    )
    amended = snapshots.get(launches.load_launch(storage, "alpha"), None)
    assert amended.report.kpis[0].amended_target == 0.1
    assert amended.computed_at == clock.now


def test_refresh_seconds_zero_recomputes_on_view_when_events_arrived(storage: Storage) -> None:
    clock = Clock(LAUNCHED + timedelta(days=3))
    state = _launch(storage)
    _adopters(storage, range(2), LAUNCHED + timedelta(days=1))
    snapshots = _snapshots(storage, clock, refresh_seconds=0)
    first = snapshots.get(state, None)
    assert snapshots.get(state, None) is first  # nothing new: the same snapshot
    _adopters(storage, range(2, 3), LAUNCHED + timedelta(days=1))
    assert snapshots.get(state, None).report.counts.adopters == 3
    refresher = Refresher(snapshots)
    refresher.start()
    assert refresher.cycles == 0 and not refresher.running  # no thread without a freshness bound


def test_the_refresher_thread_recomputes_after_new_events(storage: Storage) -> None:
    state = _launch(storage)
    _adopters(storage, range(2), LAUNCHED + timedelta(days=1))
    snapshots = Snapshots(storage, ReportService(storage), refresh_seconds=0.2)
    assert snapshots.get(state, None).report.counts.adopters == 2
    refresher = Refresher(snapshots, tick_seconds=0.05)
    refresher.start()
    try:
        _adopters(storage, range(2, 7), LAUNCHED + timedelta(days=1))
        deadline = time.monotonic() + 20
        while snapshots.get(state, None).report.counts.adopters != 7:
            assert time.monotonic() < deadline, "the refresher did not pick up the new events"
            time.sleep(0.05)
    finally:
        refresher.stop()
    assert refresher.cycles > 0


# -- equal to a computation from scratch --------------------------------------------------------


def _sample_events() -> list[dict[str, Any]]:
    with gzip.open(SAMPLE / "events.ndjson.gz", "rb") as stream:
        return [orjson.loads(line) for line in stream if line.strip()]


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def _spec(key: str) -> LaunchSpec:
    return launches.parse_spec(yaml.safe_load((SAMPLE / "launches" / f"{key}.yaml").read_text("utf-8")))


@pytest.mark.slow
def test_refreshed_snapshots_equal_reports_from_scratch(storage: Storage, tmp_path: Path) -> None:
    """The sample and the reference edge users arrive shuffled, in five parts, one part sent
    twice, with every identify and alias (the identity links and traits) held back to the last
    part, after the events they join. After each part the refreshed snapshot equals a report
    computed from scratch, and at the end the reference SQL's counts."""
    for key in ("team-workspaces", "smart-export"):
        launches.put_launch(storage, _spec(key), by="test", now=datetime(2026, 8, 1))
    events = _sample_events() + edge_events()
    random.Random(11).shuffle(events)
    links = [e for e in events if e.get("type") in {"identify", "alias"}]
    others = [e for e in events if e.get("type") not in {"identify", "alias"}]
    size = len(others) // 4 + 1
    parts = [others[i : i + size] for i in range(0, len(others), size)]
    parts.insert(2, parts[1])  # sent twice: every event of it is a duplicate the second time
    parts.append(links)
    clock = Clock(datetime(2026, 11, 20))
    snapshots = _snapshots(storage, clock)
    states = [launches.load_launch(storage, key) for key in ("team-workspaces", "smart-export")]
    for index, part in enumerate(parts):
        path = _write(tmp_path / f"part{index}.ndjson", part)
        import_file(storage, path, source="reference", max_event_bytes=1 << 20)
        clock.advance(120)
        for state, snapshot in zip(states, snapshots.refresh_now(states, "plan"), strict=True):
            scratch = ReportService(storage).report_for(state, as_of=snapshot.as_of, segment="plan")
            assert snapshot.report.model_dump() == scratch.model_dump(), f"part {index}: {state.spec.key}"
    final = snapshots.get(states[0], "plan").report
    params = reference_params(states[0].spec, final.window.as_of, "plan")
    reference = reference_connection(storage)
    try:
        expected = reference_metrics(reference, params)["summary"][0]
    finally:
        reference.close()
    names = ("active", "exposed", "adopters", "tried", "repeated", "converted")
    assert {name: getattr(final.counts, name) for name in names} == {name: expected[name] for name in names}


# -- the pages --------------------------------------------------------------------------------


COMPUTED_AT = re.compile(r'data-computed-at="([^"]+)"')
ADOPTION = re.compile(r'data-kpi="adoption".*?<p class="value">([^<]+)</p>', re.S)


@pytest.fixture
def slow_refresh(settings: Settings) -> Settings:
    """A freshness bound no test waits for: snapshots change only on a view's first sight of
    a launch, or when a page asks for a refresh."""
    return settings.model_copy(update={"refresh_seconds": 3600})


def _live_launch(storage: Storage) -> tuple[str, datetime]:
    """A read key, and now (naive UTC) for launch "alpha", live for 3 days."""
    read = storage.create_key("dashboards", "read")[1]
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    spec = launches.parse_spec(launch_spec("alpha", (now - timedelta(days=3)).replace(tzinfo=UTC)))
    launches.put_launch(storage, spec, by="test", now=now - timedelta(days=4))
    return read, now


def _noticed_only(storage: Storage, now: datetime) -> None:
    """Four more users see the feature an hour ago and do not use it: adoption halves."""
    at = (now - timedelta(hours=1)).isoformat() + "Z"
    seen = [
        {"type": "track", "event": "Feature Seen", "userId": f"n{i}", "messageId": f"n{i}", "timestamp": at}
        for i in range(4)
    ]
    _send(storage, seen, now)


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_pages_show_one_snapshot_until_asked_to_refresh(slow_refresh: Settings) -> None:
    storage = Storage.open(slow_refresh)
    try:
        read, now = _live_launch(storage)
        _adopters(storage, range(4), now - timedelta(days=1))
        with TestClient(create_app(slow_refresh, storage)) as client:
            client.headers.update(_auth(read))
            portfolio = client.get("/").text
            stamp = COMPUTED_AT.findall(portfolio)
            assert len(stamp) == 1 and "Computed just now" in portfolio
            scorecard = client.get("/launches/alpha").text
            assert COMPUTED_AT.findall(scorecard) == stamp  # the same snapshot
            assert ADOPTION.search(scorecard).group(1) == "100.0%"  # type: ignore[union-attr]
            # Events arrive: every page keeps showing the snapshot they all agree on.
            _noticed_only(storage, now)
            review = client.get("/review").text
            assert COMPUTED_AT.findall(review) == stamp
            again = client.get("/launches/alpha").text
            assert ADOPTION.search(again).group(1) == "100.0%"  # type: ignore[union-attr]
            # Refresh now: recomputed, then the page at its own address.
            refreshed = client.get("/launches/alpha?refresh=1", follow_redirects=False)
            assert refreshed.status_code == 303
            assert refreshed.headers["location"] == "/launches/alpha"
            after = client.get("/launches/alpha").text
            assert ADOPTION.search(after).group(1) == "50.0%"  # type: ignore[union-attr]
            assert COMPUTED_AT.findall(client.get("/").text) != stamp
    finally:
        storage.close()


@pytest.mark.browser
def test_the_freshness_line_and_refresh_now_in_a_browser(slow_refresh: Settings, browser: Browser) -> None:
    """Chromium signs in, sees "Computed just now" and the scorecard's adoption; events arrive
    and the reloaded page still shows the same numbers with their age; "Refresh now" shows
    the new numbers, computed just now, at the page's own address."""
    storage = Storage.open(slow_refresh)
    try:
        read, now = _live_launch(storage)
        _adopters(storage, range(4), now - timedelta(days=1))
        with serving(create_app(slow_refresh, storage)) as url:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{url}/login?next=/launches/alpha")
            page.fill("input[name=key]", read)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/launches/alpha")
            freshness = page.locator("#freshness")
            assert freshness.inner_text().startswith("Computed just now")
            adoption = page.locator('[data-kpi="adoption"] .value')
            assert adoption.inner_text() == "100.0%"
            _noticed_only(storage, now)
            time.sleep(6)
            page.reload()
            assert adoption.inner_text() == "100.0%"  # the snapshot computed ahead, at once
            assert re.fullmatch(r"Computed \d+ s ago · Refresh now", freshness.inner_text().strip())
            with page.expect_navigation():
                page.click("#refresh-now")
            assert page.url == f"{url}/launches/alpha"
            assert adoption.inner_text() == "50.0%"
            assert freshness.inner_text().startswith("Computed just now")
            assert errors == []
            page.close()
    finally:
        storage.close()


def test_refreshes_and_snapshot_age_are_in_the_metrics(settings: Settings) -> None:
    settings = settings.model_copy(update={"refresh_seconds": 0.2})
    storage = Storage.open(settings)
    try:
        read, now = _live_launch(storage)
        with TestClient(create_app(settings, storage)) as client:
            client.headers.update(_auth(read))
            assert client.get("/").status_code == 200
            _adopters(storage, range(3), now - timedelta(days=1))
            deadline = time.monotonic() + 20
            while True:
                text = client.get("/metrics").text
                found = re.search(r"^landed_refresh_duration_seconds_count (\S+)$", text, re.M)
                if found and float(found.group(1)) >= 1:
                    break
                assert time.monotonic() < deadline, "no background refresh was counted"
                time.sleep(0.1)
            age = re.search(r"^landed_snapshot_oldest_age_seconds (\S+)$", text, re.M)
            assert age is not None and 0 <= float(age.group(1)) < 20
    finally:
        storage.close()
