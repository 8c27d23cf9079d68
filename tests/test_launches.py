"""Launches as service objects: create/replace before launch, lock at launch, amend KPIs after
with a reason, history, spec validation and admin-only writes (API and service functions)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from app import launches
from app.errors import Conflict, InvalidInput
from app.storage import Storage
from pipelines.launch import LaunchSpec
from tests.helpers.live import Keys

pytestmark = pytest.mark.backends

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "launches" / "smart-export.yaml"
FUTURE = "2099-03-01T09:00:00Z"
PAST = "2026-01-05T09:00:00Z"

Spec = dict[str, Any]


def make_spec(key: str = "export", launched_at: str = FUTURE, **changes: Any) -> Spec:
    """The sample smart-export spec as JSON, under another key and launch time."""
    data = LaunchSpec.model_validate(yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))).model_dump(
        mode="json"
    )
    return {**data, "key": key, "launched_at": launched_at, **changes}


def with_kpi(spec: Spec, kpi_id: str, **changes: Any) -> Spec:
    kpis = [{**k, **changes} if k["id"] == kpi_id else k for k in spec["kpis"]]
    return {**spec, "kpis": kpis}


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def put(client: TestClient, keys: Keys, spec: Spec) -> Any:
    return client.put(f"/api/launches/{spec['key']}", json=spec, headers=auth(keys.admin))


def amend(client: TestClient, keys: Keys, key: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/launches/{key}/amendments", json=body, headers=auth(keys.admin))


def history(client: TestClient, keys: Keys, key: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/launches/{key}/history", headers=auth(keys.read))
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()
    return items


def outcome(response: Any) -> tuple[int, str, int]:
    """(status, result, version) of a PUT."""
    body = response.json()
    return response.status_code, body["result"], body["version"]


def targets(record: dict[str, Any]) -> tuple[float, float, bool]:
    """(first set target, current target, amended) of one KPI record."""
    return record["first_set"]["target"], record["current"]["target"], record["amended"]


def kpis_by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["id"]: k for k in body["kpis"]}


# -- create, replace, read, delete -----------------------------------------------------------


def test_put_creates_then_replaces_before_launch(client: TestClient, keys: Keys) -> None:
    spec = make_spec()
    created = put(client, keys, spec)
    assert created.status_code == 201
    body = created.json()
    assert outcome(created) == (201, "created", 1)
    assert (body["live"], body["key"]) == (False, "export")
    assert body["spec"]["launched_at"] == "2099-03-01T09:00:00Z"

    same = put(client, keys, spec)
    assert outcome(same) == (200, "unchanged", 1)

    changed = put(client, keys, with_kpi(spec, "adoption", target=0.35))
    assert outcome(changed) == (200, "updated", 2)
    record = kpis_by_id(changed.json())["adoption"]
    assert targets(record) == (0.35, 0.35, False)

    one = client.get("/api/launches/export", headers=auth(keys.read))
    assert one.status_code == 200
    assert one.json()["spec"]["kpis"][1]["target"] == 0.35 and one.json()["result"] is None
    put(client, keys, make_spec("another"))
    listed = client.get("/api/launches", headers=auth(keys.admin))
    assert [item["key"] for item in listed.json()] == ["another", "export"]
    assert [item["summary"] for item in history(client, keys, "export")] == [
        "created",
        "changed kpis",
    ]
    assert {item["by"] for item in history(client, keys, "export")} == {"po"}


def test_delete_before_launch_only(client: TestClient, keys: Keys) -> None:
    put(client, keys, make_spec("soon"))
    put(client, keys, make_spec("gone", PAST))
    assert client.delete("/api/launches/soon", headers=auth(keys.admin)).status_code == 204
    missing = client.get("/api/launches/soon", headers=auth(keys.admin))
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    locked = client.delete("/api/launches/gone", headers=auth(keys.admin))
    assert (locked.status_code, locked.json()["code"]) == (409, "launch_locked")
    assert "no longer be deleted" in locked.json()["message"]
    assert client.get("/api/launches/gone", headers=auth(keys.admin)).status_code == 200
    assert put(client, keys, make_spec("soon")).json()["result"] == "created"


def test_unknown_launch_is_404(client: TestClient, keys: Keys) -> None:
    for response in (
        client.get("/api/launches/nope", headers=auth(keys.read)),
        client.get("/api/launches/nope/history", headers=auth(keys.read)),
        client.delete("/api/launches/nope", headers=auth(keys.admin)),
        amend(client, keys, "nope", {"reason": "r", "kpis": [{"id": "adoption", "target": 0.1}]}),
    ):
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
        assert "'nope'" in response.json()["message"]


# -- the lock at launch ----------------------------------------------------------------------

LOCKED_CHANGES: dict[str, Callable[[Spec], Spec]] = {
    "kpis": lambda s: with_kpi(s, "adoption", target=0.1),
    "signals": lambda s: {**s, "signals": {**s["signals"], "used": [{"event": "Export Clicked"}]}},
    "audience": lambda s: {**s, "audience": {"identified_only": False, "where": {}}},
    "window_days": lambda s: {**s, "window_days": 14},
    "launched_at": lambda s: {**s, "launched_at": "2026-01-06T09:00:00Z"},
}


@pytest.mark.parametrize("field", list(LOCKED_CHANGES))
def test_put_after_launch_refuses_locked_changes(client: TestClient, keys: Keys, field: str) -> None:
    spec = make_spec(launched_at=PAST)
    put(client, keys, spec)
    refused = put(client, keys, LOCKED_CHANGES[field](spec))
    assert refused.status_code == 409
    error = refused.json()
    assert error["code"] == "launch_locked"
    assert (
        error["message"] == f"launch 'export' went live at 2026-01-05T09:00:00Z; {field} can no longer change"
    )
    assert "POST /api/launches/export/amendments" in error["detail"]
    assert len(history(client, keys, "export")) == 1


def test_identical_put_after_launch_is_a_no_op(client: TestClient, keys: Keys) -> None:
    spec = make_spec(launched_at=PAST)
    put(client, keys, spec)
    for same in (spec, {**spec, "launched_at": "2026-01-05T11:00:00+02:00"}):
        response = put(client, keys, same)
        assert outcome(response) == (200, "unchanged", 1)
    assert len(history(client, keys, "export")) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Smarter export"),
        ("description", "Now with PDF"),
        ("owner", "kim@example.com"),
        ("announcements", [{"channel": "blog", "at": "2026-01-07T10:00:00Z", "note": "recap"}]),
    ],
)
def test_put_after_launch_accepts_descriptive_changes(
    client: TestClient, keys: Keys, field: str, value: Any
) -> None:
    spec = make_spec(launched_at=PAST)
    put(client, keys, spec)
    response = put(client, keys, {**spec, field: value})
    assert outcome(response) == (200, "updated", 2)
    assert response.json()["spec"][field] == value
    assert response.json()["live"] is True
    assert [item["summary"] for item in history(client, keys, "export")] == [
        "created after launch",
        f"changed {field}",
    ]


# -- KPIs as first set (service functions, explicit now) -------------------------------------

T0, T1, T2, T3 = (
    datetime(2099, 2, 1),
    datetime(2099, 2, 20),
    datetime(2099, 3, 2),
    datetime(2099, 3, 5),
)


def apply(storage: Storage, spec: Spec, now: datetime, by: str = "po") -> str:
    """put_launch of a JSON spec at `now`; what happened."""
    return launches.put_launch(storage, launches.parse_spec(spec), by=by, now=now)[1]


def test_kpis_first_set_are_the_last_version_before_launch(storage: Storage) -> None:
    assert apply(storage, make_spec(), T0) == "created"
    assert apply(storage, with_kpi(make_spec(), "adoption", target=0.25), T1, by="maria") == "updated"
    with pytest.raises(Conflict) as refused:
        apply(storage, with_kpi(make_spec(), "adoption", target=0.1), T2)
    assert refused.value.code == "launch_locked"
    renamed = with_kpi(make_spec(description="after launch"), "adoption", target=0.25)
    assert apply(storage, renamed, T2) == "updated"

    state = launches.load_launch(storage, "export")
    assert state.spec.description == "after launch"
    assert [(v.version, v.recorded_at, v.recorded_by) for v in state.versions] == [
        (1, T0, "po"),
        (2, T1, "maria"),
        (3, T2, "po"),
    ]
    records = {r.id: r for r in state.kpi_records}
    assert records["adoption"].first_set.target == 0.25
    assert [(r.set_after_launch, r.amended) for r in records.values()] == [(False, False)] * 3
    assert [(i.summary, i.by) for i in launches.history(state)] == [
        ("created", "po"),
        ("changed kpis", "maria"),
        ("changed description", "po"),
    ]


def test_launch_defined_after_launch_is_flagged_set_after_launch(storage: Storage) -> None:
    state, result = launches.put_launch(storage, launches.parse_spec(make_spec()), by="po", now=T2)
    assert result == "created" and state.is_locked(T2)
    assert [(r.id, r.first_set.target, r.set_after_launch) for r in state.kpi_records] == [
        ("reach", 0.5, True),
        ("adoption", 0.2, True),
        ("repeat", 0.4, True),
    ]
    assert launches.history(state)[0].summary == "created after launch"
    with pytest.raises(Conflict, match="can no longer be deleted"):
        launches.delete_launch(storage, "export", now=T3)


def test_moving_launch_into_the_past_keeps_the_latest_kpis(storage: Storage) -> None:
    # Recorded at T0 to launch 2099-03-01; at T1 (still before that) moved to 2099-02-10 < T1.
    apply(storage, make_spec(), T0)
    moved = with_kpi(make_spec(launched_at="2099-02-10T00:00:00Z"), "reach", target=0.9)
    assert apply(storage, moved, T1) == "updated"
    state = launches.load_launch(storage, "export")
    assert state.latest.spec.kpis[0].target == 0.9
    assert state.amendments == []
    assert state.spec.kpis == state.latest.spec.kpis


# -- amendments ------------------------------------------------------------------------------


def test_amendment_keeps_first_set_and_shows_current(client: TestClient, keys: Keys) -> None:
    put(client, keys, make_spec(launched_at=PAST))
    lower = {"reason": "  baseline was lower  ", "kpis": [{"id": "adoption", "target": 0.1}]}
    response = amend(client, keys, "export", lower)
    assert response.status_code == 200
    body = response.json()
    adoption = kpis_by_id(body)["adoption"]
    assert targets(adoption) == (0.2, 0.1, True)
    assert adoption["set_after_launch"] is True
    assert kpis_by_id(body)["reach"]["amended"] is False
    assert [k["target"] for k in body["spec"]["kpis"]] == [0.5, 0.1, 0.4]
    assert body["version"] == 1

    amend(
        client,
        keys,
        "export",
        {"reason": "more users", "author": "maria", "kpis": [{"id": "repeat", "min_sample": 100}]},
    )
    items = history(client, keys, "export")
    assert [(i["kind"], i["by"], i["reason"], i["summary"]) for i in items] == [
        ("version", "po", "", "created after launch"),
        ("amendment", "po", "baseline was lower", "adoption: target 20.0% -> 10.0%"),
        ("amendment", "maria", "more users", "repeat: min_sample 30 -> 100"),
    ]
    change = {k: items[1][k] for k in ("kpi_id", "field", "old_value", "new_value")}
    assert change == {"kpi_id": "adoption", "field": "target", "old_value": 0.2, "new_value": 0.1}
    assert items[0]["at"] <= items[1]["at"] <= items[2]["at"]


def test_amendment_can_add_a_kpi_set_after_launch(storage: Storage) -> None:
    apply(storage, make_spec(), T0)
    request = launches.AmendmentRequest(
        reason="track upgrades",
        kpis=[launches.KpiChange(id="premium", metric="conversion_rate", comparator=">=", target=0.05)],
    )
    state = launches.amend_launch(storage, "export", request, by="po", now=T2)
    records = {r.id: r for r in state.kpi_records}
    assert (records["premium"].set_after_launch, records["premium"].current.target) == (True, 0.05)
    assert records["adoption"].set_after_launch is False
    assert [k.id for k in state.spec.kpis] == ["reach", "adoption", "repeat", "premium"]
    assert launches.history(state)[-1].summary == "added KPI premium"


@pytest.mark.parametrize(
    ("change", "message", "detail"),
    [
        (
            {"id": "adoption", "metric": "exposure_rate"},
            "KPI 'adoption': metric and comparator cannot be amended",
            "new KPI",
        ),
        (
            {"id": "adoption", "comparator": "<="},
            "KPI 'adoption': metric and comparator cannot be amended",
            "new KPI",
        ),
        ({"id": "adoption", "target": 0.2}, "nothing to amend", "equals the current one"),
        (
            {"id": "adoption", "target": 1.5},
            "KPI 'adoption' is not valid",
            "target 1.5 is out of range",
        ),
        (
            {"id": "adoption", "by_day": 40},
            "the amended launch is not valid",
            "by_day 40 is beyond the 28-day window",
        ),
        (
            {"id": "speed", "target": 3},
            "no KPI 'speed' to amend",
            "existing KPIs: reach, adoption, repeat",
        ),
        (
            {"id": "x", "metric": "nps", "comparator": ">=", "target": 1},
            "KPI 'x' is not valid",
            "unknown metric 'nps'",
        ),
    ],
)
def test_amendment_refusals(
    client: TestClient, keys: Keys, change: dict[str, Any], message: str, detail: str
) -> None:
    put(client, keys, make_spec(launched_at=PAST))
    response = amend(client, keys, "export", {"reason": "why not", "kpis": [change]})
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["message"]) == ("invalid_input", message)
    assert detail in response.json()["detail"]
    assert len(history(client, keys, "export")) == 1


def test_amendment_before_launch_is_refused(client: TestClient, keys: Keys) -> None:
    put(client, keys, make_spec())
    response = amend(client, keys, "export", {"reason": "r", "kpis": [{"id": "adoption", "target": 0.1}]})
    assert (response.status_code, response.json()["code"]) == (409, "launch_not_live")
    assert "PUT /api/launches/export" in response.json()["detail"]


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_amendment_needs_a_reason(client: TestClient, keys: Keys, body: dict[str, Any]) -> None:
    put(client, keys, make_spec(launched_at=PAST))
    response = amend(client, keys, "export", {**body, "kpis": [{"id": "adoption", "target": 0.1}]})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_input")
    assert response.json()["message"].startswith("reason: ")
    assert len(history(client, keys, "export")) == 1


def test_amendment_naming_a_kpi_twice_is_refused(client: TestClient, keys: Keys) -> None:
    put(client, keys, make_spec(launched_at=PAST))
    twice = [{"id": "adoption", "target": 0.1}, {"id": "adoption", "target": 0.3}]
    response = amend(client, keys, "export", {"reason": "r", "kpis": twice})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_input")


def test_apply_after_amendment_stays_idempotent(client: TestClient, keys: Keys) -> None:
    original = make_spec(launched_at=PAST)
    put(client, keys, original)
    amend(client, keys, "export", {"reason": "r", "kpis": [{"id": "adoption", "target": 0.1}]})
    for same in (original, with_kpi(original, "adoption", target=0.1)):
        response = put(client, keys, same)
        assert outcome(response) == (200, "unchanged", 1)
    renamed = put(client, keys, {**with_kpi(original, "adoption", target=0.1), "name": "Export 2"})
    assert outcome(renamed) == (200, "updated", 2)
    assert renamed.json()["spec"]["name"] == "Export 2"
    assert targets(kpis_by_id(renamed.json())["adoption"]) == (0.2, 0.1, True)
    other_target = put(client, keys, with_kpi(original, "adoption", target=0.15))
    assert (other_target.status_code, other_target.json()["code"]) == (409, "launch_locked")


# -- validation ------------------------------------------------------------------------------

INVALID: dict[str, tuple[Callable[[Spec], Spec], str]] = {
    "unknown metric": (
        lambda s: with_kpi(s, "adoption", metric="adoption"),
        "unknown metric 'adoption'; valid metrics: exposure_rate, adoption_rate",
    ),
    "rate target": (
        lambda s: with_kpi(s, "adoption", target=20),
        "target 20.0 is out of range (write 20% as 0.2)",
    ),
    "duplicate ids": (lambda s: with_kpi(s, "repeat", id="reach"), "KPI id 'reach' is used twice"),
    "no exposed": (
        lambda s: {**s, "signals": {**s["signals"], "exposed": []}},
        "signals.exposed: List should have at least 1 item",
    ),
    "no used": (
        lambda s: {**s, "signals": {**s["signals"], "used": []}},
        "signals.used: List should have at least 1 item",
    ),
    "naive date": (
        lambda s: {**s, "launched_at": "2099-03-01T09:00:00"},
        "launched_at: Input should have timezone info",
    ),
    "not a date": (
        lambda s: {**s, "launched_at": "next monday"},
        "launched_at: Input should be a valid datetime",
    ),
    "unknown field": (lambda s: {**s, "targets": []}, "targets: "),
    "no converted": (
        lambda s: {
            **with_kpi(s, "repeat", metric="conversion_rate"),
            "signals": {**s["signals"], "converted": []},
        },
        "KPI 'repeat' measures conversion_rate but signals.converted is empty",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_spec_via_api_is_422_naming_the_problem(client: TestClient, keys: Keys, case: str) -> None:
    mutate, expected = INVALID[case]
    response = put(client, keys, mutate(make_spec()))
    assert (response.status_code, response.json()["code"]) == (422, "invalid_input")
    assert expected in response.json()["detail"]
    assert client.get("/api/launches", headers=auth(keys.admin)).json() == []


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_spec_via_parse_spec_is_400(case: str) -> None:
    mutate, expected = INVALID[case]
    with pytest.raises(InvalidInput) as error:
        launches.parse_spec(mutate(make_spec()))
    assert error.value.message == "the launch spec is not valid"
    assert expected.replace("targets: ", "targets: unknown field") in error.value.detail


def test_key_in_url_must_match_the_body(client: TestClient, keys: Keys) -> None:
    response = client.put("/api/launches/other", json=make_spec(), headers=auth(keys.admin))
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_input",
        "message": "the spec's key 'export' differs from the URL's 'other'",
        "detail": "field: key",
    }


# -- keys: admin writes, read or admin reads -------------------------------------------------

CALLS: list[tuple[str, str, bool]] = [  # method, path, is a write
    ("PUT", "/api/launches/export", True),
    ("DELETE", "/api/launches/export", True),
    ("POST", "/api/launches/export/amendments", True),
    ("GET", "/api/launches", False),
    ("GET", "/api/launches/export", False),
    ("GET", "/api/launches/export/history", False),
]


@pytest.mark.parametrize(("method", "path", "is_write"), CALLS)
@pytest.mark.parametrize("scope", ["write", "read", "none"])
def test_only_admin_keys_write_and_write_keys_read_nothing(
    client: TestClient, keys: Keys, method: str, path: str, is_write: bool, scope: str
) -> None:
    put(client, keys, make_spec())
    body: Any = make_spec() if method == "PUT" else {"reason": "r", "kpis": [{"id": "reach", "target": 0.1}]}
    headers = {} if scope == "none" else auth(keys.write if scope == "write" else keys.read)
    response = client.request(method, path, json=body if method in {"PUT", "POST"} else None, headers=headers)
    expected = {"none": 401, "write": 403, "read": 403 if is_write else 200}[scope]
    assert response.status_code == expected
    if expected != 200:
        assert response.json()["code"] == {401: "unauthorized", 403: "forbidden"}[expected]
    assert client.get("/api/launches/export", headers=auth(keys.admin)).json()["version"] == 1
