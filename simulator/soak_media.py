"""A soak's media: the built-in demo looped for as long as asked, made as it plays.

The demo (`simulator/demo/`) is 10 s: a cup of coffee with "What am I looking at?" asked
at 1.0 s, then from 5 s an exit sign with "Read that sign for me." at 5.5 s. A soak cuts
it in its two halves, a view with its question each, and gives every `every_s` seconds
of media one of them, in turn, from the start of its slot: the coffee half, then the
sign half, and so on. The camera decodes its frames as they are read (its 150 frames are
held as JPEG, not as pixels) and the microphone track is written a block at a time, so
neither grows with the soak's length.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from glasses.device.audio import SAMPLE_RATE, load_audio
from glasses.device.camera import Camera, CameraFrame
from glasses.device.clock import NS_PER_S
from glasses.device.errors import BadInput, DeviceFailure
from glasses.evaluation.scoring import accepted
from glasses.simulator.scenario import _write_track
from glasses.simulator.session import DEMO_AUDIO, DEMO_VIDEO

HALF_S = 5.0  # each half of the demo: a view and its question
JPEG_QUALITY = 90
# each half's question and the words its answer should hold (`simulator/demo/demo.toml`)
QUESTIONS = (("What am I looking at?", ("espresso", "coffee", "cup")),
             ("Read that sign for me.", ("exit",)))
MIN_EVERY_S = HALF_S + 1.0  # a question's half must fit its slot, with a pause after it


@dataclass(frozen=True)
class Question:
    at_s: float  # where its slot (and its half of the demo) starts in the media
    text: str
    expect: tuple[str, ...]


def schedule(length_s: float, every_s: float) -> list[Question]:
    """The questions of `length_s` seconds of media, one every `every_s` seconds."""
    if not every_s >= MIN_EVERY_S:
        raise BadInput(f"a question every {every_s:g} s: at least {MIN_EVERY_S:g} s apart "
                       "(each takes 5 s of the demo)")
    count = int((length_s - HALF_S) // every_s) + 1 if length_s >= HALF_S else 0
    return [Question(k * every_s, *QUESTIONS[k % 2]) for k in range(count)]


def write_track(path: Path, questions: list[Question], length_s: float) -> None:
    """The microphone: each question's half of the demo's WAV at its slot, silence between;
    16 kHz 16-bit PCM, written a block at a time."""
    demo = load_audio(DEMO_AUDIO)
    n = int(HALF_S * SAMPLE_RATE)
    halves = (demo[:n], demo[n:2 * n])
    _write_track(path, [(q.at_s, halves[i % 2]) for i, q in enumerate(questions)],
                 int(length_s * SAMPLE_RATE))


class SoakCamera(Camera):
    """The demo's video looped for `length_s` seconds at its own 15 fps: in each slot of
    `every_s` seconds, the half that goes with the slot's question (the coffee half, then
    the sign half), from its start; between questions its last frames are held."""

    def __init__(self, length_s: float, every_s: float, size: tuple[int, int]):
        super().__init__()
        self.name = f"{DEMO_VIDEO.name} looped"
        self.size, self._every_s = size, every_s
        with Camera.open(DEMO_VIDEO, size=size) as demo:
            self.fps = demo.fps
            frames = [f.image for f in demo.frames()]
        half = round(HALF_S * self.fps)
        if len(frames) < 2 * half:
            raise DeviceFailure(f"{DEMO_VIDEO}: {len(frames)} frames, expected {2 * half}")
        encode = lambda image: cv2.imencode(  # noqa: E731
            ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1]
        self._halves = ([encode(f) for f in frames[:half]],
                        [encode(f) for f in frames[half:2 * half]])
        self.frame_count = int(length_s * self.fps)

    def frames(self) -> Iterator[CameraFrame]:
        while not self._closed and (i := self._index) < self.frame_count:
            t = i / self.fps
            slot = int(t // self._every_s)
            half = self._halves[slot % 2]
            j = min(len(half) - 1, int((t - slot * self._every_s) * self.fps))
            self._index = i + 1
            image = cv2.imdecode(half[j], cv2.IMREAD_COLOR)
            yield CameraFrame(image, i, round(i * NS_PER_S / self.fps))

    def reopen(self) -> None:
        """Made, not opened: it never goes away."""

    def close(self) -> None:
        self._closed = True
        self._halves = ([], [])


def expected(answer: str | None, words: tuple[str, ...]) -> bool:
    """Whether an answer holds one of the words expected of it."""
    return bool(answer) and accepted(answer, list(words))
