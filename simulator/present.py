"""The presenting loop: frames at the display rate into a window and/or a recording.

It notes when an answer first appears on the display (an `answer_shown` event) and, in a
window, turns keys into the assistant's switches: space push-to-talk, m mute, c camera
off/on, p latency overlay, q quit.
"""

import time
from dataclasses import dataclass

import cv2
import numpy as np

from glasses.device.clock import now_ns, process_age_s
from glasses.device.display import DisplayModel
from glasses.pipelines.assistant import Assistant
from glasses.pipelines.events import AnswerShown
from glasses.simulator.hud import HudState, draw
from glasses.simulator.recorder import Recorder

WINDOW = "glasses"
OVERLAY_EVERY_S = 1.0  # the latency overlay's numbers are refreshed this often
KEYS = "space push-to-talk, m mute, c camera, p latency overlay, q quit"


@dataclass
class PresentStats:
    frames: int = 0
    late: int = 0  # frames drawn after their slot had passed
    extra: int = 0  # frames drawn between slots, at once, because an answer arrived
    wall_s: float = 0.0
    first_frame_s: float | None = None  # cold start: the command -> the first frame shown

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s else 0.0


class Presenter:
    def __init__(self, assistant: Assistant, hud: HudState, display: DisplayModel,
                 size: tuple[int, int], fps: float, window: bool, recorder: Recorder | None,
                 push_to_talk: bool = False):
        self.assistant, self.frames, self.hud = assistant, assistant.frames, hud
        self.display, self.size, self.period_s = display, size, 1.0 / fps
        self.window, self.recorder, self.push_to_talk = window, recorder, push_to_talk
        self.stats = PresentStats()
        self._shown_turn = 0
        self._overlay: list[str] = []
        self._overlay_at = 0.0
        self._start = 0.0
        self._talking = False
        self._answers_shown: list[float] = []  # ms after the end of speech, each answer

    def run(self, duration_s: float | None) -> PresentStats:
        start = self._start = time.monotonic()
        next_at = start
        if self.window:
            cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
        try:
            while not self.assistant.wait(0) and not self.assistant.stopping:
                now = time.monotonic()
                if duration_s and now - start >= duration_s:
                    break
                frame = self._frame(now)
                if self.recorder is not None:
                    self.recorder.write(frame)
                if self.window:
                    cv2.imshow(WINDOW, frame)
                    key = cv2.waitKey(1) & 0xFF  # the window shows the frame in this call
                if not self.stats.frames:
                    self.stats.first_frame_s = process_age_s()
                self.stats.frames += 1
                if self.window and self._key(key):
                    break
                next_at += self.period_s
                delay = next_at - time.monotonic()
                if delay >= 0:
                    self._wait(next_at)
                else:  # late: catch up within a frame, else let the schedule slip
                    self.stats.late += 1
                    if delay < -self.period_s:
                        next_at = time.monotonic()
        finally:
            self.stats.wall_s = time.monotonic() - start
            if self.window:
                cv2.destroyAllWindows()
                cv2.waitKey(1)
        return self.stats

    def _wait(self, until: float) -> None:
        """Sleep until `until` (monotonic s), drawing an extra frame when an answer's first
        words arrive meanwhile: the display changes when its content does, as a glasses
        display does, instead of up to a frame period later (67 ms at 15 fps). An extra
        frame goes to the window, not into a recording (which keeps its frame rate)."""
        while (remaining := until - time.monotonic()) > 0:
            if not self.hud.answer_arrived.wait(remaining):
                return
            self.hud.answer_arrived.clear()
            frame = self._frame(time.monotonic())
            self.stats.extra += 1
            if self.window:
                cv2.imshow(WINDOW, frame)
                cv2.waitKey(1)

    def _frame(self, now: float) -> np.ndarray:
        view = self.hud.get()
        if view.turn != self._shown_turn and view.answer:  # the answer reaches the display
            self._shown_turn = view.turn
            t = now_ns()
            self.assistant.publish(AnswerShown(t, view.speech_end_ns))
            self._answers_shown.append((t - view.speech_end_ns) / 1e6)
        if view.overlay and now - self._overlay_at >= OVERLAY_EVERY_S:
            self._overlay, self._overlay_at = self._overlay_lines(), now
        latest = self.frames.latest()
        return draw(None if latest is None else latest.image, view, self.display, self.size,
                    self._overlay)

    def _overlay_lines(self) -> list[str]:
        spans = self.assistant.runner.recorder.busy_ms()
        elapsed = max(1e-3, time.monotonic() - self._start)
        lines = [f"display {self.stats.frames / elapsed:.1f} fps, {self.stats.late} late"]
        lines += [f"{name} p50 {np.median(ms):.1f} ms" for name, ms in spans.items()
                  if len(ms) and name not in ("frame-buffer", "camera-gate", "mic-gate")]
        if self._answers_shown:
            lines.append(f"last answer shown {self._answers_shown[-1]:.0f} ms after speech")
        return lines

    def _key(self, key: int) -> bool:
        """Act on a key; True to quit."""
        a = self.assistant
        if key == ord("q"):
            return True
        if key == ord(" ") and self.push_to_talk:
            self._talking = not self._talking
            (a.talk_start if self._talking else a.talk_stop)()
        elif key == ord("m"):
            (a.unmute if a.muted else a.mute)()
        elif key == ord("c"):
            (a.camera_off if a.camera_is_on else a.camera_on)()
        elif key == ord("p"):
            self.hud.update(overlay=not self.hud.get().overlay)
        return False
