"""The report's activity input as DuckDB selects it (sql/queries/select_launch_activity.sql):
one row per canonical user, the launch day split at launched_at, identity links applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.ingest import parse_events
from app.storage import Storage
from pipelines.launch import LaunchSpec
from pipelines.plan import plan_report
from tests.helpers.builders import launch_spec

LAUNCH = datetime(2024, 3, 1, 12)  # noon: the launch day is split at 12:00
END = LAUNCH + timedelta(days=3)
START = LAUNCH - (END - LAUNCH)


def at(days: float = 0, hours: float = 0) -> datetime:
    return LAUNCH + timedelta(days=days, hours=hours)


def store(storage: Storage, events: list[dict[str, Any]]) -> None:
    for i, event in enumerate(events):
        event.setdefault("messageId", f"m{i}")
        event["timestamp"] = event["timestamp"].isoformat() + "Z"
    parsed = parse_events(events, source="s", received_at=at(10), max_event_bytes=1 << 20, body_bytes=1000)
    assert not parsed.rejected
    storage.write_events("s", parsed, at(10)).result()


def activity(storage: Storage, *, identified_only: bool) -> dict[str, tuple[Any, ...]]:
    # A 3-day window from LAUNCH, reported at its end: the span [START, END), 4 UTC days.
    spec = launch_spec("k", LAUNCH.replace(tzinfo=UTC)) | {
        "window_days": 3,
        "audience": {"identified_only": identified_only},
        "kpis": [],
    }
    table = storage.launch_activity(plan_report(LaunchSpec.model_validate(spec), END))
    return {
        row["user_id"]: (
            row["is_identified"],
            row["first_event_at"],
            row["last_event_before"],
            row["active_days"],
        )
        for row in table.to_pylist()
    }


def test_activity_is_one_row_per_canonical_user(storage: Storage) -> None:
    track = {"type": "track", "event": "Clicked"}
    store(
        storage,
        [
            # Active before noon on the launch day only: in the baseline, not the window.
            {**track, "userId": "morning", "timestamp": at(hours=-3)},
            # Before and after noon on the launch day, then on day 2 (the window's third day).
            {**track, "userId": "both", "timestamp": at(hours=-3)},
            {**track, "userId": "both", "timestamp": at(hours=1)},
            {**track, "userId": "both", "timestamp": at(days=2)},
            {**track, "userId": "both", "timestamp": at(days=2, hours=1)},
            # Anonymous before its link, linked by an identify later: all one user.
            {**track, "anonymousId": "a1", "timestamp": at(days=-1)},
            {**track, "anonymousId": "a1", "timestamp": at(days=1)},
            {"type": "identify", "userId": "linked", "anonymousId": "a1", "timestamp": at(days=2, hours=3)},
            # Never linked.
            {**track, "anonymousId": "a2", "timestamp": at(days=1)},
            # Outside the span on both sides, and exactly at its end.
            {**track, "userId": "outside", "timestamp": START - timedelta(seconds=1)},
            {**track, "userId": "outside", "timestamp": END},
        ],
    )
    assert activity(storage, identified_only=True) == {
        "morning": (True, None, at(hours=-3), None),
        "both": (True, at(hours=1), at(hours=-3), "1010"),
        "linked": (True, at(days=1), at(days=-1), "0110"),
    }
    with_anonymous = activity(storage, identified_only=False)
    assert with_anonymous["anon:a2"] == (False, at(days=1), None, "0100")
    assert len(with_anonymous) == 4
