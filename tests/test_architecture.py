"""Meta-tests that keep the architecture honest: imports point one way, every SQL file is
used and parses, and nothing in the project reads outside it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import duckdb
import pytest

from app.backup import TABLES
from app.queries import SQL_DIR, UnknownQueryError, query, query_names, schema_statements

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "pipelines", "dashboards")
# What each package may import from the project's own packages.
ALLOWED = {
    "pipelines": {"pipelines"},
    "dashboards": {"dashboards", "pipelines.report_models", "pipelines.launch"},
    "app": {"app", "pipelines", "dashboards"},
}


def _own_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package: str) -> None:
    allowed = ALLOWED[package]
    offending = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in _own_imports(path)
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    }
    assert offending == set()


def test_every_query_is_used_and_parses() -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "app").rglob("*.py"))
    used = set(re.findall(r'query\("([a-z0-9_]+)"\)', code)) | set(
        re.findall(r'_arrow\(\s*"([a-z0-9_]+)"', code)
    )
    # Per-table backup queries are named from the table list.
    used |= {
        f"{prefix}{table}"
        for prefix in re.findall(r'query\(f"([a-z_]+)\{table\}"\)', code)
        for table in TABLES
    }
    names = set(query_names())
    assert names - used == set(), "SQL files nothing runs"
    assert used - names == set(), "queries named in code with no file"
    conn = duckdb.connect()
    for name in names:
        assert len(conn.extract_statements(query(name))) == 1, f"{name}.sql must hold one statement"


def test_schema_files_are_numbered_single_statements() -> None:
    conn = duckdb.connect()
    names = [name for name, _ in schema_statements()]
    assert names == sorted(names)
    for name, text in schema_statements():
        # create, or (for a database made by an earlier version) alter ... if not exists
        assert re.match(r"^\d{3}_(create|alter)_[a-z_]+$", name)
        assert len(conn.extract_statements(text)) == 1
        assert "if not exists" in text, f"{name}: schema files must be idempotent"


def test_unknown_query_fails_fast_naming_the_known_ones() -> None:
    with pytest.raises(UnknownQueryError, match=r"known queries: .*insert_events"):
        query("insert_event")


def test_no_sql_outside_sql_folder() -> None:
    pattern = re.compile(r"\b(select|insert|update|delete)\b[^\n]{0,80}\b(from|into|set)\b", re.IGNORECASE)
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("pipelines", "dashboards", "app/routes")
        for path in (ROOT / package).rglob("*.py")
        if any(
            pattern.search(s.value)
            for s in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(s, ast.Constant) and isinstance(s.value, str)
        )
    ]
    assert offenders == []


def test_project_reads_nothing_outside_itself() -> None:
    for path in ROOT.rglob("*.py"):
        if ".venv" in path.parts:
            continue
        assert "../" + "shared" not in path.read_text(encoding="utf-8"), path
    assert SQL_DIR == ROOT / "sql"
