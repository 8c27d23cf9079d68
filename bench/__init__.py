"""Landed's benchmarks: each module exposes `run() -> list[Row]`, and `python -m bench` runs
them and writes `bench/results/latest.md`.

A row is one measured number with the unit it is in and, when there is one, the baseline it is
compared with (a raw DuckDB append, a target from an issue); the ratio is value / baseline, so
1.0 means "as fast as the baseline" for a rate.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    """One measurement of one benchmark."""

    benchmark: str
    measure: str
    value: float
    unit: str
    baseline: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (benchmark, measure, value, unit, baseline, ratio)."""
    lines = [
        "| benchmark | measure | value | unit | baseline | ratio |",
        "|---|---|---:|---|---:|---:|",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        lines.append(
            f"| {row.benchmark} | {row.measure} | {_number(row.value)} | {row.unit} "
            f"| {_number(row.baseline)} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
