"""`landed migrate`: a DuckDB database copied into ClickHouse (chDB here) and back, every row of
every table and every report identical, the row counts checked; refusals name the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from app.backup import TABLES
from app.cli import main
from app.demo import load_sample
from app.reports import ReportService
from app.storage import Storage
from tests.helpers.backends import chdb_url
from tests.helpers.stored import drop_clickhouse_database

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC).replace(tzinfo=None)


def _columns(storage: Storage, table: str) -> list[str]:
    """The DuckDB table's columns, which every backend's table has under the same names."""
    return [d[0] for d in storage.cursor().execute(f"select * from {table} limit 0").description]


def _table(storage: Storage, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """A DuckDB table's rows, in its columns."""
    return sorted(storage.cursor().execute(f"select {', '.join(columns)} from {table}").fetchall(), key=repr)


def _exported(storage: Storage, folder: Path) -> dict[str, list[dict[str, Any]]]:
    folder.mkdir()
    files = {table: folder / f"{table}.parquet" for table in TABLES}
    storage.export_tables(files)
    return {table: sorted(pq.read_table(path).to_pylist(), key=repr) for table, path in files.items()}


def _reports(storage: Storage) -> dict[str, str]:
    service = ReportService(storage)
    return {
        key: service.report(key, as_of=NOW).model_dump_json() for key in storage.launch_keys()
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB database with the sample data, the demo's decision and alerts."""
    db = tmp_path_factory.mktemp("migrate") / "source.duckdb"
    with Storage(str(db)) as storage:
        load_sample(storage, today=datetime.now(UTC))
    return db


def test_duckdb_to_clickhouse_and_back_keeps_every_row_and_report(
    source: Path,
    chdb_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    url = chdb_url(chdb_root)
    request.addfinalizer(lambda: drop_clickhouse_database(url))
    assert main(["migrate", "--db", str(source), "--to", "clickhouse", url]) == 0
    out = capsys.readouterr().out
    assert "row counts checked" in out
    assert "events 104,017" in out

    with Storage(str(source)) as original, Storage(clickhouse_url=url) as migrated:
        columns = {table: _columns(original, table) for table in TABLES}
        # What each backend hands out as its tables (a backup): every row of every table equal.
        exported = _exported(migrated, tmp_path / "from-clickhouse")
        assert exported == _exported(original, tmp_path / "from-duckdb")
        assert migrated.count_events() == original.count_events() == 104_017
        assert _reports(migrated) == _reports(original)
        keys = migrated.list_keys()
        assert {k.key_id for k in keys} == {k.key_id for k in original.list_keys()}

    # And back, from ClickHouse (the configured storage) into a new DuckDB file.
    monkeypatch.setenv("LANDED_STORAGE", "clickhouse")
    monkeypatch.setenv("LANDED_CLICKHOUSE_URL", url)
    back = tmp_path / "back.duckdb"
    assert main(["migrate", "--to", "duckdb", str(back)]) == 0
    assert "events 104,017" in capsys.readouterr().out
    monkeypatch.delenv("LANDED_STORAGE")
    with Storage(str(source)) as original, Storage(str(back)) as returned:
        for table in TABLES:
            assert _table(returned, table, columns[table]) == _table(original, table, columns[table]), table


def test_migrate_refuses_a_target_that_holds_data(
    source: Path, chdb_root: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    url = chdb_url(chdb_root)
    request.addfinalizer(lambda: drop_clickhouse_database(url))
    assert main(["migrate", "--db", str(source), "--to", "clickhouse", url]) == 0
    capsys.readouterr()
    assert main(["migrate", "--db", str(source), "--to", "clickhouse", url]) != 0
    err = capsys.readouterr().err
    assert "empty" in err
    # Nothing was added by the refused second copy.
    with Storage(clickhouse_url=url) as migrated:
        assert migrated.count_events() == 104_017


def test_migrate_names_what_is_wrong(source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--db", str(source), "--to", "clickhouse", "postgres://db/x"]) != 0
    assert "LANDED_CLICKHOUSE_URL" in capsys.readouterr().err
    assert main(["migrate", "--db", str(source), "--to", "sqlite", "x.db"]) != 0
    assert "unknown backend" in capsys.readouterr().err
    assert main(["migrate", "--db", str(source), "--to", "duckdb", str(source)]) != 0
    assert "same database" in capsys.readouterr().err
