"""Soak: sustained ingestion with reports and dashboards read alongside, for minutes on end.

`python -m bench.soak` (or `make soak`; not part of CI, nor of `python -m bench`) runs the real
service as `landed serve` on 127.0.0.1 with a fresh database, defines one launch over the events
it is about to send, and then for SOAK_SECONDS (default 300):

- a client process sends Segment batches of 100 track/identify events with unique messageIds
  from 4 keep-alive connections, each waiting for its 200 before sending the next batch;
- a reader process loops over the launch report (`/api/launches/{key}/report`, read key) and
  the dashboard pages (`/launches/{key}` and `/`), one request at a time;
- this process samples the service's resident memory (RSS) twice a second.

It prints a Markdown table, writes it to `bench/results/soak.md`, and exits non-zero if
anything was lost (the events stored differ from the events acknowledged with a 200), if any
request got a 5xx, or if an ingest request got no answer at all (then nobody knows whether its
events should be there). Memory counts as flat when the mean RSS of the last third of the run
is less than 10% above that of the middle third (the first third is warm-up); it is reported,
not enforced, since DuckDB's caches legitimately grow with the data. Throughput and latency
depend on the machine and are only reported. `run_soak(seconds)` is the same run as a function
(tests/test_soak.py runs a short one).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson

from app.local_server import free_port
from app.storage import Storage
from bench import Row, cpus, markdown_table
from tests.helpers.live import start_serve, stop_gracefully, wait_until_listening

NAME = "soak"
CLIENTS = 4
BATCH_SIZE = 100
USERS = 20_000
LAUNCH_KEY = "soak-export"
READ_PATHS = {
    "report API": f"/api/launches/{LAUNCH_KEY}/report",
    "scorecard page": f"/launches/{LAUNCH_KEY}",
    "portfolio page": "/",
}
FLAT_GROWTH = 0.10  # RSS growth, last third over middle third, below which memory is flat
RSS_EVERY_SECONDS = 0.5
START_DELAY_SECONDS = 3.0  # lets both client processes import before the clock starts
EVENT_LAG = timedelta(minutes=2)
GRACE_SECONDS = 120.0  # longest a client may take past the end (one slow request)
RESULTS = Path(__file__).resolve().parent / "results" / "soak.md"


def soak_seconds() -> float:
    return float(os.environ.get("SOAK_SECONDS", "300"))


# -- what the clients send and read ---------------------------------------------------------


def launch_spec(launched_at: datetime) -> dict[str, Any]:
    """A launch whose signals, audience and KPIs match the events `batch_body` makes."""
    at = launched_at.isoformat().replace("+00:00", "Z")
    return {
        "key": LAUNCH_KEY,
        "name": "Soak export",
        "owner": "bench@example.com",
        "description": "Defined by bench/soak.py over the events it sends",
        "launched_at": at,
        "window_days": 28,
        "audience": {"identified_only": True, "where": {"plan": ["free", "pro"]}},
        "signals": {
            "exposed": [{"event": "Announcement Viewed", "where": {"feature": "smart-export"}}],
            "used": [{"event": "Feature Used", "where": {"feature": "smart-export"}}],
            "converted": [{"event": "Plan Upgraded", "where": {"to_plan": "premium"}}],
        },
        "channel_property": "channel",
        "announcements": [{"channel": "in_app", "at": at}, {"channel": "email", "at": at}],
        "kpis": [
            {"id": "reach", "metric": "exposure_rate", "comparator": ">=", "target": 0.5},
            {"id": "adoption", "metric": "adoption_rate", "comparator": ">=", "target": 0.2},
            {"id": "repeat", "metric": "repeat_usage_rate", "comparator": ">=", "target": 0.4},
        ],
    }


def _event(n: int, message_id: str, timestamp: str) -> dict[str, Any]:
    # Every 10 consecutive events belong to one user, picked by a stride through USERS:
    # an identify with a plan, two announcement views, three uses, maybe an upgrade, and
    # dashboard views, so the launch report has exposed users, adopters and converters.
    group = n // 10
    user = f"user-{(group * 7919) % USERS}"
    kind = n % 10
    if kind == 0:
        return {"type": "identify", "messageId": message_id, "userId": user,
                "anonymousId": f"anon-{(group * 7919) % USERS}", "timestamp": timestamp,
                "traits": {"plan": ("free", "pro", "team")[group % 3]}}
    if kind in (1, 2):
        name, properties = "Announcement Viewed", {
            "feature": "smart-export", "channel": ("in_app", "email")[n % 2]}
    elif kind in (3, 4, 5):
        name, properties = "Feature Used", {"feature": "smart-export", "format": "csv"}
    elif kind == 6:
        name, properties = "Plan Upgraded", {"to_plan": "premium" if group % 4 else "team"}
    else:
        name, properties = "Dashboard Viewed", {"path": f"/app/{n % 40}"}
    return {"type": "track", "messageId": message_id, "event": name, "userId": user,
            "timestamp": timestamp, "properties": properties,
            "context": {"library": {"name": "soak", "version": "1"}}}


def batch_body(client: int, number: int) -> bytes:
    """Batch `number` of `client`: 100 events with unique messageIds, which happened
    EVENT_LAG before they are sent (as an SDK's queue delivers them), so that reports, which
    read up to the current minute, include every event sent so far."""
    now = datetime.now(UTC)
    happened = (now - EVENT_LAG).isoformat()
    first = (number * CLIENTS + client) * BATCH_SIZE
    events = [
        _event(first + i, f"soak-{client}-{number}-{i}", happened) for i in range(BATCH_SIZE)
    ]
    return orjson.dumps({"batch": events, "sentAt": now.isoformat()})


# -- the client processes -------------------------------------------------------------------


@dataclass
class IngestStats:
    """What the sending process saw."""

    elapsed: float = 0.0
    requests: int = 0
    acked_events: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    unanswered: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class ReadStats:
    """What the reading process saw, per page."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    unanswered: int = 0
    errors: list[str] = field(default_factory=list)
    report_counts: dict[str, int] = field(default_factory=dict)  # of the last report read


def _sleep_until(wall_time: float) -> None:
    time.sleep(max(0.0, wall_time - time.time()))


async def _ingest(url: str, key: str, start_at: float, end_at: float) -> IngestStats:
    stats = IngestStats()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    headers = {"Content-Type": "application/json"}

    async def sender(http: httpx.AsyncClient, client: int) -> None:
        # Bounded by time, and by count as a backstop: 100,000 batches is 10M events a client.
        for number in range(100_000):
            if time.time() >= end_at:
                return
            body = batch_body(client, number)
            started = time.perf_counter()
            try:
                response = await http.post("/v1/batch", content=body, headers=headers)
            except httpx.TransportError as error:
                stats.unanswered += 1
                stats.errors.append(f"no answer: {error!r}")
                await asyncio.sleep(0.5)
                continue
            stats.latencies.append(time.perf_counter() - started)
            stats.requests += 1
            stats.statuses[response.status_code] += 1
            if response.status_code == 200:
                stats.acked_events += BATCH_SIZE
            else:
                stats.errors.append(f"{response.status_code}: {response.text[:200]}")

    async with httpx.AsyncClient(
        base_url=url, auth=(key, ""), limits=limits, timeout=GRACE_SECONDS
    ) as http:
        _sleep_until(start_at)
        started = time.perf_counter()
        await asyncio.gather(*(sender(http, client) for client in range(CLIENTS)))
        stats.elapsed = time.perf_counter() - started
    return stats


def _ingest_process(url: str, key: str, start_at: float, end_at: float, out: Connection) -> None:
    out.send(asyncio.run(_ingest(url, key, start_at, end_at)))
    out.close()


def _read_process(url: str, key: str, start_at: float, end_at: float, out: Connection) -> None:
    stats = ReadStats(latencies={name: [] for name in READ_PATHS})
    with httpx.Client(base_url=url, auth=(key, ""), timeout=GRACE_SECONDS) as http:
        _sleep_until(start_at)
        for round_no in range(1_000_000):
            if time.time() >= end_at:
                break
            name = list(READ_PATHS)[round_no % len(READ_PATHS)]
            started = time.perf_counter()
            try:
                response = http.get(READ_PATHS[name])
            except httpx.TransportError as error:
                stats.unanswered += 1
                stats.errors.append(f"{name}: no answer: {error!r}")
                time.sleep(0.5)
                continue
            stats.latencies[name].append(time.perf_counter() - started)
            stats.statuses[response.status_code] += 1
            if response.status_code != 200:
                stats.errors.append(f"{name}: {response.status_code}: {response.text[:200]}")
            elif name == "report API":
                stats.report_counts = dict(response.json()["counts"])
    out.send(stats)
    out.close()


# -- the run --------------------------------------------------------------------------------


@dataclass
class SoakResult:
    """Everything one soak run measured."""

    seconds: float
    ingest: IngestStats
    reads: ReadStats
    rss: list[tuple[float, int]]  # (seconds since the clock started, bytes)
    peak_rss: int
    stored: int
    distinct: int
    load_before: tuple[float, float, float]
    server_log: str = ""  # the service's own output (tracebacks of any 5xx), kept for diagnosis

    @property
    def throughput(self) -> float:
        return self.ingest.acked_events / self.ingest.elapsed if self.ingest.elapsed else 0.0

    @property
    def lost(self) -> int:
        """Acknowledged events missing from the database."""
        return max(0, self.ingest.acked_events - self.distinct)

    @property
    def unexpected(self) -> int:
        """Rows the database holds beyond the acknowledged events (doubled or never acked)."""
        return self.stored - self.ingest.acked_events + self.lost

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in (self.ingest.statuses + self.reads.statuses).items() if s >= 500)

    @property
    def rss_thirds(self) -> tuple[float, float]:
        """Mean RSS (bytes) over the middle and the last third of the run."""
        middle = [b for t, b in self.rss if self.seconds / 3 <= t < 2 * self.seconds / 3]
        last = [b for t, b in self.rss if 2 * self.seconds / 3 <= t <= self.seconds]
        return (statistics.fmean(middle) if middle else 0.0, statistics.fmean(last) if last else 0.0)

    @property
    def rss_growth(self) -> float:
        middle, last = self.rss_thirds
        return last / middle - 1 if middle else 0.0

    @property
    def memory_flat(self) -> bool:
        return self.rss_growth < FLAT_GROWTH

    @property
    def passed(self) -> bool:
        """Nothing lost or doubled, no 5xx, and every ingest request answered."""
        return (
            self.lost == 0 and self.unexpected == 0 and self.server_errors == 0
            and self.ingest.unanswered == 0 and self.ingest.acked_events > 0
        )


def _rss(pid: int, field_name: str = "VmRSS") -> int | None:
    """A memory figure of a process from /proc (bytes); None once it is gone or off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _keys(db_path: Path) -> tuple[str, str, str]:
    """(write, read, admin) keys, created before the service opens the file."""
    storage = Storage(str(db_path))
    try:
        secrets = [storage.create_key(f"soak-{scope}", scope)[1] for scope in ("write", "read", "admin")]
    finally:
        storage.close()
    return secrets[0], secrets[1], secrets[2]


def run_soak(seconds: float) -> SoakResult:
    """Serve a fresh database, ingest and read for `seconds`, stop, count what was stored."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="landed-soak-") as folder:
        db_path = Path(folder) / "soak.duckdb"
        write_key, read_key, admin_key = _keys(db_path)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = db_path.with_suffix(".log")
        with log.open("wb") as output:
            server = start_serve(db_path, port, output)
        try:
            wait_until_listening(port, server, log)
            launched_at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
            put = httpx.put(f"{url}/api/launches/{LAUNCH_KEY}", json=launch_spec(launched_at),
                            headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
            if put.status_code != 201:
                raise RuntimeError(f"defining the launch failed: {put.status_code} {put.text}")
            ingest, reads, rss, peak = _drive(url, write_key, read_key, seconds, server.pid)
        finally:
            stop_gracefully(server)
        with duckdb.connect(str(db_path), read_only=True) as conn:
            row = conn.execute("select count(*), count(distinct message_id) from events").fetchone()
        assert row is not None
        server_log = log.read_text(encoding="utf-8", errors="replace")[-20_000:]
    return SoakResult(seconds, ingest, reads, rss, peak, int(row[0]), int(row[1]), load_before, server_log)


def _drive(
    url: str, write_key: str, read_key: str, seconds: float, server_pid: int
) -> tuple[IngestStats, ReadStats, list[tuple[float, int]], int]:
    """Runs both client processes while sampling the service's RSS; returns what they saw."""
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + START_DELAY_SECONDS
    end_at = start_at + seconds
    pipes: dict[str, Connection] = {}
    processes: list[multiprocessing.process.BaseProcess] = []
    clients = (("ingest", _ingest_process, write_key), ("reads", _read_process, read_key))
    for name, target, key in clients:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=target, args=(url, key, start_at, end_at, send), name=name)
        process.start()
        send.close()
        pipes[name] = receive
        processes.append(process)
    results: dict[str, Any] = {}
    rss: list[tuple[float, int]] = []
    give_up = end_at + GRACE_SECONDS
    try:
        while len(results) < len(pipes) and time.time() < give_up:
            now = time.time()
            sample = _rss(server_pid)
            if sample is not None and start_at <= now <= end_at:
                rss.append((now - start_at, sample))
            for name, pipe in pipes.items():
                if name not in results and pipe.poll():
                    results[name] = pipe.recv()
            time.sleep(RSS_EVERY_SECONDS)
        peak = _rss(server_pid, "VmHWM") or max((b for _, b in rss), default=0)
    finally:
        for child in processes:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
                child.join(timeout=10)
        for pipe in pipes.values():
            pipe.close()
    missing = set(pipes) - set(results)
    if missing:
        raise RuntimeError(f"client process(es) {', '.join(sorted(missing))} sent no results")
    return results["ingest"], results["reads"], rss, peak


# -- the report -----------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def rows(result: SoakResult) -> list[Row]:
    mib = 1024 * 1024
    middle, last = result.rss_thirds
    ingest = result.ingest
    counts = result.reads.report_counts
    all_reads = [v for values in result.reads.latencies.values() for v in values]
    table = [
        Row(NAME, f"ingest, {CLIENTS} clients x batches of {BATCH_SIZE}", result.throughput,
            "events/s"),
        Row(NAME, "ingest latency p50", _percentile(ingest.latencies, 0.5) * 1000, "ms"),
        Row(NAME, "ingest latency p99", _percentile(ingest.latencies, 0.99) * 1000, "ms"),
        Row(NAME, "reads (report, scorecard, portfolio in turn)", len(all_reads), "requests"),
        Row(NAME, "read latency p50, all pages", _percentile(all_reads, 0.5) * 1000, "ms"),
        Row(NAME, "read latency p99, all pages", _percentile(all_reads, 0.99) * 1000, "ms"),
    ]
    for name, values in result.reads.latencies.items():
        table.append(Row(NAME, f"{name} latency p50 ({len(values)} reads)",
                         _percentile(values, 0.5) * 1000, "ms"))
        table.append(Row(NAME, f"{name} latency p99", _percentile(values, 0.99) * 1000, "ms"))
    table += [
        Row(NAME, "users in the last report: active", counts.get("active", 0), "users"),
        Row(NAME, "users in the last report: exposed", counts.get("exposed", 0), "users"),
        Row(NAME, "users in the last report: adopters", counts.get("adopters", 0), "users"),
        Row(NAME, "service peak RSS", result.peak_rss / mib, "MiB"),
        Row(NAME, "service mean RSS, middle third", middle / mib, "MiB"),
        Row(NAME, "service mean RSS, last third vs middle third", last / mib, "MiB", middle / mib),
        Row(NAME, "events stored (of acknowledged)", result.distinct, "events",
            ingest.acked_events),
        Row(NAME, "events lost", result.lost, "events"),
        Row(NAME, "events stored beyond those acknowledged", result.unexpected, "events"),
        Row(NAME, "5xx responses", result.server_errors, "responses"),
        Row(NAME, "requests without an answer", ingest.unanswered + result.reads.unanswered,
            "requests"),
    ]
    return table


def report_markdown(result: SoakResult) -> str:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load = " ".join(f"{value:.2f}" for value in result.load_before)
    flat = "flat" if result.memory_flat else "NOT flat"
    verdict = (
        "PASS: nothing lost, no 5xx" if result.passed
        else f"FAIL: {result.lost} lost, {result.unexpected} unexpected, "
        f"{result.server_errors} 5xx, {result.ingest.unanswered} unanswered ingest requests"
    )
    return (
        f"# Soak\n\n{started} on {platform.node()} ({platform.machine()}, {cpus()} CPUs, Python "
        f"{platform.python_version()}); {result.seconds:g} s; load average before: {load}\n\n"
        + markdown_table(rows(result))
        + f"\nMemory: {flat} (last third {result.rss_growth:+.1%} vs the middle third; "
        f"flat means under {FLAT_GROWTH:.0%}).\n\n{verdict}.\n"
    )


def main() -> int:
    seconds = soak_seconds()
    print(f"soaking for {seconds:g} s ...", file=sys.stderr, flush=True)
    result = run_soak(seconds)
    report = report_markdown(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    partial = RESULTS.with_suffix(".md.tmp")
    partial.write_text(report, encoding="utf-8")
    partial.replace(RESULTS)
    print(report)
    for error in [*result.ingest.errors, *result.reads.errors][:10]:
        print(f"  {error}", file=sys.stderr)
    if not result.passed and result.server_log:
        print("\nThe service's output:\n" + result.server_log[-5_000:], file=sys.stderr)
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
