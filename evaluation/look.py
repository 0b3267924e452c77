"""Look-and-tell turns, timed, and their evaluation over a folder of cases.

A look-and-tell set is images plus `cases.tsv`: tab-separated, no header, the image's file
name, the question, and the accepted words separated by `|`. An answer passes when it
contains one accepted word, both lowercased with only letters and digits kept.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glasses.device.camera import read_image
from glasses.device.errors import BadInput
from glasses.evaluation.cases import read_table
from glasses.evaluation.scoring import accepted
from glasses.models.answers import cards
from glasses.models.vlm import Vlm

CASES = "cases.tsv"
WHAT = f"a look-and-tell set is images plus {CASES}: file, question, accepted words split by |"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LookCase:
    file: Path
    question: str
    accepted: tuple[str, ...]


@dataclass(frozen=True)
class Turn:
    """One answered question, timed from the question being known."""

    question: str
    answer: str
    intent: str
    first_token_ms: float  # until the first piece of the answer
    ms: float  # until the whole answer
    stages: dict[str, float] = field(default_factory=dict)  # stage -> ms

    @property
    def cards(self) -> list[str]:
        return cards(self.answer)


def read_look_set(folder: str | Path) -> list[LookCase]:
    cases = []
    for file, cells in read_table(folder, CASES, WHAT, 3):
        words = tuple(w.strip() for w in cells[2].split("|") if w.strip())
        if not words or not cells[1]:
            raise BadInput(f"{Path(folder) / CASES}: {cells[0]}: a case needs a question and "
                           "at least one accepted word")
        cases.append(LookCase(file, cells[1], words))
    return cases


def answer_turn(vlm: Vlm, image: np.ndarray, question: str,
                on_piece: Callable[[str], None] | None = None) -> Turn:
    """Ask `vlm` about `image`; `on_piece` sees each piece as it comes."""
    t0 = time.perf_counter()
    first, pieces = None, []
    stream = vlm.stream(image, question)
    for piece in stream:
        if first is None:
            first = time.perf_counter()
        pieces.append(piece)
        if on_piece:
            on_piece(piece)
    end = time.perf_counter()
    return Turn(question, "".join(pieces).strip(), str(stream.intent),
                round(((first or end) - t0) * 1e3, 1), round((end - t0) * 1e3, 1),
                {k: round(v, 1) for k, v in stream.stages_ms.items()})


def evaluate_look(vlm: Vlm, cases: list[LookCase], root: Path,
                  progress: Progress | None = None) -> dict:
    """Answer every case; the summary and per-case results in `glasses eval look`'s JSON."""
    say = progress or (lambda message: None)
    results = []
    for i, case in enumerate(cases, 1):
        name = case.file.relative_to(root).as_posix()
        try:
            turn = answer_turn(vlm, read_image(case.file), case.question)
        except BadInput as e:  # a bad case is recorded as an error; the others go on
            results.append({"file": name, "question": case.question, "answer": None,
                            "passed": False, "error": str(e)})
            say(f"  [{i}/{len(cases)}] ERROR {e}")
            continue
        ok = accepted(turn.answer, list(case.accepted))
        results.append({"file": name,
                        "question": case.question, "answer": turn.answer, "passed": ok,
                        "intent": turn.intent, "ms": turn.ms,
                        "first_token_ms": turn.first_token_ms, "stages": turn.stages})
        say(f"  [{i}/{len(cases)}] {'pass' if ok else 'FAIL'} {turn.ms:6.0f} ms  "
            f"{case.file.name}: {case.question!r} -> {turn.answer!r}")
    return summarise(results)


def summarise(results: list[dict]) -> dict:
    """Pass rate over all cases (an error fails); times over the cases answered."""
    every, errors = results, [r for r in results if "error" in r]
    total = len(results)
    results = [r for r in results if "error" not in r]
    ms = [r["ms"] for r in results]
    first = [r["first_token_ms"] for r in results]
    passed = sum(r["passed"] for r in results)
    by_intent = {}
    for intent in sorted({r["intent"] for r in results}):
        mine = [r for r in results if r["intent"] == intent]
        by_intent[intent] = {
            "cases": len(mine), "passed": sum(r["passed"] for r in mine),
            "median_ms": round(statistics.median(r["ms"] for r in mine), 1),
            "first_token_median_ms": round(statistics.median(r["first_token_ms"] for r in mine),
                                           1)}
    stage_names = sorted({s for r in results for s in r["stages"]})
    stages = {s: round(statistics.median([r["stages"][s] for r in results if s in r["stages"]]),
                       1) for s in stage_names}
    return {"cases": total, "passed": passed, "errors": len(errors),
            "pass_rate": round(passed / total, 3) if total else 0.0,
            "median_ms": round(statistics.median(ms), 1) if ms else 0.0,
            "p90_ms": round(float(np.percentile(ms, 90)), 1) if ms else 0.0,
            "first_token_median_ms": round(statistics.median(first), 1) if first else 0.0,
            "stages_median_ms": stages, "intents": by_intent, "results": every}
