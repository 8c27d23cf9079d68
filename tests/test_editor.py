"""The launch editor without a browser: the form's translation to and from the launch spec
(time zones, percent targets, comma-separated values, messages per field), its posts under the
API's rules (admin scope, CSRF, the lock at launch, amendments with a reason, the history), the
git-managed marker, the YAML download `landed launch plan` finds unchanged, the helpers the page
calls while typing, and the schema upgrade that records where a version came from."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from app import launches
from app.ingest import now_utc
from app.sessions import SESSION_COOKIE
from app.settings import Settings
from app.storage import Storage
from dashboards.editor import EditorForm, FieldError, form_from_spec, metric_choices, spec_from_form
from pipelines.launch import LaunchSpec
from tests.helpers.cli import commands_on, load, run
from tests.helpers.http import bearer
from tests.helpers.live import Keys, LiveServer

pytestmark = pytest.mark.backends

Capsys = pytest.CaptureFixture[str]
AHEAD = (datetime.now(UTC) + timedelta(days=30)).replace(hour=9, minute=0, second=0, microsecond=0)


def form_data(key: str = "smart-export", **changes: Any) -> dict[str, Any]:
    """The editor's form for a launch a month ahead, as its script posts it."""
    data: dict[str, Any] = {
        "key": key,
        "name": "Smart export",
        "owner": "po@example.com",
        "description": "One-click export",
        "launched_local": AHEAD.strftime("%Y-%m-%dT%H:%M"),
        "time_zone": "UTC",
        "window_days": "28",
        "identified_only": True,
        "audience_where": [{"name": "plan", "values": "free, pro"}],
        "exposed": [
            {
                "type": "track",
                "event": "Announcement Viewed",
                "where": [{"name": "feature", "values": "smart-export"}],
            }
        ],
        "used": [
            {
                "type": "track",
                "event": "Feature Used",
                "where": [{"name": "feature", "values": "smart-export"}],
            }
        ],
        "converted": [{"type": "track", "event": "Plan Upgraded", "where": []}],
        "channel_property": "channel",
        "kpis": [
            {
                "id": "adoption",
                "metric": "adoption_rate",
                "comparator": ">=",
                "target": "20",
                "min_sample": "",
                "by_day": "14",
            },
            {
                "id": "speed",
                "metric": "median_days_to_adopt",
                "comparator": "<=",
                "target": "7",
                "min_sample": "50",
                "by_day": "",
            },
        ],
    }
    return {**data, **changes}


def spec_yaml(key: str = "smart-export") -> str:
    """The same launch as a spec file."""
    return f"""
key: {key}
name: Smart export
owner: po@example.com
description: One-click export
launched_at: {AHEAD.strftime("%Y-%m-%dT%H:%M:%SZ")}
audience:
  where: {{plan: [free, pro]}}
signals:
  exposed: [{{event: Announcement Viewed, where: {{feature: smart-export}}}}]
  used: [{{event: Feature Used, where: {{feature: smart-export}}}}]
  converted: [{{event: Plan Upgraded}}]
kpis:
  - {{id: adoption, metric: adoption_rate, comparator: ">=", target: 0.2, by_day: 14}}
  - {{id: speed, metric: median_days_to_adopt, comparator: "<=", target: 7, min_sample: 50}}
"""


def sign_in(client: TestClient, secret: str) -> None:
    response = client.post("/login", data={"key": secret, "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text


def csrf_of(page: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def editor_token(client: TestClient, path: str = "/launches/new") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


@pytest.fixture
def admin(client: TestClient, keys: Keys) -> str:
    """The client signed in with the admin key; the editor's CSRF token."""
    sign_in(client, keys.admin)
    return editor_token(client)


def post(client: TestClient, path: str, body: dict[str, Any], token: str | None) -> Any:
    headers = {"X-CSRF-Token": token} if token else {}
    return client.post(path, json=body, headers=headers)


def fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["fields"]}


# ----------------------------------------------------------------------------- the form and the spec


def test_the_form_becomes_the_spec_the_same_file_describes() -> None:
    spec, errors = spec_from_form(EditorForm.model_validate(form_data()))
    assert errors == []
    assert spec == LaunchSpec.model_validate(yaml.safe_load(spec_yaml()))


def test_a_launch_time_in_a_time_zone_is_stored_in_utc() -> None:
    form = EditorForm.model_validate(form_data(launched_local="2026-10-26T09:00", time_zone="Europe/Berlin"))
    summer = EditorForm.model_validate(
        form_data(launched_local="2026-07-01T09:00", time_zone="Europe/Berlin")
    )
    assert spec_from_form(form)[0].launched_at == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # type: ignore[union-attr]
    assert spec_from_form(summer)[0].launched_at == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # type: ignore[union-attr]


def test_a_stored_spec_shows_on_the_form_and_saves_unchanged() -> None:
    spec = LaunchSpec.model_validate(
        {
            **yaml.safe_load(spec_yaml()),
            "signals": {
                "exposed": [{"event": "Seen", "where": {"count": 3, "beta": True}}],
                "used": [{"type": "page", "where": {"path": "/x"}}],
            },
            "kpis": [
                {"id": "reach", "metric": "exposure_rate", "comparator": ">=", "target": 0.07},
                {"id": "w1", "metric": "week_1_retention", "comparator": ">=", "target": 0.125},
            ],
        }
    )
    form = form_from_spec(spec, version=3, time_zone="America/New_York")
    assert (form.kpis[0].target, form.kpis[1].target) == ("7", "12.5")
    assert form.exposed[0].where[0].values == "3"
    assert spec_from_form(form, stored=spec) == (spec, [])


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": ""}, "name", "at least 1 character"),
        ({"key": "Smart Export"}, "key", "pattern"),
        ({"launched_local": ""}, "launched_at", "launch date"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "unknown time zone"),
        ({"window_days": "400"}, "window_days", "366"),
        ({"used": []}, "signals.used", "at least 1"),
        ({"exposed": [{"type": "track", "event": "", "where": []}]}, "signals.exposed.0", "event name"),
        ({"audience_where": [{"name": "plan", "values": " "}]}, "audience.where", "accepted value"),
        (
            {"kpis": [{"id": "a", "metric": "adopt", "comparator": ">=", "target": "5"}]},
            "kpis.0.metric",
            "unknown metric",
        ),
        (
            {"kpis": [{"id": "a", "metric": "adoption_rate", "comparator": ">=", "target": "150"}]},
            "kpis.0.target",
            "0 and 100",
        ),
        (
            {"kpis": [{"id": "a", "metric": "adoption_rate", "comparator": ">=", "target": "x"}]},
            "kpis.0.target",
            "number",
        ),
        (
            {
                "kpis": [
                    {"id": "a", "metric": "adoption_rate", "comparator": ">=", "target": "5", "by_day": "40"}
                ]
            },
            "kpis.0.by_day",
            "beyond the 28-day window",
        ),
        (
            {
                "converted": [],
                "kpis": [{"id": "c", "metric": "conversion_rate", "comparator": ">=", "target": "5"}],
            },
            "kpis.0.metric",
            "signals.converted is empty",
        ),
        (
            {"kpis": [{"id": "a", "metric": "adoption_rate", "comparator": ">=", "target": "5"}] * 2},
            "kpis.1.id",
            "used twice",
        ),
    ],
    ids=[
        "name",
        "key",
        "time",
        "zone",
        "window",
        "no-used",
        "no-event",
        "no-value",
        "metric",
        "percent",
        "not-a-number",
        "by-day",
        "conversion",
        "twice",
    ],
)
def test_each_problem_is_named_by_its_field(changes: dict[str, Any], field: str, words: str) -> None:
    spec, errors = spec_from_form(EditorForm.model_validate(form_data(**changes)))
    assert spec is None
    assert any(e.field == field and words in e.message for e in errors), errors


def test_every_metric_a_kpi_may_pick_has_a_sentence() -> None:
    choices = metric_choices(28)
    assert [c["value"] for c in choices][-3:] == ["week_1_retention", "week_2_retention", "week_3_retention"]
    assert all(c["sentence"] and c["label"] and c["unit"] in ("%", "days") for c in choices)


# ----------------------------------------------------------------------------- saving through the editor


def test_create_through_the_editor_equals_the_same_spec_applied_from_yaml(
    client: TestClient, keys: Keys, admin: str
) -> None:
    response = post(client, "/launches/new", form_data(), admin)
    assert response.status_code == 201, response.text
    assert response.json() == {"key": "smart-export", "url": "/launches/smart-export", "result": "created"}
    from_yaml = client.put(
        "/api/launches/from-yaml",
        content=spec_yaml("from-yaml"),
        headers={**bearer(keys.admin), "Content-Type": "application/yaml"},
    )
    assert from_yaml.status_code == 201, from_yaml.text
    made = client.get("/api/launches/smart-export", headers=bearer(keys.read)).json()
    assert {**made["spec"], "key": "from-yaml"} == from_yaml.json()["spec"]
    assert made["managed_from_git"] is False
    history = client.get("/api/launches/smart-export/history", headers=bearer(keys.read)).json()
    assert [(h["summary"], h["by"]) for h in history] == [("created", "po")]
    portfolio = client.get("/")
    assert "Smart export" in portfolio.text and 'id="new-launch"' in portfolio.text


def test_a_key_that_exists_is_refused_next_to_the_key(client: TestClient, admin: str) -> None:
    assert post(client, "/launches/new", form_data(), admin).status_code == 201
    assert "exists already" in fields(post(client, "/launches/new", form_data(), admin))["key"]


def test_invalid_forms_answer_with_a_message_per_field(client: TestClient, admin: str) -> None:
    bad = form_data(
        name="", kpis=[{"id": "a", "metric": "adoption_rate", "comparator": ">=", "target": "120"}]
    )
    response = post(client, "/launches/new", bad, admin)
    assert set(fields(response)) == {"name", "kpis.0.target"}
    assert response.json()["code"] == "invalid_input"


def test_edit_before_launch_records_a_version_and_refuses_a_stale_form(
    client: TestClient, admin: str
) -> None:
    assert post(client, "/launches/new", form_data(), admin).status_code == 201
    page = client.get("/launches/smart-export/edit")
    assert page.status_code == 200 and "readonly" in page.text
    changed = form_data(version=1, name="Smarter export", kpis=form_data()["kpis"][:1])
    saved = post(client, "/launches/smart-export/edit", changed, csrf_of(page.text))
    assert saved.status_code == 200, saved.text
    state = launches.load_launch(client.app.state.storage, "smart-export")  # type: ignore[attr-defined]
    assert (state.latest.version, state.spec.name, [k.id for k in state.spec.kpis]) == (
        2,
        "Smarter export",
        ["adoption"],
    )
    stale = post(client, "/launches/smart-export/edit", changed, csrf_of(page.text))
    assert (stale.status_code, stale.json()["code"]) == (409, "launch_changed")


def live_launch(storage: Storage, key: str = "live-one") -> None:
    spec = yaml.safe_load(spec_yaml(key))
    spec["launched_at"] = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    launches.put_launch(
        storage, LaunchSpec.model_validate(spec), by="seed", now=now_utc() - timedelta(days=3)
    )


def test_after_launch_a_target_changes_only_with_a_reason_and_joins_the_history(
    client: TestClient, storage: Storage, keys: Keys, admin: str
) -> None:
    live_launch(storage)
    page = client.get("/launches/live-one/edit")
    assert 'id="locked-note"' in page.text and 'id="f-reason"' in page.text
    token = csrf_of(page.text)
    form = form_from_spec(launches.load_launch(storage, "live-one").spec, version=1).model_dump()
    form["kpis"][0]["target"] = "10"
    form["launched_local"] = "2020-01-01T00:00"  # locked: ignored after launch
    assert "reason" in fields(post(client, "/launches/live-one/edit", form, token))
    reason = "Export is niche; <script>alert(1)</script> was set too high"
    saved = post(client, "/launches/live-one/edit", {**form, "reason": reason}, token)
    assert saved.status_code == 200, saved.text
    assert saved.json()["result"] == "amended"
    history = client.get("/api/launches/live-one/history", headers=bearer(keys.read)).json()
    assert [(h["kind"], h["summary"], h["reason"]) for h in history][-1] == (
        "amendment",
        "adoption: target 20.0% -> 10.0%",
        reason,
    )
    launch = client.get("/api/launches/live-one", headers=bearer(keys.read)).json()
    assert launch["spec"]["launched_at"] != "2020-01-01T00:00:00Z"
    # the same reason again is refused, next to the reason
    form["kpis"][0]["target"] = "12"
    assert "reason" in fields(post(client, "/launches/live-one/edit", {**form, "reason": reason}, token))
    # and the reason reaches the scorecard as text, never as a script
    scorecard = client.get("/launches/live-one").text
    assert "<script>alert(1)</script>" not in scorecard
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in scorecard


def test_names_and_properties_reach_the_editor_as_text(client: TestClient, admin: str) -> None:
    hostile = '"><script>alert(1)</script>'
    body = form_data(name=f"Export {hostile}", owner=hostile, description=hostile)
    body["exposed"][0]["where"] = [{"name": hostile, "values": hostile}]
    assert post(client, "/launches/new", body, admin).status_code == 201
    page = client.get("/launches/smart-export/edit").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


# ----------------------------------------------------------------------------- who may save


def test_admin_scope_and_the_csrf_token_guard_every_save(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    launches.put_launch(
        storage, LaunchSpec.model_validate(yaml.safe_load(spec_yaml("other"))), by="t", now=now_utc()
    )
    writes = [("/launches/new", form_data()), ("/launches/other/edit", form_data("other"))]
    # no key at all
    for path, body in writes:
        assert post(client, path, body, None).status_code == 401
        assert post(client, path, body, "forged").status_code == 401
    # a read key, sent or signed in
    sign_in(client, keys.read)
    assert client.get("/launches/new").status_code == 403
    assert client.get("/launches/other/edit").status_code == 403
    assert 'id="new-launch"' not in client.get("/").text
    assert 'id="edit-launch"' not in client.get("/launches/other").text
    for path, body in writes:
        assert client.post(path, json=body, headers=bearer(keys.read)).status_code == 403
        assert post(client, path, body, "forged").status_code == 403
    # an admin session: only with the token of its own session
    sign_in(client, keys.admin)
    token = editor_token(client)
    assert 'id="edit-launch"' in client.get("/launches/other").text
    for path, body in writes:
        assert post(client, path, body, None).status_code == 401  # the cookie alone is no key
        refused = post(client, path, body, token + "x")
        assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")
    # a tampered cookie is no session at all
    other_session = client.cookies.get(SESSION_COOKIE)
    assert other_session is not None
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, other_session + "tampered")
    assert post(client, "/launches/new", form_data(), token).status_code == 401
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, other_session)
    fresh = editor_token(client)
    assert post(client, "/launches/new", form_data(), fresh).status_code == 201
    # an admin key sent by the caller needs no token, as with the API
    assert (
        client.post("/launches/other/edit", json=form_data("other"), headers=bearer(keys.admin)).status_code
        == 200
    )


def test_a_token_from_another_session_is_refused(client: TestClient, storage: Storage, keys: Keys) -> None:
    sign_in(client, keys.admin)
    token = editor_token(client)
    second = storage.create_key("second admin", "admin")[1]
    sign_in(client, second)
    refused = post(client, "/launches/new", form_data(), token)
    assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")


def test_a_cross_site_form_post_is_refused(client: TestClient, keys: Keys, admin: str) -> None:
    """What a hostile page can send: the cookie rides along, but no token and no JSON."""
    response = client.post(
        "/launches/new",
        content=b'{"key": "x"}',
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
    )
    assert response.status_code == 401


# ----------------------------------------------------------------------------- managed from git, YAML


def test_a_launch_applied_from_files_is_read_only_in_the_editor(
    client: TestClient, storage: Storage, keys: Keys, admin: str
) -> None:
    applied = client.put(
        "/api/launches/smart-export?source=git",
        content=spec_yaml(),
        headers={**bearer(keys.admin), "Content-Type": "application/yaml"},
    )
    assert applied.status_code == 201, applied.text
    assert applied.json()["managed_from_git"] is True
    page = client.get("/launches/smart-export/edit").text
    assert 'id="managed-from-git"' in page and 'id="launch-editor"' not in page
    assert "key: smart-export" in page
    refused = post(client, "/launches/smart-export/edit", form_data(version=1), admin)
    assert (refused.status_code, refused.json()["code"]) == (409, "managed_from_git")


def test_spec_files_that_change_nothing_still_mark_the_launch(
    client: TestClient, keys: Keys, admin: str
) -> None:
    assert post(client, "/launches/new", form_data(), admin).status_code == 201
    headers = {**bearer(keys.admin), "Content-Type": "application/yaml"}
    plan = client.put(
        "/api/launches/smart-export?source=git&dry_run=true", content=spec_yaml(), headers=headers
    )
    assert (plan.json()["result"], plan.json()["managed_from_git"]) == ("unchanged", False)
    applied = client.put("/api/launches/smart-export?source=git", content=spec_yaml(), headers=headers)
    assert (applied.json()["result"], applied.json()["managed_from_git"], applied.json()["version"]) == (
        "unchanged",
        True,
        1,
    )


def test_landed_launch_apply_marks_the_launch_as_managed_from_git(
    settings: Settings, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "smart-export.yaml"
    spec.write_text(spec_yaml())
    with commands_on(settings, monkeypatch) as db:
        code, out, err = run(capsys, "launch", "apply", "--db", db, str(spec))
        assert code == 0, out + err
        assert load(db, "smart-export").managed_from_git


@pytest.mark.parametrize("live", [False, True], ids=["before-launch", "amended-after-launch"])
def test_the_downloaded_yaml_plans_as_unchanged(
    live_server: LiveServer,
    keys: Keys,
    tmp_path: Path,
    capsys: Capsys,
    monkeypatch: pytest.MonkeyPatch,
    live: bool,
) -> None:
    auth = {"Authorization": f"Bearer {keys.admin}"}
    if live:
        live_launch(live_server.storage, "smart-export")
        amended = httpx.post(
            f"{live_server.url}/api/launches/smart-export/amendments",
            json={"reason": "traffic was lower", "kpis": [{"id": "adoption", "target": 0.1}]},
            headers=auth,
        )
        assert amended.status_code == 200, amended.text
    else:
        made = httpx.post(f"{live_server.url}/launches/new", json=form_data(), headers=auth)
        assert made.status_code == 201, made.text
    download = httpx.get(f"{live_server.url}/api/launches/smart-export/spec.yaml", headers=auth)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/yaml")
    assert 'filename="smart-export.yaml"' in download.headers["content-disposition"]
    file = tmp_path / "smart-export.yaml"
    file.write_bytes(download.content)
    monkeypatch.setenv("LANDED_URL", live_server.url)
    monkeypatch.setenv("LANDED_KEY", keys.admin)
    code, out, err = run(capsys, "launch", "plan", str(file))
    assert code == 0, out + err
    assert "smart-export unchanged" in out


# ----------------------------------------------------------------------------- help while typing


def send_events(client: TestClient, keys: Keys) -> None:
    now = datetime.now(UTC)
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "timestamp": now.isoformat()},
        {"type": "identify", "userId": "u2", "traits": {"plan": "free"}, "timestamp": now.isoformat()},
        *(
            {
                "type": "track",
                "userId": f"u{i % 2 + 1}",
                "event": "Feature Used",
                "properties": {"feature": "smart-export" if i < 3 else "search"},
                "timestamp": (now - timedelta(hours=i + 1)).isoformat(),
            }
            for i in range(4)
        ),
    ]
    response = client.post("/v1/batch", json={"batch": batch}, headers=bearer(keys.write))
    assert response.status_code == 200, response.text


def test_suggestions_offer_what_landed_has_seen(client: TestClient, keys: Keys) -> None:
    send_events(client, keys)

    def values(**params: str) -> list[tuple[str, int | None]]:
        response = client.get("/api/editor/suggestions", params=params, headers=bearer(keys.read))
        assert response.status_code == 200, response.text
        return [(v["value"], v["count"]) for v in response.json()["values"]]

    assert values(kind="events") == [("Feature Used", None)]
    assert values(kind="properties", event="Feature Used") == [("feature", 4)]
    assert values(kind="property_values", event="Feature Used", property="feature") == [
        ("smart-export", 3),
        ("search", 1),
    ]
    assert ("plan", None) in values(kind="traits")
    assert values(kind="trait_values", trait="plan") == [("free", 1), ("pro", 1)]
    assert values(kind="properties", event="Never Sent") == []


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"kind": "properties"}, "event"),
        ({"kind": "trait_values"}, "trait"),
        ({"kind": "property_values", "event": "E"}, "property"),
    ],
)
def test_a_suggestion_missing_its_parameter_names_it(
    client: TestClient, keys: Keys, params: dict[str, str], name: str
) -> None:
    response = client.get("/api/editor/suggestions", params=params, headers=bearer(keys.read))
    assert response.status_code == 400
    assert name in response.json()["message"]
    assert (
        client.get("/api/editor/suggestions", params={"kind": "x"}, headers=bearer(keys.read)).status_code
        == 422
    )


def test_the_check_counts_each_matcher_and_judges_each_kpi(client: TestClient, keys: Keys) -> None:
    send_events(client, keys)
    draft = form_data(audience_where=[])
    draft["used"][0]["where"] = []
    response = client.post("/api/editor/check", json=draft, headers=bearer(keys.read))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fields"] == []
    matchers = {(m["signal"], m["index"]): m for m in body["matchers"]}
    used = matchers[("used", 0)]
    assert (used["events_7d"], used["users_7d"], used["warning"]) == (4, 2, None)
    assert used["last_seen_at"] is not None
    assert (
        matchers[("exposed", 0)]["events_7d"] == 0 and "never matched" in matchers[("exposed", 0)]["warning"]
    )
    assert [(k["index"], k["kpi_id"]) for k in body["kpis"]] == [(0, "adoption")]
    assert "users" in body["kpis"][0]["message"]
    invalid = client.post("/api/editor/check", json={**draft, "owner": ""}, headers=bearer(keys.read)).json()
    assert [f["field"] for f in invalid["fields"]] == ["owner"] and invalid["matchers"] == []
    assert FieldError(field="owner", message=invalid["fields"][0]["message"])


# ----------------------------------------------------------------------------- the schema upgrade


@pytest.mark.duckdb_only  # DuckDB's schema upgrade; ClickHouse's tables were made with the column
def test_a_database_from_before_the_source_column_is_upgraded(tmp_path: Path) -> None:
    settings = Settings(db_path=str(tmp_path / "old.duckdb"))
    with Storage.open(settings) as storage:
        launches.put_launch(
            storage, LaunchSpec.model_validate(yaml.safe_load(spec_yaml())), by="t", now=now_utc()
        )
    with duckdb.connect(settings.db_path) as conn:  # as a database made before 011 looks
        conn.execute("alter table launch_versions drop column source")
    with Storage.open(settings) as storage:
        state = launches.load_launch(storage, "smart-export")
        assert (state.latest.version, state.latest.source, state.managed_from_git) == (1, None, False)
        launches.put_launch(
            storage, state.spec.model_copy(update={"name": "Renamed"}), by="t", now=now_utc(), source="git"
        )
        assert launches.load_launch(storage, "smart-export").managed_from_git
    with Storage.open(settings) as storage:  # running the schema again changes nothing
        assert [v.source for v in storage.launch_versions("smart-export")] == [None, "git"]
