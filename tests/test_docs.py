"""The docs tell the truth: every command and route they name exists, and the README's curl
example works against a running service, replying what the README shows."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from pathlib import Path

import orjson
import pytest

from app.cli import build_parser
from app.main import create_app
from app.settings import Settings
from tests.helpers.live import Keys, LiveServer

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ROUTE = re.compile(
    r"(?<![\w.])(/(?:v1|api|batch|capture|e|i/v0/e|review|login|logout|launches|static|docs|openapi\.json"
    r"|healthz|readyz|metrics)\b[^\s`'\")|,]*)"
)


def _text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in DOCS)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _code() -> str:
    """Only what the docs show as code: fenced blocks and inline code spans."""
    text = _text()
    return "\n".join(re.findall(r"```.*?```", text, re.S) + re.findall(r"`[^`\n]+`", text))


def route_paths(routes: list[object]) -> list[str]:
    """Every route path of the app, through FastAPI's included-router wrappers."""
    found: list[str] = []
    for route in routes:
        if hasattr(route, "path"):
            found.append(route.path)
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found.extend(route_paths(list(inner.routes)))
    return found


def test_every_documented_command_exists() -> None:
    commands = _subcommands(build_parser())
    named = set(re.findall(r"\blanded ([a-z]+)(?: ([a-z]+))?", _code()))
    assert named, "the docs name no command"
    missing = []
    for command, action in named:
        if command not in commands:
            missing.append(command)
            continue
        actions = _subcommands(commands[command])
        if actions and action and action not in actions:
            missing.append(f"{command} {action}")
    assert missing == []


def test_every_documented_route_exists(tmp_path: Path) -> None:
    app = create_app(Settings(db_path=str(tmp_path / "x.duckdb")))
    patterns = [
        re.compile(
            "^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(p).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        )
        for p in route_paths(list(app.routes))
    ]
    documented = {m.split("?")[0].rstrip(".:") for m in ROUTE.findall(_text())}
    assert len(documented) > 20
    unknown = sorted(
        path
        for path in documented
        if not any(p.match(path.replace("{key}", "smart-export").replace("*", "batch")) for p in patterns)
    )
    assert unknown == []


def test_readme_curl_example_works(live_server: LiveServer, keys: Keys) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "/v1/track" in b and "curl" in b)
    command, _, shown = block.partition("\n# ")
    command = command.replace("http://127.0.0.1:8000", live_server.url)
    result = subprocess.run(
        ["bash", "-c", command],
        env={**os.environ, "LANDED_WRITE_KEY": keys.write},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert orjson.loads(result.stdout) == orjson.loads(shown)
    stored = (
        live_server.storage.cursor()
        .execute("select user_id, event, properties::varchar from events")
        .fetchall()
    )
    assert stored == [("u-42", "Feature Used", '{"feature":"smart-export"}')]


@pytest.mark.parametrize("doc", [p.name for p in DOCS])
def test_docs_link_to_files_that_exist(doc: str) -> None:
    path = next(p for p in DOCS if p.name == doc)
    for target in re.findall(r"\]\(([^)#:]+)\)", path.read_text(encoding="utf-8")):
        assert (path.parent / target).exists(), f"{doc} links to missing {target}"
