"""The same data in both storage backends gives the same answers, byte for byte.

The sample (data/sample/) is loaded into DuckDB and into ClickHouse (chDB) the way the demo
loads it, with the process's time zone set to America/New_York, so neither engine may lean on
the host's zone. Then, through the HTTP API each service answers with: every launch's full
report (at the data's end, cut in the middle of its window, and by segment), its readiness, and
the launch editor's suggestions must be identical bytes on both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import launches
from app.demo import load_sample
from app.main import create_app
from app.settings import Settings
from app.storage import Storage
from app.storage.clickhouse_database import ClickHouseDatabase
from tests.helpers.backends import chdb_url

pytestmark = pytest.mark.slow  # loads the sample twice, like the demo's tests

TIME_ZONE = "America/New_York"
TODAY = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)  # the sample's end moved to this day
NOW = TODAY.replace(tzinfo=None)


@dataclass
class Served:
    """One backend loaded with the sample, and a client of its API with a read key."""

    storage: Storage
    client: TestClient

    def get(self, path: str, **params: str) -> bytes:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.content


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[dict[str, Served]]:
    """DuckDB and ClickHouse, each with the sample, loaded and read in a zone that is not UTC."""
    folder: Path = tmp_path_factory.mktemp("backends")
    chosen = {
        "duckdb": Settings(db_path=str(folder / "landed.duckdb")),
        "clickhouse": Settings(
            db_path=str(folder / "unused.duckdb"),
            storage="clickhouse",
            clickhouse_url=chdb_url(request.getfixturevalue("chdb_root")),
        ),
    }
    with pytest.MonkeyPatch.context() as patch, ExitStack() as stack:
        patch.setenv("TZ", TIME_ZONE)
        time.tzset()
        # The editor suggests from the last 30 days before now: the same now for both.
        patch.setattr("app.routes.editor.now_utc", lambda: NOW)
        served = {}
        for name, settings in chosen.items():
            storage = Storage.open(settings)
            if isinstance(storage.database, ClickHouseDatabase):
                stack.callback(storage.database.drop_database)
            stack.callback(storage.close)
            loaded = load_sample(storage, today=TODAY)
            client = stack.enter_context(TestClient(create_app(settings, storage)))
            client.headers["Authorization"] = f"Bearer {loaded.read_key}"
            served[name] = Served(storage, client)
        yield served
    time.tzset()  # back to the process's own zone


def _same(served: dict[str, Served], path: str, **params: str) -> bytes:
    duckdb_answer = served["duckdb"].get(path, **params)
    clickhouse_answer = served["clickhouse"].get(path, **params)
    assert clickhouse_answer == duckdb_answer, f"{path} {params}: the backends differ"
    return duckdb_answer


def _launch_keys(served: dict[str, Served]) -> list[str]:
    keys = [state.spec.key for state in launches.list_launches(served["duckdb"].storage)]
    assert keys == [state.spec.key for state in launches.list_launches(served["clickhouse"].storage)]
    assert len(keys) == 3
    return keys


def test_both_backends_hold_the_same_events(served: dict[str, Served]) -> None:
    counts = {name: s.storage.count_events() for name, s in served.items()}
    assert counts["duckdb"] == counts["clickhouse"] > 100_000
    assert time.tzname[0] != "UTC"  # the module runs in another zone


def test_every_report_is_identical(served: dict[str, Served]) -> None:
    for key in _launch_keys(served):
        spec = launches.load_launch(served["duckdb"].storage, key).spec
        launched = spec.launched_at.astimezone(UTC).replace(tzinfo=None)
        # At the data's end (final or provisional), and cut mid-window (a partial day).
        for as_of in (NOW, launched + timedelta(days=9, hours=7, minutes=30)):
            for segment in (None, "plan", "country"):
                params = {"as_of": as_of.isoformat()} | ({"segment": segment} if segment else {})
                body = _same(served, f"/api/launches/{key}/report", **params)
                assert b'"counts"' in body


def test_readiness_is_identical(served: dict[str, Served]) -> None:
    for key in _launch_keys(served):
        spec = launches.load_launch(served["duckdb"].storage, key).spec
        launched = spec.launched_at.astimezone(UTC).replace(tzinfo=None)
        for as_of in (NOW, launched - timedelta(days=2)):
            _same(served, f"/api/launches/{key}/readiness", as_of=as_of.isoformat())


def test_editor_suggestions_are_identical(served: dict[str, Served]) -> None:
    path = "/api/editor/suggestions"
    assert b'"Feature Used"' in _same(served, path, kind="events")
    assert b'"plan"' in _same(served, path, kind="traits")
    for trait in ("plan", "country", "no such trait"):
        _same(served, path, kind="trait_values", trait=trait)
    for event in ("Feature Used", "Plan Upgraded", "Announcement Viewed", "Feature Page"):
        _same(served, path, kind="properties", event=event)
    upgrades = _same(served, path, kind="property_values", event="Plan Upgraded", property="to_plan")
    assert b'"premium"' in upgrades
    _same(served, path, kind="property_values", event="Feature Used", property="feature")
