"""What the service owes its operators: liveness and readiness probes (503 with Retry-After
while storage cannot write), Prometheus metrics whose event counters equal what was sent (read
with prometheus_client's own parser, through a real uvicorn), and one access-log line per
request that carries a request id and the route template but never a key, cookie or body.
The tests that touch storage run on both backends."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.ingest import now_utc
from app.local_server import free_port
from app.main import create_app
from app.observability import ACCESS_LOGGER
from app.reports import default_as_of
from app.settings import Settings
from app.storage import Storage
from tests.helpers.builders import ndjson, track
from tests.helpers.http import assert_error, bearer
from tests.helpers.live import LIVE, Keys, LiveServer, Served, seed_launches
from tests.helpers.stored import write_fault

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus exposition, keyed by (name, sorted labels)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


# ----------------------------------------------------------------------------- probes


@pytest.mark.backends
def test_healthz_needs_no_key_and_no_storage(client: TestClient, storage: Storage, backend: str) -> None:
    storage.inject_write_fault(write_fault(backend, "disk on fire"))
    try:
        response = client.get("/healthz")
    finally:
        storage.inject_write_fault(None)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.backends
def test_readyz_answers_ok_then_503_while_storage_cannot_write(
    client: TestClient, storage: Storage, backend: str
) -> None:
    assert (client.get("/readyz").status_code, client.get("/readyz").json()) == (200, {"status": "ok"})
    storage.inject_write_fault(write_fault(backend, "No space left on device"))
    try:
        refused = client.get("/readyz")
    finally:
        storage.inject_write_fault(None)
    assert_error(refused, 503, code="storage_unavailable")
    assert refused.headers["Retry-After"] == "5"
    assert client.get("/readyz").status_code == 200, "ready again once the fault clears"


@pytest.mark.backends
def test_readyz_is_503_while_the_writer_is_stuck(client: TestClient, storage: Storage) -> None:
    """A writer that does not get to the probe's write in time is not ready either."""
    release = threading.Event()
    storage.writer.submit(lambda conn: release.wait(10))
    try:
        started = time.monotonic()
        refused = client.get("/readyz")
        waited = time.monotonic() - started
    finally:
        release.set()
    assert_error(refused, 503, code="storage_unavailable", names="busy")
    assert waited < 5


# ----------------------------------------------------------------------------- metrics


@pytest.mark.backends
def test_metrics_count_what_was_sent_through_a_live_server(live_server: LiveServer, keys: Keys) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        batch = [track(f"u-{i}", f"m-{i}") for i in range(7)] + [{"type": "track", "userId": "u"}]  # 1 bad
        assert (
            http.post("/v1/batch", json={"batch": batch}, headers=bearer(keys.write)).json()["inserted"] == 7
        )
        again = http.post("/v1/batch", json={"batch": batch[:3]}, headers=bearer(keys.write)).json()
        assert again["duplicates"] == 3
        posthog = http.post(
            "/capture/", json={"api_key": keys.write, "event": "E", "distinct_id": "u-9", "uuid": "p-1"}
        )
        assert posthog.json()["inserted"] == 1
        imported = http.post(
            "/api/import?source=web",
            content=ndjson([track("u-1", "m-1"), track("u-20", "m-20"), {"type": "bogus"}]),
            headers=bearer(keys.admin),
        ).json()
        assert (imported["inserted"], imported["duplicates"], imported["rejected"]) == (1, 1, 1)
        http.get("/api/launches/nowhere", headers=bearer(keys.read))
        http.get("/no/such/page")
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)

    segment = {"api": "segment", "source": "web"}
    assert value(found, "landed_events_inserted_total", **segment) == 7
    assert value(found, "landed_events_duplicate_total", **segment) == 3
    assert value(found, "landed_events_rejected_total", **segment) == 1
    assert value(found, "landed_events_accepted_total", **segment) == 10
    assert value(found, "landed_events_inserted_total", api="posthog", source="web") == 1
    imports = {"api": "import", "source": "web"}
    assert value(found, "landed_events_inserted_total", **imports) == 1
    assert value(found, "landed_events_duplicate_total", **imports) == 1
    assert value(found, "landed_events_rejected_total", **imports) == 1
    stored = live_server.storage.count_events()
    inserted = sum(v for (name, _), v in found.items() if name == "landed_events_inserted_total")
    assert inserted == stored == 9

    # Latency by route template, never the raw path (unbounded label values).
    route = {"route": "/api/launches/{launch_key}", "method": "GET", "status": "404"}
    assert value(found, "landed_http_request_duration_seconds_count", **route) == 1
    assert (
        value(
            found,
            "landed_http_request_duration_seconds_count",
            route="<unmatched>",
            method="GET",
            status="404",
        )
        == 1
    )
    assert not any("nowhere" in str(labels) or "/no/such" in str(labels) for _, labels in found)

    # The writer's group commits: every stored event went through one.
    assert value(found, "landed_writer_commit_events_sum") >= stored
    assert value(found, "landed_writer_commit_duration_seconds_count") >= 3
    assert ("landed_writer_queue_depth", ()) in found


def test_metrics_never_show_a_secret(client: TestClient, keys: Keys) -> None:
    client.post("/v1/track", json=track("u", "m"), headers=bearer(keys.write))
    client.get("/api/keys", headers=bearer(keys.admin))
    text = client.get("/metrics").text
    for secret in (keys.write, keys.read, keys.admin):
        assert secret not in text


@pytest.mark.backends
def test_report_computations_and_cache_hits_are_counted(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    seed_launches(storage)
    as_of = default_as_of(now_utc()).isoformat()
    for _ in range(3):
        response = client.get(
            f"/api/launches/{LIVE}/report", params={"as_of": as_of}, headers=bearer(keys.read)
        )
        assert response.status_code == 200
    found = samples(client.get("/metrics").text)
    assert value(found, "landed_report_cache_lookups_total", kind="report", result="miss") == 1
    assert value(found, "landed_report_cache_lookups_total", kind="report", result="hit") == 2
    assert value(found, "landed_report_compute_duration_seconds_count", kind="report") == 1


@pytest.mark.backends
def test_metrics_may_require_a_read_key(settings: Settings, storage: Storage) -> None:
    settings = settings.model_copy(update={"metrics_require_key": True})
    read = storage.create_key("prometheus", "read")[1]
    write = storage.create_key("web", "write")[1]
    with TestClient(create_app(settings, storage)) as client:
        assert_error(client.get("/metrics"), 401)
        assert_error(client.get("/metrics", headers=bearer(write)), 403)
        assert client.get("/metrics", headers=bearer(read)).status_code == 200


def test_every_app_has_its_own_registry(settings: Settings, storage: Storage, keys: Keys) -> None:
    with (
        TestClient(create_app(settings, storage)) as first,
        TestClient(create_app(settings, storage)) as second,
    ):
        first.post("/v1/track", json=track("u", "m-1"), headers=bearer(keys.write))
        counted = samples(second.get("/metrics").text)
    assert value(counted, "landed_events_inserted_total", api="segment", source="web") == 0


# ----------------------------------------------------------------------------- access log


ACCESS_LINE = re.compile(
    r"^request_id=(?P<id>\S+) method=(?P<method>[A-Z]+) route=(?P<route>\S+) "
    r"status=(?P<status>\d{3}) duration_ms=(?P<ms>\d+\.\d)$"
)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    lines = []
    for record in caplog.records:
        if record.name == ACCESS_LOGGER:
            match = ACCESS_LINE.match(record.getMessage())
            assert match, record.getMessage()
            lines.append({**match.groupdict(), "level": record.levelname})
    return lines


def test_one_access_line_per_request_with_its_request_id(
    client: TestClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=ACCESS_LOGGER)
    sent = client.post(
        "/v1/batch",
        json={"batch": [track("u", "m-secret-body")]},
        headers={**bearer(keys.write), "X-Request-ID": "lb-1234.abc"},
    )
    generated = client.get(f"/api/launches/{LIVE}", headers=bearer(keys.read))
    insane = client.get("/healthz", headers={"X-Request-ID": "x" * 200})
    spoofed = client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    client.post("/login", data={"key": keys.read, "next": "/"}, follow_redirects=False)
    assert client.get("/", follow_redirects=False).status_code == 200  # the session cookie
    lines = access_lines(caplog)
    assert len(lines) == 6, lines
    assert sent.headers["X-Request-ID"] == "lb-1234.abc" == lines[0]["id"]
    assert lines[0] | {"ms": "", "level": ""} == {
        "id": "lb-1234.abc", "method": "POST", "route": "/v1/batch", "status": "200", "ms": "", "level": ""
    }  # fmt: skip
    assert re.fullmatch(r"[0-9a-f]{16}", generated.headers["X-Request-ID"])
    assert lines[1]["id"] == generated.headers["X-Request-ID"]
    assert lines[1]["route"] == "/api/launches/{launch_key}" and lines[1]["status"] == "404"
    for response, line in ((insane, lines[2]), (spoofed, lines[3])):
        assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Request-ID"])  # replaced
        assert line["id"] == response.headers["X-Request-ID"]
    assert {line["level"] for line in lines} == {"INFO"}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (keys.write, keys.read, keys.admin, "m-secret-body", "landed_session"):
        assert secret not in logged


def test_the_access_log_level_is_a_setting(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(db_path=str(tmp_path / "l.duckdb"), access_log_level="warning")
    caplog.set_level(logging.DEBUG, logger=ACCESS_LOGGER)
    with Storage.open(settings) as storage, TestClient(create_app(settings, storage)) as client:
        client.get("/healthz")
    assert [line["level"] for line in access_lines(caplog)] == ["WARNING"]


def test_landed_serve_writes_one_access_line_per_request(tmp_path: Path) -> None:
    """Under `landed serve` the service's own line is the only one: uvicorn's is off."""
    served = Served(tmp_path / "s.duckdb", free_port(), tmp_path, 1)
    try:
        served.wait_until_listening()
        time.sleep(0.2)
        before = served.stderr.read_text().count("landed.access")
        with httpx.Client(base_url=served.url, timeout=10) as http:
            for i in range(3):
                http.get("/readyz", headers={"X-Request-ID": f"probe-{i}"})
        deadline = time.monotonic() + 10
        while served.stderr.read_text().count("landed.access") < before + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        served.stop()
    log = served.stderr.read_text()
    for i in range(3):
        [line] = [line for line in log.splitlines() if f"request_id=probe-{i} " in line]
        assert "INFO landed.access" in line and "route=/readyz status=200" in line, line
    assert '"GET /readyz HTTP/1.1"' not in log, "uvicorn's own access line is on"
