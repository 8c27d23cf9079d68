"""The dashboard pages in a real headless Chromium against the real service under uvicorn,
loaded once with the sample data set. Signed in through the login form, every page shows
its verdict in words, Plotly draws an SVG in every figure div, nothing is logged to the
console as an error, no script throws, and nothing is fetched from any host but the service
itself (plotly.js is served locally, so pages work offline). Each page leaves a full-page
screenshot in `test-artifacts/screenshots/` for a human to look at.

Needs Debian's chromium (`apt-get install chromium`); Playwright's own browser downloads are
never used. Without chromium these tests skip on a workstation and fail under CI.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.demo import load_sample
from app.local_server import serving
from app.main import create_app
from app.page_data import current_week
from app.settings import Settings
from app.storage import Storage
from dashboards.compare import COMPARE_FIGURE_IDS
from dashboards.scorecard import FIGURE_IDS

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Locator,
        Page,
        Request,
        Route,
    )

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
RENDER_TIMEOUT_MS = 15_000
LAUNCH_NAMES = {
    "smart-export": "Smart export",
    "team-workspaces": "Team workspaces",
    "ai-summaries": "AI summaries",
}
# What the sample's stories end in: (verdict label, marked provisional).
VERDICTS = {
    "smart-export": ("Missed", False),
    "team-workspaces": ("Landed", False),
    "ai-summaries": ("Inconclusive", True),  # still inside its window
}
SCORECARDS = [
    ("smart-export", None),
    ("team-workspaces", None),
    ("ai-summaries", None),
    ("smart-export", "country"),
]


@dataclass(frozen=True)
class Service:
    url: str
    read_key: str

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def api(self, path: str) -> Any:
        """GET an API path with the read key as HTTP Basic username; the parsed JSON."""
        token = base64.b64encode(f"{self.read_key}:".encode()).decode()
        response = httpx.get(f"{self.url}{path}", headers={"Authorization": f"Basic {token}"}, timeout=30)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The sample loaded once into a fresh DuckDB file, served by uvicorn on 127.0.0.1."""
    settings = Settings(db_path=str(tmp_path_factory.mktemp("browser") / "landed.duckdb"))
    with Storage.open(settings) as storage:
        demo = load_sample(storage, today=datetime.now(UTC))
        with serving(create_app(settings, storage)) as url:
            yield Service(url, demo.read_key)


@dataclass
class Watched:
    """A page and what it logged, threw and requested since it opened."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = str(message.location.get("url"))
        self.console_errors.append(f"{message.text} ({where})")

    def foreign_requests(self, host: str) -> list[str]:
        return [url for url in self.requests if urlsplit(url).netloc != host]

    def assert_clean(self, host: str) -> None:
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.page_errors == [], f"page errors: {self.page_errors}"
        assert self.foreign_requests(host) == [], "requests left the service"


def watch(page: Page) -> Watched:
    watched = Watched(page)
    page.on("console", watched.on_console)
    page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
    page.on("request", lambda request: watched.requests.append(request.url))
    return watched


def new_context(browser: Browser) -> BrowserContext:
    return browser.new_context(viewport={"width": 1280, "height": 900})


def submit_login(page: Page, service: Service, key: str) -> None:
    """Fills the real login form and submits it (the page then loads wherever it redirects)."""
    if urlsplit(page.url).path != "/login":
        page.goto(f"{service.url}/login")
    page.fill("#key", key)
    with page.expect_navigation():
        page.click("form button[type=submit]")


@pytest.fixture(scope="module")
def signed_in(browser: Browser, service: Service) -> Iterator[BrowserContext]:
    """A browser context signed in once through the login form (the cookie is shared)."""
    context = new_context(browser)
    page = context.new_page()
    submit_login(page, service, service.read_key)
    assert urlsplit(page.url).path == "/", page.url
    page.close()
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def watched(signed_in: BrowserContext) -> Iterator[Watched]:
    page = signed_in.new_page()
    try:
        yield watch(page)
    finally:
        page.close()


def open_page(watched: Watched, service: Service, path: str) -> Page:
    response = watched.page.goto(f"{service.url}{path}")
    assert response is not None, path
    assert response.status == 200, (path, response.status)
    assert urlsplit(watched.page.url).path == urlsplit(path).path, watched.page.url
    return watched.page


def expect_charts(page: Page, div_ids: list[str]) -> None:
    """Each figure div became a Plotly plot with its main SVG drawn."""
    assert div_ids, "no figures to check"
    for div_id in div_ids:
        page.locator(f"#{div_id}.js-plotly-plot svg.main-svg").first.wait_for(
            state="visible", timeout=RENDER_TIMEOUT_MS
        )
        assert page.locator(f"#{div_id}.js-plotly-plot svg.main-svg").count() >= 1, div_id


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def hover(page: Page, target: Locator) -> None:
    """Moves the mouse over the middle of `target`: Plotly's drag layer sits on top of the
    bars and takes the events, so Playwright's hover (which checks the target) would refuse."""
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def hover_text(label: Locator) -> str:
    """The text of a Plotly hover label (SVG, so no inner_text)."""
    return label.text_content() or ""


def review_chart_ids(page: Page) -> list[str]:
    charts = page.locator("section.review div[id^='review-adoption-']")
    return [str(charts.nth(i).get_attribute("id")) for i in range(charts.count())]


# ----------------------------------------------------------------------------- pages


def test_portfolio_lists_every_launch_with_its_verdict(watched: Watched, service: Service) -> None:
    page = open_page(watched, service, "/")
    rows = page.locator("main table tbody tr")
    assert rows.count() == len(LAUNCH_NAMES)
    for key, name in LAUNCH_NAMES.items():
        row = rows.filter(has=page.locator(f'a[href="/launches/{key}"]'))
        assert row.count() == 1, key
        assert row.get_by_role("link", name=name).is_visible(), name
        verdict_cell = row.locator("td").nth(4)
        label, provisional = VERDICTS[key]
        badge = verdict_cell.locator(".badge")
        assert badge.is_visible(), key
        assert badge.inner_text() == label, key
        assert verdict_cell.locator(".provisional").count() == int(provisional), key
    screenshot(page, "portfolio")
    watched.assert_clean(service.host)


@pytest.mark.parametrize(
    ("launch_key", "segment"),
    SCORECARDS,
    ids=[key + (f"-{segment}" if segment else "") for key, segment in SCORECARDS],
)
def test_scorecard_shows_verdict_and_every_chart(
    watched: Watched, service: Service, launch_key: str, segment: str | None
) -> None:
    path = f"/launches/{launch_key}" + (f"?segment={segment}" if segment else "")
    page = open_page(watched, service, path)
    assert page.locator("h1").inner_text() == LAUNCH_NAMES[launch_key]
    verdict = page.locator("#verdict")
    assert verdict.is_visible()
    label, provisional = VERDICTS[launch_key]
    assert verdict.locator(".verdict-label").inner_text() == label
    assert label in verdict.inner_text()
    marks = verdict.locator(".provisional")
    if provisional:
        assert marks.is_visible()
        assert marks.inner_text() == "provisional"
    else:
        assert marks.count() == 0
    expect_charts(page, list(FIGURE_IDS.values()))
    if segment is not None:
        assert page.locator("select#segment").input_value() == segment
        title = page.locator(f"#{FIGURE_IDS['segments']} .gtitle").text_content()
        assert title is not None and segment in title
    screenshot(page, f"scorecard-{launch_key}" + (f"-{segment}" if segment else ""))
    watched.assert_clean(service.host)


@pytest.mark.parametrize("weeks_back", [0, 1], ids=["this-week", "last-week"])
def test_weekly_review_shows_each_live_launch(watched: Watched, service: Service, weeks_back: int) -> None:
    week = current_week(datetime.now(UTC) - timedelta(weeks=weeks_back))
    page = open_page(watched, service, f"/review?week={week}")
    assert page.locator("h1").inner_text() == f"Weekly review: {week}"
    sections = page.locator("section.review")
    # ai-summaries launched 13 days before the sample's end: live in both weeks.
    live = sections.filter(has=page.get_by_role("link", name=LAUNCH_NAMES["ai-summaries"]))
    assert live.count() == 1
    assert live.locator("h2 .badge").inner_text() == VERDICTS["ai-summaries"][0]
    assert live.locator("h2 .provisional").inner_text() == "provisional"
    for i in range(sections.count()):
        assert sections.nth(i).locator("h2 .badge").is_visible()
    charts = review_chart_ids(page)
    assert len(charts) == sections.count()
    expect_charts(page, charts)
    screenshot(page, f"review-{'this' if weeks_back == 0 else 'last'}-week")
    watched.assert_clean(service.host)


def test_kpi_history_shows_amended_targets_as_percents(watched: Watched, service: Service) -> None:
    page = open_page(watched, service, "/launches/smart-export")
    tile = page.locator("article.tile[data-kpi=adoption] .flag").first
    assert "amended target: 10.0%" in tile.inner_text()  # the tile agrees with the sample
    amendment = page.locator("#history tbody tr").filter(has_text="amendment")
    assert amendment.count() == 1
    change = amendment.locator("td").nth(3).inner_text()
    assert "20.0%" in change and "10.0%" in change, change


# ----------------------------------------------------------------------------- interaction


def test_funnel_hover_shows_exact_counts(watched: Watched, service: Service) -> None:
    report = service.api("/api/launches/smart-export/report")
    users = {step["step"]: step["users"] for step in report["funnel"]["steps"]}
    page = open_page(watched, service, "/launches/smart-export")
    expect_charts(page, [FIGURE_IDS["funnel"]])
    bars = page.locator(f"#{FIGURE_IDS['funnel']} g.point path")
    assert bars.count() == len(users)
    label = page.locator(f"#{FIGURE_IDS['funnel']} g.hoverlayer g.hovertext")
    hover(page, bars.nth(0))
    label.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    assert f"{users['active']:,} users" in hover_text(label)  # e.g. "1,825 users"
    hover(page, bars.nth(1))
    page.wait_for_function(
        "s => document.querySelector(s)?.textContent.includes('Exposed')",
        arg=f"#{FIGURE_IDS['funnel']} g.hoverlayer g.hovertext",
        timeout=RENDER_TIMEOUT_MS,
    )
    assert f"{users['exposed']:,} of {users['active']:,} active" in hover_text(label)
    watched.assert_clean(service.host)


@pytest.mark.parametrize(
    ("path", "json_path"),
    [
        ("/launches/smart-export", "/api/launches/smart-export/report"),
        ("/", "/api/launches"),
    ],
    ids=["scorecard", "portfolio"],
)
def test_json_link_returns_the_data(watched: Watched, service: Service, path: str, json_path: str) -> None:
    page = open_page(watched, service, path)
    link = page.get_by_role("link", name="JSON", exact=True)
    assert urlsplit(str(link.get_attribute("href"))).path == json_path
    with page.expect_navigation() as navigation:
        link.click()
    response = navigation.value
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    if json_path.endswith("/report"):
        assert data["launch_key"] == "smart-export"
        assert data["verdict"] == "missed"
    else:
        assert {launch["key"] for launch in data} == set(LAUNCH_NAMES)
    watched.assert_clean(service.host)


# ----------------------------------------------------------------------------- compare

CURVES = COMPARE_FIGURE_IDS["curves"]


def curve_traces(page: Page) -> list[dict[str, Any]]:
    """Name, first x and point count of each trace Plotly drew on the curves chart."""
    traces: list[dict[str, Any]] = page.evaluate(
        "id => document.getElementById(id).data.map(t => ({name: t.name, x0: t.x[0], points: t.x.length}))",
        CURVES,
    )
    return traces


def test_compare_page_from_the_portfolio_aligns_launches_on_day_0(watched: Watched, service: Service) -> None:
    page = open_page(watched, service, "/")
    for key in LAUNCH_NAMES:
        page.check(f'#compare-form input[name=launch][value="{key}"]')
    with page.expect_navigation():
        page.click("#compare-form button[type=submit]")
    assert urlsplit(page.url).path == "/compare"
    assert sorted(parse_qs(urlsplit(page.url).query)["launch"]) == sorted(LAUNCH_NAMES)  # portfolio order
    expect_charts(page, list(COMPARE_FIGURE_IDS.values()))

    # Two curves per launch (adoption, exposure), every one starting at day 0, as the axis does.
    traces = curve_traces(page)
    assert sorted(t["name"] for t in traces) == sorted(
        f"{name}: {curve}" for name in LAUNCH_NAMES.values() for curve in ("adoption", "exposure")
    )
    assert {t["x0"] for t in traces} == {0}
    assert page.evaluate("id => document.getElementById(id)._fullLayout.xaxis.range[0]", CURVES) == 0
    assert page.locator(f"#{CURVES} g.scatterlayer g.trace").count() == len(traces)
    # Each curve has a point per day of its launch's window so far, as the API says.
    data = service.api("/api/compare?" + urlsplit(page.url).query)
    points = {c["name"]: len(c["curve"]) for c in data["launches"]}
    assert {t["name"].rsplit(":", 1)[0]: t["points"] for t in traces} == points

    # Metrics at days 7, 14 and 28, a row per launch; the funnels side by side.
    adoption = page.locator('#at-day table[data-metric="adoption_rate"] tbody tr')
    assert adoption.count() == len(LAUNCH_NAMES)
    assert page.locator(f"#{COMPARE_FIGURE_IDS['funnels']} g.barlayer g.trace").count() == len(LAUNCH_NAMES)
    screenshot(page, "compare")
    watched.assert_clean(service.host)


def test_scorecard_shows_target_hints_and_links_to_compare(watched: Watched, service: Service) -> None:
    # ai-summaries went live after the two other launches closed: both ground its targets.
    page = open_page(watched, service, "/launches/ai-summaries")
    hints = page.locator("#target-hints li")
    assert hints.count() >= 1
    assert "your last 2 launches reached" in hints.first.inner_text()
    with page.expect_navigation():
        page.click("#compare-link")
    assert urlsplit(page.url).path == "/compare"
    assert parse_qs(urlsplit(page.url).query)["launch"][0] == "ai-summaries"
    expect_charts(page, list(COMPARE_FIGURE_IDS.values()))
    assert {t["x0"] for t in curve_traces(page)} == {0}
    watched.assert_clean(service.host)


# ----------------------------------------------------------------------------- sign-in


def test_unauthenticated_visit_goes_to_login_and_back(browser: Browser, service: Service) -> None:
    context = new_context(browser)
    try:
        watched = watch(context.new_page())
        page = watched.page
        page.goto(f"{service.url}/launches/team-workspaces")
        assert urlsplit(page.url).path == "/login"
        assert parse_qs(urlsplit(page.url).query) == {"next": ["/launches/team-workspaces"]}
        assert page.locator("input#key[type=password]").is_visible()
        submit_login(page, service, service.read_key)
        assert urlsplit(page.url).path == "/launches/team-workspaces"
        assert page.locator("#verdict .verdict-label").inner_text() == "Landed"
        watched.assert_clean(service.host)
    finally:
        context.close()


def test_wrong_key_shows_an_error_on_the_login_form(browser: Browser, service: Service) -> None:
    context = new_context(browser)
    try:
        watched = watch(context.new_page())
        page = watched.page
        page.goto(f"{service.url}/login")
        page.fill("#key", "not-a-key")
        with page.expect_navigation() as navigation:
            page.click("form button[type=submit]")
        response = navigation.value
        assert response is not None and response.status == 401
        assert urlsplit(page.url).path == "/login"
        error = page.get_by_role("alert")
        assert error.is_visible()
        assert error.inner_text() == "unknown or revoked key"
        assert page.locator("input#key").is_visible()
        assert context.cookies() == []
        screenshot(page, "login-wrong-key")
        # The refused sign-in answers 401, as it should; Chromium logs that status, and that
        # is the only message allowed.
        assert watched.console_errors == [
            "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
            f" ({service.url}/login)"
        ]
        assert watched.page_errors == []
        assert watched.foreign_requests(service.host) == []
    finally:
        context.close()


def test_pages_have_a_favicon(browser: Browser, service: Service) -> None:
    context = new_context(browser)
    try:
        page = context.new_page()
        page.goto(f"{service.url}/login")
        assert page.locator("link[rel~='icon']").count() > 0
        # Browsers showing a response without a page (the report's JSON) ask for /favicon.ico.
        icon = context.request.get(f"{service.url}/favicon.ico")
        assert icon.status == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.body().startswith(b"<svg")
    finally:
        context.close()


# ----------------------------------------------------------------------------- offline


def test_pages_work_with_no_network(browser: Browser, service: Service) -> None:
    """Every request to a host other than the service is refused, as on a plane: the pages
    still draw every chart, and none of them even tried to reach another host."""
    blocked: list[str] = []

    def only_the_service(route: Route, request: Request) -> None:
        if urlsplit(request.url).netloc == service.host:
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort("internetdisconnected")

    context = new_context(browser)
    try:
        context.route("**/*", only_the_service)
        watched = watch(context.new_page())
        page = watched.page
        page.goto(f"{service.url}/login")
        submit_login(page, service, service.read_key)
        open_page(watched, service, "/launches/ai-summaries")
        expect_charts(page, list(FIGURE_IDS.values()))
        open_page(watched, service, "/review")
        expect_charts(page, review_chart_ids(page))
        assert blocked == []
        assert watched.requests, "no request was recorded"
        assert {urlsplit(url).hostname for url in watched.requests} == {"127.0.0.1"}
        assert f"{service.url}/static/plotly.min.js" in watched.requests
        watched.assert_clean(service.host)
    finally:
        context.close()
