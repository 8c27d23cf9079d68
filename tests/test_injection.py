"""Hostile strings (quotes, SQL, JSON path and pointer syntax, NoSQL operators, HTML, a script
tag, tricky unicode) sent through the real API as event names, property names and values,
trait names and values, announcement channels and launch name, owner and description:

* the events table holds them byte for byte,
* the report counts exactly the events whose names and values match the hostile matchers
  (decoys that differ by one character are not counted),
* the pages render them escaped (the raw markup never appears), and a real Chromium opening
  those pages never sees a dialog or a script error,
* KPI ids and launch keys, which are slugs, refuse them with 422,
* and nothing was ever executed: every table is still there with the expected row counts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient

from app.local_server import serving
from app.main import create_app
from app.page_data import current_week
from app.settings import Settings
from app.storage import Storage, json_pointer
from pipelines.launch import LaunchSpec

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog

HOSTILE: dict[str, str] = {
    "quotes": 'it\'s a "quoted" `name`',
    "sql": "'; drop table events; --",
    "jsonpath": "$.a[0]",
    "pointer": "/a~1b",
    "nosql": '{"$gt": ""}',
    "html": "\"'><img src=x onerror=alert(1)>",
    "script": "<script>alert(1)</script>",
    "unicode": "Ünïcødé ✓ 🚀 中文 \u202eevil\u202c zero\u200bwidth",
}
NAMES = list(HOSTILE)
VALUES = list(HOSTILE.values())
SCRIPT = HOSTILE["script"]
MARKUP = [v for v in VALUES if any(c in v for c in "<>&\"'")]
"""The strings that change meaning in HTML: never allowed raw in the page's HTML."""
TAGS = [v for v in VALUES if "<" in v]
"""The strings that could open or close an element: never allowed raw anywhere, not even in
the JSON inside a <script> (where a raw `</script>` would end the script early)."""

LAUNCH = "hostile"
USED_EVENT = "<b>Used</b> '; delete from events; --"
USED_PROP = '$.feature[0] /~1 {"$ne": 1}'
CHANNEL_PROP = "chan\"nel' <i>"
TRAIT = "plan"
N = len(HOSTILE)


def user(index: int) -> str:
    return f"{VALUES[index]} #{index}"  # hostile user ids too


def decoy(index: int) -> str:
    return f"decoy {VALUES[index]} #{index}"


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# ----------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class World:
    client: TestClient
    storage: Storage
    settings: Settings
    write: str
    read: str
    admin: str
    launched_at: datetime
    spec: dict[str, Any]
    sent: list[dict[str, Any]]  # Segment events as sent
    sent_posthog: list[dict[str, Any]]

    def auth(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}


def hostile_spec(launched_at: datetime) -> dict[str, Any]:
    return {
        "key": LAUNCH,
        "name": SCRIPT,
        "owner": HOSTILE["html"],
        "description": " | ".join(VALUES),
        "launched_at": iso(launched_at),
        "window_days": 28,
        "audience": {"identified_only": True, "where": {TRAIT: VALUES}},
        "signals": {
            "exposed": [{"event": value, "where": {value: value}} for value in VALUES],
            "used": [{"event": USED_EVENT, "where": {USED_PROP: VALUES}}],
        },
        "channel_property": CHANNEL_PROP,
        "announcements": [
            {"channel": value, "at": iso(launched_at + timedelta(hours=i)), "note": value}
            for i, value in enumerate(VALUES)
        ],
        "kpis": [{"id": "adoption", "metric": "adoption_rate", "comparator": ">=", "target": 0.2}],
    }


def segment_events(launched_at: datetime) -> list[dict[str, Any]]:
    """Per hostile string: a user who is exposed and uses the feature through matchers named
    with it; the exposure carries the string as its channel."""
    events: list[dict[str, Any]] = []
    for i, value in enumerate(VALUES):
        at = launched_at + timedelta(hours=1, minutes=i)
        events += [
            {
                "type": "identify",
                "userId": user(i),
                "messageId": f"id-{i}",
                "traits": {TRAIT: value, value: value},
                "timestamp": iso(at),
            },
            {
                "type": "track",
                "event": value,
                "userId": user(i),
                "messageId": f"ex-{i}",
                "properties": {value: value, CHANNEL_PROP: value},
                "timestamp": iso(at + timedelta(minutes=10)),
            },
            {
                "type": "track",
                "event": USED_EVENT,
                "userId": user(i),
                "messageId": f"use-{i}",
                "properties": {USED_PROP: value},
                "timestamp": iso(at + timedelta(minutes=20)),
            },
        ]
    return events


def posthog_decoys(launched_at: datetime) -> list[dict[str, Any]]:
    """Per hostile string, through PostHog capture: a user in the audience whose events each
    miss a matcher by one character (value, property name, event name, used value)."""
    events: list[dict[str, Any]] = []
    for i, value in enumerate(VALUES):
        at = launched_at + timedelta(hours=2, minutes=i)

        def event(name: str, properties: dict[str, Any], minutes: int, uid: str) -> dict[str, Any]:
            return {
                "event": name,
                "distinct_id": decoy(i),  # noqa: B023 - called right away, in this iteration
                "uuid": uid,
                "properties": properties,
                "timestamp": iso(at + timedelta(minutes=minutes)),  # noqa: B023 - likewise
            }

        events += [
            {**event("$identify", {}, 0, f"d-id-{i}"), "$set": {TRAIT: value}},
            event(value, {value: value + " "}, 1, f"d-val-{i}"),
            event(value, {value + " ": value}, 2, f"d-prop-{i}"),
            event(value.upper() + "!", {value: value}, 3, f"d-name-{i}"),
            event(USED_EVENT, {USED_PROP: value + "x"}, 4, f"d-use-{i}"),
        ]
    return events


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = Settings(db_path=str(tmp_path_factory.mktemp("injection") / "landed.duckdb"))
    storage = Storage(settings.db_path)
    write = storage.create_key("web", "write")[1]
    read = storage.create_key("dashboards", "read")[1]
    admin = storage.create_key("po", "admin")[1]
    launched_at = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    spec = hostile_spec(launched_at)
    sent = segment_events(launched_at)
    sent_posthog = posthog_decoys(launched_at)
    try:
        with TestClient(create_app(settings, storage)) as client:
            segment = client.post(
                "/v1/batch", json={"batch": sent}, headers={"Authorization": f"Bearer {write}"}
            )
            assert segment.json() == {
                "success": True,
                "accepted": len(sent),
                "inserted": len(sent),
                "duplicates": 0,
                "rejected": 0,
            }, segment.text
            posthog = client.post("/batch", json={"api_key": write, "batch": sent_posthog})
            assert posthog.status_code == 200 and posthog.json()["rejected"] == 0, posthog.text
            put = client.put(
                f"/api/launches/{LAUNCH}", json=spec, headers={"Authorization": f"Bearer {admin}"}
            )
            assert put.status_code == 201, put.text
            yield World(client, storage, settings, write, read, admin, launched_at, spec, sent, sent_posthog)
    finally:
        storage.close()


# ----------------------------------------------------------------------------- storage


def test_events_table_holds_every_hostile_string_byte_for_byte(world: World) -> None:
    rows = (
        world.storage.cursor()
        .execute(
            "select message_id, type, event, user_id, properties, traits from events where source = ?",
            [next(k.key_id for k in world.storage.list_keys() if k.name == "web")],
        )
        .fetchall()
    )
    stored = {
        m: (t, e, u, orjson.loads(p) if p else None, orjson.loads(tr) if tr else None)
        for m, t, e, u, p, tr in rows
    }
    for event in world.sent:
        expected = (
            event["type"],
            event.get("event"),
            event["userId"],
            event.get("properties"),
            event.get("traits"),
        )
        assert stored[event["messageId"]] == expected
    for event in world.sent_posthog:
        _, name, user_id, properties, traits = stored[event["uuid"]]
        assert user_id == event["distinct_id"]
        assert name == (None if event["event"] == "$identify" else event["event"])
        assert properties == event["properties"]
        assert traits == event.get("$set")
    # The database's own JSON reading agrees, through the pointers the reports use.
    for i, value in enumerate(VALUES):
        found = (
            world.storage.cursor()
            .execute(
                "select json_extract_string(properties, ?) from events where message_id = ?",
                [json_pointer(value), f"ex-{i}"],
            )
            .fetchone()
        )
        assert found == (value,), NAMES[i]


def test_launch_spec_comes_back_exactly(world: World) -> None:
    response = world.client.get(f"/api/launches/{LAUNCH}", headers=world.auth(world.read))
    assert response.status_code == 200
    spec = response.json()["spec"]
    assert LaunchSpec.model_validate(spec) == LaunchSpec.model_validate(world.spec)
    for field in ("name", "owner", "description", "channel_property"):
        assert spec[field] == world.spec[field], field
    matchers = spec["signals"]["exposed"]
    assert [(m["event"], m["where"]) for m in matchers] == [(v, {v: v}) for v in VALUES]
    assert [(a["channel"], a["note"]) for a in spec["announcements"]] == [(v, v) for v in VALUES]


# ----------------------------------------------------------------------------- reports


def test_report_counts_exactly_the_matching_events(world: World) -> None:
    response = world.client.get(
        f"/api/launches/{LAUNCH}/report", params={"segment": TRAIT}, headers=world.auth(world.read)
    )
    assert response.status_code == 200, response.text
    report = response.json()
    counts = report["counts"]
    assert (counts["active"], counts["exposed"], counts["adopters"]) == (2 * N, N, N), counts
    assert (report["name"], report["owner"]) == (SCRIPT, HOSTILE["html"])
    channels = {c["channel"]: c["exposed"] for c in report["channels"]}
    assert channels == dict.fromkeys(VALUES, 1)
    segments = {row["value"]: row["active"] for row in report["segments"]["rows"]}
    assert segments == dict.fromkeys(VALUES, 2)
    labels = {m["label"] for m in report["timeline"]["markers"]}
    assert {f"{v} announcement" for v in VALUES} <= labels


def test_readiness_finds_every_hostile_matcher(world: World) -> None:
    response = world.client.get(f"/api/launches/{LAUNCH}/readiness", headers=world.auth(world.read))
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == []


# ----------------------------------------------------------------------------- refused


@pytest.mark.parametrize("name", NAMES)
def test_kpi_ids_and_launch_keys_refuse_hostile_strings(world: World, name: str) -> None:
    value = HOSTILE[name]
    bad_kpi = {**world.spec, "kpis": [{**world.spec["kpis"][0], "id": value}]}
    response = world.client.put(f"/api/launches/{LAUNCH}", json=bad_kpi, headers=world.auth(world.admin))
    assert response.status_code == 422, response.text
    assert set(response.json()) == {"code", "message", "detail"}
    bad_key = {**world.spec, "key": value}
    response = world.client.put(f"/api/launches/{LAUNCH}", json=bad_key, headers=world.auth(world.admin))
    assert response.status_code == 422, response.text
    versions = world.storage.launch_versions(LAUNCH)
    assert len(versions) == 1  # nothing changed


# ----------------------------------------------------------------------------- pages


PAGES = [
    f"/launches/{LAUNCH}",
    f"/launches/{LAUNCH}?segment={TRAIT}",
    "/",
    "/review",
    f"/compare?launch={LAUNCH}",
]


def outside_scripts(text: str) -> str:
    """The page without the contents of its <script> elements (Plotly's figure JSON)."""
    return "".join(re.split(r"(?is)<script\b[^>]*>.*?</script>", text))


def raw_hostile(text: str) -> list[str]:
    """Names of the hostile strings that appear unescaped where they could act as markup."""
    html_only = outside_scripts(text)
    return [
        name
        for name, value in HOSTILE.items()
        if (value in TAGS and value in text) or (value in MARKUP and value in html_only)
    ]


def page_html(world: World, path: str, params: dict[str, str] | None = None) -> str:
    response = world.client.get(path, params=params, headers=world.auth(world.read))
    assert response.status_code == 200, (path, response.text[:500])
    return response.text


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_hostile_strings_escaped(world: World, path: str) -> None:
    text = page_html(world, path)
    assert raw_hostile(text) == [], f"raw markup on {path}"
    assert "<img" not in text
    assert html.escape(SCRIPT) in text  # the launch name, as text
    assert html.escape(HOSTILE["html"]) in text  # the owner, as text


def test_scorecard_shows_hostile_trait_names_escaped_in_the_segment_chooser(world: World) -> None:
    text = page_html(world, f"/launches/{LAUNCH}")
    for value in VALUES:
        assert f'<option value="{html.escape(value)}">{html.escape(value)}</option>' in text, value


def test_scorecard_with_a_hostile_segment_renders_escaped(world: World) -> None:
    for value in VALUES:
        text = page_html(world, f"/launches/{LAUNCH}", {"segment": value})
        assert raw_hostile(text) == [], value


@pytest.mark.parametrize("name", NAMES)
def test_the_sign_in_form_reflects_next_escaped(world: World, name: str) -> None:
    """`next` comes from the query string of a public page: the classic reflected XSS."""
    value = HOSTILE[name]
    response = world.client.get("/login", params={"next": f"/{value}"})
    assert response.status_code == 200
    assert raw_hostile(response.text) == []
    assert f'name="next" value="{html.escape("/" + value)}"' in response.text


# ----------------------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[str]:
    """The same database served by uvicorn on 127.0.0.1."""
    with serving(create_app(world.settings, world.storage)) as url:
        yield url


@pytest.mark.browser
def test_no_page_opens_a_dialog_or_throws_in_a_browser(world: World, served: str, browser: Browser) -> None:
    context = browser.new_context()
    dialogs: list[str] = []
    errors: list[str] = []
    headings: list[str] = []
    try:
        page = context.new_page()

        def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{served}/login")
        page.fill("#key", world.read)
        with page.expect_navigation():
            page.click("form button[type=submit]")
        script, markup = quote(SCRIPT, safe=""), quote(HOSTILE["html"], safe="")
        for path in [*PAGES, f"/launches/{LAUNCH}?segment={script}", f"/login?next=/{markup}{script}"]:
            response = page.goto(f"{served}{path}")
            assert response is not None and response.status == 200, path
            page.wait_for_load_state("load")
            if path.startswith(("/launches/", "/review")):
                page.locator(".js-plotly-plot svg.main-svg").first.wait_for(state="visible", timeout=15_000)
            # Hover every channel bar and marker, where Plotly renders its own pseudo-HTML.
            for bar in page.locator("g.point path").all()[:20]:
                box = bar.bounding_box()
                if box:
                    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(200)
            if path.startswith("/launches/"):
                headings.append(page.locator("h1").inner_text())
        assert dialogs == []
        assert errors == []
        assert headings == [SCRIPT] * len(headings)  # the launch name shown as text, not run
    finally:
        context.close()


# ----------------------------------------------------------------------------- nothing executed


def test_nothing_was_executed(world: World) -> None:
    for path in PAGES:
        page_html(world, path)
    assert (
        world.client.get(f"/api/launches/{LAUNCH}/report", headers=world.auth(world.read)).status_code == 200
    )
    tables = {
        r[0] for r in world.storage.cursor().execute("select table_name from duckdb_tables()").fetchall()
    }
    assert {
        "events",
        "rejected_events",
        "identity_links",
        "api_keys",
        "launch_versions",
        "kpi_amendments",
    } <= tables
    assert world.storage.count_events() == len(world.sent) + len(world.sent_posthog)
    rejected = world.storage.cursor().execute("select count(*) from rejected_events").fetchone()
    assert rejected == (0,)
    assert len(world.storage.list_keys()) == 3
    assert world.storage.launch_keys() == [LAUNCH]
    assert current_week(datetime.now(UTC))  # the review page above covered this week
