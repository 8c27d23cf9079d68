"""`translates_errors`, the one decorator both backends' stores put on their reads: an error of
the database behind becomes StorageUnavailable (503, retry later), by the store's database's own
`unavailable_on_error`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Concatenate, ParamSpec, Protocol, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class _Database(Protocol):
    def unavailable_on_error(self) -> AbstractContextManager[None]: ...


class _OnDatabase(Protocol):
    @property
    def database(self) -> _Database: ...


D = TypeVar("D", bound=_OnDatabase)


def translates_errors(method: Callable[Concatenate[D, P], T]) -> Callable[Concatenate[D, P], T]:
    """For a store's reads: a database error becomes StorageUnavailable."""

    def read(store: D, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with store.database.unavailable_on_error():
            return method(store, *args, **kwargs)

    functools.update_wrapper(read, method)
    return read
