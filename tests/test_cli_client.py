"""The command line as a client of the running service (the issue "Run Landed live").

The acceptance test starts `landed serve` as its own process on a temporary database, holding
DuckDB's lock, while a thread sends batches of events to it, and runs every command that reads
or changes data against it twice: through `LANDED_URL` and `LANDED_KEY` (in this process), and
through the discovery file the service writes beside the database (each command its own
process, as an operator runs it). No command may fail, stop the service or meet a lock error,
and ingestion must lose nothing. Then, with the service stopped, the same read commands run on
the database file directly and must print the same and exit with the same codes.

The discovery file itself is tested on its own: created readable by its owner only, removed at
a clean shutdown, and ignored when stale (its process gone, or nothing listening).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from app import discovery
from app.local_server import free_port
from app.storage import Storage
from tests.helpers.cli import SAMPLES, Capsys
from tests.helpers.cli import run as in_process
from tests.helpers.live import ROOT, clean_env, start_serve

pytestmark = pytest.mark.slow  # the inner loop (`make check`) skips it; `make test` runs it

AS_OF = "2026-10-20T00:00:00Z"
Result = tuple[int, str, str]


# -- the service and the traffic ------------------------------------------------------------


@dataclass
class Service:
    """`landed serve` in its own process on `db`."""

    db: Path
    log: Path
    process: subprocess.Popen[bytes]
    url: str

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def start_service(db: Path, log: Path) -> Service:
    port = free_port()
    with log.open("ab") as output:
        process = start_serve(db, port, output)
    deadline = time.monotonic() + 60
    while discovery.find_service(str(db)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the service did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    return Service(db, log, process, f"http://127.0.0.1:{port}")


@dataclass
class Traffic:
    """A thread sending batches of events with one write key until stopped; every batch is
    resent until the service acknowledges it (a resend is deduplicated), so `acknowledged`
    is exactly what the service must have stored."""

    url: str
    write_key: str
    acknowledged: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, auth=(self.write_key, ""), timeout=30) as client:
            batch_number = 0
            while not self.stop.is_set():
                ids = [f"live-{batch_number}-{i}" for i in range(100)]
                batch = [
                    {
                        "type": "track",
                        "event": "Feature Used",
                        "userId": f"u{i % 40}",
                        "properties": {"feature": "smart-export"},
                        "messageId": message_id,
                    }
                    for i, message_id in enumerate(ids)
                ]
                while True:
                    try:
                        response = client.post("/v1/batch", json={"batch": batch})
                        if response.status_code == 200:
                            break
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")
                    except httpx.HTTPError as error:
                        self.failures.append(repr(error))
                    time.sleep(0.05)
                self.acknowledged.update(ids)
                batch_number += 1
                time.sleep(0.02)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Service]:
    service = start_service(tmp_path / "live.duckdb", tmp_path / "service.log")
    try:
        yield service
    finally:
        if service.alive():
            service.process.kill()
            service.process.wait(timeout=30)


# -- running commands -----------------------------------------------------------------------


def as_process(*argv: str, cwd: Path) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *argv],
        cwd=cwd,
        env={**clean_env(), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def assert_ran(result: Result, command: str, *, code: int = 0) -> None:
    assert result[0] == code, f"{command}: exit {result[0]}\n{result[1][-2000:]}\n{result[2][-2000:]}"
    assert "lock" not in result[2].lower(), f"{command}: {result[2]}"


def events_file(path: Path, prefix: str, count: int) -> Path:
    lines = [
        orjson.dumps(
            {
                "type": "track",
                "event": "Report Exported",
                "userId": f"u{i % 40}",
                "messageId": f"{prefix}-{i}",
                "timestamp": "2026-09-20T10:00:00Z",
            }
        )
        for i in range(count)
    ]
    path.write_bytes(b"\n".join([*lines, b"{not json"]) + b"\n")
    return path


def every_command(run: object, *, mode: str, tmp_path: Path, service: Service) -> dict[str, Result]:
    """Every command that reads or changes data, through `run(*argv)`; checks each one's exit
    code and that the service still runs after it. Returns the results by command."""
    assert callable(run)
    results: dict[str, Result] = {}

    def step(name: str, *argv: str, code: int = 0) -> Result:
        result: Result = run(*argv)
        assert_ran(result, f"{mode}: {name}", code=code)
        assert service.alive(), f"{mode}: {name} stopped the service"
        results[name] = result
        return result

    key_name = f"web-{mode}"
    created = step("keys create", "keys", "create", "--name", key_name, "--scope", "write")
    assert created[1].startswith(f"created write key '{key_name}'")
    assert key_name in step("keys list", "keys", "list")[1]
    assert step("keys revoke", "keys", "revoke", key_name)[1].startswith("revoked key ")

    applied = step("launch apply", "launch", "apply", str(SAMPLES))
    assert len(applied[1].splitlines()) == 3
    planned = step("launch plan", "launch", "plan", str(SAMPLES))
    assert planned[1].endswith("Plan: 0 to create, 0 to update, 0 to amend, 3 unchanged.\n")
    assert "smart-export" in step("launch list", "launch", "list")[1]
    assert step("launch show", "launch", "show", "smart-export")[1].startswith("key: smart-export\n")
    target = "0.15" if mode == "url" else "0.12"
    amend = ["launch", "amend", "ai-summaries", "--kpi", "adoption", "--target", target]
    step("launch amend", *amend, "--reason", f"checked through {mode}")
    # No event matches the exposure matchers: the check warns, and says so with exit 2.
    checked = step("launch check", "launch", "check", "smart-export", code=2)
    assert "\nWarnings:\n" in checked[1]

    imported = step("import", "import", "--quiet", str(events_file(tmp_path / f"{mode}.ndjson", mode, 500)))
    assert imported[1].startswith("imported 1 file(s): 501 events, 500 inserted, 0 duplicates, 1 rejected")

    report = json.loads(step("report", "report", "smart-export")[1])
    assert report["launch_key"] == "smart-export"
    markdown = step("report md", "report", "smart-export", "--format", "md", "--segment", "plan")[1]
    assert markdown.startswith("# Smart export: ")
    review = step("review md", "review", "--format", "md")[1]
    assert review.startswith("# Weekly launch review: ")
    out = tmp_path / f"review-{mode}.html"
    assert " review (" in step("review html", "review", "--out", str(out))[1]
    assert "Plotly" in out.read_text(encoding="utf-8")

    backup_to = tmp_path / f"backup-{mode}"
    backed = step("backup", "backup", "--out", str(backup_to))
    assert backed[1].startswith(f"backed up to {backup_to}: events ")
    assert (backup_to / "manifest.json").is_file() and (backup_to / "events.parquet").is_file()
    backed = step("backup (service folder)", "backup")
    folder = Path(backed[1].split("backed up to ", 1)[1].split(":", 1)[0])
    assert folder.parent == service.db.parent / "backups" and (folder / "manifest.json").is_file()
    return results


# Read commands whose output is the same whoever answers them (fixed as_of; errors included).
COMPARED: list[tuple[str, ...]] = [
    ("keys", "list"),
    ("launch", "list"),
    ("launch", "show", "ai-summaries"),
    ("launch", "plan", str(SAMPLES)),
    ("launch", "check", "smart-export", "--as-of", AS_OF),
    ("report", "smart-export", "--as-of", AS_OF),
    ("report", "team-workspaces", "--as-of", AS_OF, "--format", "md", "--segment", "plan"),
    ("review", "--week", "2026-W42", "--format", "md"),
    ("launch", "show", "nope"),
    ("report", "smart-export", "--as-of", "yesterday"),
    ("review", "--week", "2026-W60"),
    ("launch", "amend", "smart-export", "--kpi", "nope", "--target", "0.1", "--reason", "r"),
]


def comparable(argv: tuple[str, ...], result: Result) -> Result:
    code, out, err = result
    if argv[:2] == ("keys", "list"):
        # The CLI's own local key is live while the service runs and revoked once it stops.
        out = "\n".join(line for line in out.splitlines() if discovery.LOCAL_KEY_NAME not in line)
    if argv[0] == "review":
        out = re.sub(r"Generated [^\n]*", "Generated ...", out)
    return code, out, err


def test_every_command_goes_through_the_running_service(
    served: Service, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = discovery.read_announcement(str(served.db))
    assert info is not None
    admin = httpx.post(
        f"{served.url}/api/keys",
        json={"name": "ci", "scope": "admin"},
        headers={"Authorization": f"Bearer {info.key}"},
    )
    write = httpx.post(
        f"{served.url}/api/keys",
        json={"name": "app", "scope": "write"},
        headers={"Authorization": f"Bearer {info.key}"},
    )
    assert (admin.status_code, write.status_code) == (201, 201)
    traffic = Traffic(served.url, write.json()["secret"])
    sender = threading.Thread(target=traffic.run, name="traffic", daemon=True)
    sender.start()
    try:
        # 1. Through LANDED_URL and LANDED_KEY, from this process; cwd has no database at all.
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("LANDED_URL", served.url)
        monkeypatch.setenv("LANDED_KEY", admin.json()["secret"])
        every_command(lambda *argv: in_process(capsys, *argv), mode="url", tmp_path=tmp_path, service=served)
        monkeypatch.delenv("LANDED_URL")
        monkeypatch.delenv("LANDED_KEY")

        # 2. Through the discovery file beside the database, each command its own process.
        db = ["--db", str(served.db)]

        def by_file(*argv: str) -> Result:
            # --db goes after the command and its action, where every command takes it.
            split = 2 if argv[0] in {"keys", "launch"} else 1
            return as_process(*argv[:split], *db, *argv[split:], cwd=tmp_path)

        every_command(by_file, mode="file", tmp_path=tmp_path, service=served)
        # Importing a file again adds nothing (the url run imported this one).
        again = by_file("import", "--quiet", str(tmp_path / "url.ndjson"))
        assert_ran(again, "import again")
        assert "0 inserted, 500 duplicates" in again[1]
        # A second service on the same database, and a restore into it, are refused.
        second = as_process("serve", *db, "--port", str(free_port()), cwd=tmp_path)
        assert second[0] == 1 and "already runs on" in second[2]
        assert in_process(capsys, "restore", *db, str(tmp_path / "backup-url"))[0] == 1
        served_results = {argv: comparable(argv, by_file(*argv)) for argv in COMPARED}
        assert served.alive()
        assert len(traffic.acknowledged) > 0
    finally:
        traffic.stop.set()
        sender.join(timeout=60)

    assert served.stop() == 0
    assert not discovery.service_file(str(served.db)).exists()  # type: ignore[union-attr]
    # Ingestion lost nothing: every acknowledged event is stored, once.
    storage = Storage(str(served.db))
    try:
        write_id = write.json()["key_id"]
        rows = storage.cursor().execute("select message_id from events where source = ?", [write_id])
        stored = [r[0] for r in rows.fetchall()]
        local_key = next(k for k in storage.list_keys() if k.name == discovery.LOCAL_KEY_NAME)
    finally:
        storage.close()
    assert sorted(stored) == sorted(traffic.acknowledged)
    assert local_key.revoked_at is not None  # the CLI's key dies with the service

    # 3. No service: the same commands open the file, and print the same.
    for argv in COMPARED:
        split = 2 if argv[0] in {"keys", "launch"} else 1
        local = comparable(argv, in_process(capsys, *argv[:split], "--db", str(served.db), *argv[split:]))
        assert local == served_results[argv], " ".join(argv)
    codes = {" ".join(argv): served_results[argv][0] for argv in COMPARED}
    assert codes == {
        **{" ".join(argv): 0 for argv in COMPARED[:8]},
        f"launch plan {SAMPLES}": 0,
        f"launch check smart-export --as-of {AS_OF}": 2,
        "launch show nope": 1,
        "report smart-export --as-of yesterday": 1,
        "review --week 2026-W60": 1,
        "launch amend smart-export --kpi nope --target 0.1 --reason r": 1,
    }


# -- the discovery file ---------------------------------------------------------------------


def test_announcement_is_private_and_withdrawn(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    path = discovery.announce(db, url="http://127.0.0.1:1", key="la_secret")
    assert path == tmp_path / "x.duckdb.service.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {
        "format": "landed-service-1",
        "url": "http://127.0.0.1:1",
        "key": "la_secret",
        "pid": os.getpid(),
        "db_path": db,
        "started_at": data["started_at"],
    }
    assert datetime.fromisoformat(data["started_at"]) <= datetime.now(UTC)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    # Nothing listens at that address: the file is stale.
    assert discovery.find_service(db) is None
    discovery.withdraw(db)
    assert not path.exists()


def test_a_later_services_announcement_stays(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    path = discovery.announce(db, url="http://127.0.0.1:1", key="k")
    assert path is not None
    path.write_bytes(path.read_bytes().replace(str(os.getpid()).encode(), b"1"))
    discovery.withdraw(db)
    assert path.exists()


def test_stale_announcements_are_ignored(tmp_path: Path, capsys: Capsys) -> None:
    db = str(tmp_path / "x.duckdb")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with socket_listening() as url:
        # A live process and a listening port, but the process is gone: stale.
        path = discovery.announce(db, url=url, key="k")
        assert path is not None
        path.write_bytes(path.read_bytes().replace(str(os.getpid()).encode(), str(gone.pid).encode()))
        assert discovery.find_service(db) is None
    # This process is alive, but nothing listens at the address: stale too.
    discovery.announce(db, url=f"http://127.0.0.1:{free_port()}", key="k")
    code, out, err = in_process(capsys, "keys", "create", "--db", db, "--name", "web")
    assert (code, err) == (0, "")
    assert out.startswith("created write key 'web'")
    # A file that is not an announcement at all is ignored as well.
    discovery.service_file(db).write_text("{", encoding="utf-8")  # type: ignore[union-attr]
    assert in_process(capsys, "keys", "list", "--db", db)[0] == 0


@contextmanager
def socket_listening() -> Iterator[str]:
    """A TCP socket listening on 127.0.0.1 for the block's duration; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- pointing the CLI at a service ----------------------------------------------------------


def test_url_without_a_key_is_refused(capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANDED_KEY", raising=False)
    code, out, err = in_process(capsys, "launch", "list", "--url", "http://127.0.0.1:1")
    assert (code, out) == (1, "")
    assert err.startswith("landed: --url names the service at http://127.0.0.1:1, but no key is given")


def test_unreachable_service_is_an_error_not_a_fallback(
    capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LANDED_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("LANDED_KEY", "la_x")
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process(capsys, "keys", "list")
    assert code == 1
    assert err.startswith("landed: cannot reach the service at http://127.0.0.1:")
    assert not (tmp_path / "landed.duckdb").exists()
    # --db names a database on this machine: it wins over LANDED_URL.
    assert in_process(capsys, "keys", "list", "--db", str(tmp_path / "x.duckdb"))[0] == 0


def test_a_refused_key_says_where_it_came_from(served: Service, capsys: Capsys) -> None:
    code, _, err = in_process(capsys, "launch", "list", "--url", served.url, "--key", "la_wrong")
    assert code == 1
    assert err == (
        f"landed: the service at {served.url} refused the key "
        "(unknown or revoked key; the key came from --url and --key)\n"
    )
    assert served.stop() == 0
