"""Which frame the question is about: the sharpest recent frame captured while it was asked.

The newest frame after the question was understood is often the wrong one: the wearer has
turned away, or the head moved and blurred it. Sharpness is the variance of the Laplacian
of a small grey copy: cheap (well under a millisecond a frame) and blind to the size of
the camera's frames.
"""

from collections.abc import Iterable, Sequence
from dataclasses import replace

import cv2
import numpy as np

from glasses.pipelines.frame_buffer import FrameBuffer
from glasses.pipelines.frames import Utterance, VideoFrame
from glasses.pipelines.stage import Stage

SHARPNESS_WIDTH = 320  # frames are shrunk to this width before the Laplacian
RECENT = 8  # the sharpest of the last this many frames inside the utterance wins
NEAR_NS = 1_000_000_000  # with no frame inside, one this close to its end may stand in


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of `image` (H, W, 3) BGR uint8: higher is sharper."""
    h, w = image.shape[:2]
    step = max(1, w // SHARPNESS_WIDTH)
    grey = cv2.cvtColor(np.ascontiguousarray(image[::step, ::step]), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def sharpest(frames: Sequence[VideoFrame], recent: int = RECENT) -> VideoFrame | None:
    """The sharpest of the last `recent` frames (the newest wins a tie), or None."""
    candidates = list(frames)[-recent:]
    if not candidates:
        return None
    scores = [sharpness(f.image) for f in candidates]
    return candidates[len(scores) - 1 - int(np.argmax(scores[::-1]))]


def frame_for(buffer: FrameBuffer, start_ns: int, end_ns: int) -> VideoFrame | None:
    """The frame for a question asked between `start_ns` and `end_ns` (capture times): the
    sharpest recent frame inside, else the frame nearest its end if it is within
    `NEAR_NS` of it, else None (the camera was off, or gone)."""
    chosen = sharpest(buffer.between(start_ns, end_ns))
    if chosen is None and (near := buffer.nearest(end_ns)) is not None:
        chosen = near if abs(near.t_ns - end_ns) <= NEAR_NS else None
    return chosen


class FrameChoice(Stage):
    """Gives each final and `ending` utterance its frame, as the VAD emits it (while the
    frame buffer still holds the question's frames: in the simulated and offline modes the
    camera may run seconds ahead of the speech recogniser). Partial utterances pass as
    they are."""

    name = "frame-choice"

    def __init__(self, buffer: FrameBuffer):
        self.buffer = buffer

    def process(self, item: Utterance) -> Iterable[Utterance]:
        if not (item.final or item.ending):
            return (item,)
        return (replace(item, frame=frame_for(self.buffer, item.start_ns, item.end_ns)),)
