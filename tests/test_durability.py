"""Durability of ingestion: what a 200 promises must survive a crash, a full disk, a read-only
database and a shutdown.

The service replies 200 only after the group commit, so every event that got a 200 must be in
the database exactly once, whatever happens next; a request that got no 200 may or may not have
been stored, but a batch is one transaction, so it is stored whole or not at all (never some of
its 100 events), and a resend after the fault makes every event present exactly once.

Most tests run `python -m app.cli serve` in its own process on 127.0.0.1 (so it can be killed,
limited and signalled like the real thing) while 4 client threads send Segment batches with
unique messageIds, each waiting for its answer before sending the next batch, as SDKs do. The
database is read with a read-only DuckDB connection only while the service is down (DuckDB lets
one process open a file for writing); a read-only open replays the WAL exactly as a restart does.
The storage-fault tests that need a hand on the open storage (the test hook, the immutable
attribute) run the app in-process through TestClient instead.
"""

from __future__ import annotations

import random
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from app.local_server import free_port
from app.main import create_app
from app.settings import Settings
from app.storage import Storage
from tests.helpers.live import Keys, start_serve, wait_until_listening

pytestmark = pytest.mark.slow  # the inner loop (`make check`) skips it; `make test` runs it

BATCH_SIZE = 100
CLIENTS = 4
EVENT_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# -- the service in its own process ---------------------------------------------------------


class Service:
    """`landed serve` on one database file, started and stopped (or killed) by the test."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.log = db.with_name(db.name + ".log")
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, preexec_fn: Callable[[], None] | None = None) -> str:
        assert self.process is None, "the service is already running"
        port = free_port()
        with self.log.open("ab") as output:
            self.process = start_serve(self.db, port, output, preexec_fn=preexec_fn)
        wait_until_listening(port, self.process, self.log)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """The exit status (negative: killed by that signal) once the process has ended."""
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(timeout=10)

    def stop(self) -> int:
        """Graceful stop (SIGINT, as Ctrl+C): the lifespan drains the writer and closes."""
        self.signal(signal.SIGINT)
        return self.wait(timeout=30)

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
        self.process = None

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    served = Service(tmp_path / "landed.duckdb")
    yield served
    served.ensure_stopped()


def create_key(db: Path, scope: str = "write") -> str:
    """A key created with the service down (DuckDB lets one process write the file)."""
    storage = Storage(str(db))
    try:
        return storage.create_key(f"durability-{scope}", scope)[1]
    finally:
        storage.close()


# -- batches and the clients that send them -------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One /v1/batch request: its messageIds and its serialised body."""

    name: str
    ids: tuple[str, ...]
    body: bytes


def make_batch(name: str, size: int = BATCH_SIZE) -> Batch:
    ids = tuple(f"{name}-{index:03d}" for index in range(size))
    events = [
        {
            "type": "track",
            "messageId": message_id,
            "event": "Feature Used",
            "userId": f"user-{index % 37}",
            "timestamp": (EVENT_TIME + timedelta(seconds=index)).isoformat(),
            "properties": {"feature": "durability", "index": index},
        }
        for index, message_id in enumerate(ids)
    ]
    body = orjson.dumps({"batch": events, "sentAt": EVENT_TIME.isoformat()})
    return Batch(name, ids, body)


@dataclass
class Outcome:
    """What the clients saw: batches with a 200, batches without, and every answer's status."""

    acked: list[Batch] = field(default_factory=list)
    unacked: list[Batch] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    problems: list[str] = field(default_factory=list)
    details_503: list[str] = field(default_factory=list)


class Traffic:
    """`clients` threads, each on its own keep-alive connection, first resending its share of
    `resend`, then (with `prefix`) sending new batches until stopped, until the service stops
    answering, after `max_new` new batches, after `max_503` answers 503, or at `seconds`.

    Allowed answers are 200 and, with `allow_503`, 503 with Retry-After and the JSON error
    shape; anything else is recorded as a problem and that client stops."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        resend: Sequence[Batch] = (),
        prefix: str | None = None,
        clients: int = CLIENTS,
        max_new: int = 2_000,
        allow_503: bool = False,
        max_503: int = 2,
        seconds: float = 30.0,
    ) -> None:
        self._url, self._key = url, key
        self._resend, self._prefix, self._clients = list(resend), prefix, clients
        self._max_new, self._allow_503, self._max_503 = max_new, allow_503, max_503
        self._deadline = time.monotonic() + seconds
        self._stop = threading.Event()
        self._first_ack = threading.Event()
        self._lock = threading.Lock()
        self.outcome = Outcome()
        self._threads = [
            threading.Thread(target=self._client, args=(index,), name=f"client-{index}", daemon=True)
            for index in range(clients)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wait_for_first_ack(self, timeout: float = 20) -> None:
        """Blocks until some batch got a 200: the service's first request is slow (about a
        second of warm-up), and traffic should be flowing when the test strikes."""
        assert self._first_ack.wait(timeout), f"no 200 within {timeout} s: {self.outcome}"

    def join(self, timeout: float = 30) -> Outcome:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "a client thread did not finish"
        return self.outcome

    def _client(self, index: int) -> None:
        todo = iter(self._resend[index :: self._clients])
        sent_new = answered_503 = 0
        with httpx.Client(base_url=self._url, auth=(self._key, ""), timeout=20) as http:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                batch = next(todo, None)
                if batch is None:
                    if self._prefix is None or sent_new >= self._max_new:
                        break
                    batch = make_batch(f"{self._prefix}-c{index}-b{sent_new:05d}")
                    sent_new += 1
                try:
                    response = http.post(
                        "/v1/batch", content=batch.body, headers={"Content-Type": "application/json"}
                    )
                except httpx.TransportError:
                    # The service died or is stopping: this batch may or may not be stored.
                    self._record(batch, None)
                    break
                if not self._record(batch, response):
                    break
                if response.status_code == 503:
                    answered_503 += 1
                    if answered_503 >= self._max_503:
                        break
        with self._lock:
            self.outcome.unacked.extend(todo)  # resends never attempted stay owed

    def _record(self, batch: Batch, response: httpx.Response | None) -> bool:
        """Files the batch under its outcome; False if the answer was not an allowed one."""
        problem = None
        if response is None:
            ok = False
        else:
            ok = response.status_code == 200
            if ok:
                body = response.json()
                if body["inserted"] + body["duplicates"] != len(batch.ids):
                    problem = f"{batch.name}: 200 but counts {body}"
            elif response.status_code == 503 and self._allow_503:
                problem = _problem_with_503(response)
                with self._lock:
                    self.outcome.details_503.append(str(response.json().get("detail")))
            else:
                problem = f"{batch.name}: {response.status_code} {response.text[:300]}"
        with self._lock:
            if response is None:
                self.outcome.transport_errors += 1
            else:
                self.outcome.statuses[response.status_code] += 1
            (self.outcome.acked if ok else self.outcome.unacked).append(batch)
            if ok:
                self._first_ack.set()
            if problem:
                self.outcome.problems.append(problem)
        return problem is None


def _problem_with_503(response: httpx.Response) -> str | None:
    body = response.json()
    if set(body) != {"code", "message", "detail"} or body["code"] != "storage_unavailable":
        return f"503 with an unexpected body: {body}"
    if not response.headers.get("Retry-After", "").isdigit():
        return f"503 without a Retry-After in seconds: {dict(response.headers)}"
    return None


# -- what the database holds ----------------------------------------------------------------


PREFILL_SOURCE = "prefill"  # rows a test wrote straight into the file, not sent by clients


def stored_counts(db: Path) -> Counter[str]:
    """Rows per message_id of the events clients sent, read while the service is down (the
    WAL is replayed read-only, as a restart would)."""
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute(
            "select message_id, count(*) from events where source <> ? group by message_id",
            [PREFILL_SOURCE],
        ).fetchall()
    return Counter({message_id: int(count) for message_id, count in rows})


def check_stored(db: Path, acked: Sequence[Batch], unacked: Sequence[Batch], when: str) -> None:
    """Every acked event stored exactly once; every other batch stored whole or not at all;
    nothing stored that was never sent."""
    counts = stored_counts(db)
    doubled = sorted(m for m, n in counts.items() if n != 1)
    assert not doubled, f"{when}: stored more than once: {doubled[:5]}"
    lost = [b.name for b in acked if sum(counts[i] for i in b.ids) != len(b.ids)]
    assert not lost, f"{when}: {len(lost)} batches got a 200 but are not all stored: {lost[:5]}"
    halves = {
        b.name: stored for b in unacked
        if (stored := sum(counts[i] for i in b.ids)) not in (0, len(b.ids))
    }
    assert not halves, f"{when}: batches stored in part: {halves}"
    sent = {i for b in [*acked, *unacked] for i in b.ids}
    assert set(counts) <= sent, f"{when}: stored events that were never sent"


def check_exactly_once(db: Path, batches: Sequence[Batch], when: str) -> None:
    counts = stored_counts(db)
    expected = {i for b in batches for i in b.ids}
    assert len(expected) == len(batches) * BATCH_SIZE
    assert set(counts) == expected, (
        f"{when}: {len(expected - set(counts))} sent events missing, "
        f"{len(set(counts) - expected)} unexpected"
    )
    assert set(counts.values()) == {1}, f"{when}: some events stored more than once"


# -- 1. crash: SIGKILL at random moments ----------------------------------------------------


def test_sigkill_loses_no_acknowledged_event_and_resends_complete_the_data(
    service: Service,
) -> None:
    """4 rounds: start, wait for traffic to flow, SIGKILL 0.3-1.5 s later (seeded), and check
    the file with the service down; each round first resends what the last one left owed."""
    rng = random.Random(20261122)
    key = create_key(service.db)
    acked: list[Batch] = []
    owed: list[Batch] = []  # sent without a 200: resent in the next round
    in_flight_at_kill = 0
    for round_no in range(4):
        url = service.start()
        traffic = Traffic(url, key, resend=owed, prefix=f"r{round_no}")
        traffic.wait_for_first_ack()
        time.sleep(rng.uniform(0.3, 1.5))
        service.kill()
        outcome = traffic.join()
        assert not outcome.problems, (outcome.problems[:5], service.log_tail())
        acked.extend(outcome.acked)
        owed = outcome.unacked
        in_flight_at_kill += outcome.transport_errors
        check_stored(service.db, acked, owed, f"after kill {round_no + 1}")

    assert in_flight_at_kill, "no request was in flight at any kill: the test proves nothing"
    url = service.start()
    outcome = Traffic(url, key, resend=owed).join()
    assert not outcome.problems and not outcome.unacked, outcome
    assert service.stop() == 0, service.log_tail()
    check_exactly_once(service.db, [*acked, *outcome.acked], "after the resends")


# -- 2. storage faults ----------------------------------------------------------------------


def _assert_503(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    body = response.json()
    assert set(body) == {"code", "message", "detail"}
    assert body["code"] == "storage_unavailable"


def _launch_spec(key: str) -> dict[str, Any]:
    return {
        "key": key, "name": "Durable", "owner": "po@example.com",
        "launched_at": "2099-03-01T09:00:00Z",
        "signals": {"exposed": [{"event": "Feature Seen"}], "used": [{"event": "Feature Used"}]},
        "kpis": [{"id": "adoption", "metric": "adoption_rate", "comparator": ">=", "target": 0.2}],
    }


def _mixed_batch() -> dict[str, Any]:
    """Events, an identity link and one invalid event, so every table a batch writes is hit."""
    return {"batch": [
        {"type": "track", "event": "Feature Used", "userId": "u1", "messageId": "f1"},
        {"type": "track", "event": "Feature Used", "userId": "u2", "messageId": "f2"},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "f3"},
        {"type": "track", "userId": "u1", "messageId": "f4"},  # no event name: rejected
    ]}


def _table_counts(storage: Storage) -> tuple[int, int, int]:
    cursor = storage.cursor()
    counts = []
    for table in ("events", "identity_links", "rejected_events"):
        row = cursor.execute(f"select count(*) from {table}").fetchone()
        assert row is not None
        counts.append(int(row[0]))
    return counts[0], counts[1], counts[2]


def _writes_fail_then_recover(
    client: TestClient, keys: Keys, storage: Storage, *, break_storage: Callable[[], None],
    repair: Callable[[], None],
) -> None:
    """With storage broken every write is a 503 (never a 200) and reads still work; once it
    is repaired the very same requests succeed without a restart, stored once and whole."""
    batch = _mixed_batch()
    spec = _launch_spec("durable")
    write = {"Authorization": f"Bearer {keys.write}"}
    admin = {"Authorization": f"Bearer {keys.admin}"}
    break_storage()
    try:
        for _ in range(3):
            _assert_503(client.post("/v1/batch", json=batch, headers=write))
        _assert_503(client.post("/v1/track", json=batch["batch"][0], headers=write))
        _assert_503(client.post("/batch", json={"api_key": keys.write, "batch": [
            {"event": "Feature Used", "distinct_id": "u9", "uuid": "0b4f2a3e-0000-4000-8000-000000000001"}
        ]}))
        _assert_503(client.put("/api/launches/durable", json=spec, headers=admin))
        listed = client.get("/api/launches", headers={"Authorization": f"Bearer {keys.read}"})
        assert listed.status_code == 200 and listed.json() == []
    finally:
        repair()
    assert _table_counts(storage) == (0, 0, 0), "a failed write left something behind"

    response = client.post("/v1/batch", json=batch, headers=write)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True, "accepted": 3, "inserted": 3, "duplicates": 0, "rejected": 1
    }
    assert client.put("/api/launches/durable", json=spec, headers=admin).status_code == 201
    again = client.post("/v1/batch", json=batch, headers=write)
    assert again.status_code == 200 and again.json()["duplicates"] == 3
    assert _table_counts(storage) == (3, 1, 1)


def test_injected_write_fault_is_503_until_cleared(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    _writes_fail_then_recover(
        client, keys, storage,
        break_storage=lambda: storage.inject_write_fault(duckdb.IOException("disk full")),
        repair=lambda: storage.inject_write_fault(None),
    )


def _chattr(flag: str, paths: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chattr", flag, *map(str, paths)], capture_output=True, text=True, timeout=10, check=False
    )


def _make_immutable(paths: Sequence[Path]) -> None:
    """chattr +i on `paths` (the first is probed), which stops writes even by root, even
    through descriptors already open; skips the test where that cannot be set or enforced."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    done = _chattr("+i", paths)
    if done.returncode != 0:
        _chattr("-i", paths)
        pytest.skip(f"cannot set the immutable attribute here: {done.stderr.strip()}")
    probe = paths[0] / "probe" if paths[0].is_dir() else paths[0]
    try:
        with probe.open("ab"):
            pass
    except PermissionError:
        return
    if probe != paths[0]:
        probe.unlink()
    _chattr("-i", paths)
    pytest.skip("the immutable attribute does not stop writes on this file system")


def _make_writable(paths: Sequence[Path]) -> None:
    undone = _chattr("-i", paths)
    assert undone.returncode == 0, undone.stderr


@pytest.mark.parametrize("wal", ["open", "to_create"])
def test_read_only_database_is_503_until_writable(
    client: TestClient, keys: Keys, storage: Storage, settings: Settings, wal: str
) -> None:
    """The database made read-only under the running service, even for root: the immutable
    attribute (chattr +i) on the folder, the database and its WAL makes the kernel refuse
    writes through descriptors already open (EPERM) and the creation of a new WAL, which
    file permissions do not do for root. `wal`: whether the WAL is open when storage breaks,
    or was checkpointed away so the next commit must create it."""
    folder = Path(settings.db_path).parent
    if wal == "to_create":
        storage.cursor().execute("checkpoint")
        assert not Path(settings.db_path + ".wal").exists()
    else:
        assert Path(settings.db_path + ".wal").exists()
    frozen = [folder, *folder.iterdir()]
    _writes_fail_then_recover(
        client, keys, storage,
        break_storage=lambda: _make_immutable(frozen), repair=lambda: _make_writable(frozen),
    )


def _one_event(message_id: str) -> dict[str, Any]:
    return {"batch": [
        {"type": "track", "event": "Feature Used", "userId": "u1", "messageId": message_id}
    ]}


def _checkpoint_into_unwritable_file(client: TestClient, keys: Keys, storage: Storage) -> Path:
    """Breaks storage the hard way: the database file immutable (its WAL and folder stay
    writable) and DuckDB's automatic checkpoint lowered from 16 MiB of WAL to 1 KiB (a global
    setting, so it applies to the writer's connection), so the next commit checkpoints. The
    checkpoint cannot write the file, DuckDB invalidates the database (FATAL), and the
    writer's reopen fails as well, since the file cannot be opened for writing. Returns the
    file, still immutable; asserts the commit that hit all this was answered 503."""
    write = {"Authorization": f"Bearer {keys.write}"}
    assert client.post("/v1/batch", json=_one_event("before"), headers=write).status_code == 200
    storage.cursor().execute("set checkpoint_threshold = '1KB'")
    db = Path(storage.db_path)
    _make_immutable([db])
    try:
        response = client.post("/v1/batch", json=_one_event("during"), headers=write)
        _assert_503(response)
        assert "checkpoint" in response.json()["detail"].lower()
    except BaseException:
        _make_writable([db])
        raise
    return db


def test_checkpoint_into_unwritable_file_is_503_and_recovers(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    write = {"Authorization": f"Bearer {keys.write}"}
    db = _checkpoint_into_unwritable_file(client, keys, storage)
    try:
        for _ in range(3):
            _assert_503(client.post("/v1/batch", json=_one_event("during"), headers=write))
    finally:
        _make_writable([db])
    # Recovery needs at most two attempts (the first may be refused: see
    # test_first_write_after_a_failed_reopen_succeeds).
    statuses = [client.post("/v1/batch", json=_one_event("during"), headers=write).status_code
                for _ in range(2)]
    assert statuses in ([200, 200], [503, 200]), statuses
    assert _table_counts(storage)[0] == 2, "the event before or the resent event is not stored once"
    assert client.get("/api/launches", headers={"Authorization": f"Bearer {keys.read}"}).json() == []


def test_reads_after_a_failed_reopen_are_never_a_bare_500(
    keys: Keys, storage: Storage, settings: Settings
) -> None:
    read = {"Authorization": f"Bearer {keys.read}"}
    with TestClient(create_app(settings, storage), raise_server_exceptions=False) as client:
        db = _checkpoint_into_unwritable_file(client, keys, storage)
        paths = ["/api/launches", "/api/launches/nope/report", "/", "/launches/nope"]
        try:
            for path in paths:
                during = client.get(path, headers=read)
                if during.status_code >= 500:
                    _assert_503(during)
        finally:
            _make_writable([db])
        for path in paths:
            after = client.get(path, headers=read)
            assert after.status_code < 500, (path, after.status_code, after.text[:200])


def test_first_write_after_a_failed_reopen_succeeds(
    client: TestClient, keys: Keys, storage: Storage
) -> None:
    db = _checkpoint_into_unwritable_file(client, keys, storage)
    _make_writable([db])
    write = {"Authorization": f"Bearer {keys.write}"}
    response = client.post("/v1/batch", json=_one_event("during"), headers=write)
    assert response.status_code == 200, response.text


DISK_LIMIT_HEADROOM = 2 * 1024 * 1024


@pytest.mark.parametrize("recovery", ["in_place", "restart"])
def test_disk_full_is_503_and_acknowledged_events_survive(
    service: Service, recovery: str
) -> None:
    """A real full disk: the service runs with a file-size limit (RLIMIT_FSIZE) a little above
    its database's size, with SIGXFSZ ignored so writes past it fail with EFBIG. Each of 4
    clients sends until it has had two 503s. `in_place`: the test raises the soft limit of the
    running service (prlimit) and the refused batches then succeed without a restart.
    `restart`: the service is stopped with the disk still full, so its closing checkpoint
    fails and the acknowledged events live only in the WAL; it is restarted without the
    limit and the refused batches are resent there."""
    key = create_key(service.db)
    soft = service.db.stat().st_size + DISK_LIMIT_HEADROOM
    hard = soft * 64

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    url = service.start(preexec_fn=limit_file_size)
    outcome = Traffic(url, key, prefix="full", allow_503=True, max_new=500).join(timeout=60)
    assert not outcome.problems, (outcome.problems[:5], service.log_tail())
    assert outcome.transport_errors == 0, service.log_tail()
    assert set(outcome.statuses) == {200, 503}, f"the limit was never hit: {outcome.statuses}"
    assert outcome.acked and len(outcome.unacked) == outcome.statuses[503]
    refused = outcome.unacked

    if recovery == "in_place":
        resource.prlimit(service.pid, resource.RLIMIT_FSIZE, (hard, hard))
    else:
        # Keep the disk full for the closing checkpoint too: the database file may not grow.
        resource.prlimit(service.pid, resource.RLIMIT_FSIZE, (service.db.stat().st_size, hard))
        assert service.stop() == 0, service.log_tail()
        assert Path(str(service.db) + ".wal").exists(), "the checkpoint did not hit the limit"
        check_stored(service.db, outcome.acked, refused, "after the stop at the limit")
        assert not stored_counts(service.db).keys() & {i for b in refused for i in b.ids}, (
            "a batch refused with 503 was stored"
        )
        url = service.start()
    resent = Traffic(url, key, resend=refused, clients=1).join()
    assert not resent.problems and not resent.unacked, resent
    assert resent.statuses == Counter({200: len(refused)})
    assert service.stop() == 0, service.log_tail()
    check_exactly_once(service.db, [*outcome.acked, *refused], f"after recovery ({recovery})")


CHECKPOINT_WAL_BYTES = 16 * 1024 * 1024  # DuckDB's default checkpoint_threshold
PREFILL_ROWS = 200_000
PREFILL_SQL = """
insert into events
select ?, 'prefill-' || i, 'track', 'Feature Used', 'user-' || (i % 1000), null, null, null,
       json_object('i', i, 'pad', md5(i::varchar) || md5((i + 1)::varchar)), null, null,
       t, t, t, t, false, 'segment'
from range(?) r(i), (select timestamp '2025-12-01 09:00:00' as t)
"""


def test_disk_full_at_checkpoint_reopens_the_database(service: Service) -> None:
    """A full disk that the WAL does not hit first: the database file may not grow, the WAL
    may (the file-size limit is above 16 MiB, the size at which DuckDB checkpoints the WAL
    into the database file). The checkpoint after a commit then fails with a FATAL error that
    invalidates the database, and the writer must reopen the file. Requests get 200 or 503,
    reads keep working, acknowledged events survive, and after the limit is raised the
    refused batches succeed without a restart."""
    key = create_key(service.db)
    read_key = create_key(service.db, "read")
    with duckdb.connect(str(service.db)) as conn:
        conn.execute(PREFILL_SQL, [PREFILL_SOURCE, PREFILL_ROWS])
    soft = service.db.stat().st_size + 256 * 1024  # one spare DuckDB block
    assert soft > CHECKPOINT_WAL_BYTES + 1024 * 1024, "prefill more rows: the WAL must fit"
    hard = soft * 16

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    url = service.start(preexec_fn=limit_file_size)
    outcome = Traffic(
        url, key, prefix="ckpt", allow_503=True, max_new=1_000, seconds=100
    ).join(timeout=110)
    assert not outcome.problems, (outcome.problems[:5], service.log_tail())
    assert outcome.transport_errors == 0, service.log_tail()
    assert set(outcome.statuses) == {200, 503}, f"the limit was never hit: {outcome.statuses}"
    assert any("checkpoint" in d.lower() for d in outcome.details_503), outcome.details_503[:3]
    with httpx.Client(base_url=url, auth=(read_key, ""), timeout=20) as http:
        assert http.get("/api/launches").status_code == 200
        assert http.get("/").status_code == 200

    resource.prlimit(service.pid, resource.RLIMIT_FSIZE, (hard, hard))
    resent = Traffic(url, key, resend=outcome.unacked, clients=1).join()
    assert not resent.problems and not resent.unacked, resent
    assert service.stop() == 0, service.log_tail()
    check_exactly_once(service.db, [*outcome.acked, *outcome.unacked], "after the checkpoint fault")
    with duckdb.connect(str(service.db), read_only=True) as conn:
        row = conn.execute("select count(*) from events where source = ?", [PREFILL_SOURCE])
        assert row.fetchone() == (PREFILL_ROWS,)


# -- 3. graceful shutdown: SIGTERM ----------------------------------------------------------


def test_sigterm_drains_and_keeps_every_batch_whole(service: Service) -> None:
    """SIGTERM while 4 clients send: in-flight batches are answered and committed, the writer
    drains and the database is closed within seconds; a resend after restart completes it."""
    key = create_key(service.db)
    url = service.start()
    traffic = Traffic(url, key, prefix="term")
    traffic.wait_for_first_ack()
    time.sleep(random.Random(7).uniform(0.5, 1.0))
    service.signal(signal.SIGTERM)
    signalled = time.monotonic()
    # Exit status: 0, or death by the re-raised SIGTERM after the graceful shutdown (see
    # test_sigterm_exit_status_is_zero).
    assert service.wait(timeout=10) in (0, -signal.SIGTERM), service.log_tail()
    assert time.monotonic() - signalled < 5, "shutdown took more than 5 s"
    outcome = traffic.join()
    assert not outcome.problems, outcome.problems[:5]
    # The lifespan closed the database: its closing checkpoint folded the WAL in and removed
    # it, which a process that merely died would not have done.
    assert not Path(str(service.db) + ".wal").exists(), "the database was not closed cleanly"
    check_stored(service.db, outcome.acked, outcome.unacked, "after SIGTERM")

    url = service.start()
    resent = Traffic(url, key, resend=outcome.unacked).join()
    assert not resent.problems and not resent.unacked, resent
    assert service.stop() == 0, service.log_tail()
    check_exactly_once(service.db, [*outcome.acked, *resent.acked], "after the resends")


def test_sigterm_exit_status_is_zero(service: Service) -> None:
    key = create_key(service.db)
    url = service.start()
    with httpx.Client(base_url=url, auth=(key, ""), timeout=20) as http:
        assert http.post("/v1/batch", content=make_batch("one").body).status_code == 200
    service.signal(signal.SIGTERM)
    assert service.wait(timeout=10) == 0
