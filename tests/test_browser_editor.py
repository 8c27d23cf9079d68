"""The launch editor in a real headless Chromium against the real service under uvicorn: a
launch created through the form (matchers, two KPIs) shows on the portfolio and through the API
equal to the same spec applied from YAML; it is edited before launch; after launch a target
changes only with a reason, which the history then shows; a launch managed from git is
read-only; validation messages appear next to their fields; a read-only session sees no edit
controls. Leaves docs/img/editor.png, the screenshot docs/launches.md shows.

Needs Debian's chromium (`apt-get install chromium`); without it these tests skip on a
workstation and fail under CI (the `browser` fixture of conftest.py).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from app import launches
from app.ingest import now_utc
from pipelines.launch import LaunchSpec
from tests.helpers.live import ROOT, Keys, LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Locator, Page

pytestmark = pytest.mark.browser

SCREENSHOT = ROOT / "docs" / "img" / "editor.png"
TIMEOUT_MS = 15_000
AHEAD = (datetime.now(UTC) + timedelta(days=30)).replace(hour=9, minute=0, second=0, microsecond=0)


def spec_yaml(key: str) -> str:
    return f"""
key: {key}
name: Smart export
owner: po@example.com
launched_at: {AHEAD.strftime("%Y-%m-%dT%H:%M:%SZ")}
signals:
  exposed: [{{event: Announcement Viewed, where: {{feature: smart-export}}}}]
  used: [{{event: Feature Used}}]
kpis:
  - {{id: adoption, metric: adoption_rate, comparator: ">=", target: 0.2, by_day: 14}}
  - {{id: speed, metric: median_days_to_adopt, comparator: "<=", target: 7, min_sample: 50}}
"""


def api(server: LiveServer, secret: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    token = base64.b64encode(f"{secret}:".encode()).decode()
    headers = {"Authorization": f"Basic {token}", **kwargs.pop("headers", {})}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=30, **kwargs)


@pytest.fixture
def signed_in(
    browser: Browser, live_server: LiveServer, keys: Keys
) -> Iterator[tuple[BrowserContext, list[str]]]:
    """A context signed in with the admin key, and the errors its pages throw or log."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    context.on("weberror", lambda error: problems.append(str(error.error)))
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server, keys.admin)
    page.close()
    try:
        yield context, problems
    finally:
        context.close()


def sign_in(page: Page, server: LiveServer, secret: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#key", secret)
    with page.expect_navigation():
        page.click("form button[type=submit]")


def new_page(signed: tuple[BrowserContext, list[str]]) -> Page:
    context, problems = signed
    page = context.new_page()
    page.on(
        "console", lambda m: problems.append(m.text) if m.type == "error" and "422" not in m.text else None
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page


def add_matcher(page: Page, signal: str, event: str, where: tuple[str, str] | None = None) -> None:
    page.click(f'button.add-matcher[data-signal="{signal}"]')
    matcher = page.locator(f"#signal-{signal} .matcher").last
    matcher.locator(".m-event").fill(event)
    if where is not None:
        matcher.get_by_role("button", name="Add a property filter").click()
        matcher.locator(".w-name").last.fill(where[0])
        matcher.locator(".w-values").last.fill(where[1])


def add_kpi(page: Page, kpi_id: str, metric: str, comparator: str, target: str, **optional: str) -> None:
    page.click("#add-kpi")
    row = page.locator("#kpis .kpi").last
    row.locator(".k-id").fill(kpi_id)
    row.locator(".k-metric").select_option(metric)
    row.locator(".k-comparator").select_option(comparator)
    row.locator(".k-target").fill(target)
    if "min_sample" in optional:
        row.locator(".k-min-sample").fill(optional["min_sample"])
    if "by_day" in optional:
        row.locator(".k-by-day").fill(optional["by_day"])


def error_of(page: Page, field: str) -> Locator:
    return page.locator(f'[data-field="{field}"] > .field-error')


def save(page: Page) -> None:
    with page.expect_navigation(timeout=TIMEOUT_MS):
        page.click("#save")


def test_create_through_the_form_then_edit_before_launch(
    signed_in: tuple[BrowserContext, list[str]], live_server: LiveServer, keys: Keys
) -> None:
    page = new_page(signed_in)
    page.goto(f"{live_server.url}/")
    page.click("#new-launch")
    assert urlsplit(page.url).path == "/launches/new"
    page.fill("#f-name", "Smart export")
    assert page.input_value("#f-key") == "smart-export"  # derived from the name
    page.fill("#f-owner", "po@example.com")
    page.fill("#f-launched", AHEAD.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#f-zone", "UTC")
    add_matcher(page, "exposed", "Announcement Viewed", ("feature", "smart-export"))
    add_matcher(page, "used", "Feature Used")
    add_kpi(page, "adoption", "adoption_rate", ">=", "20", by_day="14")
    add_kpi(page, "speed", "median_days_to_adopt", "<=", "7", min_sample="50")
    # the page explains the metric picked, and checks the draft as it is typed
    assert (
        "share who used the feature" in page.locator("#kpis .kpi").first.locator(".k-sentence").inner_text()
    )
    readiness = page.locator('[data-readiness="used.0"]')
    readiness.filter(has_text="Matched").wait_for(timeout=TIMEOUT_MS)
    assert "in the last 7 days" in readiness.inner_text()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    save(page)
    assert urlsplit(page.url).path == "/launches/smart-export"

    # on the portfolio, and through the API equal to the same spec applied from YAML
    page.goto(f"{live_server.url}/")
    assert page.locator('a[href="/launches/smart-export"]').inner_text() == "Smart export"
    applied = api(
        live_server,
        keys.admin,
        "PUT",
        "/api/launches/from-yaml",
        content=spec_yaml("from-yaml"),
        headers={"Content-Type": "application/yaml"},
    )
    assert applied.status_code == 201, applied.text
    made = api(live_server, keys.read, "GET", "/api/launches/smart-export").json()
    assert {**made["spec"], "key": "from-yaml"} == applied.json()["spec"]

    # edit it before launch, from the scorecard
    page.goto(f"{live_server.url}/launches/smart-export")
    page.click("#edit-launch")
    assert page.get_attribute("#f-key", "readonly") is not None
    page.fill("#f-name", "Smarter export")
    page.locator("#kpis .kpi").first.locator(".k-target").fill("25")
    save(page)
    spec = api(live_server, keys.read, "GET", "/api/launches/smart-export").json()["spec"]
    assert (spec["name"], spec["kpis"][0]["target"]) == ("Smarter export", 0.25)
    assert signed_in[1] == []


def test_validation_messages_appear_next_to_their_fields(
    signed_in: tuple[BrowserContext, list[str]], live_server: LiveServer
) -> None:
    page = new_page(signed_in)
    page.goto(f"{live_server.url}/launches/new")
    page.fill("#f-name", "Half done")
    add_matcher(page, "used", "Feature Used")
    add_kpi(page, "adoption", "adoption_rate", ">=", "150")
    page.click("#save")
    error_of(page, "owner").wait_for(state="visible", timeout=TIMEOUT_MS)
    assert "at least 1 character" in error_of(page, "owner").inner_text()
    assert "launch date" in error_of(page, "launched_at").inner_text()
    assert "at least 1" in error_of(page, "signals.exposed").inner_text()
    assert "percent between 0 and 100" in error_of(page, "kpis.0.target").inner_text()
    assert urlsplit(page.url).path == "/launches/new"  # nothing saved


def test_after_launch_a_target_changes_only_with_a_reason(
    signed_in: tuple[BrowserContext, list[str]], live_server: LiveServer, keys: Keys
) -> None:
    spec = yaml.safe_load(spec_yaml("live-one"))
    spec["launched_at"] = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    launches.put_launch(
        live_server.storage, LaunchSpec.model_validate(spec), by="seed", now=now_utc() - timedelta(days=3)
    )
    page = new_page(signed_in)
    page.goto(f"{live_server.url}/launches/live-one/edit")
    assert page.locator("#locked-note").is_visible()
    assert page.is_disabled("#f-launched")
    first = page.locator("#kpis .kpi").first
    assert first.locator(".k-metric").is_disabled()
    first.locator(".k-target").fill("10")
    page.click("#save")
    error_of(page, "reason").wait_for(state="visible", timeout=TIMEOUT_MS)
    assert "say why" in error_of(page, "reason").inner_text()
    reason = "Export is niche; <b>20%</b> was set before we saw segment sizes"
    page.fill("#f-reason", reason)
    save(page)
    assert urlsplit(page.url).path == "/launches/live-one"
    assert reason in page.inner_text("body")  # the history on the scorecard, as text
    history = api(live_server, keys.read, "GET", "/api/launches/live-one/history").json()
    assert (history[-1]["kind"], history[-1]["reason"]) == ("amendment", reason)


def test_a_launch_managed_from_git_is_read_only(
    signed_in: tuple[BrowserContext, list[str]], live_server: LiveServer, keys: Keys
) -> None:
    applied = api(
        live_server,
        keys.admin,
        "PUT",
        "/api/launches/from-git?source=git",
        content=spec_yaml("from-git"),
        headers={"Content-Type": "application/yaml"},
    )
    assert applied.status_code == 201, applied.text
    page = new_page(signed_in)
    page.goto(f"{live_server.url}/launches/from-git/edit")
    assert page.locator("#managed-from-git").is_visible()
    assert page.locator("#launch-editor").count() == 0
    assert "key: from-git" in page.inner_text("#spec-yaml")
    download = page.get_attribute("#download-yaml", "href")
    assert download == "/api/launches/from-git/spec.yaml"


def test_a_read_only_session_sees_no_edit_controls(
    browser: Browser, live_server: LiveServer, keys: Keys, tmp_path: Path
) -> None:
    launches.put_launch(
        live_server.storage,
        LaunchSpec.model_validate(yaml.safe_load(spec_yaml("shown"))),
        by="t",
        now=now_utc(),
    )
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, live_server, keys.read)
        assert page.locator("#new-launch").count() == 0
        page.goto(f"{live_server.url}/launches/shown")
        assert page.locator("#edit-launch").count() == 0
        response = page.goto(f"{live_server.url}/launches/shown/edit")
        assert response is not None and response.status == 403
        assert page.locator("#launch-editor").count() == 0
    finally:
        context.close()
