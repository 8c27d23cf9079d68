"""Backup and restore round trip: every row of every table comes back identical."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from app.backup import TABLES
from app.cli import main
from app.demo import load_sample
from app.storage import Storage


def _rows(db: Path, table: str) -> list[tuple[object, ...]]:
    storage = Storage(str(db))
    try:
        return sorted(storage.cursor().execute(f"select * from {table}").fetchall(), key=repr)
    finally:
        storage.close()


def test_round_trip_keeps_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "source.duckdb"
    storage = Storage(str(source))
    load_sample(storage, today=datetime.now(UTC))
    storage.close()

    assert main(["backup", "--db", str(source), "--out", str(tmp_path / "backup")]) == 0
    assert "events 104,017" in capsys.readouterr().out
    # Other tools can read it: plain Parquet.
    assert pq.read_table(tmp_path / "backup" / "events.parquet").num_rows == 104_017

    target = tmp_path / "restored.duckdb"
    assert main(["restore", "--db", str(target), str(tmp_path / "backup")]) == 0
    for table in TABLES:
        assert _rows(target, table) == _rows(source, table), table


def test_restore_refuses_a_database_with_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "x.duckdb"
    assert main(["keys", "create", "--name", "web", "--db", str(db)]) == 0
    assert main(["backup", "--db", str(db), "--out", str(tmp_path / "b")]) == 0
    assert main(["restore", "--db", str(db), str(tmp_path / "b")]) == 1
    assert "already holds api_keys" in capsys.readouterr().err


def test_backup_refuses_a_folder_with_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "other.txt").write_text("x")
    assert main(["backup", "--db", str(tmp_path / "x.duckdb"), "--out", str(tmp_path / "b")]) == 1
    assert "is not empty" in capsys.readouterr().err


def test_restore_checks_the_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["restore", "--db", str(tmp_path / "x.duckdb"), str(tmp_path)]) == 1
    assert "is not a Landed backup" in capsys.readouterr().err
