"""A short soak (bench/soak.py for 30 s instead of minutes): sustained ingestion from 4 clients
in another process while reports and dashboard pages are read, against the real service.

It asserts what must hold however fast the machine is: every acknowledged event is stored
exactly once, nothing else is stored, no request got a 5xx or went unanswered, and the reads
saw the events. Throughput, latency and memory are only measured by `make soak`.
"""

from __future__ import annotations

import pytest

from bench.soak import READ_PATHS, run_soak

pytestmark = pytest.mark.slow  # the inner loop (`make check`) skips it; `make test` runs it

SECONDS = 30.0


def test_short_soak_loses_nothing_and_never_fails() -> None:
    result = run_soak(SECONDS)
    errors = [*result.ingest.errors, *result.reads.errors][:5]
    assert result.ingest.acked_events > 0
    assert result.lost == 0, errors
    assert result.unexpected == 0, (result.stored, result.distinct, result.ingest.acked_events)
    assert result.stored == result.distinct == result.ingest.acked_events
    assert result.server_errors == 0, (errors, result.server_log)
    assert result.ingest.unanswered == result.reads.unanswered == 0, errors
    assert set(result.ingest.statuses) == {200}, errors
    assert set(result.reads.statuses) == {200}, (errors, result.server_log)
    assert all(result.reads.latencies[name] for name in READ_PATHS), "a page was never read"
    assert result.reads.report_counts.get("active", 0) > 0, result.reads.report_counts
    assert result.rss, "the service's memory was never sampled"
    assert result.passed
