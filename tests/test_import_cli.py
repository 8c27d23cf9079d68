"""`landed import` and `landed keys` through `app.cli.main`, as an operator would run them.

Each test works on its own database (a DuckDB file, or a chDB database the environment names),
runs the command in-process, checks what it printed and then opens the database with `Storage`
to check what it stored. Imports go through the same
validation and dedupe as the HTTP API, so a second import of a file must insert nothing, and a
line that is not JSON must be counted and kept as a rejection rather than stop the import.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app.cli import main
from app.main import create_app
from app.settings import Settings
from app.storage import Storage
from tests.helpers.stored import drop_clickhouse_database, stored_event_dicts, stored_links

pytestmark = pytest.mark.backends

Event = dict[str, Any]

SUMMARY = re.compile(
    r"imported (?P<files>\d+) file\(s\): (?P<events>\d+) events, (?P<inserted>\d+) inserted, "
    r"(?P<duplicates>\d+) duplicates, (?P<rejected>\d+) rejected"
)


# -- helpers --------------------------------------------------------------------------------


@pytest.fixture
def db(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """What the commands get as --db: the DuckDB file. On ClickHouse the environment names the
    database instead (LANDED_STORAGE, LANDED_CLICKHOUSE_URL), as an operator configures it."""
    url = settings.clickhouse_url.get_secret_value() if settings.clickhouse_url else None
    if settings.storage == "clickhouse" and url is not None:
        monkeypatch.setenv("LANDED_STORAGE", "clickhouse")
        monkeypatch.setenv("LANDED_CLICKHOUSE_URL", url)
    yield settings.db_path
    if settings.storage == "clickhouse" and url is not None:
        drop_clickhouse_database(url)


@pytest.fixture
def opened(db: str) -> Iterator[list[Storage]]:
    """Storages a test opens on `db`, closed at the end even when an assertion fails."""
    storages: list[Storage] = []
    yield storages
    for storage in storages:
        storage.close()


def _open(db: str, opened: list[Storage]) -> Storage:
    storage = Storage.open(Settings(db_path=db))  # the backend the environment names
    opened.append(storage)
    return storage


def _close(storage: Storage, opened: list[Storage]) -> None:
    # The CLI opens the file itself, and DuckDB allows one writer: close before running it.
    opened.remove(storage)
    storage.close()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _import(capsys: pytest.CaptureFixture[str], db: str, *files: Path) -> dict[str, int]:
    code, out, err = _run(capsys, "import", "--db", db, "--quiet", *map(str, files))
    assert code == 0, err
    match = SUMMARY.search(out)
    assert match is not None, out
    assert err == ""  # --quiet: no progress bar
    return {name: int(value) for name, value in match.groupdict().items()}


def _rows(db: str, opened: list[Storage], columns: str, rest: str) -> list[dict[str, Any]]:
    """`select {columns} {rest}` as dicts by column name."""
    storage = _open(db, opened)
    try:
        names = [name.strip().split()[-1] for name in columns.split(",")]
        return [dict(zip(names, values, strict=True)) for values in storage.rows(f"select {columns} {rest}")]
    finally:
        _close(storage, opened)


def _links(db: str, opened: list[Storage]) -> list[dict[str, Any]]:
    """The link in force per anonymous id, by anonymous id."""
    storage = _open(db, opened)
    try:
        return [{"anonymous_id": a, "user_id": u} for a, u, _ in stored_links(storage)]
    finally:
        _close(storage, opened)


def _events(db: str, opened: list[Storage]) -> dict[str, dict[str, Any]]:
    storage = _open(db, opened)
    try:
        rows = stored_event_dicts(storage)
    finally:
        _close(storage, opened)
    by_id = {row["message_id"]: row for row in rows}
    assert len(by_id) == len(rows)
    return by_id


def _segment_events() -> list[Event]:
    return [
        {
            "type": "track",
            "event": "Report Exported",
            "userId": "u1",
            "messageId": "s1",
            "properties": {"format": "csv"},
            "timestamp": "2026-01-10T10:00:00Z",
            "sentAt": "2026-01-10T10:00:05Z",
            "receivedAt": "2026-01-10T10:00:06Z",
        },
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "messageId": "s2",
            "traits": {"plan": "pro"},
            "timestamp": "2026-01-10T09:00:00Z",
            "receivedAt": "2026-01-10T09:00:01Z",
        },
        {
            "type": "page",
            "anonymousId": "a2",
            "name": "Pricing",
            "messageId": "s3",
            "timestamp": "2026-01-11T08:00:00Z",
            "receivedAt": "2026-01-11T08:00:00.5Z",
        },
    ]


def _write_ndjson(path: Path, lines: list[bytes]) -> Path:
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _check_segment_rows(events: dict[str, dict[str, Any]]) -> None:
    track = events["s1"]
    assert (track["type"], track["event"], track["user_id"], track["api"]) == (
        "track",
        "Report Exported",
        "u1",
        "import",
    )
    assert track["properties"] == {"format": "csv"}
    # The file's own receivedAt is kept, and drives the skew correction.
    assert track["received_at"] == datetime(2026, 1, 10, 10, 0, 6)
    assert track["occurred_at"] == datetime(2026, 1, 10, 10, 0, 1)
    identify = events["s2"]
    assert identify["traits"] == {"plan": "pro"}
    assert identify["received_at"] == datetime(2026, 1, 10, 9, 0, 1)
    assert identify["occurred_at"] == datetime(2026, 1, 10, 9, 0)
    page = events["s3"]
    assert (page["event"], page["anonymous_id"]) == ("Pricing", "a2")
    assert page["received_at"] == datetime(2026, 1, 11, 8, 0, 0, 500_000)


# -- import ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["events.ndjson", "events.ndjson.gz"])
def test_import_ndjson_then_again_inserts_nothing(
    capsys: pytest.CaptureFixture[str], db: str, opened: list[Storage], tmp_path: Path, name: str
) -> None:
    lines = [orjson.dumps(event) for event in _segment_events()]
    lines.insert(1, b"{this is not json")
    lines.insert(3, b"")  # blank lines are skipped, not rejected
    path = _write_ndjson(tmp_path / name, lines)

    first = _import(capsys, db, path)
    assert first == {"files": 1, "events": 4, "inserted": 3, "duplicates": 0, "rejected": 1}
    events = _events(db, opened)
    assert set(events) == {"s1", "s2", "s3"}
    assert {row["source"] for row in events.values()} == {"import"}
    _check_segment_rows(events)
    links = _links(db, opened)
    assert links == [{"anonymous_id": "a1", "user_id": "u1"}]
    rejected = _rows(db, opened, "reason, payload", "from rejected_events")
    assert rejected == [{"reason": "malformed_json", "payload": "{this is not json\n"}]

    again = _import(capsys, db, path)
    assert again == {"files": 1, "events": 4, "inserted": 0, "duplicates": 3, "rejected": 1}
    assert len(_events(db, opened)) == 3
    assert len(_rows(db, opened, "rejected_id", "from rejected_events")) == 1


def test_import_reports_rejection_reasons(
    capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path
) -> None:
    path = _write_ndjson(
        tmp_path / "bad.ndjson",
        [
            b"not json",
            b"[1, 2",
            orjson.dumps({"type": "track", "userId": "u1", "messageId": "x1"}),
            orjson.dumps({"type": "track", "event": "Ok", "userId": "u1", "messageId": "x2"}),
        ],
    )
    code, out, _ = _run(capsys, "import", "--db", db, "--quiet", str(path))
    assert code == 0
    assert "1 inserted" in out and "3 rejected" in out
    assert "  rejected 2: malformed_json" in out
    assert "  rejected 1: missing_event" in out


def test_import_posthog_export(
    capsys: pytest.CaptureFixture[str], db: str, opened: list[Storage], tmp_path: Path
) -> None:
    path = _write_ndjson(
        tmp_path / "posthog.ndjson",
        [
            orjson.dumps(
                {
                    "event": "Signed Up",
                    "distinct_id": "ph-1",
                    "uuid": "p1",
                    "timestamp": "2026-02-01T12:00:00Z",
                    "properties": {"plan": "team", "$set": {"email": "p@example.com"}},
                }
            ),
            orjson.dumps(
                {
                    "event": "$identify",
                    "distinct_id": "ph-1",
                    "uuid": "p2",
                    "timestamp": "2026-02-01T11:00:00Z",
                    "properties": {"$anon_distinct_id": "ph-anon"},
                }
            ),
            orjson.dumps(
                {
                    "event": "$pageview",
                    "distinct_id": "ph-anon",
                    "uuid": "p3",
                    "timestamp": "2026-02-01T10:00:00Z",
                    "properties": {"$title": "Home", "$pathname": "/"},
                }
            ),
        ],
    )
    assert _import(capsys, db, path) == {
        "files": 1,
        "events": 3,
        "inserted": 3,
        "duplicates": 0,
        "rejected": 0,
    }
    events = _events(db, opened)
    signed_up = events["p1"]
    assert (signed_up["type"], signed_up["event"], signed_up["user_id"], signed_up["api"]) == (
        "track",
        "Signed Up",
        "ph-1",
        "posthog",
    )
    assert signed_up["properties"] == {"plan": "team"}
    assert signed_up["traits"] == {"email": "p@example.com"}
    assert signed_up["occurred_at"] == datetime(2026, 2, 1, 12)
    assert (events["p2"]["type"], events["p2"]["anonymous_id"]) == ("identify", "ph-anon")
    assert (events["p3"]["type"], events["p3"]["event"]) == ("page", "Home")
    assert events["p3"]["properties"]["path"] == "/"
    links = _links(db, opened)
    assert links == [{"anonymous_id": "ph-anon", "user_id": "ph-1"}]
    assert _import(capsys, db, path)["inserted"] == 0


def _parquet(path: Path) -> Path:
    ts = pa.timestamp("us", tz="UTC")
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    columns: dict[str, pa.Array] = {
        "type": pa.array(["track", "identify", "alias", "track"], pa.string()),
        "event": pa.array(["Checkout", None, None, "Checkout"], pa.string()),
        "name": pa.array([None, None, None, None], pa.string()),
        "userId": pa.array(["u1", "u1", "u2", None], pa.string()),
        "anonymousId": pa.array([None, "a1", None, "a3"], pa.string()),
        "previousId": pa.array([None, None, "a2", None], pa.string()),
        "messageId": pa.array(["q1", "q2", "q3", "q4"], pa.string()),
        "timestamp": pa.array([base, base, base, None], ts),
        "sentAt": pa.array([base + timedelta(seconds=20), None, None, None], ts),
        "receivedAt": pa.array(
            [
                base + timedelta(seconds=30),
                base + timedelta(seconds=1),
                base + timedelta(seconds=2),
                base + timedelta(seconds=3),
            ],
            ts,
        ),
        "properties": pa.array(['{"total": 12.5}', None, None, "{}"], pa.string()),
        "traits": pa.array([None, '{"plan": "pro"}', None, None], pa.string()),
        "context": pa.array(['{"ip": "10.0.0.1"}', None, None, None], pa.string()),
    }
    pq.write_table(pa.table(columns), path)
    return path


def test_import_parquet(
    capsys: pytest.CaptureFixture[str], db: str, opened: list[Storage], tmp_path: Path
) -> None:
    path = _parquet(tmp_path / "events.parquet")
    assert _import(capsys, db, path) == {
        "files": 1,
        "events": 4,
        "inserted": 4,
        "duplicates": 0,
        "rejected": 0,
    }
    events = _events(db, opened)
    checkout = events["q1"]
    assert (checkout["type"], checkout["event"], checkout["user_id"]) == ("track", "Checkout", "u1")
    assert checkout["properties"] == {"total": 12.5}
    assert checkout["context"] == {"ip": "10.0.0.1"}
    assert checkout["received_at"] == datetime(2026, 3, 1, 12, 0, 30)
    assert checkout["occurred_at"] == datetime(2026, 3, 1, 12, 0, 10)
    assert events["q2"]["traits"] == {"plan": "pro"}
    assert events["q2"]["occurred_at"] == datetime(2026, 3, 1, 12)
    assert (events["q3"]["type"], events["q3"]["previous_id"]) == ("alias", "a2")
    no_time = events["q4"]
    assert no_time["original_timestamp"] is None
    assert no_time["occurred_at"] == no_time["received_at"] == datetime(2026, 3, 1, 12, 0, 3)
    links = _links(db, opened)
    assert links == [
        {"anonymous_id": "a1", "user_id": "u1"},
        {"anonymous_id": "a2", "user_id": "u2"},
    ]
    assert _import(capsys, db, path)["duplicates"] == 4
    assert len(_events(db, opened)) == 4


def test_import_several_files_at_once(capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path) -> None:
    ndjson = _write_ndjson(tmp_path / "a.ndjson", [orjson.dumps(e) for e in _segment_events()])
    parquet = _parquet(tmp_path / "b.parquet")
    summary = _import(capsys, db, ndjson, parquet)
    assert summary == {"files": 2, "events": 7, "inserted": 7, "duplicates": 0, "rejected": 0}


def test_import_under_a_named_write_key_dedupes_per_source(
    capsys: pytest.CaptureFixture[str], db: str, opened: list[Storage], tmp_path: Path
) -> None:
    path = _write_ndjson(tmp_path / "e.ndjson", [orjson.dumps(e) for e in _segment_events()])
    code, _, err = _run(capsys, "keys", "create", "--db", db, "--name", "web")
    assert code == 0, err
    code, out, err = _run(capsys, "import", "--db", db, "--quiet", "--source", "web", str(path))
    assert code == 0, err
    assert "3 inserted" in out
    # The same messageIds under the default source are other events.
    assert _import(capsys, db, path)["inserted"] == 3
    sources = _rows(db, opened, "source, count(*) as n", "from events group by 1 order by 2")
    assert [row["n"] for row in sources] == [3, 3]
    code, _, err = _run(capsys, "import", "--db", db, "--quiet", "--source", "nope", str(path))
    assert code == 1
    assert "no write key named 'nope'" in err


def test_import_missing_file_fails_cleanly(
    capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path
) -> None:
    code, out, err = _run(capsys, "import", "--db", db, "--quiet", str(tmp_path / "none.ndjson"))
    assert code == 1
    assert out == ""
    assert err.startswith("landed: no such file:")


# -- keys -----------------------------------------------------------------------------------


def _create(capsys: pytest.CaptureFixture[str], db: str, name: str, scope: str) -> tuple[str, str]:
    code, out, err = _run(capsys, "keys", "create", "--db", db, "--name", name, "--scope", scope)
    assert code == 0, err
    first, secret = out.strip().splitlines()
    match = re.search(r"\(id (\w+)\)", first)
    assert match is not None and f"{scope} key {name!r}" in first
    return match.group(1), secret


def _post_as(db: str, opened: list[Storage], secret: str) -> int:
    storage = _open(db, opened)
    try:
        with TestClient(create_app(Settings(db_path=db), storage)) as client:
            event = {"type": "track", "event": "E", "userId": "u", "messageId": secret[-8:]}
            return client.post("/v1/batch", json={"batch": [event]}, auth=(secret, "")).status_code
    finally:
        _close(storage, opened)


def test_keys_create_list_revoke(capsys: pytest.CaptureFixture[str], db: str, opened: list[Storage]) -> None:
    web_id, web_secret = _create(capsys, db, "web", "write")
    ios_id, ios_secret = _create(capsys, db, "ios", "write")
    read_id, read_secret = _create(capsys, db, "dashboards", "read")
    assert web_secret.startswith("lw_") and read_secret.startswith("lr_")
    assert len({web_secret, ios_secret, read_secret}) == 3

    code, listing, _ = _run(capsys, "keys", "list", "--db", db)
    assert code == 0
    lines = listing.strip().splitlines()
    assert lines[0].split() == ["id", "name", "scope", "origins", "created", "(UTC)", "revoked"]
    assert [line.split()[:4] for line in lines[1:]] == [
        [web_id, "web", "write", "any"],
        [ios_id, "ios", "write", "any"],
        [read_id, "dashboards", "read", "-"],
    ]
    for secret in (web_secret, ios_secret, read_secret):
        assert secret not in listing
        assert secret[3:] not in listing

    assert _post_as(db, opened, web_secret) == 200

    code, out, _ = _run(capsys, "keys", "revoke", "--db", db, "web")
    assert (code, out) == (0, f"revoked key {web_id}\n")
    assert _post_as(db, opened, web_secret) == 401
    assert _post_as(db, opened, ios_secret) == 200

    _, listing, _ = _run(capsys, "keys", "list", "--db", db)
    web_line = next(line for line in listing.splitlines() if line.startswith(web_id))
    ios_line = next(line for line in listing.splitlines() if line.startswith(ios_id))
    assert re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\s*$", web_line.split("write", 1)[1])
    assert len(web_line.split()) == len(ios_line.split()) + 1  # only the revoked one has a date

    code, _, err = _run(capsys, "keys", "revoke", "--db", db, "web")
    assert code == 1
    assert "no active key" in err


def test_revoke_by_id(capsys: pytest.CaptureFixture[str], db: str, opened: list[Storage]) -> None:
    key_id, secret = _create(capsys, db, "cli", "write")
    code, out, _ = _run(capsys, "keys", "revoke", "--db", db, key_id)
    assert (code, out) == (0, f"revoked key {key_id}\n")
    assert _post_as(db, opened, secret) == 401


def test_keys_create_with_origins_lists_them(capsys: pytest.CaptureFixture[str], db: str) -> None:
    argv = ("keys", "create", "--db", db, "--name", "web-app", "--origin", "https://App.example.com")
    code, _, err = _run(capsys, *argv, "--origin", "http://localhost:3000")
    assert code == 0, err
    _, listing, _ = _run(capsys, "keys", "list", "--db", db)
    row = listing.strip().splitlines()[1].split()
    assert row[1:4] == ["web-app", "write", "https://app.example.com,http://localhost:3000"]

    code, _, err = _run(
        capsys, "keys", "create", "--db", db, "--name", "x", "--scope", "read", "--origin", PAGE
    )
    assert code != 0
    assert "only write keys carry origins" in err
    code, _, err = _run(capsys, "keys", "create", "--db", db, "--name", "y", "--origin", "app.example.com")
    assert code != 0
    assert "is not a web origin" in err


PAGE = "https://app.example.com"
