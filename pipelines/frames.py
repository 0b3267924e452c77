"""The typed items that flow through a pipeline.

Every item is a frozen dataclass with `t_ns`: the monotonic capture time of the
camera frame or audio it came from (see `device.clock`). A derived item keeps its
source's capture time, so end-to-end latency is `now_ns() - item.t_ns`.
"""

from dataclasses import dataclass

import numpy as np

from glasses.device.audio import SAMPLE_RATE
from glasses.device.clock import NS_PER_S


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """Microphone audio: `samples` (n,) float32 at 16 kHz mono.

    `t_ns` is the capture time of the first sample; `offset` its index in the stream.
    `gated`: the wearer muted the microphone, `samples` are silence standing in for it.
    """

    t_ns: int
    samples: np.ndarray
    offset: int
    gated: bool = False

    @property
    def end_ns(self) -> int:
        """Capture time just after the last sample."""
        return self.t_ns + len(self.samples) * NS_PER_S // SAMPLE_RATE


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """A camera frame: `image` (H, W, 3) uint8 BGR, `index` counted from the stream start."""

    t_ns: int
    image: np.ndarray
    index: int


@dataclass(frozen=True, eq=False)
class Utterance:
    """One stretch of speech found by the VAD.

    `samples` (n,) float32 at 16 kHz, including the VAD's padding. `start_ns` and
    `end_ns` are the capture times of speech start and end; `t_ns` equals `end_ns`,
    so latency measured from an utterance starts at the end of speech. `speech_start`
    and `speech_end` are the same bounds as stream sample indices. A partial utterance
    (`final` False) is the speech so far, sent while the wearer is still talking; its
    end is the newest sample, unless `ending`: the speech seems to have ended at
    `speech_end` and, if the silence lasts, the final utterance will be exactly this one.
    `frame`: the camera frame the question is about (final utterances, once chosen by
    `pipelines/frame_choice.FrameChoice`; None while the camera is off).
    """

    t_ns: int
    start_ns: int
    end_ns: int
    samples: np.ndarray
    speech_start: int
    speech_end: int
    final: bool = True
    ending: bool = False
    frame: VideoFrame | None = None

    @property
    def duration_s(self) -> float:
        """Length of the speech, from the samples (stamps are read times offline)."""
        return (self.speech_end - self.speech_start) / SAMPLE_RATE


@dataclass(frozen=True)
class Transcript:
    """Recognised text of an utterance; `final` is False for partial hypotheses.

    `t_ns` is the utterance's end of speech (its capture time), `start_ns` its start;
    `frame` the utterance's frame (final and `ending` transcripts). `ending`: the words of
    an early `ending` utterance, the question as it will be if the silence lasts (the
    answering stage may work its answer out ahead). A question asked as text has `source`
    "text" and is stamped when it was asked."""

    t_ns: int
    text: str
    final: bool
    start_ns: int = 0
    frame: VideoFrame | None = None
    source: str = "voice"
    ending: bool = False


@dataclass(frozen=True)
class AnswerToken:
    """A piece of the answer as the model produces it; `last` ends the answer. A skill's
    card for the display comes as a piece with `card` (and no text); `skill` names the
    skill answering."""

    t_ns: int
    text: str
    last: bool
    card: "Card | None" = None
    skill: str = ""


@dataclass(frozen=True)
class Card:
    """A card for the display, from a skill: a title, a body, and optionally a countdown
    to `until_ns` (monotonic ns) shown until it is reached."""

    title: str
    body: str = ""
    until_ns: int | None = None
