"""Managing a running service over HTTP: keys made and revoked while it serves take effect on
the next request (through a real uvicorn), uploads are imported with the importer's own
validation and dedupe whatever their format, online backups are consistent while events
arrive and restore table by table, the report and weekly review export as files, and the first
start of `landed serve` on a new database prints an admin key once.
"""

from __future__ import annotations

import gzip
import io
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app.backup import MANIFEST, TABLES, restore
from app.local_server import free_port, serving
from app.main import create_app
from app.page_data import review_sections
from app.reports import ReportService
from app.settings import Settings
from app.storage import Storage
from dashboards.markdown import report_markdown, review_markdown
from tests.helpers.builders import ndjson, track
from tests.helpers.http import assert_error, bearer
from tests.helpers.live import LIVE, Keys, LiveServer, Served, seed_launches

pytestmark = pytest.mark.backends

KEY_FIELDS = {"key_id", "name", "scope", "created_at", "revoked_at", "origins"}


def with_options(settings: Settings, **options: Any) -> Settings:
    """The test's storage settings (either backend) with other options set."""
    return Settings(
        db_path=settings.db_path, storage=settings.storage, clickhouse_url=settings.clickhouse_url, **options
    )


# ----------------------------------------------------------------------------- keys


def test_keys_made_and_revoked_over_http_work_on_the_next_request(
    live_server: LiveServer, keys: Keys
) -> None:
    admin = bearer(keys.admin)
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        made = http.post("/api/keys", json={"name": "ios"}, headers=admin)
        assert made.status_code == 201, made.text
        created = made.json()
        assert set(created) == KEY_FIELDS | {"secret"}
        assert (created["name"], created["scope"], created["revoked_at"], created["origins"]) == (
            "ios",
            "write",
            None,
            [],
        )
        secret = created["secret"]
        assert secret.startswith("lw_")

        # A key made while serving works at once, on the same running service.
        event = track("u-1", "m-ios-1")
        assert http.post("/v1/track", json=event, headers=bearer(secret)).status_code == 200

        listed = http.get("/api/keys", headers=admin)
        assert listed.status_code == 200
        assert all(set(k) == KEY_FIELDS for k in listed.json())
        assert "ios" in {k["name"] for k in listed.json()}
        assert secret not in listed.text and keys.admin not in listed.text

        revoked = http.delete(f"/api/keys/{created['key_id']}", headers=admin)
        assert revoked.status_code == 200 and revoked.json() == {"revoked": [created["key_id"]]}
        # ...and a revoked one is refused on its very next request.
        assert_error(http.post("/v1/track", json=event, headers=bearer(secret)), 401, code="unauthorized")
        mine = next(
            k for k in http.get("/api/keys", headers=admin).json() if k["key_id"] == created["key_id"]
        )
        assert mine["revoked_at"] is not None
        assert_error(http.delete("/api/keys/ios", headers=admin), 404, code="not_found")


def test_read_and_admin_keys_made_over_http_read_and_manage_at_once(
    live_server: LiveServer, keys: Keys
) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        read = http.post("/api/keys", json={"name": "team", "scope": "read"}, headers=bearer(keys.admin))
        admin = http.post("/api/keys", json={"name": "ops", "scope": "admin"}, headers=bearer(keys.admin))
        assert read.json()["secret"].startswith("lr_") and admin.json()["secret"].startswith("la_")
        assert http.get("/api/launches", headers=bearer(read.json()["secret"])).status_code == 200
        assert http.get("/api/keys", headers=bearer(read.json()["secret"])).status_code == 403
        assert http.get("/api/keys", headers=bearer(admin.json()["secret"])).status_code == 200


def test_revoking_by_name_revokes_every_live_key_of_that_name(client: TestClient, keys: Keys) -> None:
    admin = bearer(keys.admin)
    ids = {
        client.post("/api/keys", json={"name": "rotating"}, headers=admin).json()["key_id"] for _ in range(2)
    }
    response = client.delete("/api/keys/rotating", headers=admin)
    assert response.status_code == 200
    assert set(response.json()["revoked"]) == ids


def test_a_write_key_may_carry_origins(client: TestClient, keys: Keys) -> None:
    made = client.post(
        "/api/keys",
        json={"name": "site", "origins": ["https://App.Example.com:443/"]},
        headers=bearer(keys.admin),
    )
    assert made.status_code == 201, made.text
    assert made.json()["origins"] == ["https://app.example.com"]


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"name": "x", "scope": "owner"}, 422, "scope"),
        ({"name": ""}, 422, "name"),
        ({"name": "a\nb"}, 422, "name"),
        ({"name": "x" * 101}, 422, "name"),
        ({"scope": "read"}, 422, "name"),
        ({"name": "x", "secret": "lw_mine"}, 422, "secret"),
        ({"name": "x", "scope": "read", "origins": ["https://a.example"]}, 400, "origins"),
        ({"name": "x", "origins": ["not an origin"]}, 400, "origins"),
        ({"name": "x", "origins": "https://a.example"}, 422, "origins"),
    ],
    ids=["scope", "empty-name", "control-character", "long-name", "no-name", "extra-field",
         "origins-on-read", "bad-origin", "origins-not-a-list"],
)  # fmt: skip
def test_bad_key_requests_name_the_field(
    client: TestClient, keys: Keys, body: dict[str, Any], status: int, names: str
) -> None:
    assert_error(client.post("/api/keys", json=body, headers=bearer(keys.admin)), status, names=names)


# ----------------------------------------------------------------------------- import


def test_import_ndjson_under_a_write_key_dedupes_against_what_it_sent(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    live = client.post("/v1/track", json=track("u-1", "m-1"), headers=bearer(keys.write))
    assert live.json()["inserted"] == 1
    received = "2026-03-01T10:00:00Z"
    body = ndjson([track("u-1", "m-1"), track("u-2", "m-2", receivedAt=received), {"type": "track"}])
    body += b"{not json\n\n"
    response = client.post(
        "/api/import?source=web",
        content=body,
        headers={**bearer(keys.admin), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "files": 1,
        "events": 4,
        "inserted": 1,
        "duplicates": 1,
        "rejected": 2,
        "reasons": {"missing_identity": 1, "malformed_json": 1},
    }
    source = storage.list_keys()[0].key_id
    assert storage.rows("select distinct source from events") == [(source,)]
    # The export's own receivedAt is kept.
    [(at,)] = storage.rows("select received_at from events where message_id = ?", ["m-2"])
    assert at == datetime(2026, 3, 1, 10, 0)
    # The same file again adds nothing.
    again = client.post("/api/import?source=web", content=body, headers=bearer(keys.admin)).json()
    assert (again["inserted"], again["duplicates"]) == (0, 2)


def parquet_bytes(events: list[dict[str, Any]]) -> bytes:
    table = pa.Table.from_pylist(
        [{**e, "properties": orjson.dumps(e.get("properties", {})).decode()} for e in events]
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


EVENTS = [track(f"u-{i}", f"m-{i}", properties={"n": i}, timestamp="2026-03-01T10:00:00Z") for i in range(5)]


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (ndjson(EVENTS), {"Content-Type": "application/x-ndjson"}),
        (gzip.compress(ndjson(EVENTS)), {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}),
        (gzip.compress(ndjson(EVENTS)), {"Content-Type": "application/octet-stream"}),  # magic bytes
        (parquet_bytes(EVENTS), {"Content-Type": "application/vnd.apache.parquet"}),
        (parquet_bytes(EVENTS), {}),  # PAR1 magic
        (gzip.compress(parquet_bytes(EVENTS)), {"Content-Encoding": "gzip"}),
    ],
    ids=["ndjson", "gzip-encoding", "gzip-magic", "parquet", "parquet-magic", "gzipped-parquet"],
)
def test_import_reads_every_format(
    client: TestClient, storage: Storage, keys: Keys, content: bytes, headers: dict[str, str]
) -> None:
    response = client.post("/api/import", content=content, headers={**bearer(keys.admin), **headers})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "files": 1,
        "events": 5,
        "inserted": 5,
        "duplicates": 0,
        "rejected": 0,
        "reasons": {},
    }
    rows = storage.rows("select source, message_id, properties from events order by message_id")
    assert [(s, m, orjson.loads(p)["n"]) for s, m, p in rows] == [("import", f"m-{i}", i) for i in range(5)]


def test_an_upload_streams_through_a_live_server_past_the_ingest_caps(
    settings: Settings, storage: Storage, tmp_path: Path
) -> None:
    """Uploads are spooled to disk, not read into memory under the ingest body caps: a chunked
    upload twenty times LANDED_MAX_DECOMPRESSED_BYTES is imported whole."""
    settings = with_options(settings, max_body_bytes=64 * 1024, max_decompressed_bytes=64 * 1024)
    events = [track(f"u-{i}", f"m-{i}", properties={"pad": "x" * 400}) for i in range(3_000)]
    payload = ndjson(events)
    assert len(payload) > 20 * settings.max_decompressed_bytes

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 50_000):
            yield payload[start : start + 50_000]

    admin = storage.create_key("po", "admin")[1]
    with serving(create_app(settings, storage)) as url:
        response = httpx.post(
            f"{url}/api/import",
            content=chunks(),
            headers={**bearer(admin), "Content-Type": "application/x-ndjson"},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 3_000
    assert storage.count_events() == 3_000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".landed-import-")], "spool left behind"


def test_an_upload_over_the_import_cap_is_a_413(settings: Settings, storage: Storage) -> None:
    settings = with_options(settings, max_import_bytes=4096)
    body = ndjson([track(f"u-{i}", f"m-{i}") for i in range(200)])
    admin = storage.create_key("po", "admin")[1]
    with serving(create_app(settings, storage)) as url:
        declared = httpx.post(f"{url}/api/import", content=body, headers=bearer(admin))
        streamed = httpx.post(
            f"{url}/api/import", content=iter([body[:3000], body[3000:]]), headers=bearer(admin)
        )
    for response in (declared, streamed):
        assert_error(response, 413, code="payload_too_large", names="LANDED_MAX_IMPORT_BYTES")
    assert storage.count_events() == 0


@pytest.mark.parametrize(
    ("query", "content", "headers", "status", "code", "names"),
    [
        ("?source=nobody", b"{}\n", {}, 400, "invalid_input", "source"),
        ("?source=dashboards", b"{}\n", {}, 400, "invalid_input", "source"),  # a read key
        ("", b"x", {"Content-Type": "multipart/form-data; boundary=x"}, 415, "unsupported_media_type", ""),
        ("", b"x", {"Content-Encoding": "br"}, 415, "unsupported_encoding", ""),
        ("", b"not parquet", {"Content-Type": "application/vnd.apache.parquet"}, 400, "invalid_encoding", ""),
        ("", b"PAR1 but not really", {}, 400, "invalid_encoding", "Parquet"),
        ("", gzip.compress(b'{"a": 1}\n')[:-12], {}, 400, "invalid_encoding", "gzip"),
        ("", b'{"a": 1}\n', {"Content-Encoding": "gzip"}, 400, "invalid_encoding", "gzip"),
        ("", b"", {}, 400, "invalid_input", "empty"),
    ],
    ids=["unknown-source", "not-a-write-key", "multipart", "brotli", "not-parquet", "fake-par1",
         "truncated-gzip", "says-gzip", "empty"],
)  # fmt: skip
def test_bad_uploads_are_refused_with_the_reason(
    client: TestClient,
    keys: Keys,
    query: str,
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    names: str,
) -> None:
    response = client.post(f"/api/import{query}", content=content, headers={**bearer(keys.admin), **headers})
    assert_error(response, status, code=code, names=names)


def test_an_overlong_line_is_rejected_without_being_read_whole(
    client: TestClient, storage: Storage, keys: Keys, settings: Settings
) -> None:
    long_line = (
        b'{"type": "track", "userId": "u", "event": "' + b"x" * (2 * settings.max_event_bytes) + b'"}\n'
    )
    body = long_line + ndjson([track("u-2", "m-2")])
    response = client.post("/api/import", content=body, headers=bearer(keys.admin))
    assert response.json()["reasons"] == {"event_too_large": 1}
    assert response.json()["inserted"] == 1


# ----------------------------------------------------------------------------- backups


def manifest_rows(folder: Path) -> dict[str, int]:
    rows: dict[str, int] = orjson.loads((folder / MANIFEST).read_bytes())["rows"]
    return rows


def test_a_backup_goes_into_a_new_folder_under_the_backup_folder(
    client: TestClient, storage: Storage, keys: Keys, tmp_path: Path
) -> None:
    client.post("/v1/track", json=track("u-1", "m-1"), headers=bearer(keys.write))
    first = client.post("/api/backup?out=/tmp/elsewhere", json={"path": "/etc"}, headers=bearer(keys.admin))
    second = client.post("/api/backup", headers=bearer(keys.admin))
    assert first.status_code == second.status_code == 201, first.text
    folders = [Path(r.json()["path"]) for r in (first, second)]
    assert folders[0] != folders[1]
    for folder, response in zip(folders, (first, second), strict=True):
        # Beside the database, whatever the request says.
        assert folder.parent == tmp_path / "backups"
        assert re.fullmatch(r"landed-\d{8}T\d{6}Z(-\d+)?", folder.name)
        assert response.json()["rows"] == manifest_rows(folder)
        assert {p.name for p in folder.iterdir()} == {MANIFEST, *(f"{t}.parquet" for t in TABLES)}
    assert first.json()["rows"]["events"] == 1 and first.json()["rows"]["api_keys"] == 3
    assert not Path("/tmp/elsewhere").exists()


def test_the_backup_folder_setting_is_used_and_required_in_memory(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen"
    for settings, status in (
        (Settings(db_path=":memory:"), 409),
        (Settings(db_path=":memory:", backup_dir=str(chosen)), 201),
    ):
        with Storage.open(settings) as storage:
            admin = storage.create_key("po", "admin")[1]
            with TestClient(create_app(settings, storage)) as client:
                response = client.post("/api/backup", headers=bearer(admin))
        if status == 409:
            assert_error(response, 409, names="LANDED_BACKUP_DIR")
        else:
            assert response.status_code == 201, response.text
            assert Path(response.json()["path"]).parent == chosen


def test_a_backup_taken_while_events_arrive_restores_table_by_table(
    live_server: LiveServer, keys: Keys, tmp_path: Path, backend: str
) -> None:
    stop = threading.Event()
    acknowledged: list[int] = []
    failures: list[str] = []

    def send() -> None:
        with httpx.Client(base_url=live_server.url, timeout=30) as http:
            batch_no = 0
            while not stop.is_set():
                batch = [
                    track(f"u-{batch_no}-{i}", f"m-{batch_no}-{i}", anonymousId=f"a-{batch_no}-{i}")
                    for i in range(50)
                ]
                batch.append({"type": "nonsense", "messageId": f"bad-{batch_no}"})
                response = http.post("/v1/batch", json={"batch": batch}, headers=bearer(keys.write))
                if response.status_code != 200:
                    failures.append(response.text)
                    return
                acknowledged.append(batch_no)
                batch_no += 1

    sender = threading.Thread(target=send)
    sender.start()
    try:
        deadline = time.monotonic() + 30
        while len(acknowledged) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        during_before = len(acknowledged)
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            response = http.post("/api/backup", headers=bearer(keys.admin))
        during_after = len(acknowledged)
        deadline = time.monotonic() + 30
        while len(acknowledged) < during_after + 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        sender.join(timeout=30)
    assert failures == []
    assert response.status_code == 201, response.text
    folder = Path(response.json()["path"])
    rows = manifest_rows(folder)
    assert rows == response.json()["rows"]
    # Whole batches only (51 events each, its rejected one kept too), taken while batches went
    # on being acknowledged. DuckDB's is one snapshot of every table; ClickHouse has none across
    # tables and reads the events first, so refusals of batches stored meanwhile may be in too.
    assert rows["events"] % 50 == 0
    if backend == "duckdb":
        assert rows["events"] // 50 == rows["rejected_events"]
    else:
        assert rows["events"] // 50 <= rows["rejected_events"] <= during_after + 1  # + the one in flight
    assert during_before * 50 <= rows["events"] <= during_after * 50
    assert live_server.storage.count_events() > rows["events"]
    for table in TABLES:
        assert pq.read_table(folder / f"{table}.parquet").num_rows == rows[table], table

    with Storage(str(tmp_path / "restored.duckdb")) as fresh:
        assert restore(fresh, folder) == rows
        for table in TABLES:
            [(count,)] = fresh.cursor().execute(f"select count(*) from {table}").fetchall()
            assert count == rows[table], table


# ----------------------------------------------------------------------------- exports


@pytest.fixture
def launched(client: TestClient, storage: Storage, keys: Keys) -> datetime:
    """The live launch of the security tests, with users who saw and used it."""
    seed_launches(storage)
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    for i in range(6):
        at = (now - timedelta(days=2, hours=i)).isoformat()
        events += [
            {
                "type": "identify",
                "userId": f"u-{i}",
                "traits": {"plan": ["free", "pro"][i % 2]},
                "timestamp": at,
            },
            {"type": "track", "userId": f"u-{i}", "event": "Feature Seen", "timestamp": at},
        ]
        if i % 2:
            events.append({"type": "track", "userId": f"u-{i}", "event": "Feature Used", "timestamp": at})
    response = client.post("/v1/batch", json={"batch": events}, headers=bearer(keys.write))
    assert response.json()["rejected"] == 0
    return now.replace(microsecond=0)


def test_the_report_as_markdown_is_the_command_lines(
    client: TestClient, storage: Storage, keys: Keys, launched: datetime
) -> None:
    as_of = launched.isoformat()
    response = client.get(
        f"/api/launches/{LIVE}/report.md",
        params={"as_of": as_of, "segment": "plan"},
        headers=bearer(keys.read),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/markdown")
    expected = ReportService(storage).report(LIVE, as_of=launched, segment="plan")
    assert response.text == report_markdown(expected)
    assert_error(client.get("/api/launches/nowhere/report.md", headers=bearer(keys.read)), 404)
    assert_error(
        client.get(f"/api/launches/{LIVE}/report.md", params={"as_of": "soon"}, headers=bearer(keys.read)),
        422,
        names="as_of",
    )


def test_the_review_as_markdown_is_the_command_lines(
    client: TestClient, storage: Storage, keys: Keys, launched: datetime
) -> None:
    year, week_no, _ = launched.isocalendar()
    week = f"{year}-W{week_no:02d}"
    response = client.get(
        "/api/review.md", params={"week": week, "as_of": launched.isoformat()}, headers=bearer(keys.read)
    )
    assert response.status_code == 200, response.text
    now = launched.replace(tzinfo=None)
    sections = review_sections(storage, ReportService(storage), week=week, now=now)
    assert response.text == review_markdown(week, sections, generated_at=now)
    assert "Live Launch" in response.text
    # Without a week: the week of as_of.
    same = client.get("/api/review.md", params={"as_of": launched.isoformat()}, headers=bearer(keys.read))
    assert same.text == response.text


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [({"week": "2026-W60"}, 400, "invalid_week"), ({"week": "last week"}, 422, "invalid_input")],
)
def test_a_bad_week_names_it(
    client: TestClient, keys: Keys, params: dict[str, str], status: int, code: str
) -> None:
    for path in ("/api/review.md", "/api/review.html"):
        assert_error(
            client.get(path, params=params, headers=bearer(keys.read)), status, code=code, names="week"
        )


def hrefs(page: str) -> list[str]:
    """Every link of the page's own markup (not inside the inlined scripts)."""
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    return re.findall(r'(?:href|src|action)="([^"]*)"', markup)


def test_the_review_as_html_is_one_file_with_absolute_links(
    client: TestClient, keys: Keys, launched: datetime
) -> None:
    response = client.get("/api/review.html", headers=bearer(keys.read))
    assert response.status_code == 200
    page = response.text
    assert "<script src=" not in page, "plotly.js must be inlined"
    links = [link for link in hrefs(page) if not link.startswith("data:")]
    assert links and all(link.startswith("http://testserver/") for link in links), links
    assert f"http://testserver/launches/{LIVE}" in links
    assert not any("logout" in link for link in links), "a file has nobody to sign out"


def test_the_review_links_use_the_public_url_when_set(settings: Settings, storage: Storage) -> None:
    settings = with_options(settings, public_url="https://landed.example.com/")
    read = storage.create_key("team", "read")[1]
    seed_launches(storage)
    with TestClient(create_app(settings, storage)) as client:
        page = client.get("/api/review.html", headers=bearer(read)).text
    links = [link for link in hrefs(page) if not link.startswith("data:")]
    assert links and all(link.startswith("https://landed.example.com/") for link in links), links


# ----------------------------------------------------------------------------- first start


def test_first_start_prints_an_admin_key_once(tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    port = free_port()
    first = Served(db, port, tmp_path, 1)
    try:
        printed = first.wait_until_listening()
        found = re.findall(r"Admin key: (la_\S+)", printed)
        assert len(found) == 1, printed
        admin = found[0]
        made = httpx.post(f"{first.url}/api/keys", json={"name": "web"}, headers=bearer(admin))
        assert made.status_code == 201, made.text
    finally:
        first.stop()
    second = Served(db, port, tmp_path, 2)
    try:
        printed = second.wait_until_listening()
        assert "Admin key" not in printed and "la_" not in printed, printed
        assert httpx.get(f"{second.url}/api/keys", headers=bearer(admin)).status_code == 200
    finally:
        second.stop()
    logs = first.stderr.read_text() + second.stderr.read_text()
    assert admin not in logs, "the key reached the log"
