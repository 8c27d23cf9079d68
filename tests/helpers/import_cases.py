"""Import files that exercise every rule of the set-based import (tests/test_import_vectorized.py)
and the stores' equality on imports (tests/test_clickhouse_storage.py): Segment-shaped Parquet
rows with every edge case in file order, and an NDJSON file with Segment and PostHog lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

NOW = datetime(2026, 5, 1, 12)
BASE = datetime(2026, 4, 1, 9, tzinfo=UTC)
MAX_EVENT_BYTES = 4000
SOURCE = "import"


def at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


def event(message_id: str | None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "track", "event": "Viewed", "messageId": message_id}
    event.update(fields)
    return event


def cases() -> list[dict[str, Any]]:
    """Every case, in file order (times are datetimes; JSON columns JSON text)."""
    return [
        event("m1", userId="u1", timestamp=at(0), sentAt=at(5), receivedAt=at(65)),  # skewed
        event("m2", anonymousId="a1", timestamp=at(10), receivedAt=at(11), properties='{"x": 1.5}'),
        event("m1", userId="u1", timestamp=at(0), sentAt=at(5), receivedAt=at(90)),  # retry
        event("stored-1", userId="u2", timestamp=at(20), receivedAt=at(21)),  # already stored
        event("m3", userId="u3", timestamp=at(3 * 86400), receivedAt=at(30)),  # clamped
        event("m4", userId="u4", timestamp=at(-86400), receivedAt=at(40)),  # out of order
        event("m5", timestamp=at(50), receivedAt=at(51)),  # no identity: rejected
        event(None, userId="u5", timestamp=at(60), receivedAt=at(61)),  # content id
        event("m6", userId="u6", receivedAt=at(70), properties='{"s": "' + "x" * 5000 + '"}'),
        event("m7", userId="u7", receivedAt=at(80), properties="{not json"),
        event("m8", userId="u8", receivedAt=at(90), properties="5"),  # not an object
        event("m9", userId="u9", receivedAt=at(100), properties='{"big": 1e20, "n": 12345678901234567890}'),
        event("m10", userId="u10", receivedAt=at(110), properties='{"k": 1, "k": 2}'),  # key twice
        event("m11", userId="u11", receivedAt=at(120), context='{"traits": {"plan": "pro"}, "ip": "1"}'),
        event("m12", userId="u12", receivedAt=at(130), context='{"traits": 3}'),  # traits not object
        event(
            "m13", userId="u13", receivedAt=at(140), properties='{"t": "\\u00e9\\n", "a": [1, {"b": null}]}'
        ),
        {
            "type": "identify",
            "messageId": "m14",
            "userId": "u1",
            "anonymousId": "a1",
            "timestamp": at(200),
            "receivedAt": at(201),
            "traits": '{"plan": "team"}',
        },  # late link
        {
            "type": "identify",
            "messageId": "m15",
            "userId": "u1",
            "anonymousId": "a1",
            "timestamp": at(150),
            "receivedAt": at(151),
        },  # an earlier link for a1
        {
            "type": "alias",
            "messageId": "m16",
            "userId": "u16",
            "previousId": "a16",
            "timestamp": at(160),
            "receivedAt": at(161),
        },
        {"type": "alias", "messageId": "m17", "userId": "u17", "timestamp": at(170)},  # no previousId
        {"type": "page", "messageId": "m18", "anonymousId": "a18", "name": "", "receivedAt": at(180)},
        {"type": "nope", "messageId": "m19", "userId": "u19"},  # unknown type
        event("m20", userId="u" * 2000, receivedAt=at(190)),  # id too long
        event("m2", anonymousId="a1", userId="u1", timestamp=at(1), receivedAt=at(2)),  # dup, earlier
        event(
            "m21",
            userId="u21",
            timestamp=datetime(1, 1, 1, tzinfo=UTC),
            sentAt=at(0),
            receivedAt=datetime(9999, 1, 1, tzinfo=UTC),
        ),  # far times (parsed one by one)
        event("m22", userId="u22", receivedAt=at(210), channel="web"),  # another column
        event("m23", userId="u23", timestamp=at(220), sentAt=at(219)),  # no receivedAt: now
        event("m1", userId="u1", timestamp=at(0), sentAt=at(5), receivedAt=at(99)),  # retry, later chunk
    ]


def parquet(path: Path, events: list[dict[str, Any]], *, posthog: Sequence[dict[str, Any]] = ()) -> Path:
    names = [
        "type",
        "event",
        "name",
        "userId",
        "anonymousId",
        "previousId",
        "messageId",
        "timestamp",
        "sentAt",
        "receivedAt",
        "properties",
        "traits",
        "context",
        "channel",
    ]
    times = {"timestamp", "sentAt", "receivedAt"}
    rows = [*events, *posthog]
    columns = {
        name: pa.array(
            [row.get(name) for row in rows], pa.timestamp("us", tz="UTC") if name in times else pa.string()
        )
        for name in names
    }
    if posthog:
        columns["distinct_id"] = pa.array([row.get("distinct_id") for row in rows], pa.string())
        columns["uuid"] = pa.array([row.get("uuid") for row in rows], pa.string())
    pq.write_table(pa.table(columns), path)
    return path


def ndjson(path: Path) -> Path:
    lines = [
        orjson.dumps(
            {
                "type": "track",
                "event": "E",
                "userId": "n1",
                "messageId": "n1",
                "timestamp": "2026-04-01T10:00:00Z",
                "sentAt": "2026-04-01T10:00:03Z",
                "receivedAt": "2026-04-01T10:00:04Z",
            }
        ),
        b"{broken",
        orjson.dumps(
            {
                "event": "Signed Up",
                "distinct_id": "ph-1",
                "uuid": "p1",
                "timestamp": "2026-04-01T12:00:00Z",
                "properties": {"$set": {"email": "e"}},
            }
        ),
        orjson.dumps(
            {
                "event": "$identify",
                "distinct_id": "ph-1",
                "uuid": "p2",
                "timestamp": "2026-04-01T11:00:00Z",
                "properties": {"$anon_distinct_id": "ph-a"},
            }
        ),
        orjson.dumps(
            {"type": "track", "event": "E", "userId": "n1", "messageId": "n1", "timestamp": "not a time"}
        ),
        orjson.dumps(
            {
                "type": "identify",
                "userId": "n1",
                "anonymousId": "na",
                "messageId": "n2",
                "timestamp": "2026-03-01T10:00:00Z",
            }
        ),
        b"[1, 2]",
        orjson.dumps(
            {
                "type": "track",
                "event": "E",
                "userId": "n1",
                "messageId": "stored-1",
                "timestamp": "2026-04-01T10:00:00Z",
            }
        ),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
