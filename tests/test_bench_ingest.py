"""The ingest benchmark's stage measurements run the service's own code on real data.

`make bench` is where the numbers are read; this only checks that the stages do the work they
claim to time (every event parsed, every event committed once) and report sane figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.ingest import CLIENTS, make_bodies, measure_stages, parse_stage, stage_rows


def test_parse_stage_turns_every_body_into_rows_and_arrow() -> None:
    bodies = make_bodies(250, batch_size=100)
    requests = parse_stage(bodies, "bench")
    assert [len(batch.rows) for _, batch, _, _ in requests] == [100, 100, 50]
    assert all(not batch.rejected for _, batch, _, _ in requests)
    tables = [table for _, _, _, table in requests]
    assert [t.num_rows for t in tables if t is not None] == [100, 100, 50]
    assert tables[0] is not None
    assert tables[0].column("message_id")[0].as_py() == "bench-000000000"


def test_stages_commit_every_event_once_and_report_rates(tmp_path: Path) -> None:
    stages = measure_stages(2_000, tmp_path)  # raises unless every event is stored once
    assert stages.parse_rate > 0 and stages.insert_rate > 0 and stages.contended_insert_rate > 0
    assert stages.parse_cpu_us > 0 and stages.insert_cpu_us > 0
    rows = {row.measure: row for row in stage_rows(stages)}
    cores = next(row for name, row in rows.items() if name.startswith("cores"))
    assert cores.value == pytest.approx(50_000 * (stages.parse_cpu_us + stages.insert_cpu_us) / 1e6)
    assert any(f"groups of {CLIENTS * 100} rows" in name for name in rows)
