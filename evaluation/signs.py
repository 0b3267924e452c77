"""Signs read word for word: a folder of sign images plus `signs.tsv`, scored exactly.

`signs.tsv` (as `glasses.export.sign_set` writes it): tab-separated, no header, the image's
file name, the exact text on the sign (lines joined by one space) and a description. A sign
passes only when the text read (its lines joined by spaces, whitespace collapsed) equals
the expected text, ignoring case: a missing space ("LIFTOUTOFORDER") or a wrong "%" or "-"
fails it, as it would fail a person reading the card. Word accuracy (reference words
matched in a word alignment) and the character error rate (spaces count) are reported for
insight, with the read time per sign (`time.perf_counter` around `TextReader.read`).

    python -m glasses.evaluation.signs DIR [--json]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from glasses.device.images import read_image
from glasses.evaluation.cases import read_table
from glasses.models.ocr import TextReader

TABLE = "signs.tsv"
WHAT = f"a sign set is images plus {TABLE}: file, exact text, description"


def normalise(text: str) -> str:
    """Upper case, whitespace collapsed to single spaces, trimmed."""
    return " ".join(text.upper().split())


def word_for_word(read: str, expected: str) -> bool:
    """Whether `read` is `expected` exactly, but for case and runs of whitespace."""
    return normalise(read) == normalise(expected)


def _distance(ref, hyp) -> tuple[int, int]:
    """(Levenshtein distance, items of `ref` aligned unchanged) between two sequences."""
    # cells: (edits, -hits), so ties in edits prefer the alignment with more hits
    prev = [(j, 0) for j in range(len(hyp) + 1)]
    for i, r in enumerate(ref, 1):
        cur = [(i, 0)] + [(0, 0)] * len(hyp)
        for j, h in enumerate(hyp, 1):
            same = prev[j - 1][0] + (r != h), prev[j - 1][1] - (r == h)
            cur[j] = min((prev[j][0] + 1, prev[j][1]), (cur[j - 1][0] + 1, cur[j - 1][1]), same)
        prev = cur
    return prev[-1][0], -prev[-1][1]


def word_hits(read: str, expected: str) -> int:
    """Words of `expected` that `read` has, in order (a word alignment's matches)."""
    return _distance(normalise(expected).split(), normalise(read).split())[1]


def char_errors(read: str, expected: str) -> int:
    """Character edits (spaces included) from `expected` to `read`, both normalised."""
    return _distance(normalise(expected), normalise(read))[0]


def score(results: list[dict]) -> dict:
    """Pass rate, word accuracy, CER and read times over results with `read`, `expected`
    and `ms`."""
    n = len(results)
    words = sum(len(normalise(r["expected"]).split()) for r in results)
    chars = sum(len(normalise(r["expected"])) for r in results)
    ms = [r["ms"] for r in results]
    passed = sum(word_for_word(r["read"], r["expected"]) for r in results)
    return {
        "signs": n, "passed": passed,
        "pass_rate": round(passed / n, 3) if n else 0.0,
        "word_accuracy": round(sum(word_hits(r["read"], r["expected"]) for r in results)
                               / max(words, 1), 3),
        "cer": round(sum(char_errors(r["read"], r["expected"]) for r in results)
                     / max(chars, 1), 3),
        "median_ms": round(statistics.median(ms), 1) if ms else 0.0,
        "p90_ms": round(float(np.percentile(ms, 90)), 1) if ms else 0.0,
    }


def evaluate_signs(folder: str | Path, reader: TextReader, warm_up: bool = True) -> dict:
    """Read every sign of `folder` with `reader`: the scores (see `score`) and, under
    `results`, per sign its file, expected and read text, pass, ms and description.
    The first image is read once untimed first (`warm_up`): first runs are slow."""
    folder = Path(folder)
    rows = read_table(folder, TABLE, WHAT, 2)
    results = []
    for i, (file, cells) in enumerate(rows):
        image = read_image(file)
        if warm_up and i == 0:
            reader.read(image)
        t0 = time.perf_counter()
        reading = reader.read(image)
        ms = (time.perf_counter() - t0) * 1e3
        read = normalise(" ".join(line.text for line in reading.lines))
        results.append({"file": file.relative_to(folder).as_posix(), "expected": cells[1],
                        "read": read, "passed": word_for_word(read, cells[1]),
                        "ms": round(ms, 1), "description": cells[2] if len(cells) > 2 else ""})
    return {**score(results), "results": results}


def table(summary: dict) -> str:
    """The summary as text: the figures, then each failure, expected vs read."""
    s = summary
    out = [f"signs            {s['signs']}",
           f"word for word    {s['passed']}/{s['signs']} ({s['pass_rate']:.1%})",
           f"word accuracy    {s['word_accuracy']:.1%}",
           f"CER              {s['cer']:.1%}",
           f"read ms          median {s['median_ms']:.0f}, p90 {s['p90_ms']:.0f}"]
    failures = [r for r in s["results"] if not r["passed"]]
    if failures:
        out.append(f"failures ({len(failures)}):")
        width = max(len(r["expected"]) for r in failures) + 2
        for r in failures:
            out.append(f"  {r['file']}  {r['expected']!r:<{width}} read {r['read']!r}"
                       f"   [{r['description']}]")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    from glasses.device.boards import BoardProfile
    from glasses.models.store import ModelStore

    ap = argparse.ArgumentParser(prog="python -m glasses.evaluation.signs",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help=WHAT)
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)
    from glasses.device.errors import GlassesError

    try:
        reader = TextReader(ModelStore(), BoardProfile.laptop())
        summary = evaluate_signs(args.folder, reader)
    except GlassesError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(summary, indent=2) if args.json else table(summary))


if __name__ == "__main__":
    main()
