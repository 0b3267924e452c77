"""Voice activity: silero VAD (ONNX) and an endpointer that finds speech start and end.

The endpointer is pure logic over speech probabilities, testable without a model.
"""

from dataclasses import dataclass

import numpy as np

from glasses.device.audio import SAMPLE_RATE
from glasses.device.boards import BoardProfile
from glasses.models.sessions import create_session
from glasses.models.store import ModelStore

MODEL = "silero-vad"
MODEL_FILE = "silero_vad.onnx"
WINDOW = 512  # samples per VAD decision at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window the model sees in front of each window
WINDOW_MS = WINDOW * 1000 // SAMPLE_RATE


class SileroVad:
    """Speech probability of consecutive 32 ms windows of one 16 kHz stream."""

    def __init__(self, store: ModelStore, board: BoardProfile):
        self._session = create_session(store.path(MODEL, MODEL_FILE), board)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: call before an unrelated recording."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def __call__(self, window: np.ndarray) -> float:
        """`window` (512,) float32 -> probability of speech in [0, 1]."""
        if window.shape != (WINDOW,):
            raise ValueError(f"VAD window must be {WINDOW} samples, got {window.shape}")
        x = np.concatenate([self._context, window.astype(np.float32, copy=False)])[None, :]
        prob, self._state = self._session.run(
            None, {"input": x, "state": self._state, "sr": self._sr}
        )
        self._context = x[0, -CONTEXT:]
        return float(prob[0, 0])


@dataclass(frozen=True)
class VadOptions:
    # decision
    threshold: float = 0.5  # probability at or above which speech starts
    release: float = 0.35  # probability below which speech may be ending (hysteresis)

    # timing
    min_speech_ms: int = 250  # bursts shorter than this are not utterances
    # how a turn ends: "turn", the end-of-turn model judges each silence once `judge_ms` of it
    # is heard (a complete turn ends there, an incomplete one waits up to `max_silence_ms`
    # for the wearer to go on); "vad", any silence of `min_silence_ms` ends it
    endpoint: str = "vad"
    min_silence_ms: int = 300  # the VAD alone: silence that ends an utterance
    max_silence_ms: int = 1500  # a turn judged incomplete still ends after this silence
    judge_ms: int = 160  # silence before a turn is judged: gaps between words are shorter
    pad_ms: int = 64  # audio kept before the start of speech
    tail_ms: int = 32  # audio kept after its end (silero's own lag covers the last sound)
    max_utterance_s: float = 30.0  # an utterance is cut here (Whisper's window)

    # streaming
    partial_every_ms: int = 0  # send the speech so far this often while speaking; 0: never
    early_end: bool = False  # when silence starts, send the utterance as it would end there


@dataclass(frozen=True)
class VadEvent:
    """`kind` is "start", "end", or "cancel" (a start that proved too short).

    `sample` is a stream index at 16 kHz: speech start for "start"; for "end" and
    "cancel", the end of speech, and `start` repeats where it began.
    """

    kind: str
    sample: int
    start: int = 0


ENDPOINTS = ("turn", "vad")


class Endpointer:
    """Turns per-window speech probabilities into speech start and end events.

    With `endpoint="turn"` a silence is judged once `judge_ms` of it is heard:
    `wants_verdict` turns true, and `verdict(complete)` (the end-of-turn model's
    answer) ends a complete turn there; an incomplete one goes on (the wearer paused
    mid-question) until speech resumes or `max_silence_ms` of silence ends it.
    """

    def __init__(self, options: VadOptions = VadOptions()):
        if options.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {options.endpoint!r}; use {' or '.join(ENDPOINTS)}")
        self.options = options
        ms = SAMPLE_RATE // 1000
        self._min_speech = options.min_speech_ms * ms
        self._turn = options.endpoint == "turn"
        self._judge_after = max(options.judge_ms, options.tail_ms) * ms
        self._min_silence = (options.max_silence_ms if self._turn else options.min_silence_ms) * ms
        self._max = int(options.max_utterance_s * SAMPLE_RATE)
        self.reset()

    def reset(self) -> None:
        self._start: int | None = None  # speech start, while in speech
        self._silence_from: int | None = None  # start of the current run of silence
        self._judged: int | None = None  # the silence already judged (its start)
        self._heard_to = 0  # end of the newest window pushed

    @property
    def wants_verdict(self) -> bool:
        """A silence long enough to judge, not judged yet (the "turn" endpoint only)."""
        return (self._turn and self._silence_from is not None
                and self._judged != self._silence_from
                and self._heard_to - self._silence_from >= self._judge_after)

    def verdict(self, complete: bool) -> list[VadEvent]:
        """The end-of-turn model's answer for the silence `wants_verdict` offered."""
        if not self.wants_verdict:
            return []
        self._judged = self._silence_from
        return [self._end(self._silence_from)] if complete else []

    @property
    def silence_from(self) -> int | None:
        """Where the speech seems to have ended, while in speech and silence has begun."""
        return self._silence_from

    @property
    def speech_start(self) -> int | None:
        """Stream index where the open utterance began; None outside speech."""
        return self._start

    def push(self, prob: float, pos: int) -> list[VadEvent]:
        """Feed the probability of the window starting at stream index `pos`."""
        o = self.options
        end_of_window = self._heard_to = pos + WINDOW
        if self._start is None:
            if prob >= o.threshold:
                self._start = pos
                return [VadEvent("start", pos)]
            return []
        if prob >= o.threshold:
            self._silence_from = None
        elif prob < o.release and self._silence_from is None:
            self._silence_from = pos
        if self._silence_from is not None and end_of_window - self._silence_from >= (
            self._min_silence
        ):
            return [self._end(self._silence_from)]
        if end_of_window - self._start >= self._max:
            return [self._end(end_of_window)]
        return []

    def finish(self, pos: int) -> list[VadEvent]:
        """The stream ended at index `pos`: close an utterance still open."""
        if self._start is None:
            return []
        return [self._end(self._silence_from if self._silence_from is not None else pos)]

    def _end(self, end: int) -> VadEvent:
        start = self._start
        self.reset()
        kind = "end" if end - start >= self._min_speech else "cancel"
        return VadEvent(kind, end, start)


def speech_spans(vad: SileroVad, audio: np.ndarray,
                 options: VadOptions = VadOptions()) -> list[tuple[int, int]]:
    """(start, end) sample indices of every utterance in a whole 16 kHz recording."""
    vad.reset()
    endpointer, events = Endpointer(options), []
    for pos in range(0, len(audio) - WINDOW + 1, WINDOW):
        events += endpointer.push(vad(audio[pos : pos + WINDOW]), pos)
    events += endpointer.finish(len(audio))
    return [(e.start, e.sample) for e in events if e.kind == "end"]
