"""Every number of a launch report computed a second way and compared.

The second way is `tests/reference/reference_metrics.sql` (run by tests/helpers/reference.py):
plain DuckDB SQL written from the metric spec alone, without reading the pipeline. The data is
the project's seeded generator (2,000 users) imported through the importer, plus a few
hand-made users, each built to sit on one edge of the spec (trait timing, identity links, clock
skew, window and day boundaries, use before exposure, conversion before use), because the
generator alone never has an adopter who was not exposed. Each launch is reported after its
window (final), at the data's end (provisional), and cut in the middle of a window (a shorter
window and baseline). Counts must be equal, rates equal to 1e-12, medians to 1e-9, timeline
rows equal. The whole module runs once per storage backend; on ClickHouse the reference SQL runs
on an in-memory DuckDB copy of the ClickHouse tables (tests/helpers/reference.py).
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import yaml

from app import launches
from app.importer import import_files
from app.reports import ReportService
from app.storage import Storage
from pipelines.report_models import LaunchReport, Rate
from tests.helpers.backends import chdb_url
from tests.helpers.edge_users import edge_events
from tests.helpers.reference import reference_connection, reference_metrics, reference_params

pytestmark = pytest.mark.backends

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "data" / "sample" / "generate.py"
USERS = 2000
SEED = 11
RATE_TOL = 1e-12
MEDIAN_TOL = 1e-9

DATA_END = datetime(2026, 11, 20)

# (launch, as_of): final after the window, provisional at the data's end, and cut mid-window
# (team-workspaces at 11 days 6.5 hours: the window and the baseline period are that long;
# smart-export 11 hours after launch: no full day in the window).
CASES = [
    ("smart-export", datetime(2026, 11, 20)),
    ("team-workspaces", datetime(2026, 11, 1, 12)),
    ("ai-summaries", DATA_END),
    ("team-workspaces", datetime(2026, 10, 9, 15, 30)),
    ("smart-export", datetime(2026, 9, 14, 20)),
]
CASE_IDS = [f"{key}@{as_of:%m-%dT%H:%M}" for key, as_of in CASES]


# -- hand-made users on the spec's edges ---------------------------------------------------------


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    """The module's storage backend (parametrized by tests/conftest.py), one data load each."""
    return str(request.param)


@pytest.fixture(scope="module")
def storage(
    tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest
) -> Iterator[Storage]:
    folder = tmp_path_factory.mktemp("reference")
    data = folder / "data"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--users", str(USERS), "--seed", str(SEED),
         "--out", str(data), "--format", "ndjson"],
        check=True, capture_output=True,
    )
    edges = folder / "edges.ndjson.gz"
    with gzip.open(edges, "wb") as out:
        for event in edge_events():
            out.write(orjson.dumps(event) + b"\n")
    if backend == "clickhouse":
        opened = Storage(clickhouse_url=chdb_url(request.getfixturevalue("chdb_root")))
    else:
        opened = Storage(str(folder / "landed.duckdb"))
    summary = import_files(
        opened, [data / "events.ndjson.gz", edges], source="reference", max_event_bytes=1 << 20
    )
    assert summary.rejected == 0
    for path in sorted((data / "launches").glob("*.yaml")):
        spec = launches.parse_spec(yaml.safe_load(path.read_text(encoding="utf-8")))
        launches.put_launch(opened, spec, by="test", now=datetime(2026, 8, 1))
    yield opened
    opened.close()
    if backend == "clickhouse":
        opened.database.drop_database()  # type: ignore[union-attr]


Computed = tuple[LaunchReport, dict[str, list[dict[str, Any]]]]


class Reports:
    """The pipeline's report and the reference SQL's results, each computed once per module."""

    def __init__(self, storage: Storage, reference: duckdb.DuckDBPyConnection) -> None:
        self.storage = storage
        self.reference = reference
        self._done: dict[tuple[str, datetime, str], Computed] = {}

    def get(self, key: str, as_of: datetime, segment: str = "plan") -> Computed:
        if (key, as_of, segment) not in self._done:
            report = ReportService(self.storage).report(key, as_of=as_of, segment=segment)
            spec = launches.load_launch(self.storage, key).spec
            params = reference_params(spec, as_of, segment)
            self._done[(key, as_of, segment)] = (
                report, reference_metrics(self.reference, params)
            )
        return self._done[(key, as_of, segment)]


@pytest.fixture(scope="module")
def reports(storage: Storage) -> Iterator[Reports]:
    reference = reference_connection(storage)
    yield Reports(storage, reference)
    reference.close()


@pytest.fixture(params=CASES, ids=CASE_IDS)
def case(request: pytest.FixtureRequest, reports: Reports) -> Computed:
    key, as_of = request.param
    return reports.get(key, as_of)


# -- comparisons ---------------------------------------------------------------------------------


def ratio(k: int, n: int) -> float | None:
    return None if n == 0 else k / n


def close(actual: float | None, expected: float | None, tol: float = RATE_TOL) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    return abs(actual - expected) <= tol


def assert_rate(rate: Rate, k: int, n: int, what: str) -> None:
    assert (rate.k, rate.n) == (k, n), f"{what}: k/n {rate.k}/{rate.n}, reference {k}/{n}"
    assert close(rate.value, ratio(k, n)), f"{what}: value {rate.value}, reference {ratio(k, n)}"


def summary(reference: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = reference["summary"][0]
    return row


# -- tests ---------------------------------------------------------------------------------------


def test_edge_users_are_stored(storage: Storage) -> None:
    [(stored,)] = storage.rows("select count(*) from events where message_id like 'edge-%'")
    assert stored == len(edge_events())


def test_window(case: Computed) -> None:
    report, reference = case
    assert report.window.end == summary(reference)["window_end"]
    assert report.provisional == (report.window.end < report.window.full_end)


def test_counts(case: Computed) -> None:
    report, reference = case
    s = summary(reference)
    c = report.counts
    assert (c.active, c.exposed, c.adopters, c.tried) == (
        s["active"], s["exposed"], s["adopters"], s["tried"]
    )
    # repeated and converted here are the metrics' numerators (over all adopters U), not the
    # funnel's nested steps (tried users only; see test_funnel): edge_unexposed tells them apart.
    assert (c.repeated, c.converted) == (s["repeated"], s["converted"])


def test_rates(case: Computed) -> None:
    report, reference = case
    s = summary(reference)
    m = report.metrics
    assert_rate(m.exposure_rate, s["exposed"], s["active"], "exposure_rate")
    assert_rate(m.adoption_rate, s["adopters"], s["active"], "adoption_rate")
    assert_rate(m.notice_to_try_rate, s["tried"], s["exposed"], "notice_to_try_rate")
    assert_rate(m.repeat_usage_rate, s["repeated"], s["adopters"], "repeat_usage_rate")
    assert_rate(m.conversion_rate, s["converted"], s["adopters"], "conversion_rate")


def test_baseline_conversion_rate(case: Computed) -> None:
    report, reference = case
    b = reference["baseline"][0]
    assert_rate(report.metrics.baseline_conversion_rate, b["converted"], b["active"], "baseline")


def test_median_days_to_adopt(case: Computed) -> None:
    report, reference = case
    s = summary(reference)
    median = report.metrics.median_days_to_adopt
    assert median.n == s["adopters"]
    assert close(median.value, s["median_days_to_adopt"], MEDIAN_TOL), (
        f"median {median.value}, reference {s['median_days_to_adopt']}"
    )


def test_week_n_retention(case: Computed) -> None:
    report, reference = case
    weeks = {w.week: w.rate for w in report.metrics.week_n_retention}
    assert {1, 2, 3} <= set(weeks)
    for row in reference["retention"]:
        assert_rate(weeks[row["week"]], row["k"], row["n"], f"week_{row['week']}_retention")


def test_stickiness(case: Computed) -> None:
    report, reference = case
    row = reference["stickiness"][0]
    st = report.metrics.stickiness
    assert (st.full_days, st.adopters) == (row["full_days"], row["adopters"])
    assert close(st.value, row["value"]), f"stickiness {st.value}, reference {row['value']}"


def test_funnel(case: Computed) -> None:
    report, reference = case
    s = summary(reference)
    expected = {
        "active": s["active"],
        "exposed": s["exposed"],
        "tried": s["tried"],
        "repeated": s["tried_repeated"],
        "converted": s["tried_converted"],
    }
    steps = {step.step: step for step in report.funnel.steps}
    assert [step.step for step in report.funnel.steps] == list(expected)
    assert {name: step.users for name, step in steps.items()} == expected
    assert steps["active"].parent is None
    parents = [steps[name].parent for name in ("exposed", "tried", "repeated")]
    assert parents == ["active", "exposed", "tried"]
    # Converted users need not have repeated, so its rate is taken from tried (spec: "tried
    # users counted by conversion_rate").
    assert steps["converted"].parent == "tried"
    for step in steps.values():
        parent = expected[step.parent] if step.parent else None
        if parent is not None:
            assert close(step.rate_from_parent, ratio(step.users, parent)), step.step
        assert close(step.rate_from_active, ratio(step.users, s["active"])), step.step


def test_channels(case: Computed) -> None:
    report, reference = case
    active = summary(reference)["active"]
    got = {c.channel: c for c in report.channels}
    assert set(got) == {row["channel"] for row in reference["channels"]}
    for row in reference["channels"]:
        channel = got[row["channel"]]
        assert channel.exposed == row["exposed"], row["channel"]
        assert close(channel.reach, ratio(row["exposed"], active)), row["channel"]
        what = f"{row['channel']} tried_after"
        assert_rate(channel.tried_after, row["tried_after"], row["exposed"], what)


def test_segments(case: Computed) -> None:
    assert_segments(*case, "plan")


@pytest.mark.parametrize("as_of", [datetime(2026, 11, 1, 12), datetime(2026, 10, 9, 15, 30)])
def test_segments_by_another_trait(reports: Reports, as_of: datetime) -> None:
    """country, not the audience's trait; a user with no country is in `(none)`."""
    report, reference = reports.get("team-workspaces", as_of, "country")
    assert "(none)" in {row["value"] for row in reference["segments"]}
    assert_segments(report, reference, "country")


def assert_segments(report: LaunchReport, reference: dict[str, Any], trait: str) -> None:
    assert report.segments is not None and report.segments.trait == trait
    got = {row.value: row for row in report.segments.rows}
    assert set(got) == {row["value"] for row in reference["segments"]}
    for row in reference["segments"]:
        seg = got[row["value"]]
        what = f"{trait}={row['value']}"
        assert seg.active == row["active"], what
        assert_rate(seg.exposure_rate, row["exposed"], row["active"], f"{what} exposure_rate")
        assert_rate(seg.adoption_rate, row["adopters"], row["active"], f"{what} adoption_rate")
        assert_rate(seg.notice_to_try_rate, row["tried"], row["exposed"], f"{what} notice_to_try")
        assert_rate(seg.repeat_usage_rate, row["repeated"], row["adopters"], f"{what} repeat")
        assert_rate(seg.conversion_rate, row["converted"], row["adopters"], f"{what} conversion")


def test_adopters_vs_non_adopters(case: Computed) -> None:
    report, reference = case
    s = summary(reference)
    comparison = report.adopters_vs_non_adopters
    assert_rate(comparison.adopters, s["converted"], s["adopters"], "adopters")
    k, n = s["non_adopters_converted"], s["non_adopters"]
    assert_rate(comparison.non_adopters, k, n, "non-adopters")
    a, b = ratio(s["converted"], s["adopters"]), ratio(k, n)
    assert close(comparison.difference, None if a is None or b is None else a - b)


def test_timeline(case: Computed) -> None:
    report, reference = case
    got = [
        (d.day, d.active, d.newly_exposed, d.new_adopters, d.cumulative_adoption_rate)
        for d in report.timeline.days
    ]
    expected = [
        (r["day"], r["active"], r["newly_exposed"], r["new_adopters"],
         ratio(r["adopters_so_far"], r["active_so_far"]))
        for r in reference["timeline"]
    ]
    assert [g[:4] for g in got] == [x[:4] for x in expected]
    for g, x in zip(got, expected, strict=True):
        assert close(g[4], x[4]), f"{g[0]}: cumulative adoption {g[4]}, reference {x[4]}"


def test_by_day_kpis(reports: Reports, case: Computed) -> None:
    """KPIs judged over their first N days agree with the reference cut at that day."""
    report, _ = case
    for kpi in report.kpis:
        if kpi.by_day is None or kpi.metric != "adoption_rate":
            continue
        assert kpi.window.end == min(
            report.window.start + timedelta(days=kpi.by_day), report.window.end
        ), kpi.id
        _, reference = reports.get(report.launch_key, kpi.window.end)
        s = summary(reference)
        assert kpi.n == s["active"], kpi.id
        assert close(kpi.value, ratio(s["adopters"], s["active"])), kpi.id
