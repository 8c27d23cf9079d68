"""Backup and restore round trip: every row of every table comes back identical, on both
backends (the CLI finds a ClickHouse database through the environment, as an operator sets it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from app.backup import TABLES
from app.cli import main
from app.demo import load_sample
from app.settings import Settings
from app.storage import Storage
from tests.helpers.stored import another_settings, drop_clickhouse_database

pytestmark = pytest.mark.backends


@pytest.fixture
def databases() -> Iterator[list[Settings]]:
    """Databases a test uses through the CLI, dropped at the end if they are ClickHouse ones."""
    used: list[Settings] = []
    yield used
    for each in used:
        if each.clickhouse_url is not None and each.storage == "clickhouse":
            drop_clickhouse_database(each.clickhouse_url.get_secret_value())


def _use(settings: Settings, databases: list[Settings], monkeypatch: pytest.MonkeyPatch) -> str:
    """Points the CLI at `settings`' database; what it takes as --db."""
    databases.append(settings)
    if settings.storage == "clickhouse":
        assert settings.clickhouse_url is not None
        monkeypatch.setenv("LANDED_STORAGE", "clickhouse")
        monkeypatch.setenv("LANDED_CLICKHOUSE_URL", settings.clickhouse_url.get_secret_value())
    return settings.db_path


def _backed_up(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table of a backup folder, rows sorted."""
    return {
        table: sorted(pq.read_table(folder / f"{table}.parquet").to_pylist(), key=repr) for table in TABLES
    }


def test_round_trip_keeps_every_row(
    settings: Settings,
    databases: list[Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = _use(settings, databases, monkeypatch)
    with Storage.open(Settings(db_path=source)) as storage:
        load_sample(storage, today=datetime.now(UTC))

    assert main(["backup", "--db", source, "--out", str(tmp_path / "backup")]) == 0
    assert "events 104,017" in capsys.readouterr().out
    # Other tools can read it: plain Parquet.
    assert pq.read_table(tmp_path / "backup" / "events.parquet").num_rows == 104_017

    target = _use(another_settings(settings, "restored.duckdb"), databases, monkeypatch)
    assert main(["restore", "--db", target, str(tmp_path / "backup")]) == 0
    # The restored database backs up to the same rows, table by table.
    assert main(["backup", "--db", target, "--out", str(tmp_path / "again")]) == 0
    first, again = _backed_up(tmp_path / "backup"), _backed_up(tmp_path / "again")
    for table in TABLES:
        assert again[table] == first[table], table
    with Storage.open(Settings(db_path=target)) as restored:
        assert restored.count_events() == 104_017


def test_restore_refuses_a_database_with_data(
    settings: Settings,
    databases: list[Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = _use(settings, databases, monkeypatch)
    assert main(["keys", "create", "--name", "web", "--db", db]) == 0
    assert main(["backup", "--db", db, "--out", str(tmp_path / "b")]) == 0
    assert main(["restore", "--db", db, str(tmp_path / "b")]) == 1
    assert "already holds api_keys" in capsys.readouterr().err


def test_backup_refuses_a_folder_with_files(
    settings: Settings,
    databases: list[Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = _use(settings, databases, monkeypatch)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "other.txt").write_text("x")
    assert main(["backup", "--db", db, "--out", str(tmp_path / "b")]) == 1
    assert "is not empty" in capsys.readouterr().err


def test_restore_checks_the_manifest(
    settings: Settings,
    databases: list[Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = _use(settings, databases, monkeypatch)
    assert main(["restore", "--db", db, str(tmp_path)]) == 1
    assert "is not a Landed backup" in capsys.readouterr().err
