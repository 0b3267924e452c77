"""Bounded queues between pipeline threads, with an explicit drop policy."""

import threading
from collections import deque
from enum import Enum
from typing import Any

from glasses.device.clock import now_ns

POLL_S = 0.1  # how often a blocked thread checks for a stop request


class Policy(Enum):
    """What a live source does when the queue in front of the next stage is full."""

    NEWEST = "newest"  # drop the oldest item and count it (video: stale frames)
    KEEP_ALL = "keep-all"  # keep the queue, count the new item as lost (audio)


class Stopped(Exception):
    """Raised by `get`/`put` when the runner asked every thread to stop."""


END = object()  # end-of-stream marker, never dropped


class StreamQueue:
    """A bounded FIFO whose full behaviour follows its `Policy`.

    Counters: `dropped` items discarded by NEWEST, `put_count` items accepted.
    """

    def __init__(self, maxsize: int, policy: Policy, stop: threading.Event):
        if maxsize < 1:
            raise ValueError("queue size must be at least 1")
        self.maxsize = maxsize
        self.policy = policy
        self.dropped = 0
        self.put_count = 0
        self.high_water = 0
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self._stop = stop

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: Any, wait: bool = True) -> int:
        """Add `item`; return ns spent waiting for room, or -1 if it was refused.

        When full: with `wait` the caller waits for room (nothing is lost: offline
        sources and every stage's output). Without it (a live source) NEWEST drops the
        oldest item and counts it, KEEP_ALL refuses the new one for the caller to count.
        END is always added.
        """
        start = now_ns()
        with self._cond:
            if item is not END and len(self._items) >= self.maxsize:
                if wait:
                    while len(self._items) >= self.maxsize:
                        if self._stop.is_set():
                            raise Stopped
                        self._cond.wait(POLL_S)
                elif self.policy is Policy.NEWEST:
                    self._drop_oldest()
                else:
                    return -1
            self._items.append(item)
            self.put_count += item is not END
            if item is not END:
                self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()
        return now_ns() - start

    def get(self) -> Any:
        """Take the oldest item, waiting for one; raise `Stopped` on a stop request."""
        with self._cond:
            while True:
                if self._stop.is_set():  # a stop abandons what is still queued
                    raise Stopped
                if self._items:
                    break
                self._cond.wait(POLL_S)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def take_superseded(self, item: Any, supersedes) -> tuple[Any, int]:
        """Skip `item` while the next queued item supersedes it; return (item, skipped)."""
        skipped = 0
        with self._cond:
            while self._items and self._items[0] is not END and supersedes(item, self._items[0]):
                item = self._items.popleft()
                skipped += 1
            if skipped:
                self._cond.notify_all()
        return item, skipped

    def _drop_oldest(self) -> None:
        for i, old in enumerate(self._items):
            if old is not END:
                del self._items[i]
                self.dropped += 1
                return
