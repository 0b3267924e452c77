"""The frame a question is about: the sharpest recent one captured while it was asked."""

import cv2
import numpy as np

from glasses.export.look_set import sign_view
from glasses.pipelines.frame_buffer import FrameBuffer
from glasses.pipelines.frame_choice import RECENT, frame_for, sharpest, sharpness
from glasses.pipelines.frames import VideoFrame

MS = 1_000_000


def frames(blurs: list[float], step_ms: int = 66) -> list[VideoFrame]:
    base = sign_view("EXIT", np.random.default_rng(1))
    return [VideoFrame(i * step_ms * MS, cv2.GaussianBlur(base, (0, 0), b) if b else base, i)
            for i, b in enumerate(blurs)]


def test_sharpness_falls_with_blur():
    scores = [sharpness(f.image) for f in frames([0, 1, 2, 4])]
    assert scores == sorted(scores, reverse=True) and scores[0] > 3 * scores[-1]


def test_the_sharpest_recent_frame_inside_the_question_wins():
    buffer = FrameBuffer()
    for f in frames([0, 3, 3, 0.5, 3, 3, 3, 3, 3]):  # the wearer's head moves after frame 3
        buffer.process(f)
    chosen = frame_for(buffer, 2 * 66 * MS, 8 * 66 * MS)
    assert chosen.index == 3, "not the newest frame, and not the sharp one before the question"
    assert frame_for(buffer, 8 * 66 * MS + 1, 9 * 66 * MS).index == 8, "none inside: nearest"
    assert frame_for(FrameBuffer(), 0, 1) is None


def test_only_the_last_few_frames_compete():
    many = frames([0] + [2] * (RECENT + 2))
    assert sharpest(many).index > 0, "a sharp frame from long ago is not the one asked about"
    assert sharpest([]) is None


def test_the_buffer_keeps_the_newest_frames_when_resized():
    buffer = FrameBuffer(capacity=3)
    for f in frames([0] * 5):
        buffer.process(f)
    assert [f.index for f in buffer.between(0, 10**12)] == [2, 3, 4]
    buffer.resize(2)
    assert [f.index for f in buffer.between(0, 10**12)] == [3, 4]
    buffer.resize(4)
    for f in frames([0] * 8)[5:]:
        buffer.process(f)
    assert [f.index for f in buffer.between(0, 10**12)] == [4, 5, 6, 7]

