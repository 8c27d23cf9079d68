"""Databases for tests that open storage of their own (a module's data loaded once) rather than
using the per-test `storage` fixture of tests/conftest.py."""

from __future__ import annotations

import uuid
from pathlib import Path


def chdb_url(root: Path) -> str:
    """A chDB URL, in the process's one chDB path `root` (the `chdb_root` fixture), naming a
    database no other test uses."""
    return f"chdb://{root}?database=t_{uuid.uuid4().hex[:16]}"
