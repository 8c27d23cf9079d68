"""Shared fixtures: a fresh database per test, the app through TestClient, a real uvicorn, a
headless Chromium. What tests share besides fixtures is in tests/helpers/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from app.local_server import serving
from app.main import create_app
from app.settings import Settings
from app.storage import Storage
from app.storage.clickhouse_database import ClickHouseDatabase
from tests.helpers.backends import chdb_url
from tests.helpers.live import Keys, LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# Pages recompute on view whenever new events arrived (no background refresh), so a test sees
# what it just sent; tests of the background refresh set refresh_seconds themselves. Set
# before any Settings is read; subprocess servers inherit it.
os.environ.setdefault("LANDED_REFRESH_SECONDS", "0")

CHROMIUM = "/usr/bin/chromium"
# As root on a closed network: no sandbox, and no background connections to refuse.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


BACKENDS = ("duckdb", "clickhouse")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `backends` (storage, ingest and report tests) run once per storage backend:
    DuckDB, and ClickHouse on chDB's in-process engine; `duckdb_only` opts one test out (it
    inspects what only DuckDB has, such as its write-ahead log)."""
    if (
        "backend" in metafunc.fixturenames
        and metafunc.definition.get_closest_marker("backends")
        and not metafunc.definition.get_closest_marker("duckdb_only")
    ):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend of this test: 'duckdb' unless the test is marked `backends`."""
    return str(getattr(request, "param", "duckdb"))


@pytest.fixture(scope="session")
def chdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chDB's one engine path for this test process (chDB opens one per process); each test
    gets a database of its own inside it."""
    try:
        import chdb  # noqa: F401
        import clickhouse_connect  # noqa: F401
    except ImportError:
        reason = "ClickHouse tests need the clickhouse extra: pip install -e '.[dev]'"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    if backend == "clickhouse":
        root: Path = request.getfixturevalue("chdb_root")
        return Settings(
            db_path=str(tmp_path / "landed.duckdb"), storage="clickhouse", clickhouse_url=chdb_url(root)
        )
    return Settings(db_path=str(tmp_path / "landed.duckdb"))


@pytest.fixture
def storage(settings: Settings) -> Iterator[Storage]:
    opened = Storage.open(settings)
    yield opened
    opened.close()
    if isinstance(opened.database, ClickHouseDatabase):
        opened.database.drop_database()


@pytest.fixture
def keys(storage: Storage) -> Keys:
    return Keys(
        write=storage.create_key("web", "write")[1],
        read=storage.create_key("dashboards", "read")[1],
        admin=storage.create_key("po", "admin")[1],
    )


@pytest.fixture
def client(settings: Settings, storage: Storage) -> Iterator[TestClient]:
    with TestClient(create_app(settings, storage)) as test_client:
        yield test_client


@pytest.fixture
def live_server(settings: Settings, storage: Storage) -> Iterator[LiveServer]:
    """The real service under uvicorn on 127.0.0.1, sharing the test's storage."""
    with serving(create_app(settings, storage)) as url:
        yield LiveServer(url, storage)


def chromium_path() -> str:
    """Debian's chromium; skips without it, but fails under CI (a missing dependency there is
    a broken environment, not a reason to pass)."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        reason = "Debian's chromium is not installed: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium: Debian's, never a Playwright download."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
