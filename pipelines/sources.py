"""Sources: a camera or a microphone turned into a stream of stamped frames.

The mode decides pacing and stamps, the same stages run in all three:

- OFFLINE: read as fast as possible; stamped with the clock when read.
- SIMULATED: read as fast as possible; stamped on the media's own timeline
  (`start + position in the file`), so runs are repeatable and audio and video agree.
- REALTIME: files are replayed at their own pace, as a live device would deliver them;
  live devices are stamped with the clock at capture.

A device that went away (`DeviceGone`) is opened again with `reopen()` by the runner, and
`items()` goes on where it stopped. Outside REALTIME the media timeline waits for it (the
run stays repeatable); in REALTIME a replayed camera skips what it missed while away.
"""

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from enum import Enum
from typing import Any

from glasses.device.audio import SAMPLE_RATE
from glasses.device.camera import Camera
from glasses.device.clock import NS_PER_S, now_ns, sleep_until
from glasses.device.errors import DeviceFailure
from glasses.device.microphone import Microphone
from glasses.pipelines.frames import AudioChunk, VideoFrame
from glasses.pipelines.queues import Policy


class Mode(Enum):
    OFFLINE = "offline"
    SIMULATED = "simulated"
    REALTIME = "realtime"


class Timeline:
    """Shared by one run's sources: paces file replay and gives capture stamps.

    Outside REALTIME, file sources advance in lockstep on their media times, so a
    video and a WAV stay aligned however fast each one reads.
    """

    def __init__(self, mode: Mode, start_ns: int, stop: threading.Event):
        self.mode, self.start_ns, self.stop = mode, start_ns, stop
        self._progress: dict[int, float] = {}  # source id -> media ns reached
        self._cond = threading.Condition()

    def join(self) -> int:
        with self._cond:
            sid = len(self._progress)
            self._progress[sid] = 0
            return sid

    def leave(self, sid: int) -> None:
        with self._cond:
            self._progress[sid] = float("inf")
            self._cond.notify_all()

    def due(self, sid: int, media_ns: int) -> int | None:
        """Wait until media time `media_ns` of source `sid` is due; its stamp, or None on stop."""
        t = self.start_ns + media_ns
        if self.mode is Mode.REALTIME:
            return t if sleep_until(t, self.stop) else None
        with self._cond:
            self._progress[sid] = media_ns
            self._cond.notify_all()
            while media_ns > min((v for k, v in self._progress.items() if k != sid), default=t):
                if self.stop.is_set():
                    return None
                self._cond.wait(0.1)
        return t if self.mode is Mode.SIMULATED else now_ns()


class Source(ABC):
    """Produces stamped items in its own thread; the runner queues them."""

    name: str
    policy: Policy
    live: bool  # a device that keeps capturing whether or not we keep up

    def can_wait(self, mode: Mode) -> bool:
        """Whether the source may wait for room downstream without losing data."""
        return not self.live and mode is not Mode.REALTIME

    @abstractmethod
    def items(self, timeline: Timeline, sid: int) -> Iterator[Any]:
        """Yield items until the media ends or the timeline's stop is set."""

    def reopen(self) -> None:
        """Open the device again after `DeviceGone`; `items()` then goes on where it
        stopped. Raises DeviceFailure while it is still away, BadInput if it came back as
        something else."""
        raise DeviceFailure(f"{self.name} cannot be opened again")

    def close(self) -> None:
        """Release the device."""


class CameraSource(Source):
    policy = Policy.NEWEST

    def __init__(self, camera: Camera):
        self.camera = camera
        self.name = f"camera {camera.name}"
        self.live = camera.live
        self._resumed = False  # reopened: in REALTIME, frames missed while away are skipped

    def items(self, timeline: Timeline, sid: int) -> Iterator[VideoFrame]:
        period_ns = round(NS_PER_S / self.camera.fps)
        catch_up = not self.live and timeline.mode is Mode.REALTIME
        for frame in self.camera.frames():
            if self._resumed and catch_up and (
                    timeline.start_ns + frame.media_ns + period_ns <= now_ns()):
                continue  # its time passed while the camera was away
            self._resumed = False
            t = now_ns() if self.live else timeline.due(sid, frame.media_ns)
            if t is None or timeline.stop.is_set():
                return
            yield VideoFrame(t_ns=t, image=frame.image, index=frame.index)

    def reopen(self) -> None:
        self.camera.reopen()
        self._resumed = True

    def close(self) -> None:
        self.camera.close()


class MicrophoneSource(Source):
    policy = Policy.KEEP_ALL

    def __init__(self, microphone: Microphone):
        self.microphone = microphone
        self.name = f"microphone {microphone.name}"
        self.live = microphone.live

    def items(self, timeline: Timeline, sid: int) -> Iterator[AudioChunk]:
        for block in self.microphone.blocks():
            duration = len(block.samples) * NS_PER_S // SAMPLE_RATE
            # a block is delivered once its last sample has been recorded
            end = (
                now_ns()
                if self.live
                else timeline.due(sid, block.offset * NS_PER_S // SAMPLE_RATE + duration)
            )
            if end is None or timeline.stop.is_set():
                return
            yield AudioChunk(t_ns=end - duration, samples=block.samples, offset=block.offset)

    def reopen(self) -> None:
        self.microphone.reopen()

    def close(self) -> None:
        self.microphone.close()
