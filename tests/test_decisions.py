"""Decisions on record (app/decisions.py): recorded through the API with an admin key, stored
with the evidence of that moment (the verdict, each KPI's value, interval and verdict, as_of),
never edited and superseded by a later one; shown on the scorecard, in the KPI history, the
weekly review (page and Markdown) and the portfolio, which lists closed launches with no
decision; `landed launch decide` through the running service; bad input named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import launches
from app.cli import main
from app.ingest import now_utc, parse_events
from app.local_server import serving
from app.main import create_app
from app.settings import Settings
from app.storage import Storage
from pipelines.launch import LaunchSpec
from tests.helpers.builders import launch_spec, track
from tests.helpers.live import Keys

pytestmark = pytest.mark.backends

CLOSED = "old-export"  # launched 40 days ago: its 28-day window closed
OPEN = "smart-export"  # launched 10 days ago


def put(storage: Storage, key: str, days_ago: int) -> datetime:
    launched = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)
    spec = launch_spec(key, launched)
    launches.put_launch(
        storage, LaunchSpec.model_validate(spec), by="test", now=now_utc() - timedelta(days=60)
    )
    return launched.replace(tzinfo=None)


def send(storage: Storage, launched: datetime, *, seen: int, used: int, prefix: str) -> None:
    """`seen` users see the feature a day after launch; the first `used` of them use it."""
    at = (launched + timedelta(days=1)).isoformat() + "Z"
    events: list[dict[str, Any]] = []
    for i in range(seen):
        events.append(track(f"{prefix}{i}", f"{prefix}s{i}", event="Feature Seen", timestamp=at))
        if i < used:
            events.append(track(f"{prefix}{i}", f"{prefix}u{i}", timestamp=at))
    parsed = parse_events(
        events, source="web", received_at=now_utc(), max_event_bytes=1 << 20, body_bytes=1 << 20
    )
    storage.write_events("web", parsed, now_utc()).result()


def test_a_decision_is_stored_with_its_evidence_and_superseded_never_edited(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    launched = put(storage, CLOSED, 40)
    send(storage, launched, seen=60, used=3, prefix="c")
    admin = {"Authorization": f"Bearer {keys.admin}"}
    report = client.get(f"/api/launches/{CLOSED}/report", headers=admin).json()
    (kpi,) = report["kpis"]
    assert (kpi["verdict"], report["verdict"]) == ("missed", "missed")

    first = client.post(
        f"/api/launches/{CLOSED}/decisions",
        headers=admin,
        json={"decision": "iterate", "reason": "make the export button visible", "follow_up": "export-v2"},
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert {k: body[k] for k in ("decision_id", "decision", "reason", "decided_by", "follow_up")} == {
        "decision_id": 1,
        "decision": "iterate",
        "reason": "make the export button visible",
        "decided_by": "po",  # the key's name, none given
        "follow_up": "export-v2",
    }
    assert body["superseded_by"] is None
    assert body["evidence"] == {
        "verdict": "missed",
        "provisional": False,
        "as_of": report["window"]["as_of"],
        "kpis": [
            {
                "id": "adoption",
                "metric": "adoption_rate",
                "comparator": ">=",
                "target": 0.2,
                "value": kpi["value"],
                "interval": kpi["interval"],
                "n": kpi["n"],
                "verdict": "missed",
                "provisional": False,
            }
        ],
    }
    assert kpi["value"] == 0.05

    second = client.post(
        f"/api/launches/{CLOSED}/decisions",
        headers=admin,
        json={"decision": "sunset", "reason": "nobody asked for it again", "decided_by": "Ana"},
    )
    assert second.status_code == 201
    listed = client.get(f"/api/launches/{CLOSED}/decisions", headers={"Authorization": f"Bearer {keys.read}"})
    assert [
        (d["decision_id"], d["decision"], d["decided_by"], d["superseded_by"]) for d in listed.json()
    ] == [
        (1, "iterate", "po", 2),
        (2, "sunset", "Ana", None),
    ]
    # Never edited: the first keeps its reason and evidence; there is no route to change it.
    assert listed.json()[0]["reason"] == "make the export button visible"
    assert listed.json()[0]["evidence"] == body["evidence"]
    assert client.put(f"/api/launches/{CLOSED}/decisions", headers=admin, json={}).status_code == 405
    assert [r.decision_id for r in storage.decisions(CLOSED)] == [1, 2]


def test_bad_input_is_refused_naming_the_field(client: TestClient, storage: Storage, keys: Keys) -> None:
    put(storage, OPEN, 10)
    admin = {"Authorization": f"Bearer {keys.admin}"}
    cases = [
        ({"decision": "maybe", "reason": "r"}, "decision"),
        ({"decision": "keep", "reason": "   "}, "reason"),
        ({"decision": "keep"}, "reason"),
        ({"decision": "keep", "reason": "r", "follow_up": "Not A Key"}, "follow_up"),
        ({"decision": "keep", "reason": "r", "color": "red"}, "color"),
    ]
    for body, field in cases:
        response = client.post(f"/api/launches/{OPEN}/decisions", headers=admin, json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["message"], (body, response.json())
    own = client.post(
        f"/api/launches/{OPEN}/decisions",
        headers=admin,
        json={"decision": "keep", "reason": "r", "follow_up": OPEN},
    )
    assert own.status_code == 400 and "follow_up" in own.json()["message"]
    missing = client.post(
        "/api/launches/nope/decisions", headers=admin, json={"decision": "keep", "reason": "r"}
    )
    assert missing.status_code == 404
    read = client.post(
        f"/api/launches/{OPEN}/decisions",
        headers={"Authorization": f"Bearer {keys.read}"},
        json={"decision": "keep", "reason": "r"},
    )
    assert read.status_code == 403
    future = put(storage, "later", -3)
    assert future > datetime.now()
    early = client.post(
        "/api/launches/later/decisions", headers=admin, json={"decision": "keep", "reason": "r"}
    )
    assert early.status_code == 409 and early.json()["code"] == "launch_not_live"
    assert storage.decisions() == []


def test_decisions_show_on_scorecard_history_review_and_portfolio(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    closed = put(storage, CLOSED, 40)
    opened = put(storage, OPEN, 10)
    send(storage, closed, seen=60, used=3, prefix="c")
    send(storage, opened, seen=40, used=2, prefix="o")
    read = {"Authorization": f"Bearer {keys.read}"}
    admin = {"Authorization": f"Bearer {keys.admin}"}

    portfolio = client.get("/", headers=read).text
    assert f'class="undecided" data-launch="{CLOSED}"' in portfolio
    assert f'class="undecided" data-launch="{OPEN}"' not in portfolio  # still measuring

    for key in (CLOSED, OPEN):
        response = client.post(
            f"/api/launches/{key}/decisions",
            headers=admin,
            json={"decision": "iterate", "reason": "make the export button visible"},
        )
        assert response.status_code == 201
    today = datetime.now(UTC).date().isoformat()
    line = f"Decided {today}: iterate, make the export button visible (adoption 5.0%, missed)"

    assert 'class="undecided"' not in client.get("/", headers=read).text
    client.cookies.clear()
    scorecard = client.get(f"/launches/{CLOSED}", headers=read).text
    assert line in scorecard
    assert '<td data-label="Kind">decision</td>' in scorecard  # in the KPI history
    assert "iterate (verdict missed)" in scorecard
    client.cookies.clear()
    review = client.get("/review", headers=read).text
    assert f"Decided {today}: iterate, make the export button visible (adoption 5.0%" in review
    markdown = client.get("/api/review.md", headers=read).text
    assert "- Decided " in markdown and "make the export button visible" in markdown


def test_landed_launch_decide_goes_through_the_running_service(
    settings: Settings, storage: Storage, keys: Keys, capsys: Any
) -> None:
    put(storage, CLOSED, 40)
    with serving(create_app(settings, storage)) as url:
        argv = ["launch", "decide", CLOSED, "--decision", "keep", "--reason", "it did its job"]
        assert main([*argv, "--by", "Ana", "--url", url, "--key", keys.admin]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{CLOSED}: Decided ") and "keep, it did its job" in out
        assert main([*argv, "--decision", "sunset", "--url", url, "--key", keys.admin]) == 0
        assert "(supersedes decision 1)" in capsys.readouterr().out
        assert main([*argv, "--url", url, "--key", keys.read]) == 1
    assert next((d.decision, d.decided_by) for d in storage.decisions(CLOSED)) == ("keep", "Ana")
    assert storage.decisions(CLOSED)[1].decision == "sunset"
