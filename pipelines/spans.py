"""Spans: one record per `process` call, kept in a bounded ring buffer."""

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """One `process` (or `flush`) call of a stage.

    Times are monotonic ns. `t_ns` is the capture time of the item processed, so
    `end_ns - t_ns` is the item's latency at the output of this stage. `wait_ns` is the
    part of the call spent blocked on a full downstream queue, not working.
    """

    stage: str
    t_ns: int
    start_ns: int
    end_ns: int
    wait_ns: int = 0

    @property
    def busy_ns(self) -> int:
        return self.end_ns - self.start_ns - self.wait_ns


class SpanRecorder:
    """Thread-safe ring buffer of the most recent `capacity` spans."""

    def __init__(self, capacity: int = 100_000):
        self._spans: deque[Span] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.recorded = 0  # all spans ever recorded, including those overwritten

    def record(self, span: Span) -> None:
        with self._lock:
            self._spans.append(span)
            self.recorded += 1

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    @property
    def overwritten(self) -> int:
        with self._lock:
            return self.recorded - len(self._spans)
