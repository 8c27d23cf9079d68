"""Learning across launches on a literal set of launches: three closed ones whose adoption by
day 14 and by day 28 is known user by user, one still in its window, and one planned. The
target hints state the median, the range, the launches behind them and the stretch flag; the
comparison aligns every launch on day 0 and reads each metric at days 7, 14 and 28 from the
report as of that day."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from app import launches
from app.cli import PLAN_CHANGES, main
from app.compare import compare_launches, hints_for_spec, target_hints
from app.ingest import now_utc, parse_events
from app.reports import ReportService
from app.storage import Storage
from dashboards.compare_figures import comparison_chart, comparison_funnels_chart
from pipelines.launch import LaunchSpec
from pipelines.rates import rate
from tests.helpers.http import assert_error, bearer
from tests.helpers.live import Keys, LiveServer

# Three closed launches two months apart, so no window or baseline overlaps another's:
# (key, launched, adopters using it on day 2, more adopters on day 20) among 10 active users.
CLOSED = [
    ("alpha", datetime(2025, 1, 6, 9), 1, 1),  # 10% by day 14, 20% by day 28
    ("bravo", datetime(2025, 3, 3, 9), 3, 2),  # 30%, 50%
    ("charlie", datetime(2025, 5, 5, 9), 2, 2),  # 20%, 40%
]
USERS = 10
# Five users see the launch on day 1, the other five on day 3.
SEEN_EARLY = 5


def _spec(key: str, launched: datetime, kpis: list[dict[str, Any]] | None = None) -> LaunchSpec:
    return launches.parse_spec(
        {
            "key": key,
            "name": key.capitalize(),
            "owner": "po@example.com",
            "launched_at": launched.replace(tzinfo=UTC).isoformat(),
            "signals": {"exposed": [{"event": f"{key} seen"}], "used": [{"event": f"{key} used"}]},
            "kpis": kpis
            if kpis is not None
            else [{"id": "adoption", "metric": "adoption_rate", "comparator": ">=", "target": 0.2}],
        }
    )


def _event(user: str, name: str, at: datetime, n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": name,
        "userId": user,
        "messageId": f"{user}-{name}-{n}",
        "timestamp": at.isoformat() + "Z",
    }


def _launch_events(key: str, launched: datetime, early: int, late: int) -> list[dict[str, Any]]:
    events = []
    for i in range(USERS):
        user = f"{key}-u{i}"
        first = launched + timedelta(days=1)
        events.append(_event(user, "Page Viewed", first, 0))
        seen = first if i < SEEN_EARLY else launched + timedelta(days=3)
        events.append(_event(user, f"{key} seen", seen + timedelta(hours=1), 1))
        # Adopters use it one day after their first event (day 2), or on day 20.
        if i < early:
            events.append(_event(user, f"{key} used", first + timedelta(days=1), 2))
        elif i < early + late:
            events.append(_event(user, f"{key} used", launched + timedelta(days=20), 2))
    return events


LIVE = "delta"


def _live_launched() -> datetime:
    """Five days ago (to the hour, so days_to_measure is stable within the test)."""
    return now_utc().replace(minute=0, second=0, microsecond=0) - timedelta(days=5)


def seed(storage: Storage) -> datetime:
    """The closed launches and the live one, with their events; returns the live launch time."""
    live = _live_launched()
    events = [e for key, at, early, late in CLOSED for e in _launch_events(key, at, early, late)]
    events += _launch_events(LIVE, live, 2, 0)
    received = now_utc()
    parsed = parse_events(events, source="s", received_at=received, max_event_bytes=1 << 20, body_bytes=1000)
    assert not parsed.rejected
    storage.write_events("s", parsed, received).result()
    for key, at, _, _ in CLOSED:
        launches.put_launch(storage, _spec(key, at), by="po", now=at - timedelta(days=1))
    launches.put_launch(storage, _spec(LIVE, live), by="po", now=live - timedelta(days=1))
    return live


PLANNED_KPIS = [
    {"id": "early", "metric": "adoption_rate", "comparator": ">=", "target": 0.25, "by_day": 14},
    {"id": "adoption", "metric": "adoption_rate", "comparator": ">=", "target": 0.6},
    {"id": "speed", "metric": "median_days_to_adopt", "comparator": "<=", "target": 0.5, "by_day": 14},
    {"id": "reach", "metric": "exposure_rate", "comparator": ">=", "target": 1.0, "by_day": 7},
]
PLANNED_AT = datetime(2099, 1, 5, 9)


def planned() -> LaunchSpec:
    return _spec("echo", PLANNED_AT, PLANNED_KPIS)


# ----------------------------------------------------------------------------- target hints


def test_hints_give_median_range_launches_and_stretch(storage: Storage) -> None:
    seed(storage)
    early, adoption, speed, reach = hints_for_spec(storage, ReportService(storage), planned(), now=now_utc())

    # By day 14: alpha 10%, bravo 30%, charlie 20%; the live launch has not closed.
    assert early.day == 14
    assert [(p.key, p.value, p.n) for p in early.launches] == [
        ("charlie", 0.2, USERS),
        ("bravo", 0.3, USERS),
        ("alpha", 0.1, USERS),
    ]
    assert (early.median, early.low, early.high) == (0.2, 0.1, 0.3)
    assert early.is_stretch is False
    assert early.sentence == (
        "your last 3 launches reached 10%-30% adoption by day 14 (median 20%); this target is 25%"
    )

    # No by_day: the end of the 28-day window. 60% is beyond the best past launch (50%).
    assert adoption.day == 28
    assert (adoption.median, adoption.low, adoption.high) == (0.4, 0.2, 0.5)
    assert adoption.is_stretch is True
    assert adoption.sentence == (
        "your last 3 launches reached 20%-50% adoption by day 28 (median 40%); this target is 60%; "
        "no past launch reached it: a stretch"
    )

    # A <= KPI is a stretch when lower than any past launch got: every adopter took one day.
    assert (speed.median, speed.low, speed.high) == (1.0, 1.0, 1.0)
    assert speed.is_stretch is True
    assert speed.sentence == (
        "your last 3 launches had 1 day median time to adopt by day 14 (median 1 day); "
        "this target is 0.5 days; no past launch got that low: a stretch"
    )

    # Everyone saw it by day 7 in every past launch: 100% was reached, so it is no stretch.
    assert (reach.low, reach.high, reach.is_stretch) == (1.0, 1.0, False)


def test_hints_of_a_stored_launch_use_only_launches_closed_before_it(storage: Storage) -> None:
    seed(storage)
    result = target_hints(storage, ReportService(storage), "charlie", now=now_utc())
    (hint,) = result.hints
    assert result.launch_key == "charlie"
    assert [p.key for p in hint.launches] == ["bravo", "alpha"]
    assert hint.median == pytest.approx(0.35) and (hint.low, hint.high) == (0.2, 0.5)
    assert hint.is_stretch is False
    assert hint.sentence == (
        "your last 2 launches reached 20%-50% adoption by day 28 (median 35%); this target is 20%"
    )


def test_a_first_launch_has_nothing_to_compare_with(storage: Storage) -> None:
    seed(storage)
    (hint,) = target_hints(storage, ReportService(storage), "alpha", now=now_utc()).hints
    assert hint.launches == [] and hint.median is None and hint.is_stretch is False
    assert hint.sentence == "no past launch has closed with adoption measured by day 28; this target is 20%"


def test_target_hints_route(client: TestClient, storage: Storage, keys: Keys) -> None:
    seed(storage)
    response = client.get("/api/launches/charlie/target-hints", headers=bearer(keys.read))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["launch_key"] == "charlie"
    assert [p["key"] for p in body["hints"][0]["launches"]] == ["bravo", "alpha"]
    assert_error(
        client.get("/api/launches/nope/target-hints", headers=bearer(keys.read)), 404, code="not_found"
    )


def test_a_dry_run_put_answers_with_hints_before_launch(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    seed(storage)
    body = planned().model_dump(mode="json")
    response = client.put(
        "/api/launches/echo", params={"dry_run": "true"}, json=body, headers=bearer(keys.admin)
    )
    assert response.status_code == 200, response.text
    hints = response.json()["target_hints"]
    assert [(h["kpi_id"], h["median"], h["is_stretch"]) for h in hints] == [
        ("early", 0.2, False),
        ("adoption", 0.4, True),
        ("speed", 1.0, True),
        ("reach", 1.0, False),
    ]
    # Once live, targets are on record: no hints.
    live = client.put(
        "/api/launches/alpha",
        json=_spec("alpha", CLOSED[0][1]).model_dump(mode="json"),
        headers=bearer(keys.admin),
    )
    assert live.status_code == 200, live.text
    assert live.json()["target_hints"] == []


def test_plan_and_check_print_the_hints_and_keep_their_exit_codes(
    storage: Storage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(storage)
    path = storage.db_path
    storage.close()
    spec_file = tmp_path / "echo.yaml"
    spec_file.write_text(yaml.safe_dump(planned().model_dump(mode="json")), encoding="utf-8")
    try:
        assert main(["launch", "plan", str(spec_file), "--db", path]) == PLAN_CHANGES
        out = capsys.readouterr().out
        assert (
            "    target early: your last 3 launches reached 10%-30% adoption by day 14 (median 20%); "
            "this target is 25%\n        Charlie 20%, Bravo 30%, Alpha 10%\n"
        ) in out
        assert "no past launch reached it: a stretch" in out

        # check: hints are information, so a launch with nothing to warn about still exits 0.
        assert main(["launch", "check", "charlie", "--db", path]) == 0
        out = capsys.readouterr().out
        assert "Targets beside past closed launches:" in out
        assert "  target adoption: your last 2 launches reached 20%-50% adoption by day 28" in out
    finally:
        Storage.__init__(storage, path)  # reopen so the fixture's close() has something to close


def test_plan_and_check_print_the_same_through_the_service(
    live_server: LiveServer, storage: Storage, keys: Keys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(storage)
    spec_file = tmp_path / "echo.yaml"
    spec_file.write_text(yaml.safe_dump(planned().model_dump(mode="json")), encoding="utf-8")
    remote = ["--url", live_server.url, "--key", keys.admin]
    assert main(["launch", "plan", str(spec_file), *remote]) == PLAN_CHANGES
    out = capsys.readouterr().out
    assert "    target speed: your last 3 launches had 1 day median time to adopt by day 14" in out
    assert "        Charlie 20%, Bravo 30%, Alpha 10%\n" in out
    assert main(["launch", "check", "charlie", *remote]) == 0
    assert (
        "  target adoption: your last 2 launches reached 20%-50% adoption by day 28"
        in capsys.readouterr().out
    )


# ----------------------------------------------------------------------------- comparison


def test_comparison_aligns_on_day_0_and_reads_days_7_14_28(storage: Storage) -> None:
    live = seed(storage)
    as_of = now_utc().replace(second=0, microsecond=0)
    result = compare_launches(storage, ReportService(storage), ["alpha", LIVE, "alpha"], as_of=as_of)

    assert [c.key for c in result.launches] == ["alpha", LIVE]  # repeats dropped, order kept
    assert result.days == [7, 14, 28]
    assert result.metrics == ["adoption_rate"]
    alpha, delta = result.launches
    assert (alpha.closed, delta.closed) == (True, False)

    # Day 0 is each launch's own launch day, whatever its date.
    assert [(p.day, p.utc_date) for p in alpha.curve[:2]] == [
        (0, CLOSED[0][1].date()),
        (1, CLOSED[0][1].date() + timedelta(days=1)),
    ]
    # Launched at 09:00, the 28-day window touches 29 UTC days: 0 to 28.
    assert [p.day for p in alpha.curve] == list(range(29))
    assert delta.curve[0].day == 0 and delta.curve[0].utc_date == live.date()
    assert [p.day for p in delta.curve] == list(range(6))
    # Everyone arrives on day 1: half see it then, the rest on day 3; one adopts on day 2.
    day1, day2, day3 = alpha.curve[1:4]
    assert (day1.cumulative_exposure_rate, day1.cumulative_adoption_rate) == (0.5, 0.0)
    assert (day2.cumulative_exposure_rate, day2.cumulative_adoption_rate) == (0.5, 0.1)
    assert (day3.cumulative_exposure_rate, day3.cumulative_adoption_rate) == (1.0, 0.1)
    assert alpha.curve[-1].cumulative_adoption_rate == 0.2

    adoption = {(m.day, m.status): (m.value, m.interval, m.n) for m in alpha.metrics}
    assert adoption == {
        (7, "measured"): (0.1, rate(1, USERS).interval, USERS),
        (14, "measured"): (0.1, rate(1, USERS).interval, USERS),
        (28, "measured"): (0.2, rate(2, USERS).interval, USERS),
    }
    # Five days in, the live launch has reached none of the days yet.
    assert [(m.day, m.status, m.value) for m in delta.metrics] == [
        (7, "not_reached", None),
        (14, "not_reached", None),
        (28, "not_reached", None),
    ]
    assert [s.users for s in alpha.funnel.steps] == [USERS, USERS, 2, 0, 0]


def test_compare_route(client: TestClient, storage: Storage, keys: Keys) -> None:
    seed(storage)
    response = client.get(
        "/api/compare", params=[("launch", "bravo"), ("launch", "alpha")], headers=bearer(keys.read)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["key"] for c in body["launches"]] == ["bravo", "alpha"]
    assert all(c["curve"][0]["day"] == 0 for c in body["launches"])
    assert_error(client.get("/api/compare?launch=nope", headers=bearer(keys.read)), 404, code="not_found")
    assert client.get("/api/compare", headers=bearer(keys.read)).status_code == 422


def test_comparison_chart_starts_every_launch_at_day_0(storage: Storage) -> None:
    seed(storage)
    result = compare_launches(
        storage, ReportService(storage), ["alpha", "bravo", LIVE], as_of=now_utc().replace(second=0)
    )
    fig = comparison_chart(result)
    names = [trace.name for trace in fig.data]
    assert names == [
        "Alpha: adoption",
        "Alpha: exposure",
        "Bravo: adoption",
        "Bravo: exposure",
        "Delta: adoption",
        "Delta: exposure",
    ]
    assert all(trace.x[0] == 0 for trace in fig.data)
    assert list(fig.data[0].y) == [p.cumulative_adoption_rate for p in result.launches[0].curve]
    assert list(fig.data[1].y) == [p.cumulative_exposure_rate for p in result.launches[0].curve]
    assert fig.layout.xaxis.range == (0, 28)
    # A launch and its two curves share one colour.
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color

    funnels = comparison_funnels_chart(result)
    assert [trace.name for trace in funnels.data] == ["Alpha", "Bravo", "Delta"]
    assert list(funnels.data[1].x) == [s.rate_from_active for s in result.launches[1].funnel.steps]


# ----------------------------------------------------------------------------- pages


def test_portfolio_ticks_launches_into_the_compare_page(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    seed(storage)
    page = client.get("/", headers=bearer(keys.read)).text
    assert '<form id="compare-form" method="get" action="/compare">' in page
    for key in ("alpha", "bravo", "charlie", LIVE):
        assert (
            f'<input type="checkbox" name="launch" value="{key}" aria-label="Compare {key.capitalize()}">'
            in page
        )
    assert '<button type="submit">Compare</button>' in page


def test_compare_page_shows_the_launches_side_by_side(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    seed(storage)
    response = client.get("/compare?launch=alpha&launch=delta", headers=bearer(keys.read))
    assert response.status_code == 200, response.text
    page = response.text
    assert '<div id="compare-chart"' in page and '<div id="compare-funnels"' in page
    assert '<a href="/api/compare?launch=alpha&amp;launch=delta">JSON</a>' in page
    assert '<a href="/launches/alpha">Alpha</a>' in page
    alpha = re.search(r'<tr data-launch="alpha">(.*?)</tr>', page)
    assert alpha is not None
    assert re.findall(r"<td class=num[^>]*>([^<]*)<", alpha.group(1)) == ["10.0%", "10.0%", "20.0%"]
    delta = re.search(r'<tr data-launch="delta">(.*?)</tr>', page)
    assert delta is not None and delta.group(1).count("not reached yet") == 3

    empty = client.get("/compare", headers=bearer(keys.read))
    assert empty.status_code == 200
    assert "No launches picked." in empty.text and "plotly" not in empty.text
    assert client.get("/compare?launch=nope", headers=bearer(keys.read)).status_code == 404


def test_scorecard_links_to_past_launches_and_shows_target_hints(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    seed(storage)
    page = client.get("/launches/charlie", headers=bearer(keys.read)).text
    assert (
        '<a id="compare-link" href="/compare?launch=charlie&amp;launch=bravo&amp;launch=alpha">'
        "compare with past launches</a>"
    ) in page
    hint = re.search(r'<li data-kpi="adoption">(.*?)</li>', page)
    assert hint is not None
    assert (
        "<strong>adoption</strong>: your last 2 launches reached 20%-50% adoption by day 28 (median 35%); "
        "this target is 20%"
    ) in hint.group(1)
    assert '<div class="muted">Bravo 50.0%, Alpha 20.0%</div>' in hint.group(1)
    # The first launch has nothing before it to compare with.
    assert "compare-link" not in client.get("/launches/alpha", headers=bearer(keys.read)).text
