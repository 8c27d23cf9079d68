"""The newcomer path: the sample data tells its story through the same import, apply and
report paths users use, and `landed demo` serves it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from app import launches
from app.demo import load_sample
from app.local_server import free_port
from app.reports import ReportService, default_as_of
from app.storage import Storage
from tests.helpers.live import ROOT, clean_env

pytestmark = pytest.mark.slow  # the inner loop (`make check`) skips it; `make test` runs it


@pytest.fixture(scope="module")
def demo_storage(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    storage = Storage(str(tmp_path_factory.mktemp("demo") / "demo.duckdb"))
    load_sample(storage, today=datetime.now(UTC))
    yield storage  # type: ignore[misc]
    storage.close()


def test_sample_tells_the_story(demo_storage: Storage) -> None:
    reports = ReportService(demo_storage)
    as_of = default_as_of(datetime.now(UTC))
    missed = reports.report("smart-export", as_of=as_of)
    landed = reports.report("team-workspaces", as_of=as_of)
    open_window = reports.report("ai-summaries", as_of=as_of)

    assert (missed.verdict, missed.provisional) == ("missed", False)
    assert {k.id: k.verdict for k in missed.kpis} == {
        "reach": "missed",
        "adoption": "missed",
        "repeat": "missed",
    }
    assert missed.funnel.largest_drop == "exposed"
    assert missed.funnel.summary.endswith("of active users never saw the announcement.")
    # Few noticed it and it moved no upgrades: adopters convert no more than non-adopters.
    assert missed.metrics.exposure_rate.value is not None and missed.metrics.exposure_rate.value < 0.2
    comparison = missed.adopters_vs_non_adopters
    assert comparison.interval is not None and comparison.interval.low < 0 < comparison.interval.high

    assert (landed.verdict, landed.provisional) == ("landed", False)
    assert all(k.verdict == "met" for k in landed.kpis)
    assert landed.adopters_vs_non_adopters.interval is not None
    assert landed.adopters_vs_non_adopters.interval.low > 0

    assert open_window.provisional is True
    # The adoption KPI's by_day 14 period ends at 09:00 UTC on the demo's day: before that it is
    # provisional too, after it final. Every other KPI is provisional with the window.
    assert all(k.provisional for k in open_window.kpis if k.by_day is None)
    # Section 7: a KPI is judged on its always-valid interval exactly while it is provisional.
    assert all((k.interval_kind == "always_valid") == k.provisional for k in open_window.kpis)
    assert open_window.verdict == "inconclusive"
    assert open_window.window.end == open_window.window.as_of


def test_sample_launches_were_set_before_launch_and_one_amended(demo_storage: Storage) -> None:
    states = {s.spec.key: s for s in launches.list_launches(demo_storage)}
    assert sorted(states) == ["ai-summaries", "smart-export", "team-workspaces"]
    for state in states.values():
        assert not any(r.set_after_launch for r in state.kpi_records)
    amended = [r for r in states["smart-export"].kpi_records if r.amended]
    assert [(r.id, r.first_set.target, r.current.target) for r in amended] == [("adoption", 0.2, 0.1)]
    report = ReportService(demo_storage).report("smart-export", as_of=default_as_of(datetime.now(UTC)))
    adoption = next(k for k in report.kpis if k.id == "adoption")
    assert (adoption.target, adoption.amended_target, adoption.amended) == (0.2, 0.1, True)


def test_sample_import_drops_the_duplicate_deliveries(demo_storage: Storage) -> None:
    count = demo_storage.count_events()
    lines = 104_578
    duplicates = 561
    assert count == lines - duplicates


def test_landed_demo_serves_the_sample(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--db", str(tmp_path / "demo.duckdb"), "--port", str(port)],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        printed: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            printed.append(line)
            if line.startswith("Press Ctrl+C"):
                break
        text = "".join(printed)
        assert f"http://127.0.0.1:{port}/" in text, text
        read_key = next(line.split()[-1] for line in printed if "Read key" in line)
        assert read_key.startswith("lr_")
        for _ in range(100):
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/launches/team-workspaces/report", auth=(read_key, "")
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["verdict"] == "landed"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
