"""The frame buffer: the last few seconds of camera frames, looked up by capture time."""

import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable

from glasses.pipelines.frames import VideoFrame
from glasses.pipelines.stage import Stage


class FrameBuffer(Stage):
    """A sink stage that keeps the newest `capacity` frames for other stages to query.

    Frames arrive in capture order; lookups are thread-safe and O(log n).
    """

    name = "frame-buffer"

    def __init__(self, capacity: int = 90):
        self._frames: deque[VideoFrame] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.received = 0
        self._floor_ns = -1  # frames captured at or before this are not kept

    def process(self, item: VideoFrame) -> Iterable[VideoFrame]:
        with self._lock:
            if item.t_ns > self._floor_ns:
                self._frames.append(item)
            self.received += 1
        return ()

    def forget(self, through_ns: int) -> None:
        """Drop every frame and refuse any still on its way that was captured at or before
        `through_ns`: a camera that went away, whose last view is not the view now."""
        with self._lock:
            self._floor_ns = max(self._floor_ns, through_ns)
            while self._frames and self._frames[0].t_ns <= self._floor_ns:
                self._frames.popleft()

    def resize(self, capacity: int) -> None:
        """Keep the newest `capacity` frames from now on (at least 1)."""
        with self._lock:
            self._frames = deque(self._frames, maxlen=max(1, capacity))

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def latest(self) -> VideoFrame | None:
        with self._lock:
            return self._frames[-1] if self._frames else None

    def nearest(self, t_ns: int) -> VideoFrame | None:
        """The frame whose capture time is closest to `t_ns`, or None when empty."""
        with self._lock:
            frames = list(self._frames)
        if not frames:
            return None
        i = bisect_left(frames, t_ns, key=lambda f: f.t_ns)
        near = frames[max(0, i - 1) : i + 1]
        return min(near, key=lambda f: abs(f.t_ns - t_ns))

    def between(self, start_ns: int, end_ns: int) -> list[VideoFrame]:
        """Frames captured in [start_ns, end_ns], oldest first."""
        with self._lock:
            return [f for f in self._frames if start_ns <= f.t_ns <= end_ns]
