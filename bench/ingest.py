"""Ingest throughput end to end: the real service over HTTP against a raw DuckDB append.

The service runs as `landed serve` in its own process, on a free port on 127.0.0.1, with a fresh
database file and one write key. Another process generates the events (BENCH_INGEST_EVENTS,
200,000 by default), serialises them into Segment batches of 100 before the clock starts, and
sends them from 4 concurrent keep-alive connections, then again from 64 (issue 15), with
batches of 100 and of 500 (plain HTTP/1.1 over asyncio, so the sender takes as little as
possible of the 2 cores from the server); each connection waits for its 200 (sent only after
the commit) before sending its next batch, like an SDK does. The rate is events
divided by the wall time from the first request to the last response.

The baseline is what DuckDB alone does with the same rows: they are read back from the
service's database and appended, as one Arrow table, into an identical fresh events table with
the same primary key. A second figure runs the service's own insert statement once per
100 rows with a commit each, which is what the service would pay without group commit.
Finally the database must hold exactly the events sent: nothing lost, nothing doubled.

Where the time goes: the two stages every event passes through are also timed alone, in this
process and without HTTP, on the same bodies. Parsing is the request thread's work (JSON
decode, the per-event checks and time correction, conversion to Arrow); inserting is the
writer's group commit (`write_ingest_group`) on groups of 400 rows, the largest group 4 clients
with one batch of 100 in flight each can form. The insert is timed a second time while another
Python thread runs (with the GIL switch interval `landed serve` sets), as the event loop does in
the service: DuckDB's Python binding takes the GIL back several times per statement, and each
time waits for the other thread to yield it. The CPU
both stages need at 50,000 events/s, in cores, says how much of this machine the bar leaves for
HTTP and everything else.
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from app.cli import GIL_SWITCH_INTERVAL_SECONDS
from app.ingest import now_utc, parse_events, parse_time
from app.local_server import free_port
from app.queries import query, schema_statements
from app.settings import Settings
from app.storage import IngestRequest, Storage, rows_table, write_ingest_group
from bench import Row, cpus
from tests.helpers.live import start_serve, stop_gracefully, wait_until_listening

NAME = "ingest"
BATCH_SIZE = 100
CLIENTS = 4
# Many SDKs at once (issue 15): each row of the results table at 64 connections too.
MANY_CLIENTS = 64
# A second run with larger batches shows how far larger commit groups move the rate.
LARGE_BATCH_SIZE = 500
TARGET_EVENTS_PER_SECOND = 50_000  # the bar set in the ingestion issue
EVENT_NAMES = (
    "Report Exported",
    "Dashboard Viewed",
    "Feature Used",
    "Search",
    "Checkout Started",
    "Invite Sent",
    "Filter Applied",
    "Comment Added",
    "File Uploaded",
    "Settings Changed",
)


def events_to_send() -> int:
    return int(os.environ.get("BENCH_INGEST_EVENTS", "200000"))


def make_bodies(total: int, batch_size: int = BATCH_SIZE) -> list[bytes]:
    """`total` Segment track events as serialised /v1/batch bodies; deterministic, unique ids."""
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    bodies = []
    for first in range(0, total, batch_size):
        batch = []
        for index in range(first, min(first + batch_size, total)):
            at = start + timedelta(milliseconds=37 * index)
            batch.append(
                {
                    "type": "track",
                    "messageId": f"bench-{index:09d}",
                    "event": EVENT_NAMES[index % len(EVENT_NAMES)],
                    "userId": f"user-{index % 5000}" if index % 3 else None,
                    "anonymousId": f"anon-{index % 7919}",
                    "timestamp": at.isoformat(),
                    "properties": {
                        "plan": ("free", "team", "pro")[index % 3],
                        "value": index % 97,
                        "path": f"/app/{index % 40}",
                    },
                    "context": {
                        "library": {"name": "bench", "version": "1"},
                        "ip": "10.0.0.1",
                        "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
                    },
                }
            )
        sent_at = (start + timedelta(milliseconds=37 * first + 500)).isoformat()
        bodies.append(orjson.dumps({"batch": batch, "sentAt": sent_at}))
    return bodies


@dataclass
class ClientResult:
    """What the sending process saw."""

    elapsed: float = 0.0
    cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    stop_seconds: float = 0.0
    requests: int = 0
    inserted: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _send_all(
    host: str, port: int, key: str, bodies: list[bytes], clients: int = CLIENTS
) -> ClientResult:
    """Sends every body over `clients` keep-alive connections, one request in flight on each.

    The client is plain HTTP/1.1 over asyncio streams with the request heads built up front:
    on a 2-core machine every microsecond the sender spends is taken from the server, and a
    full HTTP client library costs about as much CPU per request as the service itself."""
    result = ClientResult()
    authorization = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    requests = [
        (
            f"POST /v1/batch HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {authorization}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]
    next_request = iter(requests)

    async def sender() -> None:
        # One sender per connection, each waiting for its answer before the next batch.
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for request in next_request:
                started = time.perf_counter()
                writer.write(request)
                status, body = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.requests += 1
                if status != 200:
                    result.errors.append(f"{status}: {body[:200].decode(errors='replace')}")
                    continue
                result.inserted += int(orjson.loads(body)["inserted"])
        finally:
            writer.close()

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(sender() for _ in range(clients)))
    result.elapsed = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu_started
    return result


def _client_process(
    port: int, key: str, total: int, batch_size: int, clients: int, results: Connection
) -> None:
    """Runs in its own process, so the client's work does not slow the server's interpreter."""
    bodies = make_bodies(total, batch_size)
    results.send(asyncio.run(_send_all("127.0.0.1", port, key, bodies, clients)))
    results.close()


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) a process has used so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_http(db_path: Path, total: int, batch_size: int = BATCH_SIZE, clients: int = CLIENTS) -> ClientResult:
    """Serve `db_path`, send `total` events from another process, stop the service."""
    storage = Storage(str(db_path))
    try:
        _, key = storage.create_key("bench", "write")
    finally:
        storage.close()
    port = free_port()
    log = db_path.with_suffix(".log")
    with log.open("wb") as output:
        server = start_serve(db_path, port, output)
    try:
        wait_until_listening(port, server, log)
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        client = context.Process(target=_client_process, args=(port, key, total, batch_size, clients, send))
        # The server's CPU is read around the whole client run (which includes the client's
        # event generation, during which the server is idle), so it is all ingest work.
        cpu_before = _cpu_seconds(server.pid)
        client.start()
        send.close()
        result: ClientResult = receive.recv()
        cpu_after = _cpu_seconds(server.pid)
        client.join(timeout=30)
        if cpu_before is not None and cpu_after is not None:
            result.server_cpu_seconds = cpu_after - cpu_before
    finally:
        # Stopping checkpoints what the write-ahead log still holds into the database file:
        # work the run deferred, so it is timed and reported too.
        stopping = time.perf_counter()
        stop_gracefully(server)
        stop_seconds = time.perf_counter() - stopping
    result.stop_seconds = stop_seconds
    if result.errors:
        raise RuntimeError(f"{len(result.errors)} requests failed, first: {result.errors[0]}")
    return result


def _stored(db_path: Path) -> tuple[int, int]:
    with duckdb.connect(str(db_path), read_only=True) as conn:
        row = conn.execute("select count(*), count(distinct message_id) from events").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _fresh_events_table(path: Path) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(str(path))
    statement = dict(schema_statements())["001_create_events"]
    conn.execute(statement)
    return conn


def run_baselines(db_path: Path, work: Path) -> tuple[float, float]:
    """(bulk append rate, per-100-rows insert rate) for the rows the service stored."""
    with duckdb.connect(str(db_path), read_only=True) as source:
        rows: pa.Table = source.sql("select * from events order by message_id").to_arrow_table()

    bulk = _fresh_events_table(work / "bulk.duckdb")
    try:
        started = time.perf_counter()
        bulk.begin()
        bulk.register("staged", rows)
        bulk.execute("insert into events select * from staged")
        bulk.commit()
        bulk_rate = rows.num_rows / (time.perf_counter() - started)
    finally:
        bulk.close()

    small = _fresh_events_table(work / "small.duckdb")
    try:
        started = time.perf_counter()
        for offset in range(0, rows.num_rows, BATCH_SIZE):
            small.begin()
            small.register("staged_events", rows.slice(offset, BATCH_SIZE))
            small.execute(query("insert_events")).fetchall()
            small.unregister("staged_events")
            small.commit()
        small_rate = rows.num_rows / (time.perf_counter() - started)
    finally:
        small.close()
    return bulk_rate, small_rate


@dataclass
class StageCosts:
    """Each stage timed alone: events/s and CPU microseconds per event."""

    parse_rate: float
    parse_cpu_us: float
    insert_rate: float
    insert_cpu_us: float
    contended_insert_rate: float


def parse_stage(bodies: list[bytes], source: str) -> list[IngestRequest]:
    """What the request thread does with each body, minus HTTP (see app/routes/ingest.py)."""
    requests: list[IngestRequest] = []
    settings = Settings()
    for body in bodies:
        received_at = now_utc()
        payload = orjson.loads(body)
        parsed = parse_events(
            payload["batch"],
            source=source,
            received_at=received_at,
            max_event_bytes=settings.max_event_bytes,
            body_bytes=len(body),
            batch_sent_at=parse_time(payload.get("sentAt"), "sentAt"),
        )
        requests.append(IngestRequest(source, parsed, received_at, rows_table(parsed.rows)))
    return requests


def _insert_stage(requests: list[IngestRequest], path: Path) -> tuple[float, float]:
    """(events/s, CPU us per event over all threads) of the writer's group commit alone."""
    storage = Storage(str(path))
    try:
        conn = storage.connection()  # the writer thread stays idle: nothing is submitted to it
        known_links: dict[str, datetime] = {}
        events = sum(len(batch.rows) for _, batch, _, _ in requests)
        started, cpu_started = time.perf_counter(), time.process_time()
        inserted = 0
        for first in range(0, len(requests), CLIENTS):
            results = write_ingest_group(conn, requests[first : first + CLIENTS], known_links)
            inserted += sum(result.inserted for result in results)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        stored = storage.count_events()
    finally:
        storage.close()
    if not inserted == stored == events:
        raise RuntimeError(f"group commit stage: {events} events, {inserted} inserted, {stored} stored")
    return events / elapsed, cpu / events * 1e6


def _busy_python(stop: threading.Event) -> None:
    while not stop.is_set():
        for _ in range(1000):
            pass


def measure_stages(total: int, work: Path) -> StageCosts:
    """Parse, then insert into a fresh database twice: alone, and beside a busy Python thread."""
    bodies = make_bodies(total)
    parse_stage(bodies[:10], "warm-up")  # first use of pyarrow's converters costs ~0.3 s
    started, cpu_started = time.perf_counter(), time.thread_time()
    requests = parse_stage(bodies, "bench")
    parse_elapsed, parse_cpu = time.perf_counter() - started, time.thread_time() - cpu_started
    insert_rate, insert_cpu_us = _insert_stage(requests, work / "stage-insert.duckdb")
    stop = threading.Event()
    busy = threading.Thread(target=_busy_python, args=(stop,), daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)  # as `landed serve` runs
    busy.start()
    try:
        contended_rate, _ = _insert_stage(requests, work / "stage-insert-busy.duckdb")
    finally:
        stop.set()
        busy.join()
        sys.setswitchinterval(interval)
    return StageCosts(
        parse_rate=total / parse_elapsed,
        parse_cpu_us=parse_cpu / total * 1e6,
        insert_rate=insert_rate,
        insert_cpu_us=insert_cpu_us,
        contended_insert_rate=contended_rate,
    )


def stage_rows(stages: StageCosts) -> list[Row]:
    cores_needed = TARGET_EVENTS_PER_SECOND * (stages.parse_cpu_us + stages.insert_cpu_us) / 1e6
    group = CLIENTS * BATCH_SIZE
    return [
        Row(
            NAME,
            "stage alone: parsing (JSON, per-event checks, Arrow), one thread, no HTTP",
            stages.parse_rate,
            "events/s",
            TARGET_EVENTS_PER_SECOND,
        ),
        Row(NAME, "stage alone: parsing CPU per event", stages.parse_cpu_us, "us"),
        Row(
            NAME,
            f"stage alone: the writer's group commit (write_ingest_group), groups of {group} rows, no HTTP",
            stages.insert_rate,
            "events/s",
            TARGET_EVENTS_PER_SECOND,
        ),
        Row(
            NAME,
            "stage alone: group commit CPU per event (Python and DuckDB threads)",
            stages.insert_cpu_us,
            "us",
        ),
        Row(
            NAME,
            f"stage alone: group commit, groups of {group} rows, beside a busy Python thread",
            stages.contended_insert_rate,
            "events/s",
            stages.insert_rate,
        ),
        Row(
            NAME,
            "cores parsing + inserting alone need at the bar (no HTTP, no contention)",
            cores_needed,
            "cores",
            float(cpus()),
        ),
    ]


def _check_stored(db_path: Path, total: int, result: ClientResult) -> int:
    """The number of events stored; raises unless every event sent is stored exactly once."""
    stored, distinct = _stored(db_path)
    if not stored == distinct == result.inserted == total:
        raise RuntimeError(
            f"sent {total} events: {result.inserted} acknowledged as inserted, "
            f"{stored} rows stored, {distinct} distinct message ids"
        )
    return stored


def run() -> list[Row]:
    total = events_to_send()
    with tempfile.TemporaryDirectory(prefix="landed-bench-") as folder:
        work = Path(folder)
        db_path = work / "ingest.duckdb"
        result = run_http(db_path, total)
        stored = _check_stored(db_path, total, result)
        bulk_rate, small_rate = run_baselines(db_path, work)
        stages = measure_stages(total, work)
        large_db = work / "ingest-large-batches.duckdb"
        large = run_http(large_db, total, LARGE_BATCH_SIZE)
        _check_stored(large_db, total, large)
        many: dict[int, ClientResult] = {}
        for batch_size in (BATCH_SIZE, LARGE_BATCH_SIZE):
            many_db = work / f"ingest-{MANY_CLIENTS}-clients-{batch_size}.duckdb"
            many[batch_size] = run_http(many_db, total, batch_size, MANY_CLIENTS)
            _check_stored(many_db, total, many[batch_size])
    http_rate = total / result.elapsed
    latencies = sorted(result.latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    rows = [
        Row(
            NAME,
            f"HTTP end to end, {CLIENTS} clients x batches of {BATCH_SIZE}, vs DuckDB bulk",
            http_rate,
            "events/s",
            bulk_rate,
        ),
        Row(NAME, "HTTP end to end vs the issue's bar", http_rate, "events/s", TARGET_EVENTS_PER_SECOND),
        Row(
            NAME,
            "HTTP end to end, counting the service's stop (final checkpoint) as ingest time",
            total / (result.elapsed + result.stop_seconds),
            "events/s",
            TARGET_EVENTS_PER_SECOND,
        ),
        Row(
            NAME,
            f"HTTP end to end, {CLIENTS} clients x batches of {LARGE_BATCH_SIZE} (larger commit groups)",
            total / large.elapsed,
            "events/s",
            http_rate,
        ),
        *(
            Row(
                NAME,
                f"HTTP end to end, {MANY_CLIENTS} clients x batches of {batch_size}",
                total / result_many.elapsed,
                "events/s",
                http_rate,
            )
            for batch_size, result_many in many.items()
        ),
        Row(NAME, "DuckDB bulk append, same rows, one Arrow table", bulk_rate, "events/s"),
        Row(
            NAME, f"DuckDB insert_events, one commit per {BATCH_SIZE} rows", small_rate, "events/s", bulk_rate
        ),
        Row(NAME, "request latency p50", statistics.median(latencies) * 1000, "ms"),
        Row(NAME, "request latency p99", p99 * 1000, "ms"),
        Row(NAME, "events stored exactly once (of sent)", stored, "events", total),
        Row(NAME, "client CPU per event (sending process)", result.cpu_seconds / total * 1e6, "us"),
    ]
    if result.server_cpu_seconds is not None:
        # On 2 cores, 50,000 events/s leaves at most 40 us of CPU per event for everything.
        rows.append(
            Row(NAME, "server CPU per event (all threads)", result.server_cpu_seconds / total * 1e6, "us")
        )
    return rows + stage_rows(stages)


if __name__ == "__main__":
    from bench import markdown_table

    print(markdown_table(run()))
