"""Whisper on onnxruntime alone: log-mel front end, encoder, greedy decoding with a KV cache.

Two ONNX graphs per model (see `export/whisper_onnx.py`):
- encoder: mel (1, n_mels, T) -> per decoder layer i, cross_k_i (n_head, d_head, T/2)
  and cross_v_i (n_head, T/2, d_head): the cross-attention keys and values, computed
  once per utterance;
- decoder: tokens, self-attention cache, cross k/v -> last-token logits, grown cache.

Short questions are cheap: with `window="short"` only the utterance plus `pad_s` of
silence goes through the encoder; the rest of Whisper's 30 s window is filled with the
cross-attention keys and values of silence, encoded when the model is built and stored
beside the encoder (`silence*.npz`). The decoder so sees the long silence it was trained
on and knows where the speech ends.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput, StoreError
from glasses.models.decoding import greedy
from glasses.models.mel import (
    FRAMES_PER_SECOND,
    HOP_LENGTH,
    N_FRAMES,
    SAMPLE_RATE,
    log_mel_spectrogram,
)
from glasses.models.sessions import create_session
from glasses.models.store import ModelStore
from glasses.models.whisper_vocab import Vocabulary

MODELS = ("tiny.en", "base")
# base: on our 40-request set 42.9% WER against tiny.en's 46.8% (openai-whisper: 43.8, 47.2),
# at 354 ms median per request, less than half of openai-whisper tiny.en's 825 ms
DEFAULT_MODEL = "base"
SILENCE_PEAK = 1e-3  # audio whose peak stays below this (-60 dBFS) holds no speech
LOOP_REPEATS = 3  # a block of tokens decoded this many times in a row is a loop (`loop_cut`)
CONFIG_FILE = "asr.json"  # the prompt and suppression rules, read from whisper at export
VOCAB_FILE = "vocabulary.txt"
SUPPORT_FILES = (CONFIG_FILE, VOCAB_FILE)
PRECISIONS = {"fp32": ("", ""), "int8": (".int8", ".int8"), "mixed": ("", ".int8")}


def model_files(precision: str) -> list[str]:
    """The store files `WhisperOnnx` loads at `precision`: encoder, decoder, the encoder's
    silence (`encode_silence`), and the support files."""
    enc, dec = PRECISIONS[precision]
    return [f"encoder{enc}.onnx", f"decoder{dec}.onnx", f"silence{enc}.npz", *SUPPORT_FILES]


def encode_silence(encoder: ort.InferenceSession, n_mels: int) -> dict[str, np.ndarray]:
    """The cross k/v of a silent 30 s window, by output name: computed when the model is
    built (`export/whisper_build.py`), not at each start, where the 30 s window's
    activations were the assistant's peak memory (250 MB on the laptop, fp32) and a third
    of its cold start."""
    mel = log_mel_spectrogram(np.zeros(0, np.float32), n_mels,
                              padding=N_FRAMES * HOP_LENGTH)[:, :N_FRAMES]
    names = [o.name for o in encoder.get_outputs()]
    return dict(zip(names, encoder.run(None, {"mel": mel[None]}), strict=True))


def load_silence(path: Path, names: list[str]) -> list[np.ndarray]:
    """The stored silence's arrays in the encoder's output order."""
    with np.load(path, allow_pickle=False) as stored:
        if sorted(stored.files) != sorted(names):
            raise StoreError(f"{path}: holds {sorted(stored.files)}, the encoder gives "
                             f"{sorted(names)}; run `glasses models prepare` to rebuild it")
        return [stored[n] for n in names]


def store_name(model: str) -> str:
    return f"whisper-{model}"


@dataclass(frozen=True)
class AsrOptions:
    model: str = DEFAULT_MODEL
    precision: str = "fp32"  # fp32 | int8 | mixed (fp32 encoder, int8 decoder)

    # the encoder window
    window: str = "short"  # short: the utterance + pad_s, then cached silence; full: 30 s
    pad_s: float = 0.5  # silence encoded after the speech in a short window
    span_s: float = 30.0  # a short window is followed by cached silence up to this length

    # decoding
    max_tokens: int = 224  # whisper's sample_len: half the text context


@dataclass(frozen=True)
class AsrResult:
    text: str
    tokens: list[int]
    audio_s: float
    timings_ms: dict[str, float] = field(default_factory=dict)  # mel, encoder, decoder
    # how sure the decoder was that the sentence ends where the text does: the probability,
    # when it chose the last token, of a full stop, question or exclamation mark there (a
    # question trailing off into a pause, "Can you tell me ...", gets less); None when no
    # token was decoded
    end_p: float | None = None


class WhisperOnnx:
    """Speech to English text with Whisper exported to ONNX."""

    def __init__(self, store: ModelStore, board: BoardProfile, options: AsrOptions = AsrOptions()):
        if options.model not in MODELS:
            raise BadInput(f"unknown speech model {options.model!r}; known: {', '.join(MODELS)}")
        if options.window not in ("short", "full"):
            raise BadInput(f"unknown encoder window {options.window!r}; use short or full")
        self.options = options
        name = store_name(options.model)
        if options.precision not in PRECISIONS:
            raise BadInput(f"unknown precision {options.precision!r}; use {', '.join(PRECISIONS)}")
        self.config = json.loads(store.path(name, CONFIG_FILE).read_text())
        self.vocab = Vocabulary(store.path(name, VOCAB_FILE))
        encoder_file, decoder_file, silence_file = model_files(options.precision)[:3]
        self.encoder = create_session(store.path(name, encoder_file), board)
        self.decoder = create_session(store.path(name, decoder_file), board)
        self.n_mels = self.config["n_mels"]
        self.sot_sequence = np.array([self.config["sot_sequence"]], dtype=np.int64)
        self.suppress = np.array(self.config["suppress_tokens"], dtype=np.int64)
        self.suppress_at_begin = np.array(self.config["suppress_at_begin"], dtype=np.int64)
        layers, state = self.config["n_text_layer"], self.config["n_text_state"]
        self._empty = np.zeros((layers, 1, 0, state), dtype=np.float32)
        self._cross_names = [o.name for o in self.encoder.get_outputs()]
        # keys are (heads, d_head, positions), values (heads, positions, d_head)
        self._position_axes = [2 if n.startswith("cross_k") else 1 for n in self._cross_names]
        self._run_options = ort.RunOptions()
        self._silence = (load_silence(store.path(name, silence_file), self._cross_names)
                         if options.window == "short" else None)

    def cancel(self) -> None:
        """Make a transcription running in another thread end now (it raises)."""
        self._run_options.terminate = True

    def transcribe(self, audio: np.ndarray, prefix: list[int] | None = None,
                   run_options: ort.RunOptions | None = None) -> AsrResult:
        """`audio` (n,) float32 at 16 kHz mono -> text. Longer than 30 s is cut to 30 s.

        `prefix`: text tokens already agreed on (streaming); they are forced in one decoder
        call instead of being decoded one by one, and are part of the result.
        `run_options`: this call's own, to end it from another thread (`terminate`); by
        default those `cancel()` ends.
        """
        run_options = run_options or self._run_options
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise BadInput(f"audio must be mono (n,), got shape {audio.shape}")
        if not np.isfinite(audio).all():
            raise BadInput("audio holds NaN or infinite samples")
        seconds = len(audio) / SAMPLE_RATE
        if not len(audio) or np.abs(audio).max() < SILENCE_PEAK:  # Whisper invents "you"
            return AsrResult(text="", tokens=[], audio_s=seconds)
        t0 = time.perf_counter()
        mel = self._mel(audio)
        t1 = time.perf_counter()
        cross = self.encoder.run(None, {"mel": mel[None]}, run_options)
        n, span = mel.shape[1] // 2, int(self.options.span_s * FRAMES_PER_SECOND) // 2
        if self._silence is not None and span > n:
            tail = np.arange(n, span)
            cross = [np.concatenate([c, s.take(tail, axis=a)], axis=a)
                     for c, s, a in zip(cross, self._silence, self._position_axes, strict=True)]
        t2 = time.perf_counter()
        tokens, end_p = self._decode(dict(zip(self._cross_names, cross, strict=True)),
                                     prefix or [], run_options)
        t3 = time.perf_counter()
        return AsrResult(
            text=self.vocab.decode(tokens).strip(),
            tokens=tokens,
            audio_s=seconds,
            end_p=end_p,
            timings_ms={"mel": (t1 - t0) * 1e3, "encoder": (t2 - t1) * 1e3,
                        "decoder": (t3 - t2) * 1e3},
        )

    def _mel(self, audio: np.ndarray) -> np.ndarray:
        """(n_mels, T): T = 3000 for the full window, else the speech + pad, even."""
        if self.options.window == "full":
            return log_mel_spectrogram(audio[: N_FRAMES * HOP_LENGTH], self.n_mels,
                                       padding=N_FRAMES * HOP_LENGTH)[:, :N_FRAMES]
        frames = int(len(audio) / HOP_LENGTH + self.options.pad_s * FRAMES_PER_SECOND)
        frames = min(N_FRAMES, frames + frames % 2)
        pad = frames * HOP_LENGTH - len(audio)
        mel = log_mel_spectrogram(audio[: frames * HOP_LENGTH], self.n_mels, padding=max(pad, 0))
        return np.ascontiguousarray(mel[:, :frames])

    def _decode(self, cross: dict[str, np.ndarray], prefix: list[int],
                run_options: ort.RunOptions) -> tuple[list[int], float | None]:
        """Greedy decoding with whisper's suppression rules: the text tokens, and `end_p`
        (`AsrResult`) at the last of them."""
        prompt = np.array([[*self.sot_sequence[0], *prefix]], dtype=np.int64)
        feed = {"tokens": prompt, "self_k": self._empty, "self_v": self._empty, **cross}
        ends: list[float] = []  # each step's `end_p`

        def mask(logits: np.ndarray, step: int) -> None:
            logits[self.suppress] = -np.inf
            if step == 0:
                logits[self.suppress_at_begin] = -np.inf
            ends.append(self._end_p(logits))

        out = list(prefix)
        for token in greedy(self.decoder, feed, ("self_k", "self_v"), self.options.max_tokens,
                            (self.vocab.eot,), run_options, mask, first_step=len(prefix)):
            out.append(token)
            if (cut := loop_cut(out, len(prefix))) is not None:
                out = out[:cut]
                break
        new = len(out) - len(prefix)
        return out, ends[new - 1] if new > 0 else None

    def _end_p(self, logits: np.ndarray) -> float:
        """The probability of a sentence-ending mark under `logits` (~0.1 ms a step)."""
        z = np.exp(logits - logits.max())
        return float(z[self.vocab.sentence_ends].sum() / z.sum())


def loop_cut(tokens: list[int], start: int = 0) -> int | None:
    """Where to cut `tokens` if they end in a loop (greedy decoding that repeats itself
    until its token limit: "zoom in zoom in zoom in ...", seen with the int8 decoder): a run
    of `LOOP_REPEATS` copies of one block of 2 or more tokens, or `LOOP_REPEATS + 1` of one
    token, at or after `start`. The cut keeps the first copy; None when there is no loop."""
    n = len(tokens) - start
    for size in range(1, n // LOOP_REPEATS + 1):
        copies = LOOP_REPEATS + (size == 1)
        if size * copies > n:
            break
        block = tokens[-size:]
        if all(tokens[-(k + 1) * size : len(tokens) - k * size] == block for k in range(copies)):
            return len(tokens) - (copies - 1) * size
    return None
