"""Meta-tests that keep the architecture honest: imports point one way, only the DuckDB store
imports duckdb and the rest of the app reaches storage through the package's interfaces, no
page builds HTML in Python strings, tests share code through tests/helpers only, every SQL file
is used and parses, and nothing in the project reads outside it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
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


def _imports(path: Path) -> set[str]:
    """Every module `path` imports by absolute name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _own_imports(path: Path) -> set[str]:
    return {name for name in _imports(path) if name.split(".")[0] in PACKAGES}


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


def _modules(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]


def _outside_storage(path: Path) -> bool:
    return (ROOT / "app" / "storage") not in path.parents


def test_only_the_duckdb_store_imports_duckdb() -> None:
    offending = [
        str(path.relative_to(ROOT))
        for path in _modules("app", "pipelines", "dashboards")
        if _outside_storage(path) and "duckdb" in {name.split(".")[0] for name in _imports(path)}
    ]
    assert offending == []


def test_each_engine_is_imported_by_its_own_storage_modules_only() -> None:
    """duckdb only in app/storage/duckdb_*, ClickHouse's client and chDB only in
    app/storage/clickhouse_*: a backend is a set of modules, not a spread of conditionals."""
    owners = {"duckdb": "duckdb_", "clickhouse_connect": "clickhouse_", "chdb": "clickhouse_"}
    offending = [
        f"{path.relative_to(ROOT)} imports {top}"
        for path in _modules("app/storage")
        for top in {name.split(".")[0] for name in _imports(path)} & owners.keys()
        if not path.name.startswith(owners[top])
    ]
    assert offending == []


def _storage_exports() -> set[str]:
    """The names app/storage/__init__.py lists in `__all__`."""
    tree = ast.parse((ROOT / "app" / "storage" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    raise AssertionError("app/storage/__init__.py has no __all__")


def _imported(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, names taken from it) for each import of `path`; no names for `import module`."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]


def test_the_app_reaches_storage_through_its_interfaces_only() -> None:
    exported = _storage_exports()
    offending: set[str] = set()
    for path in filter(_outside_storage, _modules("app")):
        where = path.relative_to(ROOT)
        for module, names in _imported(path):
            if module.startswith("app.storage."):
                offending.add(f"{where} imports {module}")
            elif module == "app.storage":
                offending |= {f"{where} imports app.storage.{name}" for name in names if name not in exported}
        offending |= {
            f"{where} uses app.storage.{node.attr}"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Attribute)
            and ast.unparse(node.value) == "app.storage"
            and node.attr not in exported
        }
    assert offending == set()


HTML_TAG = re.compile(r"<[a-zA-Z/!]")


def _html_text(node: ast.AST) -> bool:
    """A string literal holding an HTML tag."""
    text = node.value if isinstance(node, ast.Constant) else None
    return isinstance(text, str) and HTML_TAG.search(text) is not None


def _builds_html(node: ast.AST) -> bool:
    """An f-string, a `+` or `%` of strings, or a `.format` whose literal text holds an HTML tag."""
    if isinstance(node, ast.JoinedStr):
        return any(_html_text(part) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return _html_text(node.left) or _html_text(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _html_text(node.func.value)
    return False


def test_no_page_builds_html_in_python_strings() -> None:
    """Pages are Jinja2 templates (dashboards/templates/), which escape every value they write."""
    offending = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _modules("dashboards")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.expr) and _builds_html(node)
    ]
    assert offending == []


def test_tests_share_code_through_helpers_only() -> None:
    """Test modules import shared code from tests.helpers, never from each other or conftest,
    and from bench only the public names of the benchmark they test; helpers import no bench."""
    helpers = ROOT / "tests" / "helpers"
    offending: set[str] = set()
    for path in _modules("tests"):
        where = path.relative_to(ROOT)
        for module, names in _imported(path):
            from_bench = module.split(".")[0] == "bench"
            from_tests = module.startswith(("tests.test_", "tests.conftest"))
            if from_tests or (from_bench and helpers in path.parents):
                offending.add(f"{where} imports {module}")
            elif from_bench:
                offending |= {f"{where} imports {module}.{name}" for name in names if name.startswith("_")}
    assert offending == set()


def _queries_named_in(code: str, engine: str) -> set[str]:
    """Query names the code runs: query("name"[, "engine"]), the stores' _arrow("name") /
    database.arrow("name") / rows / command helpers, and per-table backup queries."""
    quoted = r'"([a-z0-9_]+)"'
    if engine == "duckdb":
        used = set(re.findall(rf"query\({quoted}\)", code)) | set(re.findall(rf"_arrow\(\s*{quoted}", code))
        prefixes = re.findall(r'query\(f"([a-z_]+)\{table\}"\)', code)
    else:
        used = set(re.findall(rf'query\({quoted}, "clickhouse"\)', code)) | set(
            re.findall(rf"(?<![a-z_])(?:arrow|rows|command|_arrow|_rows|_command)\(\s*{quoted}", code)
        )
        prefixes = re.findall(r'f"([a-z_]+)\{table\}"', code)
    return used | {f"{prefix}{table}" for prefix in prefixes for table in TABLES}


def test_every_query_is_used_and_parses() -> None:
    storage = ROOT / "app" / "storage"
    duck_code = "\n".join(
        p.read_text(encoding="utf-8")
        for p in (ROOT / "app").rglob("*.py")
        if not p.name.startswith("clickhouse_") or p.parent != storage
    )
    used = _queries_named_in(duck_code, "duckdb")
    names = set(query_names("duckdb"))
    assert names - used == set(), "SQL files nothing runs"
    assert used - names == set(), "queries named in code with no file"
    conn = duckdb.connect()
    for name in names:
        assert len(conn.extract_statements(query(name))) == 1, f"{name}.sql must hold one statement"


def test_every_clickhouse_query_is_used_parses_and_matches_its_duckdb_namesake() -> None:
    """sql/clickhouse/ is hand-written ClickHouse SQL; SQLGlot parses each file as ClickHouse's
    dialect (one statement), and a file with a DuckDB namesake takes the same parameters."""
    import sqlglot

    modules = (ROOT / "app" / "storage").glob("clickhouse_*.py")
    code = "\n".join(p.read_text(encoding="utf-8") for p in modules)
    used = _queries_named_in(code, "clickhouse")
    names = set(query_names("clickhouse"))
    assert names - used == set(), "ClickHouse SQL files nothing runs"
    assert used - names == set(), "ClickHouse queries named in code with no file"
    duckdb_names = set(query_names("duckdb"))
    for name in sorted(names):
        text = query(name, "clickhouse")
        assert len(sqlglot.parse(text, read="clickhouse")) == 1, f"{name}.sql must hold one statement"
        if name in duckdb_names and not name.startswith(("export_", "restore_")):
            clickhouse_params = set(re.findall(r"\{([a-z_0-9]+):", text))
            duckdb_text = "\n".join(line.split("--")[0] for line in query(name).splitlines())
            duckdb_params = set(re.findall(r"\$([a-z_0-9]+)", duckdb_text))
            assert clickhouse_params == duckdb_params, f"{name}: parameters differ between engines"
    for name, text in schema_statements("clickhouse"):
        assert re.match(r"^\d{3}_(create|alter)_[a-z_]+$", name)
        assert len(sqlglot.parse(text, read="clickhouse")) == 1, f"schema {name} must hold one statement"
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
    assert {p.name for p in SQL_DIR.iterdir()} == {"duckdb", "clickhouse"}


def test_the_demo_installs_only_what_running_landed_needs() -> None:
    """`make demo` installs the project without its extras: no test tools, no chDB engine."""
    import subprocess

    planned = subprocess.run(
        ["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    installs = [
        line for line in planned.splitlines() if "pip install" in line and "--upgrade pip" not in line
    ]
    assert installs, planned
    assert all(line.rstrip().endswith("-e .") for line in installs), installs
