"""Streams: the pieces of one result as they come, and what the call found on the way.

A model's streaming call returns a stream: iterate it (once) for the pieces; its fields are
filled as it goes and are complete when it is exhausted. Each call has its own, so nothing
is left in a `last_*` attribute of the model for another call to overwrite.
"""

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Stream(Iterator[T], Generic[T]):
    """`pieces(self)` is the generator of the pieces; it fills the stream's fields."""

    def __init__(self, pieces: Callable[["Stream[T]"], Iterator[T]]):
        self._it = pieces(self)

    def __iter__(self) -> "Stream[T]":
        return self

    def __next__(self) -> T:
        return next(self._it)


class TimedStream(Stream[T]):
    """A stream with its call's timings: `timings_ms` (stage -> ms, and counts)."""

    def __init__(self, pieces: Callable[["TimedStream[T]"], Iterator[T]]):
        self.timings_ms: dict[str, float] = {}
        super().__init__(pieces)
