"""The single-writer executor on its own, without a database: jobs run in order on one thread,
waiting group requests are committed together up to the size limit, and every failure reaches
exactly the futures it concerns."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from app.storage.executor import SingleWriter


class Context:
    """What the test's run_job gives every job, and a record of what ran on which thread."""

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.log: list[Any] = []


@pytest.fixture
def context() -> Context:
    return Context()


def _runner(context: Context) -> Callable[[Callable[[Context], Any]], Any]:
    def run_job(job: Callable[[Context], Any]) -> Any:
        context.threads.add(threading.current_thread().name)
        return job(context)

    return run_job


@pytest.fixture
def writer(context: Context) -> Iterator[SingleWriter[Context]]:
    executor: SingleWriter[Context] = SingleWriter(_runner(context), max_group_size=10, name="test-writer")
    yield executor
    executor.close()


def _hold(writer: SingleWriter[Context]) -> threading.Event:
    """Keeps the writer busy until the returned event is set, so what is submitted meanwhile
    is waiting in the queue together."""
    release, started = threading.Event(), threading.Event()

    def job(_: Context) -> None:
        started.set()
        release.wait(10)

    writer.submit(job)
    assert started.wait(10)
    return release


def test_jobs_run_in_order_on_the_writer_thread(writer: SingleWriter[Context], context: Context) -> None:
    futures = [writer.submit(lambda c, i=i: c.log.append(i) or i * i) for i in range(20)]
    assert [f.result(10) for f in futures] == [i * i for i in range(20)]
    assert context.log == list(range(20))
    assert context.threads == {"test-writer"}


def test_a_failing_job_fails_its_future_only(writer: SingleWriter[Context]) -> None:
    def broken(_: Context) -> None:
        raise LookupError("nope")

    failed = writer.submit(broken)
    after = writer.submit(lambda _: "still running")
    with pytest.raises(LookupError, match="nope"):
        failed.result(10)
    assert after.result(10) == "still running"


def test_waiting_requests_are_committed_in_one_group(writer: SingleWriter[Context]) -> None:
    groups: list[list[str]] = []

    def commit(requests: list[str]) -> list[str]:
        groups.append(list(requests))
        return [r.upper() for r in requests]

    release = _hold(writer)
    futures = [writer.submit_to_group(name, size=1, commit=commit) for name in ("a", "b", "c")]
    release.set()
    assert [f.result(10) for f in futures] == ["A", "B", "C"]
    assert groups == [["a", "b", "c"]]


def test_a_group_stops_growing_at_the_size_limit(writer: SingleWriter[Context]) -> None:
    groups: list[list[int]] = []

    def commit(sizes: list[int]) -> list[int]:
        groups.append(list(sizes))
        return sizes

    release = _hold(writer)
    futures = [writer.submit_to_group(size, size=size, commit=commit) for size in (4, 4, 4, 1, 20, 3)]
    release.set()
    assert [f.result(10) for f in futures] == [4, 4, 4, 1, 20, 3]
    # A group takes requests while its size is under 10; a request larger than the limit is
    # still committed, in a group of its own.
    assert groups == [[4, 4, 4], [1, 20], [3]]


def test_a_job_between_requests_splits_the_group_and_keeps_its_place(
    writer: SingleWriter[Context], context: Context
) -> None:
    def commit(requests: list[str]) -> list[None]:
        context.log.append(list(requests))
        return [None for _ in requests]

    release = _hold(writer)
    first = [writer.submit_to_group(r, size=1, commit=commit) for r in ("a", "b")]
    job = writer.submit(lambda c: c.log.append("job"))
    second = [writer.submit_to_group(r, size=1, commit=commit) for r in ("c", "d")]
    release.set()
    for future in [*first, job, *second]:
        future.result(10)
    assert context.log == [["a", "b"], "job", ["c", "d"]]


def test_requests_for_different_commits_are_not_grouped(writer: SingleWriter[Context]) -> None:
    seen: list[tuple[str, list[int]]] = []

    def commit_to(name: str) -> Callable[[list[int]], list[int]]:
        def commit(requests: list[int]) -> list[int]:
            seen.append((name, list(requests)))
            return requests

        return commit

    left, right = commit_to("left"), commit_to("right")
    release = _hold(writer)
    futures = [
        writer.submit_to_group(1, size=1, commit=left),
        writer.submit_to_group(2, size=1, commit=left),
        writer.submit_to_group(3, size=1, commit=right),
        writer.submit_to_group(4, size=1, commit=left),
    ]
    release.set()
    assert [f.result(10) for f in futures] == [1, 2, 3, 4]
    assert seen == [("left", [1, 2]), ("right", [3]), ("left", [4])]


def test_a_failing_commit_fails_every_request_of_its_group_only(writer: SingleWriter[Context]) -> None:
    def commit(requests: list[str]) -> list[str]:
        if "bad" in requests:
            raise OSError("disk full")
        return requests

    release = _hold(writer)
    group = [writer.submit_to_group(r, size=1, commit=commit) for r in ("ok", "bad")]
    release.set()
    for future in group:
        with pytest.raises(OSError, match="disk full"):
            future.result(10)
    assert writer.submit_to_group("later", size=1, commit=commit).result(10) == "later"


def test_a_commit_must_answer_every_request(writer: SingleWriter[Context]) -> None:
    def commit(requests: list[str]) -> list[str]:
        return requests[:1]

    release = _hold(writer)
    futures = [writer.submit_to_group(r, size=1, commit=commit) for r in ("a", "b")]
    release.set()
    for future in futures:
        with pytest.raises(ValueError, match="1 results for 2 requests"):
            future.result(10)


def test_queue_depth_counts_what_waits(writer: SingleWriter[Context]) -> None:
    release = _hold(writer)
    futures: list[Future[Any]] = [writer.submit(lambda _: None) for _ in range(3)]
    assert writer.queue_depth() == 3
    release.set()
    for future in futures:
        future.result(10)
    assert writer.queue_depth() == 0


def test_close_runs_what_was_submitted_then_stops(context: Context) -> None:
    executor: SingleWriter[Context] = SingleWriter(_runner(context), max_group_size=10)
    release = _hold(executor)
    job = executor.submit(lambda c: c.log.append("queued before close"))
    grouped = executor.submit_to_group("r", size=1, commit=lambda rs: rs)
    release.set()
    executor.close()
    assert job.done() and grouped.result(0) == "r"
    assert context.log == ["queued before close"]
