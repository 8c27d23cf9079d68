"""Decisions on record in a real headless Chromium against the real service: signed in with an
admin key, a product owner records a decision with the scorecard's form (a plain form carrying
its CSRF token), then a second that supersedes it; the scorecard, its KPI history, the weekly
review and the portfolio show them. The sample's own decision and alert (app/demo.py) show too.
Needs Debian's chromium; skips without it, except under CI."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.demo import load_sample
from app.local_server import serving
from app.main import create_app
from app.settings import Settings
from app.storage import Storage

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


@dataclass(frozen=True)
class Service:
    url: str
    read_key: str
    admin_key: str
    storage: Storage


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    settings = Settings(db_path=str(tmp_path_factory.mktemp("decisions") / "landed.duckdb"))
    with Storage.open(settings) as storage:
        demo = load_sample(storage, today=datetime.now(UTC))
        with serving(create_app(settings, storage)) as url:
            yield Service(url, demo.read_key, demo.admin_key, storage)


def sign_in(page: Page, service: Service, key: str) -> None:
    page.goto(f"{service.url}/login")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{service.url}/")


def test_a_decision_recorded_on_the_scorecard_shows_everywhere(browser: Browser, service: Service) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, service, service.admin_key)
        # The sample's own: a decision on the closed launch that missed, an alert raised.
        portfolio = page.locator("#attention")
        assert "Decided" not in portfolio.inner_text()
        assert page.locator('#attention li.alert[data-launch="ai-summaries"]').count() >= 1
        assert page.locator('#attention li.undecided[data-launch="team-workspaces"]').count() == 1
        assert page.locator('#attention li.undecided[data-launch="smart-export"]').count() == 0

        page.goto(f"{service.url}/launches/team-workspaces")
        assert page.locator("#decisions").inner_text().count("No decision on record yet.") == 1
        page.select_option("#decision", "double-down")
        page.fill("#reason", "roll it out to every plan")
        page.fill("#decided_by", "Ana")
        page.click("#decision-form button[type=submit]")
        page.wait_for_url(f"{service.url}/launches/team-workspaces#decisions")
        today = datetime.now(UTC).date().isoformat()
        first = page.locator("#decisions li.decision").first
        assert first.inner_text().startswith(
            f"Decided {today}: double-down, roll it out to every plan (reach "
        )
        assert "met" in first.inner_text()

        page.select_option("#decision", "keep")
        page.fill("#reason", "keep it as it is for now")
        page.click("#decision-form button[type=submit]")
        page.wait_for_url(f"{service.url}/launches/team-workspaces#decisions")
        items = page.locator("#decisions li.decision")
        assert items.count() == 2
        assert items.nth(0).inner_text().startswith(f"Decided {today}: keep, keep it as it is for now")
        assert "superseded" in (items.nth(1).get_attribute("class") or "")
        history = page.locator("#history").inner_text()
        assert "double-down (verdict landed)" in history and "keep (verdict landed)" in history
        page.screenshot(path=str(SCREENSHOTS / "decision-scorecard.png"), full_page=True)

        page.goto(f"{service.url}/")
        assert page.locator('#attention li.undecided[data-launch="team-workspaces"]').count() == 0

        # The open launch's decision shows in this week's review.
        page.goto(f"{service.url}/launches/ai-summaries")
        page.select_option("#decision", "iterate")
        page.fill("#reason", "show the summary button in the editor")
        page.click("#decision-form button[type=submit]")
        page.wait_for_url(f"{service.url}/launches/ai-summaries#decisions")
        page.goto(f"{service.url}/review")
        section = page.locator('section.review[data-launch="ai-summaries"] p.decision')
        assert section.inner_text().startswith(
            f"Decided {today}: iterate, show the summary button in the editor ("
        )
        page.screenshot(path=str(SCREENSHOTS / "decision-review.png"), full_page=True)
        assert errors == []
    finally:
        context.close()
    stored = service.storage.decisions("team-workspaces")
    assert [(d.decision, d.decided_by) for d in stored] == [("double-down", "Ana"), ("keep", "demo-po")]


def test_a_read_sign_in_sees_decisions_but_no_form(browser: Browser, service: Service) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, service, service.read_key)
        page.goto(f"{service.url}/launches/smart-export")
        assert page.locator("#decision-form").count() == 0
        line = page.locator("#decisions li.decision").first.inner_text()
        assert "iterate, make the export button visible where people finish a report" in line
        assert "adoption" in line and "missed" in line
        # The session alone cannot record one (no form token, and a read key).
        response = page.request.post(
            f"{service.url}/launches/smart-export/decisions", form={"decision": "keep", "reason": "x"}
        )
        assert response.status in (401, 403)
    finally:
        context.close()
