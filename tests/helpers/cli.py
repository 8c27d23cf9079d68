"""The command line in this process, as the CLI tests run it: a command's exit code and what it
printed, a launch as stored in a database file, and the sample's launch spec files."""

from __future__ import annotations

import pytest

from app import launches
from app.cli import main
from app.storage import Storage
from tests.helpers.live import ROOT

SAMPLES = ROOT / "data" / "sample" / "launches"
Capsys = pytest.CaptureFixture[str]


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    """`landed ARGV` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def load(db: str, key: str) -> launches.LaunchState:
    """The launch `key` as stored in the database file `db`."""
    storage = Storage(db)
    try:
        return launches.load_launch(storage, key)
    finally:
        storage.close()
