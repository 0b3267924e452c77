"""Wake word: microWakeWord models ("okay nabu" by default) on onnxruntime.

The models come from `pymicro-wakeword` (Apache-2.0, the weights in its wheel) as int8
TFLite graphs; `export/wake_build.py` converts each to ONNX at build time and checks it
against the TFLite runtime, so the run time needs no TFLite. The store entry
`wake-PHRASE` (`wake-okay-nabu`) holds `PHRASE.onnx`, the model's `PHRASE.json` (its
phrase, probability cutoff and averaging window) and its licence.

Features are the TFLite Micro audio frontend's (40 log filterbank channels of a 30 ms
window every 10 ms, with noise reduction and per-channel gain control), computed by
`pymicro-features`, a small C++ extension with no dependencies: the optional extra
`wake` (`pip install '.[wake]'`). The frontend's fixed-point arithmetic is what the
models were trained on; it is not re-implemented here.

Every `STRIDE` feature frames (30 ms) the model gives a probability; the mean of the last
`window` probabilities above `threshold` is a detection, reported as the stream index
just after the last sample the deciding frames saw; none follows for `refractory_ms`.
Detection is pure logic over probabilities (`Detector`), testable without a model.
"""

import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glasses.device.audio import SAMPLE_RATE
from glasses.device.boards import BoardProfile
from glasses.device.errors import GlassesError, StoreError
from glasses.models.sessions import create_session
from glasses.models.store import ModelStore

DEFAULT_PHRASE = "okay_nabu"
PHRASES = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")  # the models the wheel carries
FRAME = SAMPLE_RATE // 100  # samples per feature frame: 10 ms
FRONTEND_WINDOW = 3 * FRAME  # samples the frontend's first frame needs: 30 ms
N_FEATURES = 40  # filterbank channels
INPUT, OUTPUT = "features", "probability"  # the ONNX graph's; its other inputs are states
NEXT_SUFFIX = ":next"  # state input NAME is returned as output NAME:next
INT16_SCALE = 32768
NO_FRONTEND = "the wake word needs pymicro-features (pip install '.[wake]')"


def store_name(phrase: str) -> str:
    """`okay_nabu` -> `wake-okay-nabu`, the store entry of that wake word."""
    return "wake-" + phrase.replace("_", "-")


def model_files(store: ModelStore, phrase: str) -> tuple[Path, Path]:
    """The verified model and config of `phrase`; a StoreError naming the store entry, on
    one line, when it is missing, changed, or the store is not prepared."""
    name = store_name(phrase)
    try:
        return store.path(name, f"{phrase}.onnx"), store.path(name, f"{phrase}.json")
    except StoreError as e:
        raise StoreError(str(e) if repr(name) in str(e) else f"wake word {name!r}: {e}"
                         ) from None


@dataclass(frozen=True)
class WakeOptions:
    # decision (None: the model's own, from its .json: okay_nabu 0.85 over 5)
    threshold: float | None = None  # mean probability above which the word was said
    window: int | None = None  # probabilities averaged, one per 30 ms

    # after a detection
    refractory_ms: int = 2000  # no second detection within this


class Detector:
    """Turns per-step probabilities into detections (pure logic)."""

    def __init__(self, threshold: float, window: int, refractory_ms: int):
        self.threshold, self.window = threshold, window
        self._refractory = refractory_ms * SAMPLE_RATE // 1000
        self.reset()

    def reset(self) -> None:
        self._recent: deque[float] = deque(maxlen=self.window)
        self._quiet_until = -1  # stream index before which no detection is reported

    def push(self, prob: float, end: int) -> bool:
        """Feed the probability of the step whose audio ends at stream index `end`."""
        self._recent.append(prob)
        if end < self._quiet_until or len(self._recent) < self.window:
            return False
        if sum(self._recent) / self.window <= self.threshold:
            return False
        self._recent.clear()
        self._quiet_until = end + self._refractory
        return True


def detect(probs: np.ndarray, ends: np.ndarray, threshold: float, window: int,
           refractory_ms: int) -> list[int]:
    """Detections (stream indices) over a whole recording's step probabilities."""
    detector = Detector(threshold, window, refractory_ms)
    return [int(e) for p, e in zip(probs, ends, strict=True) if detector.push(float(p), int(e))]


class Features:
    """The TFLite Micro frontend: 16 kHz int16 audio in any lengths -> (n, 40) float32,
    one row per 10 ms from the first 30 ms on."""

    def __init__(self) -> None:
        try:
            from pymicro_features import MicroFrontend
        except ImportError:
            raise GlassesError(NO_FRONTEND) from None
        self._frontend = MicroFrontend()
        self.reset()

    def reset(self) -> None:
        self._frontend.reset()
        self._pending = np.zeros(0, np.int16)

    def __call__(self, pcm: np.ndarray) -> np.ndarray:
        data = np.concatenate([self._pending, pcm.astype(np.int16, copy=False)])
        rows, pos = [], 0
        while pos + FRAME <= len(data):
            out = self._frontend.process_samples(data[pos : pos + FRAME].tobytes())
            pos += out.samples_read
            if out.features:
                rows.append(out.features)
        self._pending = data[pos:]
        return np.array(rows, np.float32).reshape(-1, N_FEATURES)


def to_pcm(samples: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16, as the frontend wants it."""
    x = np.round(np.asarray(samples, np.float32) * INT16_SCALE)
    return np.clip(x, -INT16_SCALE, INT16_SCALE - 1).astype(np.int16)


class WakeWord:
    """One wake word listening to one 16 kHz stream: `push` audio, get detections."""

    def __init__(self, store: ModelStore, board: BoardProfile, phrase: str = DEFAULT_PHRASE,
                 options: WakeOptions = WakeOptions()):
        model, config_path = model_files(store, phrase)
        config = json.loads(config_path.read_text())
        self.phrase = phrase
        self.wake_word: str = config["wake_word"]  # as said: "Okay Nabu"
        micro = config["micro"]
        self.threshold = (float(micro["probability_cutoff"]) if options.threshold is None
                          else options.threshold)
        self.window = int(micro["sliding_window_size"]) if options.window is None else (
            options.window)
        self.options = options
        self._features = Features()
        self._session = create_session(model, board)
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        self.stride = int(inputs.pop(INPUT)[1])  # feature frames per step: 3 (30 ms)
        self._state_shapes = {n: tuple(int(d) for d in s) for n, s in inputs.items()}
        self._outputs = [OUTPUT, *(n + NEXT_SUFFIX for n in self._state_shapes)]
        self._detector = Detector(self.threshold, self.window, options.refractory_ms)
        self.reset()

    def reset(self, offset: int = 0) -> None:
        """Forget the stream; the next sample pushed is stream index `offset`."""
        self._features.reset()
        self._detector.reset()
        self._states = {n: np.zeros(s, np.float32) for n, s in self._state_shapes.items()}
        self._rows = np.zeros((0, N_FEATURES), np.float32)  # frames not yet in a step
        self._origin = offset
        self._pos = offset  # stream index of the next sample
        self._frames = 0  # feature frames made since `origin`

    @property
    def position(self) -> int:
        """Stream index of the next sample `push` expects."""
        return self._pos

    def push(self, samples: np.ndarray, offset: int | None = None) -> list[int]:
        """Feed float32 samples (any length); return the stream indices where the wake
        word was detected (just after the audio that decided it). An `offset` other than
        `position` (samples lost, or another stretch of the stream) starts afresh there."""
        if offset is not None and offset != self._pos:
            self.reset(offset)
        return [end for prob, end in self._steps(samples) if self._detector.push(prob, end)]

    def probabilities(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A whole recording (from a fresh start) -> each step's probability and the
        stream index its audio ends at: (steps,) float32, (steps,) int64."""
        self.reset()
        steps = list(self._steps(samples))
        self.reset()
        return (np.array([p for p, _ in steps], np.float32),
                np.array([e for _, e in steps], np.int64))

    def _steps(self, samples: np.ndarray):
        self._pos += len(samples)
        rows = self._features(to_pcm(samples))
        if not len(rows):
            return
        self._rows = np.concatenate([self._rows, rows]) if len(self._rows) else rows
        while len(self._rows) >= self.stride:
            x, self._rows = self._rows[: self.stride], self._rows[self.stride :]
            out = self._session.run(self._outputs, {INPUT: x[None], **self._states})
            self._states = dict(zip(self._state_shapes, out[1:], strict=True))
            self._frames += self.stride
            # frame j covers samples [j * FRAME, j * FRAME + FRONTEND_WINDOW) after origin
            yield float(out[0][0, 0]), self._origin + (self._frames - 1) * FRAME + (
                FRONTEND_WINDOW)
