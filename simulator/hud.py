"""What the simulator shows: the camera view with the glasses display over it.

`HudState` is set from pipeline threads and read by the presenting loop; `draw` makes one
frame from it: the view (or black with "camera off"), the display's card (status line,
the question as its title, the answer or the partial transcript as its body), a capture
indicator while the camera records, and an optional latency overlay.
"""

import threading
from dataclasses import dataclass, replace

import cv2
import numpy as np

from glasses.device.clock import NS_PER_S, now_ns
from glasses.device.display import Card, DisplayModel, compose, hud_rect, render
from glasses.models.answers import cards

CARD_S = 3.0  # a long answer's cards follow each other this often
NOTE_S = 3.0  # a passing note ("camera back") stays on the status line this long
TINT = 0.45  # the view behind the display region is dimmed to this fraction
REC_BGR = (40, 40, 230)
OVERLAY_BGR = (230, 230, 230)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class HudView:
    status: str = "listening"  # listening, thinking, answering, answer, muted ...
    question: str = ""  # the partial or final transcript
    answer: str = ""
    answer_done_ns: int = 0  # when the answer was complete; 0 while it grows
    turn: int = 0  # counts the questions answered; a new answer has a new number
    speech_end_ns: int = 0  # the end of the question the answer is for
    message: str = ""  # a device failure, shown on the status line
    lost: tuple[str, ...] = ()  # devices away now and tried again: "camera", "microphone"
    note: str = ""  # a passing note on the status line ("camera back") ...
    note_until_ns: int = 0  # ... until then (monotonic ns)
    camera_on: bool = True
    muted: bool = False
    overlay: bool = False
    countdown_ns: int = 0  # a skill's card counts down to this (monotonic ns); 0: none


class HudState:
    """A `HudView` shared between threads. `answer_arrived` is set when an answer's first
    words arrive (the presenter draws them at once, not at its next frame)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._view = HudView()
        self.answer_arrived = threading.Event()

    def update(self, **fields) -> None:
        with self._lock:
            old, self._view = self._view, replace(self._view, **fields)
        if self._view.answer and not old.answer:
            self.answer_arrived.set()

    def get(self) -> HudView:
        with self._lock:
            return self._view


def card_for(view: HudView, at_ns: int | None = None) -> Card:
    """The display's card: a long answer pages through its cards once it is complete."""
    at_ns = at_ns or now_ns()
    parts = [view.status + (" | mic muted" if view.muted else ""), view.message]
    parts += [f"{d} lost" for d in view.lost if f"{d} lost" != view.message]
    parts.append(view.note if at_ns < view.note_until_ns else "")
    status = " | ".join(p for p in parts if p)
    if not view.answer:
        return Card(title="", body=view.question, status=status)
    pages = cards(view.answer) or [""]
    page = 0
    if view.answer_done_ns and len(pages) > 1:
        elapsed = (at_ns - view.answer_done_ns) / NS_PER_S
        page = min(len(pages) - 1, int(elapsed / CARD_S))
    body = pages[page]
    left_s = (view.countdown_ns - at_ns) / NS_PER_S if view.countdown_ns else 0
    if left_s > 0:
        body = f"{body} {int(left_s // 60)}:{int(left_s % 60):02d} left".strip()
    return Card(title=view.question, body=body, status=status)


def draw(image: np.ndarray | None, view: HudView, display: DisplayModel,
         size: tuple[int, int], overlay: list[str] = ()) -> np.ndarray:
    """One frame as the wearer sees it: (h, w, 3) uint8 BGR for `size` (w, h)."""
    w, h = size
    seeing = view.camera_on and "camera" not in view.lost
    if seeing and image is not None:
        base = image if image.shape[:2] == (h, w) else cv2.resize(image, size)
    else:
        base = np.zeros((h, w, 3), np.uint8)
        note = ("camera lost" if "camera" in view.lost
                else view.message if "camera" in view.message else "camera off")
        cv2.putText(base, note, (12, h - 16), FONT, 0.6, OVERLAY_BGR, 1, cv2.LINE_AA)
    x, y, hw, hh = hud_rect((w, h), display)  # a tinted lens where the display sits,
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + hw), min(h, y + hh)  # so light text
    base = base.copy()  # stays readable against a bright view
    base[y0:y1, x0:x1] = (base[y0:y1, x0:x1] * TINT).astype(np.uint8)
    out = compose(base, render(display, card_for(view)), display)
    if seeing:  # the capture indicator real glasses show while recording
        cv2.circle(out, (18, 18), 7, REC_BGR, -1, cv2.LINE_AA)
        cv2.putText(out, "REC", (30, 24), FONT, 0.5, REC_BGR, 1, cv2.LINE_AA)
    if view.overlay and overlay:
        top = h - 12 - 18 * len(overlay)
        cv2.rectangle(out, (6, top - 16), (min(w - 6, 330), h - 6), (0, 0, 0), -1)
        for i, line in enumerate(overlay):
            cv2.putText(out, line, (12, top + 18 * i), FONT, 0.45, OVERLAY_BGR, 1, cv2.LINE_AA)
    return out
