"""Limits on everything a client controls, each with a clear 4xx or a per-event rejection,
and per-key rate limits answering 429 with Retry-After. What reaches storage is checked on both
backends."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.ratelimit import RateLimiter
from app.settings import Settings
from app.storage import Storage
from tests.helpers.live import Keys


def _track(message_id: str, **extra: object) -> dict[str, object]:
    return {"type": "track", "event": "Used", "userId": "u1", "messageId": message_id, **extra}


@pytest.mark.backends
def test_rate_limit_answers_429_with_retry_after(settings: Settings, storage: Storage, keys: Keys) -> None:
    limited_settings = settings.model_copy(
        update={"rate_limit_events_per_second": 10, "rate_limit_burst_events": 20}
    )
    with TestClient(create_app(limited_settings, storage)) as client:
        ok = client.post(
            "/v1/batch", json={"batch": [_track(f"a{i}") for i in range(20)]}, auth=(keys.write, "")
        )
        assert ok.status_code == 200
        limited = client.post(
            "/v1/batch", json={"batch": [_track(f"b{i}") for i in range(15)]}, auth=(keys.write, "")
        )
        assert limited.status_code == 429
        assert limited.json()["code"] == "rate_limited"
        assert limited.headers["Retry-After"] == "2"  # 15 events at 10/s with an empty bucket
    assert storage.count_events() == 20


def test_token_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(10, 20, clock=lambda: now[0])
    assert limiter.retry_after("k", 20) is None
    assert limiter.retry_after("k", 1) == 1
    now[0] = 0.5  # 5 tokens back
    assert limiter.retry_after("k", 5) is None
    assert limiter.retry_after("other", 20) is None  # per key
    assert RateLimiter(0, 0).retry_after("k", 10**9) is None  # 0 turns it off


@pytest.mark.backends
def test_too_many_events_in_one_request_is_413(settings: Settings, storage: Storage, keys: Keys) -> None:
    capped = settings.model_copy(update={"max_batch_events": 5})
    with TestClient(create_app(capped, storage)) as client:
        response = client.post(
            "/v1/batch", json={"batch": [_track(f"m{i}") for i in range(6)]}, auth=(keys.write, "")
        )
    assert response.status_code == 413
    assert response.json()["message"] == "the batch has 6 events; the limit is 5"
    assert storage.count_events() == 0


@pytest.mark.backends
def test_oversized_shapes_are_rejected_one_by_one(client: TestClient, keys: Keys, storage: Storage) -> None:
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(20):
        deep = {"d": deep}
    batch = [
        _track("ok"),
        _track("deep", properties=deep),
        _track("wide", properties={f"k{i}": i for i in range(1001)}),
        _track("long", properties={"text": "x" * 70_000}),
        _track("name", event="E" * 2000),
        _track("uid", userId="u" * 2000),
    ]
    response = client.post("/v1/batch", json={"batch": batch}, auth=(keys.write, ""))
    assert response.json() == {"success": True, "accepted": 1, "inserted": 1, "duplicates": 0, "rejected": 5}
    reasons = sorted(r[0] for r in storage.rows("select reason from rejected_events"))
    assert reasons == ["field_too_long", "field_too_long", "field_too_long", "too_deep", "too_many_keys"]
