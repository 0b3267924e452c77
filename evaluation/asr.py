"""Speech engines measured over a folder of clips: word error rate, latency, memory.

A speech set is `*.wav` plus `truth.tsv`: tab-separated, no header, the file name in the
first column and the reference text in the last (columns between are ignored).

`evaluate` runs one engine over the clips in this process: load it once (timed), warm it
up on the first clip (not counted), then time every clip. `evaluate_isolated` does the
same in a fresh child process, so the peak resident memory it reports is that engine's
alone. Engines are duck-typed (`Transcriber`); the speech engines live in `export/`.
"""

import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from glasses.device.audio import SAMPLE_RATE, load_audio, wav_info
from glasses.device.errors import BadInput, GlassesError
from glasses.device.memory import peak_rss_mb
from glasses.evaluation.cases import read_table
from glasses.evaluation.scoring import word_error_rate

TRUTH = "truth.tsv"
_MAX_ERROR = 300  # characters of a child's error message that come back

Progress = Callable[[str], None]


class Transcriber(Protocol):
    @property
    def model(self) -> str: ...

    def load(self) -> None: ...

    def transcribe(self, audio: np.ndarray) -> str: ...


@dataclass(frozen=True)
class Clip:
    file: str  # the name truth.tsv gives it
    ref: str  # the reference text
    audio: np.ndarray  # (n,) float32 at 16 kHz

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


class EngineFailed(GlassesError):
    """An engine that could not load or transcribe; `exit_code` is that of its error."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# -- the speech set ----------------------------------------------------------------------

def read_speech_set(folder: str | Path) -> list[tuple[Path, str]]:
    """(WAV path, reference text) for every line of `folder`/truth.tsv, in its order."""
    what = f"a speech set is *.wav plus {TRUTH}: file name, tab, reference text"
    return [(wav, cells[-1]) for wav, cells in read_table(folder, TRUTH, what, 2)]


MAX_CLIP_S = 30.0  # a speech set's clips are questions: one Whisper window at most


def load_clips(folder: str | Path) -> list[Clip]:
    """The clips of a speech set with their audio, 16 kHz mono; BadInput for a bad WAV or
    one longer than `MAX_CLIP_S` (every clip's header is checked before any is decoded)."""
    clips = read_speech_set(folder)
    for wav, _ in clips:
        if (seconds := wav_info(wav).seconds) > MAX_CLIP_S:
            raise BadInput(f"{wav}: {seconds:.1f} s long; the clips of a speech set are "
                           f"questions of at most {MAX_CLIP_S:.0f} s")
    return [Clip(wav.relative_to(folder).as_posix(), ref, load_audio(wav))
            for wav, ref in clips]


# -- measuring ---------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolating linearly between ranks as numpy does."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0-100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def evaluate(engine: Transcriber, clips: Sequence[Clip], progress: Progress | None = None,
             label: str = "") -> dict[str, Any]:
    """Run `engine` over `clips` in this process; the report of DESIGN.md's format.

    {"model", "wer", "median_ms", "p90_ms", "rtf" (processing s per audio s),
     "peak_rss_mb" (of this process), "load_s", "results": [{"file", "text", "ref", "ms"}]}
    """
    if not clips:
        raise BadInput("no clips to evaluate")
    say = progress or (lambda message: None)
    label = label or engine.model
    say(f"{label}: loading")
    t0 = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - t0
    say(f"{label}: loaded in {load_s:.1f} s; warming up on {clips[0].file}")
    engine.transcribe(clips[0].audio)
    texts, times_ms = [], []
    for i, clip in enumerate(clips, 1):
        say(f"{label}: clip {i}/{len(clips)} {clip.file}")
        t0 = time.perf_counter()
        texts.append(engine.transcribe(clip.audio))
        times_ms.append((time.perf_counter() - t0) * 1e3)
    audio_s = sum(c.seconds for c in clips)
    return {
        "model": engine.model,
        "wer": round(word_error_rate([c.ref for c in clips], texts), 4),
        "median_ms": round(percentile(times_ms, 50), 1),
        "p90_ms": round(percentile(times_ms, 90), 1),
        "rtf": round(sum(times_ms) / 1e3 / audio_s, 4) if audio_s else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_s": round(load_s, 2),
        "results": [{"file": c.file, "text": t, "ref": c.ref, "ms": round(ms, 1)}
                    for c, t, ms in zip(clips, texts, times_ms, strict=True)],
    }


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    if not isinstance(e, GlassesError):
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text[:_MAX_ERROR]


def _child(factory: Callable[[], Transcriber], clips: Sequence[Clip], label: str, send) -> None:
    """In the child: build the engine, evaluate, send ("progress", msg)* then the outcome."""
    try:
        engine = factory()
        report = evaluate(engine, clips, lambda m: send.send(("progress", m)), label)
        send.send(("ok", report))
    except KeyboardInterrupt:
        pass  # the parent was interrupted too and reports it
    except Exception as e:  # every failure comes back as one line
        send.send(("error", (_one_line(e), getattr(e, "exit_code", 1))))
    finally:
        send.close()


def evaluate_isolated(factory: Callable[[], Transcriber], clips: Sequence[Clip],
                      progress: Progress | None = None, label: str = "") -> dict[str, Any]:
    """`evaluate(factory(), clips)` in a fresh process (spawned), so `peak_rss_mb` is the
    engine's own. `factory` and the clips must pickle (a module-level function or a
    `functools.partial` of one). Raises EngineFailed with the child's error on one line."""
    say = progress or (lambda message: None)
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(factory, clips, label, send),
                            name=f"evaluate {label}", daemon=True)
    child.start()
    send.close()  # the child holds the only writing end: its death ends our reading
    try:
        while True:
            try:
                kind, payload = receive.recv()
            except EOFError:
                child.join()
                how = (f"was killed by signal {-child.exitcode}" if (child.exitcode or 0) < 0
                       else f"exited with code {child.exitcode}")
                raise EngineFailed(f"{label}: the engine's process {how} "
                                   "before reporting") from None
            if kind == "progress":
                say(payload)
            elif kind == "ok":
                return payload
            else:
                message, code = payload
                raise EngineFailed(f"{label}: {message}" if label else message, code)
    except KeyboardInterrupt:
        child.terminate()  # it may not have seen the interrupt
        raise
    finally:
        receive.close()
        child.join(timeout=5)  # it has reported and is exiting
        if child.is_alive():
            child.terminate()
            child.join()
