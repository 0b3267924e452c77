"""The presenting loop: frames at the display rate into a window and/or a recording.

It also watches the sources (a camera or microphone that fails mid-run is shown on the
status line and logged, and the session goes on with what still works), notes when an
answer first appears on the display, and, in a window, handles the keys:
space push-to-talk, m mute, c camera off/on, p latency overlay, q quit.
"""

import time
from dataclasses import dataclass

import cv2
import numpy as np

from device.clock import now_ns
from device.display import DisplayModel
from pipelines.gate import Gate
from pipelines.runner import ChainStats, Runner
from simulator.events import EventLog
from simulator.hud import HudState, draw
from simulator.recorder import Recorder

WINDOW = "glasses"
OVERLAY_EVERY_S = 1.0  # the latency overlay's numbers are refreshed this often
KEYS = "space push-to-talk, m mute, c camera, p latency overlay, q quit"


@dataclass
class PresentStats:
    frames: int = 0
    late: int = 0  # frames drawn after their slot had passed
    wall_s: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s else 0.0


@dataclass
class Controls:
    mic: Gate
    camera: Gate
    push_to_talk: bool


class Presenter:
    def __init__(self, runner: Runner, frames, hud: HudState, log: EventLog, display: DisplayModel,
                 size: tuple[int, int], fps: float, controls: Controls,
                 chains: list[ChainStats], window: bool, recorder: Recorder | None):
        self.runner, self.frames, self.hud, self.log = runner, frames, hud, log
        self.display, self.size, self.period_s = display, size, 1.0 / fps
        self.controls, self.chains, self.window, self.recorder = controls, chains, window, recorder
        self.stats = PresentStats()
        self._failed: set[str] = set()
        self._shown_turn = 0
        self._overlay: list[str] = []
        self._overlay_at = 0.0
        self._start = 0.0

    def run(self, duration_s: float | None) -> PresentStats:
        start = self._start = time.monotonic()
        next_at = start
        if self.window:
            cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
        try:
            while not self.runner.wait(0):
                now = time.monotonic()
                if duration_s and now - start >= duration_s:
                    break
                self._watch_sources()
                frame = self._frame(now)
                if self.recorder is not None:
                    self.recorder.write(frame)
                self.stats.frames += 1
                if self.window:
                    cv2.imshow(WINDOW, frame)
                    if self._key(cv2.waitKey(1) & 0xFF):
                        break
                next_at += self.period_s
                delay = next_at - time.monotonic()
                if delay >= 0:
                    time.sleep(delay)
                else:  # late: catch up within a frame, else let the schedule slip
                    self.stats.late += 1
                    if delay < -self.period_s:
                        next_at = time.monotonic()
        finally:
            self._watch_sources()  # a source that failed after the last frame
            self.stats.wall_s = time.monotonic() - start
            if self.window:
                cv2.destroyAllWindows()
                cv2.waitKey(1)
        return self.stats

    def _frame(self, now: float) -> np.ndarray:
        view = self.hud.get()
        if view.turn != self._shown_turn and view.answer:  # the answer reaches the display
            self._shown_turn = view.turn
            self.log.add("answer_shown", speech_end=self.log.seconds(view.speech_end_ns),
                         since_speech_end_ms=round((now_ns() - view.speech_end_ns) / 1e6, 1))
        if view.overlay and now - self._overlay_at >= OVERLAY_EVERY_S:
            self._overlay, self._overlay_at = self._overlay_lines(), now
        latest = self.frames.latest()
        return draw(None if latest is None else latest.image, view, self.display, self.size,
                    self._overlay)

    def _watch_sources(self) -> None:
        for chain in self.chains:
            if chain.error and chain.source not in self._failed:
                self._failed.add(chain.source)
                what = "camera" if chain.source.startswith("camera") else "microphone"
                self.log.add("device_error", device=what, source=chain.source,
                             message=chain.error)
                self.hud.update(message=f"{what} lost", camera_on=self.hud.get().camera_on
                                and what != "camera")

    def _overlay_lines(self) -> list[str]:
        spans: dict[str, list[float]] = {}
        for s in self.runner.recorder.spans():
            spans.setdefault(s.stage, []).append(s.busy_ns / 1e6)
        elapsed = max(1e-3, time.monotonic() - self._start)
        lines = [f"display {self.stats.frames / elapsed:.1f} fps, {self.stats.late} late"]
        lines += [f"{name} p50 {np.median(ms):.1f} ms" for name, ms in spans.items()
                  if name not in ("frame-buffer", "camera-gate", "mic-gate")]
        shown = [e for e in self.log.events if e["type"] == "answer_shown"]
        if shown:
            lines.append(f"last answer shown {shown[-1]['since_speech_end_ms']:.0f} ms "
                         "after speech")
        return lines

    def _key(self, key: int) -> bool:
        """Act on a key; True to quit."""
        c = self.controls
        if key == ord("q"):
            return True
        if key == ord(" ") and c.push_to_talk:
            talking = c.mic.toggle()
            self.hud.update(status="listening" if talking else "push space to talk")
            self.log.add("push_to_talk", talking=talking)
        elif key == ord("m"):
            muted = not c.mic.toggle()
            self.hud.update(muted=muted)
            self.log.add("mute", muted=muted)
        elif key == ord("c"):
            on = c.camera.toggle()
            self.hud.update(camera_on=on)
            self.log.add("camera", on=on)
        elif key == ord("p"):
            self.hud.update(overlay=not self.hud.get().overlay)
        return False
