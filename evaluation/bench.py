"""`glasses bench`: this machine's figures against the references, in one run.

- speech: a set of short spoken questions made offline (1-4 s: `export/speech_set.py`),
  transcribed by our ONNX Whisper and by openai-whisper and faster-whisper (CTranslate2
  int8), each in a process of its own with the same threads; median time per question,
  word error rate, and the references' time over ours.
- memory: the peak resident memory of `glasses profile demo --runs 1` on each board
  profile, against the board's memory budget.
- cold start: the command -> the first frame shown of `glasses simulate --headless`, the
  median of a few starts after one that warms the page cache.
"""

import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from glasses.device.boards import BoardProfile
from glasses.device.errors import GlassesError
from glasses.evaluation.asr import EngineFailed, evaluate_isolated, load_clips
from glasses.export.asr_engines import make_engine, unavailable
from glasses.models.asr import AsrOptions
from glasses.models.deployment import precisions
from glasses.models.store import ModelStore

Progress = Callable[[str], None]
REFERENCES = ("whisper", "faster-whisper")  # speech engines ours is compared with
SHORT_S = (1.0, 4.0)  # a short question, seconds of speech (the clips add 0.4-2 s of quiet)
CHILD_TIMEOUT_S = 600


def speech(models: Sequence[str], clips: int, seed: int, progress: Progress,
           store: ModelStore | None = None) -> dict:
    """{"clips", "seconds": [min, max], "models": {model: {engine: report, "ratios"}}}."""
    from glasses.export.speech_set import make_speech_set

    store = store or ModelStore()
    precision = precisions(BoardProfile.laptop())["asr"]
    with tempfile.TemporaryDirectory(prefix="glasses-bench-") as tmp:
        progress(f"speech: making {clips} spoken questions (seed {seed})")
        make_speech_set(Path(tmp), count=clips, seed=seed, progress=lambda _: None)
        audio = load_clips(tmp)
    out: dict = {"clips": len(audio), "seconds": [round(min(c.seconds for c in audio), 2),
                                                  round(max(c.seconds for c in audio), 2)],
                 "onnx_precision": precision, "models": {}}
    for model in models:
        options = AsrOptions(model, precision=precision)
        row: dict = {}
        for engine in ("onnx", *REFERENCES):
            if why := unavailable(engine):
                row[engine] = {"unavailable": why}
                continue
            try:
                report = evaluate_isolated(partial(make_engine, engine, options, store), audio,
                                           progress, label=f"{engine} {model}")
            except EngineFailed as e:
                row[engine] = {"error": str(e)}
                continue
            row[engine] = {k: report[k] for k in ("wer", "median_ms", "p90_ms", "peak_rss_mb")}
        ours = row["onnx"].get("median_ms")
        row["ratios"] = {ref: round(row[ref]["median_ms"] / ours, 2)
                         for ref in REFERENCES if ours and "median_ms" in row[ref]}
        out["models"][model] = row
    return out


def _glasses_json(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-m", "glasses.cli.main", *args, "--json"],
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise GlassesError(f"glasses {' '.join(args)} failed: {last}")
    return json.loads(done.stdout)


def memory(boards: Sequence[str], progress: Progress) -> dict:
    """{board: {"peak_rss_mb", "budget_mb", "within"}} from one demo run per board."""
    out = {}
    for name in boards:
        progress(f"memory: glasses profile demo --runs 1 --board {name}")
        peak = _glasses_json(["profile", "demo", "--runs", "1", "--board", name])["peak_rss_mb"]
        budget = BoardProfile.by_name(name).memory_budget_mb
        out[name] = {"peak_rss_mb": peak, "budget_mb": budget,
                     "within": None if budget is None else peak <= budget}
    return out


def cold_start(starts: int, progress: Progress) -> dict:
    """{"first_frame_s": median, "starts": [...]}: `glasses simulate --headless` on the
    laptop profile; one start before them warms the page cache and is not counted."""
    times = []
    for i in range(starts + 1):
        progress(f"cold start: {'warming the page cache' if i == 0 else f'start {i}/{starts}'}")
        data = _glasses_json(["simulate", "--headless", "--duration", "0.3", "--no-memory"])
        if i:
            times.append(data["display"]["first_frame_s"])
    return {"first_frame_s": round(statistics.median(times), 2), "starts": times}
