"""Acceptance: the real browser SDKs, Segment's analytics-next and posthog-js (current and a
1.160-era release), in a headless Chromium, sending in-app events to the real service from
another origin.

The SDKs come from npm, pinned exactly in tests/browser_sdks/package.json and its lockfile and
installed by `npm ci --prefix tests/browser_sdks` (`make test` runs it); never from a CDN, and
nothing is fetched at test time. A static server on its own port of 127.0.0.1 (so another origin
than Landed's) serves the test pages and the SDK bundles from tests/browser_sdks/node_modules;
Landed runs under uvicorn (`live_server`) with a browser write key limited to that origin.

Each test, on both storage backends, opens a page whose URL carries utm_* parameters, drives
the SDK as a web app would, leaves the page, and reads the database: every event the SDK emitted
is stored exactly once under its own id (analytics-next's messageId, posthog-js's uuid) with its
type, name, properties, identity and campaign. For the page's whole life nothing is logged as a
console error, no script throws, no request fails or is answered with 400 or more (CORS
preflights and analytics-next's /v1/m metrics included), and no request goes to any host but
the page's and Landed's. What an SDK sends as the page unloads (posthog-js's $pageleave) escapes
the browser's reporting; storage shows it arrived.

Without node_modules or chromium these tests skip on a workstation and fail under CI.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from app.local_server import serving
from tests.helpers.live import LiveServer
from tests.helpers.stored import stored_event_dicts, stored_links

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response

pytestmark = [pytest.mark.browser, pytest.mark.sdk, pytest.mark.backends]

SDK_DIR = Path(__file__).resolve().parent / "browser_sdks"
PAGE_TITLE = "Smart export is here"
CAMPAIGN_QUERY = "utm_source=newsletter&utm_medium=email&utm_campaign=launch"
# What Segment's context.campaign holds for CAMPAIGN_QUERY (utm_campaign is its `name`).
CAMPAIGN = {"source": "newsletter", "medium": "email", "name": "launch"}
EXPOSURE = {"feature": "smart-export", "channel": "in-app"}
FLUSH_SECONDS = 15.0
# Browser and service share a clock here: the corrected time may differ from the browser's by
# the time in flight only; generous for a loaded CI runner.
CLOSE_ENOUGH = timedelta(seconds=10)

Row = dict[str, Any]


# -- the SDKs, installed by npm ci ----------------------------------------------------------


def _pinned() -> dict[str, str]:
    """Each dependency's folder in node_modules and its exact version, from package.json (an
    npm alias is written `npm:posthog-js@1.160.3`)."""
    manifest = json.loads((SDK_DIR / "package.json").read_text())
    return {name: spec.rpartition("@")[2] for name, spec in manifest["dependencies"].items()}


@pytest.fixture(scope="module")
def sdks_installed() -> None:
    """The pinned SDKs are in node_modules; skips without them, but fails under CI (there the
    Makefile's `npm ci` step must have run)."""
    wrong = []
    for name, version in _pinned().items():
        manifest = SDK_DIR / "node_modules" / name / "package.json"
        found = json.loads(manifest.read_text())["version"] if manifest.exists() else None
        if found != version:
            wrong.append(f"{name} {version} (installed: {found or 'none'})")
    if wrong:
        reason = (
            f"browser SDKs not installed: {', '.join(wrong)}; "
            "with node and npm, run `make test` or `npm ci --prefix tests/browser_sdks`"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def site(sdks_installed: None) -> Iterator[str]:
    """tests/browser_sdks (pages and node_modules) served on a port of its own: the web app's
    origin, never Landed's."""
    app = Starlette(routes=[Mount("/", app=StaticFiles(directory=SDK_DIR))])
    with serving(app) as url:
        yield url


@pytest.fixture
def write_key(live_server: LiveServer, site: str) -> str:
    """A browser write key that only the web app's origin may use."""
    return live_server.storage.create_key("website", "write", origins=[site])[1]


# -- the page and everything it did ---------------------------------------------------------


def _body_shape(request: Request) -> str:
    body = request.post_data_buffer
    if not body:
        return "no body"
    if body[:2] == b"\x1f\x8b":
        return f"gzip, {len(body)} bytes: {gzip.decompress(body)[:300]!r}"
    return f"{len(body)} bytes: {body[:300]!r}"


def describe(request: Request, status: int | str) -> str:
    """One request as the report needs it: method, URL, the headers that matter (the key's
    scheme only), the body's shape and what came back."""
    headers = request.headers
    shown: dict[str, str] = {
        name: headers[name] for name in ("content-type", "content-encoding", "origin") if name in headers
    }
    if "authorization" in headers:
        shown["authorization"] = headers["authorization"].split(" ")[0] + " ..."
    return f"{request.method} {request.url} {shown} [{_body_shape(request)}] -> {status}"


@dataclass
class Watched:
    """A page and what it logged, threw and requested, preflights included, since it opened."""

    page: Page
    hosts: set[str]
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    settled: list[Request] = field(default_factory=list)
    # CORS preflights, seen through the DevTools protocol (Playwright does not report them).
    preflights: dict[str, str] = field(default_factory=dict)
    preflight_status: dict[str, int] = field(default_factory=dict)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url')})")

    def on_request(self, request: Request) -> None:
        self.requests.append(request)

    def on_response(self, response: Response) -> None:
        if response.status >= 400:
            try:
                answer = response.text()[:300]
            except Exception as error:  # the page may be gone already
                answer = f"(body unavailable: {error})"
            self.failures.append(f"{describe(response.request, response.status)} {answer}")

    def on_finished(self, request: Request) -> None:
        self.settled.append(request)

    def on_failed(self, request: Request) -> None:
        self.settled.append(request)
        self.failures.append(describe(request, f"failed: {request.failure}"))

    def on_cdp_request(self, event: dict[str, Any]) -> None:
        if event.get("initiator", {}).get("type") == "preflight":
            self.preflights[event["requestId"]] = event["request"]["url"]

    def on_cdp_response(self, event: dict[str, Any]) -> None:
        if event.get("type") == "Preflight":
            self.preflight_status[event["requestId"]] = event["response"]["status"]

    def sent_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if urlsplit(r.url).path == path and r.method == "POST"]

    def wait_for_request(self, path: str, seconds: float = FLUSH_SECONDS) -> Request:
        deadline = time.monotonic() + seconds
        while not self.sent_to(path):
            assert time.monotonic() < deadline, f"no POST {path} within {seconds:g} s"
            self.page.wait_for_timeout(100)
        request = self.sent_to(path)[0]
        assert request.response() is not None or self.failures, path
        return request

    def settle(self, seconds: float = FLUSH_SECONDS) -> None:
        """Waits until every request sent so far has been answered (or has failed)."""
        deadline = time.monotonic() + seconds
        while pending := [r.url for r in self.requests if r not in self.settled]:
            assert time.monotonic() < deadline, f"unanswered after {seconds:g} s: {pending}"
            self.page.wait_for_timeout(50)

    def leave(self, site: str) -> None:
        """Once everything sent is answered, navigates to another page of the site, as a user
        leaves: the SDKs flush what they still hold on `pagehide`."""
        self.settle()
        self.page.goto(f"{site}/blank.html")
        self.page.wait_for_timeout(300)
        self.settle()

    def assert_clean(self) -> None:
        foreign = [r.url for r in self.requests if urlsplit(r.url).netloc not in self.hosts]
        assert self.failures == [], "refused or failed requests:\n" + "\n".join(self.failures)
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.page_errors == [], f"page errors: {self.page_errors}"
        assert foreign == [], f"requests to another host: {foreign}"
        bad = {url: self.preflight_status.get(rid) for rid, url in self.preflights.items()}
        assert all(status is not None and status < 300 for status in bad.values()), f"preflights: {bad}"


@pytest.fixture
def open_page(browser: Browser, live_server: LiveServer, site: str) -> Iterator[Callable[[str], Watched]]:
    """open(name): a fresh browser context (no SDK state left from another test) with the
    site's page `name` loaded at a URL carrying the campaign's utm parameters, watched."""
    contexts = []

    def open_(name: str) -> Watched:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        hosts = {urlsplit(site).netloc, urlsplit(live_server.url).netloc}
        watched = Watched(page, hosts)
        page.on("console", watched.on_console)
        page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
        page.on("request", watched.on_request)
        page.on("response", watched.on_response)
        page.on("requestfinished", watched.on_finished)
        page.on("requestfailed", watched.on_failed)
        cdp = context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", watched.on_cdp_request)
        cdp.on("Network.responseReceived", watched.on_cdp_response)
        cdp.send("Network.enable")
        response = page.goto(f"{site}/{name}?{CAMPAIGN_QUERY}")
        assert response is not None and response.status == 200, name
        assert page.title() == PAGE_TITLE
        return watched

    yield open_
    for context in contexts:
        context.close()


# -- what was stored ------------------------------------------------------------------------


def _rows(server: LiveServer) -> list[Row]:
    rows = stored_event_dicts(server.storage)
    return sorted(rows, key=lambda row: (row["occurred_at"], row["message_id"]))


def _stored_once(server: LiveServer, ids: Callable[[], list[str]], watched: Watched) -> dict[str, Row]:
    """Waits (bounded) until every id the SDK emitted is stored; then each exactly once, and
    nothing else stored, nothing rejected. The rows by message_id."""
    deadline = time.monotonic() + FLUSH_SECONDS
    while True:
        expected = ids()
        stored = {row["message_id"] for row in _rows(server)}
        if expected and set(expected) <= stored:
            break
        if time.monotonic() > deadline:
            failures = "\n".join(watched.failures)
            raise AssertionError(
                f"after {FLUSH_SECONDS:g} s, stored {sorted(stored)}, expected {sorted(expected)}\n{failures}"
            )
        watched.page.wait_for_timeout(100)
    rows = _rows(server)
    assert len(expected) == len(set(expected)), f"the SDK emitted an id twice: {expected}"
    assert sorted(row["message_id"] for row in rows) == sorted(expected), "stored rows differ from sent"
    assert server.storage.rows("select reason, payload from rejected_events") == []
    return {row["message_id"]: row for row in rows}


def _assert_time(row: Row, sent: datetime) -> None:
    """Stored at the browser's own event time (skew-corrected against the clock it sent)."""
    naive = sent.astimezone(UTC).replace(tzinfo=None)
    assert abs(row["occurred_at"] - naive) < CLOSE_ENOUGH, (row["event"], row["occurred_at"], naive)
    assert row["is_clamped"] is False


def _links(server: LiveServer) -> dict[str, str]:
    return {anonymous: user for anonymous, user, _ in stored_links(server.storage)}


# -- Segment analytics-next -----------------------------------------------------------------

# Loads analytics-next with the source's settings inline (nothing asked of cdn.segment.com),
# Landed as its API host, and its own metrics flushed every half second instead of every 30 s;
# then an anonymous visitor sees the announcement, reads the docs page and signs in.
SEGMENT_JS = """
async ({ landed, writeKey, delivery }) => {
  const apiHost = landed.replace(/^https?:\\/\\//, '') + '/v1';
  const segmentio = { apiHost, protocol: 'http' };
  if (delivery) segmentio.deliveryStrategy = delivery;
  const [analytics] = await window.AnalyticsNext.AnalyticsBrowser.load(
    {
      writeKey,
      cdnSettings: {
        integrations: { 'Segment.io': { apiKey: writeKey, apiHost } },
        metrics: { flushTimer: 500 },
      },
    },
    { integrations: { 'Segment.io': segmentio } },
  );
  const sent = [];
  sent.push(await analytics.track('Announcement Viewed', { feature: 'smart-export', channel: 'in-app' }));
  sent.push(await analytics.page('Docs', 'Smart export', { section: 'launch' }));
  sent.push(await analytics.identify('user-42', { plan: 'pro', country: 'DE' }));
  return JSON.parse(JSON.stringify(sent.map((ctx) => ctx.event)));
}
"""


def _send_with_analytics_next(watched: Watched, landed: str, key: str, delivery: Any) -> list[Row]:
    events: list[Row] = watched.page.evaluate(
        SEGMENT_JS, {"landed": landed, "writeKey": key, "delivery": delivery}
    )
    assert [event["type"] for event in events] == ["track", "page", "identify"]
    return events


def _assert_analytics_next_rows(live_server: LiveServer, watched: Watched, events: list[Row]) -> None:
    rows = _stored_once(live_server, lambda: [event["messageId"] for event in events], watched)
    track, page, identify = (rows[event["messageId"]] for event in events)
    anonymous = events[0]["anonymousId"]
    assert {row["api"] for row in rows.values()} == {"segment"}

    assert (track["type"], track["event"], track["user_id"]) == ("track", "Announcement Viewed", None)
    assert track["anonymous_id"] == anonymous
    assert track["properties"] == EXPOSURE

    assert (page["type"], page["event"], page["anonymous_id"]) == ("page", "Smart export", anonymous)
    assert page["properties"]["section"] == "launch"
    assert page["properties"]["title"] == PAGE_TITLE

    assert (identify["type"], identify["user_id"], identify["anonymous_id"]) == (
        "identify",
        "user-42",
        anonymous,
    )
    assert identify["traits"] == {"plan": "pro", "country": "DE"}

    for event in events:
        _assert_time(rows[event["messageId"]], datetime.fromisoformat(event["timestamp"]))
    for row in rows.values():
        assert row["context"]["campaign"] == CAMPAIGN, row["type"]
        assert row["context"]["library"]["name"] == "analytics.js"
        page_url = row["context"]["page"]["url"]
        assert parse_qs(urlsplit(page_url).query)["utm_source"] == ["newsletter"]
    assert _links(live_server) == {anonymous: "user-42"}


def _assert_metrics_answered(watched: Watched) -> None:
    """analytics-next's own delivery metrics reached Landed's /v1/m and were answered 200."""
    metrics = watched.wait_for_request("/v1/m")
    series = json.loads(metrics.post_data or "{}")["series"]
    assert {metric["metric"] for metric in series} >= {"analytics_js.invoke"}
    response = metrics.response()
    assert response is not None and response.status == 200


def test_analytics_next_standard_delivery_sends_each_call_once(
    open_page: Callable[[str], Watched], live_server: LiveServer, write_key: str, site: str
) -> None:
    watched = open_page("segment.html")
    events = _send_with_analytics_next(watched, live_server.url, write_key, None)
    _assert_analytics_next_rows(live_server, watched, events)
    # One request per call on analytics-next's one-letter paths, text/plain with the key as
    # Basic auth, each after a CORS preflight (the Authorization header needs one).
    for path in ("/v1/t", "/v1/p", "/v1/i"):
        (request,) = watched.sent_to(path)
        assert request.headers["content-type"].startswith("text/plain")
        assert request.headers["authorization"].startswith("Basic ")
    preflighted = {urlsplit(url).path for url in watched.preflights.values()}
    assert {"/v1/t", "/v1/p", "/v1/i"} <= preflighted, preflighted
    _assert_metrics_answered(watched)
    watched.leave(site)
    watched.assert_clean()


def test_analytics_next_batching_delivery_posts_one_batch(
    open_page: Callable[[str], Watched], live_server: LiveServer, write_key: str, site: str
) -> None:
    watched = open_page("segment.html")
    delivery = {"strategy": "batching", "config": {"size": 3, "timeout": 500}}
    events = _send_with_analytics_next(watched, live_server.url, write_key, delivery)
    _assert_analytics_next_rows(live_server, watched, events)
    (batch,) = watched.sent_to("/v1/b")
    assert batch.headers["content-type"].startswith("text/plain")
    on_wire = json.loads(batch.post_data or "{}")["batch"]
    assert [event["messageId"] for event in on_wire] == [event["messageId"] for event in events]
    assert watched.sent_to("/v1/t") == watched.sent_to("/v1/p") == watched.sent_to("/v1/i") == []
    _assert_metrics_answered(watched)
    watched.leave(site)
    watched.assert_clean()


# -- posthog-js -----------------------------------------------------------------------------

# posthog.init with Landed as its host, as an app would: the automatic $pageview stays on.
# Everything the SDK would load or record beyond events is off (recordings, surveys,
# autocapture); `opt_out_useragent_filter` because posthog-js drops events from headless
# browsers; `debug` so that the SDK's own errors reach the console, where the test sees them.
# Each event the SDK emits ($pageleave too, while the page unloads) is noted in the site's
# localStorage, which the next page of the same origin can still read.
POSTHOG_JS = """
({ landed, token, legacy }) => {
  const note = (event) => {
    const emitted = JSON.parse(localStorage.getItem('landed-emitted') || '[]');
    emitted.push({ uuid: event.uuid, event: event.event });
    localStorage.setItem('landed-emitted', JSON.stringify(emitted));
  };
  const config = {
    api_host: landed,
    opt_out_useragent_filter: true,
    debug: true,
    autocapture: false,
    capture_dead_clicks: false,
    capture_heatmaps: false,
    capture_performance: false,
    disable_session_recording: true,
    disable_surveys: true,
    request_queue_config: { flush_interval_ms: 250 },
  };
  if (legacy) {
    config._onCapture = (name, event) => note(event);
  } else {
    config.before_send = (event) => { note(event); return event; };
  }
  window.posthog.init(token, config);
}
"""
# Once the automatic $pageview is out: the visitor sees the announcement and signs in.
POSTHOG_VISIT_JS = """
() => {
  window.posthog.capture('Announcement Viewed', { feature: 'smart-export', channel: 'in-app' });
  window.posthog.identify('user-7', { plan: 'pro' });
}
"""


def _emitted(page: Page) -> dict[str, str]:
    """uuid -> event name of every event posthog-js emitted, in order."""
    noted = page.evaluate("JSON.parse(localStorage.getItem('landed-emitted') || '[]')")
    return {event["uuid"]: event["event"] for event in noted}


def _wait_until_emitted(page: Page, names: set[str]) -> None:
    deadline = time.monotonic() + FLUSH_SECONDS
    while not names <= set(_emitted(page).values()):
        assert time.monotonic() < deadline, f"posthog-js emitted only {_emitted(page)}"
        page.wait_for_timeout(50)


def _posthog_visit(
    watched: Watched, live_server: LiveServer, key: str, site: str, *, legacy: bool
) -> tuple[dict[str, Row], dict[str, str]]:
    """Runs the visit and leaves the page; the stored rows by uuid and each uuid's event name."""
    watched.page.evaluate(POSTHOG_JS, {"landed": live_server.url, "token": key, "legacy": legacy})
    _wait_until_emitted(watched.page, {"$pageview"})
    watched.page.evaluate(POSTHOG_VISIT_JS)
    _wait_until_emitted(watched.page, {"$pageview", "Announcement Viewed", "$identify"})
    _stored_once(live_server, lambda: list(_emitted(watched.page)), watched)  # sent while on the page
    watched.leave(site)
    emitted = _emitted(watched.page)
    assert "$pageleave" in emitted.values(), emitted
    rows = _stored_once(live_server, lambda: list(_emitted(watched.page)), watched)
    return rows, emitted


def _assert_posthog_rows(live_server: LiveServer, rows: dict[str, Row], emitted: dict[str, str]) -> None:
    by_name: dict[str, Row] = {}
    for uuid, name in emitted.items():
        assert name not in by_name, f"posthog-js emitted {name} twice"
        by_name[name] = rows[uuid]
    assert {row["api"] for row in rows.values()} == {"posthog"}
    for row in rows.values():  # $time: the browser's clock when the event happened
        _assert_time(row, datetime.fromtimestamp(row["properties"]["$time"], UTC))

    pageview, exposure, identify = by_name["$pageview"], by_name["Announcement Viewed"], by_name["$identify"]
    anonymous = pageview["anonymous_id"]
    assert anonymous and pageview["user_id"] is None

    assert (pageview["type"], pageview["event"]) == ("page", PAGE_TITLE)
    assert pageview["properties"]["title"] == PAGE_TITLE
    assert urlsplit(pageview["properties"]["$current_url"]).query == CAMPAIGN_QUERY

    assert (exposure["type"], exposure["event"], exposure["anonymous_id"]) == (
        "track",
        "Announcement Viewed",
        anonymous,
    )
    assert {k: exposure["properties"][k] for k in EXPOSURE} == EXPOSURE

    assert (identify["type"], identify["user_id"], identify["anonymous_id"]) == (
        "identify",
        "user-7",
        anonymous,
    )
    assert identify["traits"] == {"plan": "pro"}

    # posthog-js sends the page's utm parameters as properties; Landed maps them to the campaign.
    for name in ("$pageview", "Announcement Viewed"):
        campaign = by_name[name]["context"]["campaign"]
        assert (campaign["source"], campaign["name"]) == ("newsletter", "launch"), name
    assert by_name["$pageleave"]["user_id"] == "user-7"
    assert _links(live_server) == {anonymous: "user-7"}


def _query(request: Request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


def test_posthog_js_current_sends_gzip_events_once(
    open_page: Callable[[str], Watched], live_server: LiveServer, write_key: str, site: str
) -> None:
    watched = open_page("posthog.html")
    rows, emitted = _posthog_visit(watched, live_server, write_key, site, legacy=False)
    _assert_posthog_rows(live_server, rows, emitted)
    # Raw gzip in a text/plain body with no Content-Encoding: Landed knows it by its magic bytes.
    posts = watched.sent_to("/e/")
    assert posts, [r.url for r in watched.requests]
    gzipped = [r for r in posts if (r.post_data_buffer or b"")[:2] == b"\x1f\x8b"]
    assert gzipped, [describe(r, "sent") for r in posts]
    assert all("content-encoding" not in r.headers for r in gzipped)
    watched.assert_clean()


def test_posthog_js_1_160_sends_after_decide(
    open_page: Callable[[str], Watched], live_server: LiveServer, write_key: str, site: str
) -> None:
    watched = open_page("posthog-legacy.html")
    version = watched.page.evaluate("window.posthog.version || window.posthog.LIB_VERSION")
    assert version == _pinned()["posthog-js-legacy"]
    rows, emitted = _posthog_visit(watched, live_server, write_key, site, legacy=True)
    _assert_posthog_rows(live_server, rows, emitted)
    # It asks /decide/ first, and compresses as the answer's supportedCompression says.
    assert [r for r in watched.requests if urlsplit(r.url).path == "/decide/"], "no /decide/ call"
    events = [r for r in watched.sent_to("/e/") if "compression" in _query(r)]
    assert {_query(r)["compression"][0] for r in events} >= {"gzip-js"}, [r.url for r in watched.requests]
    watched.assert_clean()
