"""What browser SDKs need from the ingestion routes, request by request: CORS preflights and
CORS headers on every reply (errors, 429 and 503 included), per-key origin lists, per-address
limits for browser traffic, analytics-next's one-letter paths and metrics, posthog-js's
bodies (raw gzip as text/plain, `?compression=`, `data=<base64>` forms) with the size caps
holding for each, its /decide/ and /flags/, and its page context mapped where reports look.

The real SDKs in a real browser are in tests/test_browser_sdks.py.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient

from app.ingest import EVENT_COLUMNS
from app.main import create_app
from app.settings import Settings
from app.storage import Storage
from tests.helpers.live import Keys
from tests.helpers.stored import count_rows, stored_links, write_fault

pytestmark = pytest.mark.backends

PAGE = "https://app.example.com"


def _count(storage: Storage) -> int:
    return count_rows(storage, "events")


def _row(storage: Storage, message_id: str) -> dict[str, Any]:
    names = list(EVENT_COLUMNS)
    rows = [
        dict(zip(names, values, strict=True))
        for values in storage.rows(
            f"select {', '.join(names)} from events where message_id = ?", [message_id]
        )
    ]
    assert len(rows) == 1, rows
    return rows[0]


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def _posthog_batch(key: str, *uuids: str, **properties: Any) -> dict[str, Any]:
    return {
        "api_key": key,
        "sent_at": "2026-11-02T10:00:01Z",
        "batch": [
            {
                "event": "Feature Seen",
                "uuid": uuid,
                "distinct_id": "u1",
                "timestamp": "2026-11-02T10:00:00Z",
                "properties": {"$lib": "web", **properties},
            }
            for uuid in uuids
        ],
    }


# ----------------------------------------------------------------------------- CORS


@pytest.mark.parametrize("path", ["/v1/t", "/v1/b", "/v1/batch", "/e/", "/i/v0/e/", "/v1/m", "/decide/"])
@pytest.mark.parametrize("requested", ["authorization", "authorization, x-retry-count", "content-type"])
def test_a_preflight_on_every_ingestion_route_allows_the_post(
    client: TestClient, path: str, requested: str
) -> None:
    response = client.options(
        path,
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": requested,
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-methods"] == "GET, POST"
    assert response.headers["access-control-allow-headers"] == requested
    assert response.headers["access-control-max-age"] == "7200"
    if path.startswith("/v1/"):
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
    else:
        # older posthog-js sends every request withCredentials: the origin is echoed.
        assert response.headers["access-control-allow-origin"] == PAGE
        assert response.headers["access-control-allow-credentials"] == "true"


def test_posthog_paths_echo_the_origin_for_credentialed_requests(client: TestClient, keys: Keys) -> None:
    body = gzip.compress(orjson.dumps(_posthog_batch(keys.write, "cred-1")))
    cookie = {"Origin": PAGE, "Cookie": "ph_session=abc"}
    response = client.post("/e/?compression=gzip-js", content=body, headers=cookie)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PAGE
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in response.headers["vary"]
    # A cookie never stands in for a key: without one the request is refused all the same.
    unkeyed = client.post("/e/", content=b'{"event": "E", "distinct_id": "u"}', headers=cookie)
    assert unkeyed.status_code == 401
    assert unkeyed.headers["access-control-allow-origin"] == PAGE


def test_read_and_admin_routes_stay_same_origin(client: TestClient, keys: Keys) -> None:
    preflight = client.options(
        "/api/launches",
        headers={"Origin": PAGE, "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    read = client.get("/api/launches", headers={"Origin": PAGE, "Authorization": f"Bearer {keys.read}"})
    assert read.status_code == 200
    assert "access-control-allow-origin" not in read.headers


def test_every_ingestion_reply_carries_cors_errors_included(
    client: TestClient, keys: Keys, storage: Storage, backend: str
) -> None:
    headers = {"Origin": PAGE, "Content-Type": "text/plain"}
    event = {"type": "track", "event": "E", "userId": "u1", "messageId": "m1"}
    replies = {
        200: client.post(
            "/v1/t", content=orjson.dumps(event), headers={**headers, "Authorization": _basic(keys.write)}
        ),
        400: client.post(
            "/v1/t", content=b"{not json", headers={**headers, "Authorization": _basic(keys.write)}
        ),
        401: client.post("/v1/t", content=orjson.dumps(event), headers=headers),
        403: client.post(
            "/v1/t", content=orjson.dumps(event), headers={**headers, "Authorization": _basic(keys.read)}
        ),
        404: client.post("/v1/nothing", content=b"{}", headers=headers),
    }
    storage.inject_write_fault(write_fault(backend, "disk full"))
    replies[503] = client.post(
        "/v1/t",
        content=orjson.dumps({**event, "messageId": "m2"}),
        headers={**headers, "Authorization": _basic(keys.write)},
    )
    storage.inject_write_fault(None)
    for status, response in replies.items():
        assert response.status_code == status, (status, response.text)
        assert response.headers["access-control-allow-origin"] == "*", status
        assert response.headers["access-control-expose-headers"] == "Retry-After", status
    assert replies[503].headers["retry-after"] == "5"
    assert replies[400].json()["code"] == "malformed_json"


@pytest.fixture
def tight_client(settings: Settings, storage: Storage) -> Iterator[TestClient]:
    """A service whose per-address browser limit is 10 events with no refill to speak of."""
    tight = settings.model_copy(
        update={"rate_limit_ip_events_per_second": 0.01, "rate_limit_ip_burst_events": 10}
    )
    with TestClient(create_app(tight, storage)) as test_client:
        yield test_client


def _batch(key: str, prefix: str, n: int) -> bytes:
    events = [{"type": "track", "event": "E", "userId": "u1", "messageId": f"{prefix}{i}"} for i in range(n)]
    return orjson.dumps({"writeKey": key, "batch": events})


def test_browser_traffic_is_limited_per_client_address_on_top_of_the_key(
    tight_client: TestClient, storage: Storage
) -> None:
    first = storage.create_key("site-a", "write")[1]
    second = storage.create_key("site-b", "write")[1]
    browser = {"Origin": PAGE, "Content-Type": "text/plain"}
    assert tight_client.post("/v1/b", content=_batch(first, "a", 8), headers=browser).status_code == 200
    # The same page address exhausts its own allowance whichever key it uses ...
    limited = tight_client.post("/v1/b", content=_batch(second, "b", 8), headers=browser)
    assert limited.status_code == 429, limited.text
    assert limited.json()["code"] == "rate_limited"
    assert "client address testclient" in limited.json()["message"]
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["access-control-allow-origin"] == "*"
    # ... while a server sending without an Origin is held to the key's limit alone.
    server = tight_client.post(
        "/v1/b", content=_batch(second, "c", 8), headers={"Content-Type": "text/plain"}
    )
    assert server.status_code == 200
    assert _count(storage) == 16


# ----------------------------------------------------------------------------- origins


def test_a_key_with_an_origin_list_refuses_other_origins(client: TestClient, storage: Storage) -> None:
    _, secret = storage.create_key("web", "write", origins=["https://App.example.com:443"])
    event = {"type": "track", "event": "E", "userId": "u1"}

    def send(message_id: str, origin: str | None) -> Any:
        headers = {"Content-Type": "text/plain", "Authorization": _basic(secret)}
        if origin is not None:
            headers["Origin"] = origin
        return client.post("/v1/t", content=orjson.dumps({**event, "messageId": message_id}), headers=headers)

    assert send("allowed", PAGE).status_code == 200
    assert send("server", None).status_code == 200  # no Origin: not a browser page
    refused = send("evil", "https://evil.example.net")
    assert refused.status_code == 403
    assert refused.json() == {
        "code": "origin_not_allowed",
        "message": "write key 'web' may not be used from the origin 'https://evil.example.net'",
        "detail": "allowed origins: https://app.example.com",
    }
    assert refused.headers["access-control-allow-origin"] == "*"
    assert send("sandboxed", "null").status_code == 403
    assert _count(storage) == 2


@pytest.mark.parametrize(
    ("scope", "origin", "message"),
    [
        ("read", "https://app.example.com", "only write keys carry origins"),
        ("write", "https://app.example.com/path", "has more than scheme, host and port"),
        ("write", "app.example.com", "is not a web origin"),
        ("write", "ftp://app.example.com", "is not a web origin"),
    ],
)
def test_origin_lists_are_checked_when_a_key_is_made(
    storage: Storage, scope: str, origin: str, message: str
) -> None:
    from app.errors import InvalidInput

    with pytest.raises(InvalidInput, match=message) as raised:
        storage.create_key("web", scope, origins=[origin])
    assert "field: origins" in raised.value.detail


def test_origins_survive_a_restart(settings: Settings) -> None:
    with Storage.open(settings) as first:
        key, _ = first.create_key("web", "write", origins=["http://localhost:3000", "https://a.example"])
    with Storage.open(settings) as again:
        assert [k.origins for k in again.list_keys()] == [("http://localhost:3000", "https://a.example")]
    assert key.origins == ("http://localhost:3000", "https://a.example")


# ----------------------------------------------------------------------------- analytics-next


@pytest.mark.parametrize(
    ("path", "event", "stored_type", "stored_name"),
    [
        ("/v1/t", {"event": "Feature Seen"}, "track", "Feature Seen"),
        ("/v1/p", {"name": "Pricing"}, "page", "Pricing"),
        ("/v1/i", {"traits": {"plan": "free"}}, "identify", None),
        ("/v1/g", {"groupId": "acme"}, "group", None),
        ("/v1/s", {"name": "Home"}, "screen", "Home"),
        ("/v1/a", {"previousId": "anon-1"}, "alias", None),
    ],
)
def test_analytics_next_single_event_paths(
    client: TestClient,
    keys: Keys,
    storage: Storage,
    path: str,
    event: dict[str, Any],
    stored_type: str,
    stored_name: str | None,
) -> None:
    body = {"userId": "u1", "messageId": f"ajs-{stored_type}", "writeKey": keys.write, **event}
    response = client.post(
        path,
        content=orjson.dumps(body),
        headers={"Content-Type": "text/plain", "Authorization": _basic(keys.write), "X-Retry-Count": "1"},
    )
    assert response.json() == {"success": True, "accepted": 1, "inserted": 1, "duplicates": 0, "rejected": 0}
    row = _row(storage, f"ajs-{stored_type}")
    assert (row["type"], row["event"], row["api"]) == (stored_type, stored_name, "segment")


def test_analytics_next_batching_path_and_its_retry(client: TestClient, keys: Keys, storage: Storage) -> None:
    body = _batch(keys.write, "b", 3)
    first = client.post("/v1/b", content=body, headers={"Content-Type": "text/plain"})
    again = client.post("/v1/b", content=body, headers={"Content-Type": "text/plain", "X-Retry-Count": "2"})
    assert (first.json()["inserted"], again.json()["duplicates"]) == (3, 3)
    assert _count(storage) == 3


def test_analytics_next_metrics_are_answered_and_discarded(client: TestClient, storage: Storage) -> None:
    metrics = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1, "tags": {}}]}
    response = client.post(
        "/v1/m", content=orjson.dumps(metrics), headers={"Content-Type": "text/plain", "Origin": PAGE}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert _count(storage) == 0


# ----------------------------------------------------------------------------- bodies


def _encodings(payload: bytes) -> dict[str, tuple[str, bytes, str]]:
    """(query string, body, Content-Type) of each way a browser SDK packs `payload`."""
    zipped = gzip.compress(payload)
    return {
        "raw gzip as text/plain": ("", zipped, "text/plain"),
        "compression=gzip-js": ("?compression=gzip-js", zipped, "text/plain"),
        "compression=gzip": ("?compression=gzip", zipped, "text/plain"),
        "compression=base64": ("?compression=base64", base64.b64encode(payload), "text/plain"),
        "form data=base64": (
            "?compression=base64",
            b"data=" + quote(base64.b64encode(payload).decode(), safe="").encode(),
            "application/x-www-form-urlencoded",
        ),
        "form data=base64 of gzip": (
            "",
            b"data=" + quote(base64.b64encode(zipped).decode(), safe="").encode(),
            "application/x-www-form-urlencoded",
        ),
        "form data=base64 unescaped": (
            "",
            b"data=" + base64.b64encode(payload),
            "application/x-www-form-urlencoded",
        ),
        "text/plain JSON": ("", payload, "text/plain"),
    }


ENCODINGS = list(_encodings(b"{}"))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_body_encoding_is_decoded_by_its_content(
    client: TestClient, keys: Keys, storage: Storage, encoding: str
) -> None:
    # '+' and '/' in the base64 text: the unescaped form must survive a '+' read as a space.
    payload = orjson.dumps(_posthog_batch(keys.write, "p1", "p2", note="~~~???>>>" * 3))
    query, body, content_type = _encodings(payload)[encoding]
    response = client.post(f"/e/{query}", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2
    assert _row(storage, "p1")["properties"] is not None


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A gzip body that inflates to 64 MiB, twice the default decompressed-size cap."""
    return gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", compresslevel=9)


@pytest.mark.parametrize("encoding", [e for e in ENCODINGS if "gzip" in e])
def test_a_gzip_bomb_is_refused_in_every_encoding(
    client: TestClient, keys: Keys, storage: Storage, bomb: bytes, encoding: str
) -> None:
    query, _, content_type = _encodings(b"{}")[encoding]
    body = (
        bomb
        if "base64" not in encoding
        else b"data=" + quote(base64.b64encode(bomb).decode(), safe="").encode()
    )
    response = client.post(
        f"/e/{query}", content=body, headers={"Content-Type": content_type, "Origin": PAGE}
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert "after decompression" in response.json()["message"]
    assert response.headers["access-control-allow-origin"] == PAGE


@pytest.mark.parametrize(
    ("query", "body", "content_type", "status", "code"),
    [
        ("?compression=lz64", b"abc", "text/plain", 415, "unsupported_encoding"),
        ("?compression=base64", b"!!!not base64!!!", "text/plain", 400, "invalid_encoding"),
        ("", b"data=", "application/x-www-form-urlencoded", 400, "invalid_encoding"),
        ("", b"\x1f\x8b\x08\x00garbage", "text/plain", 400, "invalid_encoding"),
    ],
)
def test_undecodable_bodies_get_a_clear_4xx(
    client: TestClient, query: str, body: bytes, content_type: str, status: int, code: str
) -> None:
    response = client.post(f"/e/{query}", content=body, headers={"Content-Type": content_type})
    assert (response.status_code, response.json()["code"]) == (status, code)


# ----------------------------------------------------------------------------- posthog-js


@pytest.mark.parametrize("path", ["/decide/?v=3&compression=base64", "/flags/?v=2&config=true"])
def test_decide_and_flags_answer_no_flags(client: TestClient, path: str) -> None:
    body = b"data=" + base64.b64encode(orjson.dumps({"token": "t", "distinct_id": "u1"}))
    response = client.post(path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    answer = response.json()
    assert (answer["featureFlags"], answer["flags"], answer["sessionRecording"]) == ({}, {}, False)


def test_posthog_js_remote_config_turns_on_capture_only(client: TestClient) -> None:
    answer = client.get("/array/lw_token-1/config", headers={"Origin": PAGE})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == PAGE
    assert answer.json() == {
        "token": "lw_token-1",
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": False,
        "autocapture_opt_out": True,
        "capturePerformance": False,
        "sessionRecording": False,
        "heatmaps": False,
        "surveys": False,
        "siteApps": [],
    }
    script = client.get("/array/lw_token-1/config.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.text.startswith(
        '(window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {})["lw_token-1"] = {"config":'
    )
    assert client.get("/array/not%20a%20token%22%3B/config.js").status_code == 404


def test_posthog_js_page_context_and_campaign_are_kept(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    properties = {
        "$current_url": "https://app.example.com/export?utm_source=newsletter&utm_campaign=launch",
        "$pathname": "/export",
        "$referrer": "https://mail.example.com/",
        "$raw_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "title": "Smart export",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "launch",
        "utm_term": "export",
        "utm_content": "button",
    }
    batch = _posthog_batch(keys.write, "pv1", **properties)
    batch["batch"][0]["event"] = "$pageview"
    assert client.post("/e/", content=gzip.compress(orjson.dumps(batch))).json()["inserted"] == 1
    row = _row(storage, "pv1")
    assert (row["type"], row["event"]) == ("page", "Smart export")
    assert orjson.loads(row["context"]) == {
        "campaign": {
            "source": "newsletter",
            "medium": "email",
            "name": "launch",
            "term": "export",
            "content": "button",
        },
        "page": {
            "url": "https://app.example.com/export?utm_source=newsletter&utm_campaign=launch",
            "path": "/export",
            "referrer": "https://mail.example.com/",
            "title": "Smart export",
        },
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
    }


def test_posthog_js_events_before_identify_are_anonymous(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    batch = _posthog_batch(keys.write, "before", "identify", "after")
    before, identify, after = batch["batch"]
    before.update(distinct_id="anon-7", properties={"$is_identified": False})
    identify.update(
        event="$identify",
        distinct_id="user-7",
        properties={"$anon_distinct_id": "anon-7", "$is_identified": False},
    )
    after.update(distinct_id="user-7", properties={"$is_identified": True})
    assert client.post("/e/", content=gzip.compress(orjson.dumps(batch))).json()["inserted"] == 3
    ids = {
        m: (_row(storage, m)["user_id"], _row(storage, m)["anonymous_id"])
        for m in ("before", "identify", "after")
    }
    assert ids == {"before": (None, "anon-7"), "identify": ("user-7", "anon-7"), "after": ("user-7", None)}
    links = [(anonymous, user) for anonymous, user, _ in stored_links(storage)]
    assert links == [("anon-7", "user-7")]
