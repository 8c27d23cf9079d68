"""`python -m bench [NAME ...]`: runs the benchmarks (all of them, or the named ones), writes
`bench/results/latest.md` and prints it.

Benchmarks are listed here by module rather than discovered, so a long-running module that
lives in the package (the soak test, `python -m bench.soak`) is never started by accident. To
add one, write a module with `run() -> list[Row]` and add its name to BENCHMARKS.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import Row, cpus, markdown_table

BENCHMARKS: tuple[str, ...] = ("ingest",)
BENCHMARKS += ("report",)  # bench/report.py: launch report at 1M and 10M events
BENCHMARKS += ("pages",)  # bench/pages.py: dashboard pages at 1M events
BENCHMARKS += ("imports",)  # bench/imports.py: landed import of a Parquet export vs DuckDB
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: Sequence[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    # Other work on the machine skews every number here; the load average says how much.
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    speed = python_speed()
    rows: list[Row] = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"running bench.{name} ...", file=sys.stderr, flush=True)
        rows.extend(module.run())
    started = datetime.now(UTC).isoformat(timespec="seconds")
    header = (
        f"# Benchmarks\n\n{started} on {platform.node()} ({platform.machine()}, "
        f"{cpus()} CPUs, Python {platform.python_version()}); load average before: {load}; "
        f"machine speed: a pure-Python loop takes {speed:.1f} ns per iteration\n\n"
    )
    report = header + markdown_table(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    # Written whole then renamed, so a reader never sees half a table.
    partial = RESULTS / "latest.md.tmp"
    partial.write_text(report, encoding="utf-8")
    partial.replace(RESULTS / "latest.md")
    print(report)
    return 0


def python_speed() -> float:
    """Nanoseconds per iteration of a plain Python loop, best of 5.

    The same 2-core machine has run the same code 40% slower on one day than on another, so
    results from different days are only comparable next to this figure."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best / 2_000_000 * 1e9


if __name__ == "__main__":
    raise SystemExit(main())
