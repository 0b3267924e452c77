"""Resident memory per model and per session option: what each of the assistant's models
costs once loaded and once run, on a board's profile.

Every measurement is its own process (nothing shared, nothing freed late): the process
imports onnxruntime and numpy, notes its resident set, creates the session, notes it, runs
the model once on inputs made from its own input descriptions (dynamic sizes 1, zeros:
token id 0, silence) and notes the resident set and its peak, then times a few more runs.
The variants are the onnxruntime session options that decide memory: the CPU arena on
(`arena`), weight prepacking off (`no-prepack`).

    python -m glasses.evaluation.memory_use [--board NAME] [--variants] [--json]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np

from glasses.device.memory import peak_rss_mb, rss_mb

VARIANTS = {  # name -> (memory arena, prepacking)
    "default": (None, True),  # the board's own arena setting
    "arena": (True, True),
    "no-prepack": (None, False),
}


RUNS = 7  # timed runs after the first, their median reported (one step, made-up inputs)
SHAPES = {"input": ((1, 512), 0.0, np.float32),  # silero: one 32 ms window, 16 kHz
          "sr": ((), 16000, np.int64)}


def _feed(session) -> dict:
    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64,
             "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
             "tensor(float16)": np.float16, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}
    feed = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        feed[i.name] = np.zeros(shape, types.get(i.type, np.float32))
        if i.name in SHAPES:
            feed[i.name] = np.full(*SHAPES[i.name])
    return feed


def measure_one(path: str, board_name: str, variant: str) -> dict:
    """In this process: the resident set before, after loading and after one run (MB)."""
    import onnxruntime as ort  # glasses, imported first (-m), turned its telemetry off

    from glasses.device.boards import BoardProfile
    from glasses.models.sessions import available_providers, session_options

    arena, prepack = VARIANTS[variant]
    board = BoardProfile.by_name(board_name)
    if arena is not None:
        board = replace(board, memory_arena=arena)
    before = rss_mb()
    opts = session_options(board)
    if not prepack:
        opts.add_session_config_entry("session.disable_prepacking", "1")
    session = ort.InferenceSession(path, sess_options=opts,
                                   providers=available_providers(board))
    loaded = rss_mb()
    ran, times = None, []
    try:
        feed = _feed(session)
        session.run(None, feed)
        ran = rss_mb()
        for _ in range(RUNS):
            t0 = time.perf_counter()
            session.run(None, feed)
            times.append((time.perf_counter() - t0) * 1e3)
    except Exception as e:  # inputs made up from shapes do not fit every graph
        ran = f"no run: {str(e).splitlines()[0][:80]}"
    return {"load_mb": round(loaded - before, 1),
            "run_mb": round(ran - before, 1) if isinstance(ran, float) else ran,
            "peak_mb": round(peak_rss_mb() - before, 1),
            "run_ms": round(statistics.median(times), 2) if times else None}


def model_files(board_name: str, vlm_model: str = "teacher") -> list[tuple[str, str]]:
    """(entry/file, path) of every ONNX file the assistant loads on the board."""
    from glasses.device.boards import BoardProfile
    from glasses.models.deployment import runtime_files
    from glasses.models.store import ModelStore

    store = ModelStore()
    board = BoardProfile.by_name(board_name)
    return [(f"{entry}/{file}", str(store.path(entry, file)))
            for entry, files in runtime_files(board, vlm_model=vlm_model).items()
            for file in files if file.endswith(".onnx")]


def measure(board_name: str, variants: list[str], progress=lambda m: None) -> list[dict]:
    rows = []
    for name, path in model_files(board_name):
        row = {"model": name}
        for variant in variants:
            progress(f"{name}: {variant}")
            out = subprocess.run(
                [sys.executable, "-m", "glasses.evaluation.memory_use", "--one", path,
                 "--board", board_name, "--variant", variant],
                capture_output=True, text=True, check=False)
            row[variant] = (json.loads(out.stdout) if out.returncode == 0 else
                            {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]})
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m glasses.evaluation.memory_use",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--board", default="laptop", help="board profile (default laptop)")
    p.add_argument("--variants", action="store_true",
                   help=f"every session variant ({', '.join(VARIANTS)}), else the default")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--one", help=argparse.SUPPRESS)  # a model file, measured in this process
    p.add_argument("--variant", default="default", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(args.one, args.board, args.variant)))
        return 0
    variants = list(VARIANTS) if args.variants else ["default"]
    rows = measure(args.board, variants, lambda m: print(m, file=sys.stderr))
    if args.json:
        print(json.dumps({"board": args.board, "models": rows}, indent=1))
        return 0
    print(f"resident memory per model, MB ({args.board}): load / after one run / peak, "
          "and the median run in ms")
    for row in rows:
        cells = []
        for v in variants:
            r = row[v]
            cells.append(f"{v} {r['load_mb']}/{r['run_mb']}/{r['peak_mb']} {r['run_ms']} ms"
                         if "load_mb" in r else f"{v} {r['error']}")
        print(f"  {row['model']:<44} " + "  ".join(cells))
    for v in variants:
        total = sum(r[v].get("peak_mb", 0) for r in rows)
        print(f"  sum of peaks ({v}): {total:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
