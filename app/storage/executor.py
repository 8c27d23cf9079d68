"""A single-writer executor: one thread runs every submitted write in the order submitted, and
gathers the group requests waiting at that moment into one call (group commit).

A store whose cost is per transaction rather than per row pays it once per group instead of
once per request, and a request is answered only after its group's call returned. The executor
knows nothing of what a write does: the store passes a `run_job` that gives each job what it
needs (a transaction, a connection) and a `commit` for each group request.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

C = TypeVar("C")  # what run_job hands each job (for the DuckDB store, its connection)
T = TypeVar("T")
R = TypeVar("R")  # a group request
S = TypeVar("S")  # the result of one group request


@dataclass(slots=True)
class _Job:
    run: Callable[[Any], Any]
    future: Future[Any] = field(default_factory=Future)


@dataclass(slots=True)
class _GroupRequest:
    request: Any
    size: int
    commit: Callable[[list[Any]], Sequence[Any]]
    future: Future[Any] = field(default_factory=Future)


_STOP = object()


class SingleWriter(Generic[C]):
    """The writer thread: runs jobs one by one, and group requests in groups."""

    def __init__(
        self,
        run_job: Callable[[Callable[[C], Any]], Any],
        *,
        max_group_size: int,
        name: str = "single-writer",
    ) -> None:
        """`run_job(job)` runs one submitted job and returns its result; a group stops
        growing once its requests' sizes add up to `max_group_size`."""
        self._run_job = run_job
        self._max_group_size = max_group_size
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[C], T]) -> Future[T]:
        """Runs `job` through run_job once everything submitted before it has run."""
        item = _Job(job)
        self._queue.put(item)
        return item.future

    def submit_to_group(
        self, request: R, *, size: int, commit: Callable[[list[R]], Sequence[S]]
    ) -> Future[S]:
        """Queues `request` for `commit`, which gets it together with the requests for the same
        `commit` queued right behind it and returns one result per request, in order. If
        `commit` raises, every request of the group fails with that error."""
        item = _GroupRequest(request, size, commit)
        self._queue.put(item)
        return item.future

    def queue_depth(self) -> int:
        """Jobs and requests waiting (approximate, as any queue size)."""
        return self._queue.qsize()

    def close(self) -> None:
        """Runs what was submitted so far, then stops the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _loop(self) -> None:
        carried: Any = None  # taken from the queue while gathering a group, but not part of it
        while True:
            item = carried if carried is not None else self._queue.get()
            carried = None
            if item is _STOP:
                return
            if isinstance(item, _Job):
                self._run(item)
                continue
            group = [item]
            size = item.size
            while size < self._max_group_size:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(following, _GroupRequest) or following.commit != item.commit:
                    carried = following
                    break
                group.append(following)
                size += following.size
            self._commit(group)

    def _run(self, job: _Job) -> None:
        try:
            result = self._run_job(job.run)
        except BaseException as error:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    def _commit(self, group: list[_GroupRequest]) -> None:
        try:
            results = list(group[0].commit([item.request for item in group]))
            if len(results) != len(group):
                raise ValueError(f"commit returned {len(results)} results for {len(group)} requests")
        except BaseException as error:
            for item in group:
                item.future.set_exception(error)
            return
        for item, result in zip(group, results, strict=True):
            item.future.set_result(result)
