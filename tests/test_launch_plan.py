"""Launch specs as code: `landed launch plan` (what apply would change, exit 0/2/1 for CI),
`apply` and `plan` walking sub-folders, `landed launch schema`, amendments carried in spec files
(a changed KPI of a live launch with its reason), `launch check` failing on warnings, and
`PUT /api/launches/{key}` taking YAML and a dry run. All on the command line's local mode (no
service); tests/test_cli_client.py runs the same commands through a running service."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from app import launches
from app.ingest import parse_events
from app.storage import Storage
from tests.helpers.cli import SAMPLES, Capsys, load, run
from tests.helpers.live import Keys

KEYS = ["ai-summaries", "smart-export", "team-workspaces"]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "plan.duckdb")


def sample(name: str = "smart-export") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))
    return data


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def with_target(data: dict[str, Any], kpi_id: str, target: float) -> dict[str, Any]:
    return {**data, "kpis": [{**k, "target": target} if k["id"] == kpi_id else k for k in data["kpis"]]}


# -- plan -----------------------------------------------------------------------------------


def test_plan_says_what_apply_would_do_and_changes_nothing(db: str, capsys: Capsys) -> None:
    code, out, err = run(capsys, "launch", "plan", "--db", db, str(SAMPLES))
    assert (code, err) == (2, "")
    assert out.splitlines() == [
        *(f"{SAMPLES / k}.yaml: {k} would be created" for k in KEYS),
        "Plan: 3 to create, 0 to update, 0 to amend, 0 unchanged.",
    ]
    code, out, _ = run(capsys, "launch", "list", "--db", db)
    assert out.splitlines()[1:] == []

    assert run(capsys, "launch", "apply", "--db", db, str(SAMPLES))[0] == 0
    code, out, _ = run(capsys, "launch", "plan", "--db", db, str(SAMPLES))
    assert code == 0
    assert out.splitlines()[-1] == "Plan: 0 to create, 0 to update, 0 to amend, 3 unchanged."


def test_plan_shows_a_short_diff_of_an_update(db: str, tmp_path: Path, capsys: Capsys) -> None:
    spec = write(tmp_path / "later.yaml", {**sample(), "launched_at": "2099-01-05T09:00:00Z"})
    run(capsys, "launch", "apply", "--db", db, str(spec))
    changed = with_target(
        {**sample(), "launched_at": "2099-01-05T09:00:00Z", "description": "Export"}, "reach", 0.4
    )
    changed["signals"]["used"][0]["where"] = {"feature": "export-v2"}
    changed["kpis"].append({"id": "speed", "metric": "median_days_to_adopt", "comparator": "<=", "target": 7})
    write(spec, changed)

    code, out, _ = run(capsys, "launch", "plan", "--db", db, str(spec))
    assert code == 2
    assert out.splitlines() == [
        f"{spec}: smart-export would be updated",
        '    ~ description: "One-click export of any report to CSV, Excel or Google S... -> "Export"',
        '    ~ signals.used.0.where.feature: "smart-export" -> "export-v2"',
        "    ~ kpi reach: exposure_rate >= 0.5, min_sample 30 -> exposure_rate >= 0.4, min_sample 30",
        "    + kpi speed: median_days_to_adopt <= 7, min_sample 30",
        "Plan: 0 to create, 1 to update, 0 to amend, 0 unchanged.",
    ]
    assert load(db, "smart-export").latest.version == 1
    code, out, _ = run(capsys, "launch", "apply", "--db", db, str(spec))
    assert (code, out) == (0, f"{spec}: smart-export updated\n")


def test_plan_fails_on_an_invalid_file(db: str, tmp_path: Path, capsys: Capsys) -> None:
    folder = tmp_path / "specs"
    write(folder / "a.yaml", sample())
    bad = sample("ai-summaries")
    bad["kpis"][1]["metric"] = "adopt"
    write(folder / "b.yaml", bad)
    code, out, err = run(capsys, "launch", "plan", "--db", db, str(folder))
    assert code == 1
    assert out.splitlines() == [
        f"{folder / 'a.yaml'}: smart-export would be created",
        "Plan: 1 to create, 0 to update, 0 to amend, 0 unchanged, 1 with errors.",
    ]
    assert err.startswith(f"{folder / 'b.yaml'}: the launch spec is not valid (kpis.1.metric: unknown metric")


def test_apply_and_plan_walk_sub_folders(db: str, tmp_path: Path, capsys: Capsys) -> None:
    root = tmp_path / "launches"
    for folder in ("growth", "ai/deeper", ".git"):
        (root / folder).mkdir(parents=True)
    shutil.copy(SAMPLES / "smart-export.yaml", root / "growth" / "export.yaml")
    shutil.copy(SAMPLES / "ai-summaries.yaml", root / "ai" / "a.yml")
    shutil.copy(
        SAMPLES / "team-workspaces.yaml", root / "ai" / "deeper" / "w.json"
    )  # YAML is JSON's superset
    (root / ".git" / "config.yaml").write_text("not: a spec\n", encoding="utf-8")
    (root / "README.md").write_text("# specs\n", encoding="utf-8")

    code, out, err = run(capsys, "launch", "plan", "--db", db, str(root))
    assert (code, err) == (2, "")
    assert out.splitlines()[:-1] == [
        f"{root / 'ai' / 'a.yml'}: ai-summaries would be created",
        f"{root / 'ai' / 'deeper' / 'w.json'}: team-workspaces would be created",
        f"{root / 'growth' / 'export.yaml'}: smart-export would be created",
    ]
    code, out, err = run(capsys, "launch", "apply", "--db", db, str(root))
    assert (code, err) == (0, "")
    assert [line.rsplit(" ", 1)[1] for line in out.splitlines()] == ["created"] * 3


# -- schema ---------------------------------------------------------------------------------


def test_schema_describes_spec_files(capsys: Capsys) -> None:
    code, out, _ = run(capsys, "launch", "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Landed launch spec"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"key", "name", "owner", "launched_at", "signals"}
    assert {"kpis", "signals", "audience", "amendment"} <= set(schema["properties"])
    # Every sample file uses only what the schema describes.
    for key in KEYS:
        assert set(sample(key)) <= set(schema["properties"])
    note = schema["$defs"]["AmendmentNote"]
    assert note["required"] == ["reason"]


# -- amendments in spec files ---------------------------------------------------------------


@pytest.fixture
def live(db: str, tmp_path: Path, capsys: Capsys) -> Path:
    """smart-export applied (it is live: launched in 2026-09) from a file the test edits."""
    spec = write(tmp_path / "export.yaml", sample())
    assert run(capsys, "launch", "apply", "--db", db, "--by", "sam", str(spec))[0] == 0
    return spec


def test_changed_target_without_a_reason_is_refused_naming_what_to_do(
    db: str, live: Path, capsys: Capsys
) -> None:
    write(live, with_target(sample(), "adoption", 0.1))
    for command in ("plan", "apply"):
        code, _, err = run(capsys, "launch", command, "--db", db, str(live))
        assert code == 1
        assert err.startswith(
            f"{live}: launch 'smart-export' went live at 2026-09-14T09:00:00Z; kpis can no longer change ("
        )
        assert "give the reason in the spec file (amendment: {reason: ...})" in err
    assert load(db, "smart-export").amendments == []


def test_changed_target_with_a_reason_is_recorded_as_an_amendment(
    db: str, live: Path, capsys: Capsys
) -> None:
    amended = {
        **with_target(sample(), "adoption", 0.1),
        "amendment": {"reason": "Export is niche; 20% was set before we saw segment sizes"},
    }
    write(live, amended)
    code, out, _ = run(capsys, "launch", "plan", "--db", db, str(live))
    assert code == 2
    assert out.splitlines()[:3] == [
        f"{live}: smart-export would be amended",
        "    ~ kpi adoption: adoption_rate >= 0.2, min_sample 30 -> adoption_rate >= 0.1, min_sample 30",
        "    reason: Export is niche; 20% was set before we saw segment sizes",
    ]
    assert load(db, "smart-export").amendments == []

    code, out, _ = run(capsys, "launch", "apply", "--db", db, "--by", "kim", str(live))
    assert (code, out) == (0, f"{live}: smart-export amended\n")
    state = load(db, "smart-export")
    assert len(state.versions) == 1  # the locked part stays as recorded; the change is an amendment
    [amendment] = state.amendments
    assert (amendment.kpi_id, amendment.field, amendment.old_value, amendment.new_value) == (
        "adoption", "target", 0.2, 0.1,
    )  # fmt: skip
    assert (amendment.amended_by, amendment.reason) == ("kim", amended["amendment"]["reason"])
    adoption = next(r for r in state.kpi_records if r.id == "adoption")
    assert (adoption.first_set.target, adoption.current.target, adoption.amended) == (0.2, 0.1, True)

    # Applying the same file again changes nothing, whatever else runs meanwhile.
    for command in ("apply", "plan"):
        code, out, _ = run(capsys, "launch", command, "--db", db, str(live))
        assert code == 0 and f"{live}: smart-export unchanged" in out
    assert len(load(db, "smart-export").amendments) == 1


def test_amendment_reasons_are_not_reused(db: str, live: Path, capsys: Capsys) -> None:
    note = {"reason": "segment sizes", "author": "maria"}
    write(live, {**with_target(sample(), "adoption", 0.1), "amendment": note})
    assert run(capsys, "launch", "apply", "--db", db, str(live))[0] == 0
    write(live, {**with_target(sample(), "adoption", 0.12), "amendment": note})
    code, _, err = run(capsys, "launch", "apply", "--db", db, str(live))
    assert code == 1
    assert "the amendment reason was already given for the amendment of" in err
    write(live, {**with_target(sample(), "adoption", 0.12), "amendment": {"reason": "a second look"}})
    assert run(capsys, "launch", "apply", "--db", db, str(live))[0] == 0
    state = load(db, "smart-export")
    assert [(a.old_value, a.new_value, a.reason) for a in state.amendments] == [
        (0.2, 0.1, "segment sizes"),
        (0.1, 0.12, "a second look"),
    ]
    assert state.amendments[0].amended_by == "maria"


def test_file_amendment_adds_a_kpi_and_changes_descriptions_at_once(
    db: str, live: Path, capsys: Capsys
) -> None:
    data = sample()
    data["name"] = "Smart export 2"
    data["kpis"].append({"id": "speed", "metric": "median_days_to_adopt", "comparator": "<=", "target": 7})
    write(live, {**data, "amendment": {"reason": "we also care how fast"}})
    code, out, _ = run(capsys, "launch", "plan", "--db", db, str(live))
    assert code == 2
    assert out.splitlines()[1:3] == [
        '    ~ name: "Smart export" -> "Smart export 2"',
        "    + kpi speed: median_days_to_adopt <= 7, min_sample 30",
    ]
    assert run(capsys, "launch", "apply", "--db", db, str(live))[0] == 0
    state = load(db, "smart-export")
    assert [v.spec.name for v in state.versions] == ["Smart export", "Smart export 2"]
    speed = next(r for r in state.kpi_records if r.id == "speed")
    assert speed.set_after_launch is True
    assert state.amendments[0].field == "kpi"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: {**d, "kpis": d["kpis"][:2]}, "KPI repeat cannot be removed"),
        (
            lambda d: {**d, "kpis": [{**d["kpis"][0], "comparator": "<="}, *d["kpis"][1:]]},
            "KPI 'reach': metric and comparator cannot be amended",
        ),
        (lambda d: {**d, "window_days": 14}, "window_days, kpis can no longer change"),
    ],
)
def test_file_amendments_that_cannot_be(
    db: str, live: Path, capsys: Capsys, change: Any, message: str
) -> None:
    data = with_target(sample(), "adoption", 0.1)
    write(live, {**change(data), "amendment": {"reason": "r"}})
    code, _, err = run(capsys, "launch", "apply", "--db", db, str(live))
    assert code == 1
    assert message in err
    assert load(db, "smart-export").amendments == []


def test_amendment_before_launch_is_an_ordinary_update(db: str, tmp_path: Path, capsys: Capsys) -> None:
    data = {**sample(), "launched_at": "2099-01-05T09:00:00Z"}
    spec = write(tmp_path / "soon.yaml", data)
    run(capsys, "launch", "apply", "--db", db, str(spec))
    write(spec, {**with_target(data, "adoption", 0.1), "amendment": {"reason": "not needed yet"}})
    code, out, _ = run(capsys, "launch", "apply", "--db", db, str(spec))
    assert (code, out) == (0, f"{spec}: smart-export updated\n")
    state = load(db, "smart-export")
    assert (len(state.versions), state.amendments) == (2, [])


# -- check ----------------------------------------------------------------------------------

AS_OF = datetime(2026, 10, 20)


def test_check_passes_when_every_matcher_matches(db: str, capsys: Capsys) -> None:
    storage = Storage(db)
    try:
        events = [
            {
                "type": "track",
                "event": name,
                "userId": f"u{i}",
                "properties": {"feature": "export"},
                "messageId": f"{name}{i}",
                "timestamp": (AS_OF - timedelta(days=1 + i % 5)).isoformat() + "Z",
            }
            for i in range(10)
            for name in ("Export Seen", "Export Used")
        ]
        parsed = parse_events(events, source="s", received_at=AS_OF, max_event_bytes=1 << 20, body_bytes=1000)
        storage.write_events("s", parsed, AS_OF).result()
        spec = {
            "key": "export",
            "name": "Export",
            "owner": "po@example.com",
            "launched_at": "2026-10-14T09:00:00Z",
            "signals": {
                "exposed": [{"event": "Export Seen", "where": {"feature": "export"}}],
                "used": [{"event": "Export Used"}],
            },
        }
        launches.put_launch(storage, launches.parse_spec(spec), by="po", now=AS_OF)
    finally:
        storage.close()
    code, out, _ = run(capsys, "launch", "check", "export", "--db", db, "--as-of", AS_OF.isoformat())
    assert code == 0
    assert out.endswith("\nNo warnings.\n")


# -- PUT takes YAML, and a dry run ----------------------------------------------------------

YAML = "application/yaml"


def put_yaml(client: TestClient, keys: Keys, text: str, media: str = YAML, **params: str) -> Any:
    return client.put(
        "/api/launches/smart-export",
        content=text.encode(),
        params=params,
        headers={"Authorization": f"Bearer {keys.admin}", "Content-Type": media},
    )


def test_put_takes_the_yaml_of_a_spec_file(client: TestClient, keys: Keys, storage: Storage) -> None:
    text = (SAMPLES / "smart-export.yaml").read_text(encoding="utf-8")
    dry = put_yaml(client, keys, text, dry_run="true")
    assert (dry.status_code, dry.json()["result"], dry.json()["changes"]) == (200, "created", [])
    assert storage.launch_keys() == []

    created = put_yaml(client, keys, text, author="maria")
    assert (created.status_code, created.json()["result"]) == (201, "created")
    assert created.json()["spec"]["launched_at"] == "2026-09-14T09:00:00Z"
    assert launches.load_launch(storage, "smart-export").versions[0].recorded_by == "maria"
    for media in ("text/yaml", "application/x-yaml; charset=utf-8"):
        again = put_yaml(client, keys, text, media)
        assert (again.status_code, again.json()["result"]) == (200, "unchanged")

    amended = text.replace("target: 0.2}", "target: 0.1}") + "amendment: {reason: niche}\n"
    dry = put_yaml(client, keys, amended, dry_run="true")
    assert (dry.status_code, dry.json()["result"]) == (200, "amended")
    assert dry.json()["changes"][0].startswith("~ kpi adoption: adoption_rate >= 0.2")
    assert launches.load_launch(storage, "smart-export").amendments == []
    done = put_yaml(client, keys, amended)
    assert (done.status_code, done.json()["result"]) == (200, "amended")
    adoption = next(k for k in done.json()["kpis"] if k["id"] == "adoption")
    assert (adoption["first_set"]["target"], adoption["current"]["target"]) == (0.2, 0.1)


@pytest.mark.parametrize(
    ("text", "status", "code", "message"),
    [
        ("key: [unclosed\n", 400, "malformed_yaml", "the body is not valid YAML"),
        ("a: &x [1, 2]\nb: *x\n", 400, "invalid_input", "YAML anchors and aliases are not supported"),
        ("key: smart-export\nname: x\n", 422, "invalid_input", "owner: Field required"),
        (
            "launched_at: 2026-09-14T09:00:00\n",
            422,
            "invalid_input",
            "launched_at: Input should have timezone info",
        ),
    ],
)
def test_put_yaml_errors_name_the_problem(
    client: TestClient, keys: Keys, text: str, status: int, code: str, message: str
) -> None:
    response = put_yaml(client, keys, text)
    assert (response.status_code, response.json()["code"]) == (status, code)
    body = response.json()
    assert message in body["message"] + " " + body["detail"]


def test_put_yaml_kpi_error_names_the_field(client: TestClient, keys: Keys) -> None:
    text = (SAMPLES / "smart-export.yaml").read_text(encoding="utf-8").replace("adoption_rate", "adopt")
    response = put_yaml(client, keys, text)
    assert response.status_code == 422
    assert response.json()["message"].startswith("kpis.1.metric: Value error, unknown metric 'adopt'")
