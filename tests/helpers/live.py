"""The service run for a test: the keys and the live server the fixtures hand out, the two
launches most route tests need (one live for three days, one scheduled a year ahead), and
`landed` in its own process (started from the project folder without the caller's `LANDED_*`
settings, waited for until it listens, stopped as Ctrl+C would). The benchmarks start the
service the same way, from here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from app import launches
from app.ingest import now_utc
from app.storage import Storage
from pipelines.launch import LaunchSpec
from tests.helpers.builders import launch_spec

ROOT = Path(__file__).resolve().parents[2]
LIVE = "live-launch"  # launched three days ago: reports, amendments
SOON = "soon-launch"  # launches next year: may still be replaced and deleted


@dataclass(frozen=True)
class Keys:
    """One secret of each scope, made on the test's storage."""

    write: str
    read: str
    admin: str


@dataclass(frozen=True)
class LiveServer:
    """The real service under uvicorn in this process, sharing the test's storage."""

    url: str
    storage: Storage


def seed_launches(storage: Storage) -> dict[str, dict[str, Any]]:
    """Puts the LIVE and SOON launches; their specs as JSON, by key."""
    now = datetime.now(UTC)
    specs = {
        LIVE: launch_spec(LIVE, now - timedelta(days=3)),
        SOON: launch_spec(SOON, now + timedelta(days=365)),
    }
    for spec in specs.values():
        launches.put_launch(storage, LaunchSpec.model_validate(spec), by="seed", now=now_utc())
    return specs


# ----------------------------------------------------------------------------- landed in its own process


def clean_env() -> dict[str, str]:
    """This process's environment without any LANDED_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LANDED_")}


def start_landed(
    *argv: str,
    stdout: IO[bytes],
    stderr: IO[bytes] | int = subprocess.STDOUT,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """`python -m app.cli ARGV` in its own process, from the project folder, with a clean
    environment; its output goes to `stdout` (and `stderr`, by default the same)."""
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *argv],
        cwd=ROOT,
        env=clean_env(),
        stdout=stdout,
        stderr=stderr,
        preexec_fn=preexec_fn,
    )


def start_serve(
    db: Path, port: int, output: IO[bytes], preexec_fn: Callable[[], None] | None = None
) -> subprocess.Popen[bytes]:
    """`landed serve` on `db` and 127.0.0.1:`port`, everything it prints going to `output`."""
    return start_landed("serve", "--db", str(db), "--port", str(port), stdout=output, preexec_fn=preexec_fn)


def wait_until_listening(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    """Returns once 127.0.0.1:`port` takes connections; raises (with the log) if the server
    exits first or does not listen within 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"landed serve exited early:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("landed serve did not listen within 30 s")


def stop_gracefully(server: subprocess.Popen[bytes]) -> None:
    """SIGINT, uvicorn's graceful shutdown (the lifespan closes the database cleanly); raises
    if the server has not stopped within 60 s."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        raise RuntimeError("landed serve did not stop within 60 s") from None


class Served:
    """`landed serve` in its own process; what it prints and logs go to two files."""

    def __init__(self, db: Path, port: int, folder: Path, run: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.stdout = folder / f"stdout-{run}.txt"
        self.stderr = folder / f"stderr-{run}.txt"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = start_landed("serve", "--db", str(db), "--port", str(port), stdout=out, stderr=err)

    def wait_until_listening(self) -> str:
        """What it printed before it answered /healthz."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stdout.read_text() + self.stderr.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self.stdout.read_text()
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("landed serve did not start: " + self.stderr.read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
