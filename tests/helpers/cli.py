"""The command line in this process, as the CLI tests run it: a command's exit code and what it
printed, the database the commands use on the test's backend, a launch as stored there, and the
sample's launch spec files."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import launches
from app.cli import main
from app.settings import Settings
from app.storage import Storage
from app.storage.clickhouse_database import ClickHouseDatabase
from tests.helpers.live import ROOT

SAMPLES = ROOT / "data" / "sample" / "launches"
Capsys = pytest.CaptureFixture[str]


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    """`landed ARGV` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@contextlib.contextmanager
def commands_on(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The database file to give the commands (--db) so they use the test's storage `settings`.
    On ClickHouse the commands open the test's ClickHouse database, as LANDED_STORAGE and
    LANDED_CLICKHOUSE_URL name it (the file only names where a running service would be
    announced, and is never created); the database is dropped afterwards."""
    if settings.clickhouse_url is None:
        yield settings.db_path
        return
    url = settings.clickhouse_url.get_secret_value()
    monkeypatch.setenv("LANDED_STORAGE", "clickhouse")
    monkeypatch.setenv("LANDED_CLICKHOUSE_URL", url)
    try:
        yield settings.db_path
    finally:
        database = ClickHouseDatabase(url)
        database.close()
        database.drop_database()
    assert not Path(settings.db_path).exists(), "a command opened a DuckDB file instead of ClickHouse"


def load(db: str, key: str) -> launches.LaunchState:
    """The launch `key` as stored in the database of `db`, on the backend the environment names
    (LANDED_STORAGE, as the commands open it)."""
    with Storage.open(Settings(db_path=db)) as storage:
        return launches.load_launch(storage, key)
