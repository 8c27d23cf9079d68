"""The ingestion API through TestClient: counts, dedupe, per-event rejection, error shape."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from app.storage import Storage
from tests.helpers.live import Keys

pytestmark = pytest.mark.backends


def _track(message_id: str, **extra: object) -> dict[str, object]:
    return {"type": "track", "event": "Feature Used", "userId": "u1", "messageId": message_id, **extra}


def test_batch_is_stored_once_and_resend_adds_nothing(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    batch = {"batch": [_track("m1"), _track("m2"), _track("m1")]}
    first = client.post("/v1/batch", json=batch, auth=(keys.write, ""))
    assert first.status_code == 200
    assert first.json() == {"success": True, "accepted": 3, "inserted": 2, "duplicates": 1, "rejected": 0}
    again = client.post("/v1/batch", json=batch, auth=(keys.write, ""))
    assert again.json() == {"success": True, "accepted": 3, "inserted": 0, "duplicates": 3, "rejected": 0}
    assert storage.count_events() == 2


def test_skew_is_corrected_from_sent_at(client: TestClient, keys: Keys, storage: Storage) -> None:
    event = _track("m1", timestamp="2026-10-01T12:00:00Z", sentAt="2026-10-01T15:00:00Z")
    before = datetime.now()
    response = client.post(
        "/v1/batch", json={"batch": [event]}, headers={"Authorization": f"Bearer {keys.write}"}
    )
    assert response.status_code == 200
    [(occurred, received)] = storage.rows("select occurred_at, received_at from events")
    assert (received - occurred).total_seconds() == 3 * 3600
    assert before is not None
