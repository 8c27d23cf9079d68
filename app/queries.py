"""Loads the SQL files under `sql/<engine>/`: one statement per file, the file name is its name.

Each storage engine has its own folder (`sql/duckdb/`, `sql/clickhouse/`), written by hand in
that engine's dialect: a query both engines run has the same file name, parameters and output
columns in both. An unknown name fails at once with the list of known ones, so a typo never
reaches the database.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
Engine = Literal["duckdb", "clickhouse"]
ENGINES: tuple[Engine, ...] = ("duckdb", "clickhouse")


class UnknownQueryError(LookupError):
    """A query or schema name with no file behind it."""


@cache
def query(name: str, engine: Engine = "duckdb") -> str:
    """The text of `sql/<engine>/queries/<name>.sql`."""
    path = SQL_DIR / engine / "queries" / f"{name}.sql"
    if not path.is_file():
        known = ", ".join(query_names(engine))
        raise UnknownQueryError(f"no {engine} query named {name!r}; known queries: {known}")
    return path.read_text(encoding="utf-8")


def query_names(engine: Engine = "duckdb") -> list[str]:
    """Every query file's name for `engine`, sorted."""
    return sorted(p.stem for p in (SQL_DIR / engine / "queries").glob("*.sql"))


def schema_statements(engine: Engine = "duckdb") -> list[tuple[str, str]]:
    """(name, statement) of every `sql/<engine>/schema/NNN_*.sql`, in the order they must run."""
    folder = SQL_DIR / engine / "schema"
    return [(p.stem, p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.sql"))]
