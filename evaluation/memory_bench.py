"""How memory search scales: real descriptions embedded by the real model, stored N times
over in a scratch memory file, searched with real questions; search time per size.

The descriptions are made the way glances make them (`pipelines/remembering.describe`)
from the classifier's ImageNet names, colours and sign texts; each stored moment is one
of them (the index does not care that texts repeat: it multiplies every row).
"""

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from glasses.pipelines.memory import Memory, Moment
from glasses.pipelines.remembering import Seen, describe

COLOURS = ("red", "dark blue", "green", "white", "black", "yellow", "grey", "orange")
SIGNS = ("GATE C7", "EXIT", "PLATFORM 10", "NO ENTRY", "SALE 50% OFF", "ROOM 101", "Main St",
         "PHARMACY", "LIFT OUT OF ORDER", "TOILETS", "BUS STOP", "OPEN")
QUESTIONS = ("did I see a coffee cup", "what did the gate sign say", "have I seen a dog",
             "did we pass a pharmacy", "where was the exit", "did I see a red car",
             "what did the sale sign say", "have I seen a cat today")
TARGET_MS = 50.0  # the bound for a memory question's search


def descriptions(labels_file: Path, n: int, seed: int = 0) -> list[str]:
    names = [x["name"] for x in json.loads(labels_file.read_text(encoding="utf-8"))]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        text = SIGNS[rng.integers(len(SIGNS))] if i % 3 == 0 else ""
        what = "" if text and i % 2 else f"a {names[rng.integers(len(names))]}"
        out.append(describe(Seen(0, what, text, COLOURS[rng.integers(len(COLOURS))])))
    return out


def bench(embed: Callable[[list[str]], np.ndarray], labels_file: Path,
          sizes: tuple[int, ...] = (10_000, 100_000), unique: int = 2000,
          progress: Callable[[str], None] = lambda m: None) -> dict:
    texts = descriptions(labels_file, unique)
    progress(f"embedding {unique} descriptions")
    vecs = np.concatenate([embed(texts[i:i + 64]) for i in range(0, unique, 64)])
    q_ms, queries = [], []
    for q in QUESTIONS * 3:
        t0 = time.perf_counter()
        queries.append(embed([q])[0])
        q_ms.append((time.perf_counter() - t0) * 1e3)
    out = {"query_embed_median_ms": round(statistics.median(q_ms), 2), "sizes": []}
    with tempfile.TemporaryDirectory(prefix="glasses-memory-bench-") as tmp:
        memory = Memory(Path(tmp) / "memory.db")
        stored, now = 0, time.time()
        for size in sorted(sizes):
            progress(f"storing moments up to {size}")
            memory.add_many(Moment(now - i, "seen", texts[i % unique],
                                   text_vec=vecs[i % unique]) for i in range(stored, size))
            stored = size
            memory.search(queries[0], 5)  # builds the index
            ms = []
            for q in queries:
                t0 = time.perf_counter()
                memory.search(q, 5)
                ms.append((time.perf_counter() - t0) * 1e3)
            out["sizes"].append({"moments": size,
                                 "search_median_ms": round(statistics.median(ms), 2),
                                 "search_p90_ms": round(float(np.percentile(ms, 90)), 2),
                                 "index_mb": round(memory.index_bytes / 1e6, 1),
                                 "file_mb": round((Path(tmp) / "memory.db").stat().st_size / 1e6,
                                                  1)})
        memory.close()
    last = out["sizes"][-1]
    per_row_ms = last["search_median_ms"] / last["moments"]
    out["brute_force_limit_moments"] = int(TARGET_MS / per_row_ms) if per_row_ms else None
    return out
