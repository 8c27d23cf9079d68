"""The `landed launch` and `landed keys` commands on a temporary database: apply spec files and
folders idempotently, report bad files without stopping, list, show and amend."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from app import launches
from app.cli import main
from app.main import create_app
from app.settings import Settings
from tests.helpers.cli import SAMPLES, Capsys, commands_on, load, run

pytestmark = pytest.mark.backends

KEYS = ["ai-summaries", "smart-export", "team-workspaces"]


@pytest.fixture
def db(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with commands_on(settings, monkeypatch) as path:
        yield path


def test_apply_folder_creates_then_is_unchanged(db: str, capsys: Capsys) -> None:
    code, out, err = run(capsys, "launch", "apply", "--db", db, "--by", "sam", str(SAMPLES))
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"{SAMPLES / k}.yaml: {k} created" for k in KEYS]

    code, out, _ = run(capsys, "launch", "apply", "--db", db, str(SAMPLES))
    assert code == 0
    assert out.splitlines() == [f"{SAMPLES / k}.yaml: {k} unchanged" for k in KEYS]
    for key in KEYS:
        state = load(db, key)
        assert [(v.version, v.recorded_by) for v in state.versions] == [(1, "sam")]
        assert all(r.set_after_launch for r in state.kpi_records)


def test_apply_changed_file_updates(db: str, tmp_path: Path, capsys: Capsys) -> None:
    spec = tmp_path / "export.yaml"
    text = (SAMPLES / "smart-export.yaml").read_text(encoding="utf-8")
    spec.write_text(text, encoding="utf-8")
    run(capsys, "launch", "apply", "--db", db, str(spec))
    spec.write_text(text.replace("One-click export", "Export"), encoding="utf-8")
    code, out, _ = run(capsys, "launch", "apply", "--db", db, "--by", "kim", str(spec))
    assert (code, out) == (0, f"{spec}: smart-export updated\n")
    state = load(db, "smart-export")
    assert state.spec.description == "Export of any report to CSV, Excel or Google Sheets"
    assert launches.history(state)[-1].summary == "changed description"
    assert launches.history(state)[-1].by == "kim"


def test_apply_reports_bad_files_and_applies_the_rest(db: str, tmp_path: Path, capsys: Capsys) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    shutil.copy(SAMPLES / "smart-export.yaml", folder / "b-export.yaml")
    (folder / "a-broken.yaml").write_text("key: [unclosed\nname: x\n", encoding="utf-8")
    bad_metric = (SAMPLES / "ai-summaries.yaml").read_text(encoding="utf-8").replace("adoption_rate", "adopt")
    (folder / "c-invalid.yml").write_text(bad_metric, encoding="utf-8")
    (folder / "notes.txt").write_text("not a spec", encoding="utf-8")

    code, out, err = run(capsys, "launch", "apply", "--db", db, "--by", "sam", str(folder))
    assert code == 1
    assert out == f"{folder / 'b-export.yaml'}: smart-export created\n"
    broken, invalid = (line for line in err.splitlines() if line.startswith(str(folder)))
    assert broken.startswith(f"{folder / 'a-broken.yaml'}: not valid YAML: ")
    assert "line 1, column 6" in err
    assert invalid.startswith(f"{folder / 'c-invalid.yml'}: the launch spec is not valid (kpis.1.metric: ")
    assert "unknown metric 'adopt'; valid metrics: exposure_rate" in invalid
    assert load(db, "smart-export").latest.version == 1


def test_apply_reports_a_file_that_is_not_utf8(db: str, tmp_path: Path, capsys: Capsys) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "a-latin1.yaml").write_bytes("name: café\n".encode("latin-1"))
    shutil.copy(SAMPLES / "smart-export.yaml", folder / "b-export.yaml")
    code, out, err = run(capsys, "launch", "apply", "--db", db, "--by", "sam", str(folder))
    assert code == 1
    assert out == f"{folder / 'b-export.yaml'}: smart-export created\n"
    assert err.startswith(f"{folder / 'a-latin1.yaml'}: ")


def test_apply_missing_path_fails(db: str, tmp_path: Path, capsys: Capsys) -> None:
    code, out, err = run(capsys, "launch", "apply", "--db", db, str(tmp_path / "nope.yaml"))
    assert (code, out) == (1, "")
    assert err == f"landed: no such file or folder: {tmp_path / 'nope.yaml'}\n"


def test_list_and_show(db: str, capsys: Capsys) -> None:
    run(capsys, "launch", "apply", "--db", db, "--by", "sam", str(SAMPLES))
    code, out, _ = run(capsys, "launch", "list", "--db", db)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["key", "launched", "(UTC)", "days", "live", "kpis", "owner"]
    assert [row.split()[0] for row in rows] == KEYS
    assert rows[1].split()[1:2] == ["2026-09-14T09:00"]
    assert [row.split()[3:6] for row in rows] == [
        ["yes", "3", "sam@example.com"],
        ["yes", "3", "po@example.com"],
        ["yes", "4", "maria@example.com"],
    ]

    code, out, _ = run(capsys, "launch", "show", "--db", db, "team-workspaces")
    assert code == 0
    spec_text, history_text = out.split("# history\n")
    assert spec_text.startswith("key: team-workspaces\nname: Team workspaces\n")
    assert "launched_at: '2026-09-28T09:00:00Z'" in spec_text
    assert "metric: conversion_rate" in spec_text
    assert history_text.count("\n") == 1
    assert history_text.endswith("Z sam: created after launch\n")

    code, _, err = run(capsys, "launch", "show", "--db", db, "nope")
    assert (code, err) == (
        1,
        "landed: no launch with key 'nope' (see GET /api/launches for the list)\n",
    )


def test_amend_is_recorded_and_apply_stays_idempotent(db: str, capsys: Capsys) -> None:
    run(capsys, "launch", "apply", "--db", db, "--by", "sam", str(SAMPLES))
    amend = ["launch", "amend", "--db", db, "ai-summaries", "--kpi", "adoption", "--target", "0.1"]
    code, out, err = run(capsys, *amend, "--reason", "free plan converts slower", "--by", "maria")
    assert (code, out, err) == (0, "amended ai-summaries: KPI adoption\n", "")

    state = load(db, "ai-summaries")
    adoption = next(r for r in state.kpi_records if r.id == "adoption")
    assert (adoption.first_set.target, adoption.current.target) == (0.2, 0.1)
    assert adoption.amended is True
    assert adoption.current.by_day == 14
    [amendment] = state.amendments
    assert (amendment.amended_by, amendment.reason, amendment.old_value, amendment.new_value) == (
        "maria", "free plan converts slower", 0.2, 0.1,
    )  # fmt: skip

    _, out, _ = run(capsys, "launch", "show", "--db", db, "ai-summaries")
    assert "target: 0.1\n" in out
    assert out.rstrip().endswith("Z maria: adoption: target 20.0% -> 10.0% (free plan converts slower)")

    code, out, _ = run(capsys, "launch", "apply", "--db", db, str(SAMPLES / "ai-summaries.yaml"))
    assert (code, out) == (0, f"{SAMPLES / 'ai-summaries.yaml'}: ai-summaries unchanged\n")
    assert len(load(db, "ai-summaries").versions) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--target", "0.1", "--reason", " "],
            "the amendment is not valid (reason: a reason is required",
        ),
        (
            ["--target", "0.2", "--reason", "r"],
            "nothing to amend (every value given equals the current one)",
        ),
        (
            ["--target", "20", "--reason", "r"],
            "KPI 'adoption' is not valid (spec: adoption_rate is a rate",
        ),
        (
            ["--metric", "stickiness", "--reason", "r"],
            "KPI 'adoption': metric and comparator cannot",
        ),
    ],
)
def test_amend_refusals(db: str, capsys: Capsys, args: list[str], message: str) -> None:
    run(capsys, "launch", "apply", "--db", db, "--by", "sam", str(SAMPLES))
    code, out, err = run(capsys, "launch", "amend", "--db", db, "smart-export", "--kpi", "adoption", *args)
    assert (code, out) == (1, "")
    assert err.startswith(f"landed: {message}")
    assert load(db, "smart-export").amendments == []


def test_amend_before_launch_is_refused(db: str, tmp_path: Path, capsys: Capsys) -> None:
    spec = tmp_path / "later.yaml"
    text = (SAMPLES / "smart-export.yaml").read_text(encoding="utf-8")
    spec.write_text(text.replace("launched_at: 2026-09-14", "launched_at: 2099-09-14"), encoding="utf-8")
    run(capsys, "launch", "apply", "--db", db, str(spec))
    amend = ["launch", "amend", "--db", db, "smart-export", "--kpi", "adoption", "--target", "0.1"]
    code, _, err = run(capsys, *amend, "--reason", "r")
    assert code == 1
    assert err.startswith("landed: launch 'smart-export' is not live yet (launches at 2099-09-14T09:00:00Z)")


def test_amend_requires_a_reason_flag(db: str, capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["launch", "amend", "--db", db, "smart-export", "--kpi", "adoption", "--target", "0.1"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --reason" in capsys.readouterr().err


def test_admin_key_from_cli_manages_launches(db: str, capsys: Capsys) -> None:
    secrets: dict[str, str] = {}
    for scope in ("admin", "write"):
        code, out, _ = run(capsys, "keys", "create", "--db", db, "--name", f"{scope}-key", "--scope", scope)
        assert code == 0 and out.startswith(f"created {scope} key '{scope}-key'")
        secrets[scope] = out.splitlines()[1]
    _, out, _ = run(capsys, "keys", "list", "--db", db)
    assert [line.split()[1:3] for line in out.splitlines()[1:]] == [
        ["admin-key", "admin"],
        ["write-key", "write"],
    ]

    text = (SAMPLES / "smart-export.yaml").read_text(encoding="utf-8")
    body = launches.parse_spec(yaml.safe_load(text)).model_dump(mode="json")
    with TestClient(create_app(Settings(db_path=db))) as client:
        refused = client.put("/api/launches/smart-export", json=body, auth=(secrets["write"], ""))
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        created = client.put("/api/launches/smart-export", json=body, auth=(secrets["admin"], ""))
        assert (created.status_code, created.json()["result"]) == (201, "created")
    assert load(db, "smart-export").versions[0].recorded_by == "admin-key"
