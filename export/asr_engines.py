"""Speech-to-text engines compared side by side: our ONNX Whisper and two references.

- `onnx`: `models.asr.WhisperOnnx`, onnxruntime alone (what the glasses run);
- `whisper`: openai-whisper in PyTorch, from the store's rebuilt reference checkpoint;
- `faster-whisper`: CTranslate2 int8, from the store's CTranslate2 directory (only when
  the `faster_whisper` package is installed).

All three decode the same way: greedy (beam 1), English, no timestamps, no previous-text
conditioning, 2 threads. torch and faster_whisper are imported in `load()`, never when
this module is imported, so `glasses transcribe --engine onnx` needs neither.
"""

import dataclasses
import importlib.util
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.models.asr import MODELS, AsrOptions, WhisperOnnx, store_name
from glasses.models.store import ModelStore

THREADS = 2  # every engine gets exactly this many CPU threads


class Engine(ABC):
    """One way of turning 16 kHz mono audio into text. `load()` once, then `transcribe()`."""

    name: ClassVar[str]

    def __init__(self, store: ModelStore, options: AsrOptions):
        if options.model not in MODELS:
            raise BadInput(f"unknown speech model {options.model!r}; known: {', '.join(MODELS)}")
        self.store = store
        self.options = options
        self.last_timings_ms: dict[str, float] = {}  # the stages of the last call, if known
        self.loaded = False

    @property
    def model(self) -> str:
        return self.options.model

    @property
    @abstractmethod
    def backend(self) -> str:
        """What runs the model, for people: "onnxruntime fp32, short window"."""

    @property
    def description(self) -> str:
        return f"{self.name} {self.model} ({self.backend})"

    def load(self) -> None:
        """Load the weights (verified against the store) and build the model."""
        self._load()
        self.loaded = True

    def transcribe(self, audio: np.ndarray) -> str:
        """(n,) float32 audio at 16 kHz -> text. Empty audio is empty text, no model run."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise BadInput(f"audio must be mono (n,), got shape {audio.shape}")
        if not np.isfinite(audio).all():
            raise BadInput("audio holds NaN or infinite samples")
        if not self.loaded:
            raise RuntimeError(f"{self.description}: call load() before transcribe()")
        self.last_timings_ms = {}
        if audio.size == 0:
            return ""
        return self._transcribe(audio).strip()

    @abstractmethod
    def _load(self) -> None:
        """The engine's own loading: imports, weights, sessions."""

    @abstractmethod
    def _transcribe(self, audio: np.ndarray) -> str:
        """The engine's own transcription of non-empty, finite, mono audio."""


class OnnxEngine(Engine):
    name = "onnx"

    @property
    def backend(self) -> str:
        return f"onnxruntime {self.options.precision}, {self.options.window} window"

    def _load(self) -> None:
        board = dataclasses.replace(BoardProfile.laptop(), threads=THREADS)
        self._asr = WhisperOnnx(self.store, board, self.options)

    def _transcribe(self, audio: np.ndarray) -> str:
        result = self._asr.transcribe(audio)
        self.last_timings_ms = dict(result.timings_ms)
        return result.text


class WhisperEngine(Engine):
    name = "whisper"

    @property
    def backend(self) -> str:
        return "openai-whisper, PyTorch fp32"

    def _load(self) -> None:
        import torch

        from glasses.export.ct2_whisper import load_whisper_checkpoint

        torch.set_num_threads(THREADS)
        path = self.store.path(f"{store_name(self.model)}-reference", "checkpoint.pt")
        self._model = load_whisper_checkpoint(path)

    def _transcribe(self, audio: np.ndarray) -> str:
        out = self._model.transcribe(audio, language="en", fp16=False, temperature=0.0,
                                     without_timestamps=True,
                                     condition_on_previous_text=False)
        return out["text"]


class FasterWhisperEngine(Engine):
    name = "faster-whisper"

    @property
    def backend(self) -> str:
        return "CTranslate2 int8"

    def _load(self) -> None:
        from faster_whisper import WhisperModel

        ct2 = f"{store_name(self.model)}-ct2"
        for file in ("config.json", "vocabulary.txt", "tokenizer.json"):
            self.store.path(ct2, file)  # verify every file, not only the weights
        folder = self.store.path(ct2, "model.bin").parent
        self._model = WhisperModel(str(folder), device="cpu", compute_type="int8",
                                   cpu_threads=THREADS)

    def _transcribe(self, audio: np.ndarray) -> str:
        segments, _ = self._model.transcribe(audio, language="en", beam_size=1,
                                             without_timestamps=True,
                                             condition_on_previous_text=False,
                                             vad_filter=False)
        return "".join(s.text for s in segments)  # a generator: decoding happens here


ENGINES: dict[str, type[Engine]] = {e.name: e for e in (OnnxEngine, WhisperEngine,
                                                        FasterWhisperEngine)}
_NEEDS = {"whisper": ("torch", "whisper"), "faster-whisper": ("faster_whisper",)}


def unavailable(name: str) -> str | None:
    """Why engine `name` cannot run here (a package is missing), or None when it can."""
    check(name)
    missing = [p for p in _NEEDS.get(name, ()) if importlib.util.find_spec(p) is None]
    return f"{', '.join(missing)} not installed" if missing else None


def check(name: str) -> None:
    if name not in ENGINES:
        raise BadInput(f"unknown speech engine {name!r}; known: {', '.join(ENGINES)}")


def make_engine(name: str, options: AsrOptions | None = None,
                store: ModelStore | None = None) -> Engine:
    """An engine, not yet loaded. A module-level function, so a `functools.partial` of it
    can be sent to a child process."""
    check(name)
    return ENGINES[name](store or ModelStore(), options or AsrOptions())
