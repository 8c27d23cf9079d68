"""Dashboard page load time for a launch with 1M events, once its report is computed.

The 1M-event database of the report benchmark is copied to a scratch folder and served by the
real service under uvicorn on 127.0.0.1. Each page is requested once to compute and cache its
report (the cold time is reported too), then several times; the figure is the median time to
the last byte of the HTML of the scorecard, the portfolio and the weekly review, against the 1 s
bar of the dashboards issue."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.local_server import serving
from app.main import create_app
from app.settings import Settings
from app.storage import Storage
from bench import Row
from bench.report import AS_OF, LAUNCH_KEY, SIZES, build

NAME = "pages"
REPEATS = 5
BAR_SECONDS = 1.0


def run() -> list[Row]:
    size = SIZES[0]
    source, info = build(size)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "pages.duckdb"
        shutil.copyfile(source, db)
        storage = Storage(str(db))
        _, key = storage.create_key("bench-pages", "read")
        week = f"{AS_OF.isocalendar().year}-W{AS_OF.isocalendar().week:02d}"
        pages = {
            "scorecard": f"/launches/{LAUNCH_KEY}?as_of={AS_OF.isoformat()}",
            "portfolio": "/",
            "weekly review": f"/review?week={week}",
        }
        try:
            with (
                serving(create_app(Settings(db_path=str(db)), storage), start_seconds=30) as url,
                httpx.Client(base_url=url, auth=(key, ""), timeout=120) as client,
            ):
                for name, path in pages.items():
                    started = time.perf_counter()
                    first = client.get(path)
                    cold = time.perf_counter() - started
                    if first.status_code != 200:
                        raise RuntimeError(f"{path} answered {first.status_code}: {first.text[:200]}")
                    times = []
                    for _ in range(REPEATS):
                        started = time.perf_counter()
                        response = client.get(path)
                        times.append(time.perf_counter() - started)
                        assert response.status_code == 200
                    label = f"{name} page, {info['events'] / 1e6:.1f}M events"
                    rows.append(
                        Row(
                            NAME,
                            f"{label}, report cached (median of {REPEATS})",
                            statistics.median(times),
                            "s",
                            BAR_SECONDS,
                        )
                    )
                    rows.append(Row(NAME, f"{label}, first load (computes the reports)", cold, "s"))
        finally:
            storage.close()
    return rows
