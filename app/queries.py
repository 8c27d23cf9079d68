"""Loads the SQL files under `sql/`: one statement per file, the file name is its name.

An unknown name fails at once with the list of known ones, so a typo never reaches DuckDB.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class UnknownQueryError(LookupError):
    """A query or schema name with no file behind it."""


@cache
def query(name: str) -> str:
    """The text of `sql/queries/<name>.sql`."""
    path = SQL_DIR / "queries" / f"{name}.sql"
    if not path.is_file():
        known = ", ".join(query_names())
        raise UnknownQueryError(f"no query named {name!r}; known queries: {known}")
    return path.read_text(encoding="utf-8")


def query_names() -> list[str]:
    """Every query file's name, sorted."""
    return sorted(p.stem for p in (SQL_DIR / "queries").glob("*.sql"))


def schema_statements() -> list[tuple[str, str]]:
    """(name, statement) of every `sql/schema/NNN_*.sql`, in the order they must run."""
    return [(p.stem, p.read_text(encoding="utf-8")) for p in sorted((SQL_DIR / "schema").glob("*.sql"))]
