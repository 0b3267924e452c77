"""Is this my X: how often a thing's other views match it and other things do not.

A things set is images plus `things.tsv`: tab-separated, no header, the image's file name,
the thing it shows (or imitates), its role, `view` (a view of the thing) or `distractor`
(another thing of the same kind: a different cup), and how it was made (free text).

For each thing the first `shots` views are enrolled. Every other image is then compared
with each thing's exemplars (its best one counts): a view of that thing should match
(a positive), its distractors and every image of the other things should not (negatives).
Precision and recall are counted over those (image, thing) pairs at a threshold and over
a sweep of thresholds. Identification is counted too: each image's best match among all
enrolled things (`best_match`) should be its own thing for a view and no one for a
distractor. `export/things_set.py` makes such sets; `glasses eval things` prints this.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glasses.device.camera import read_image
from glasses.device.errors import BadInput
from glasses.evaluation.cases import read_table
from glasses.models.things import DEFAULT, SAME_THING, WHOLE, ThingEmbedding, best_match

TABLE = "things.tsv"
WHAT = f"a things set is images plus {TABLE}: file, thing, view|distractor, how it was made"
ROLES = ("view", "distractor")
SWEEP = tuple(round(float(t), 2) for t in np.arange(0.50, 0.955, 0.01))
# embeddings compared by `glasses eval things --variants`, by name
VARIANTS = {
    "centre": ThingEmbedding(),
    "whole": ThingEmbedding(crops=(WHOLE,)),
    "tight": ThingEmbedding(crops=(0.5,)),
    "centre+tight": ThingEmbedding(crops=(0.875, 0.5, 0.35)),
    "whole+centre+tight": ThingEmbedding(crops=(WHOLE, 0.875, 0.5)),
    "centre+colour": ThingEmbedding(colour_weight=0.5),
    "centre+tight+colour.35": ThingEmbedding(crops=(0.875, 0.5, 0.35), colour_weight=0.35),
    "centre+tight+colour.75": ThingEmbedding(crops=(0.875, 0.5, 0.35), colour_weight=0.75),
    "centre+tight+colour.5 wide": ThingEmbedding(crops=(0.875, 0.5, 0.35), colour_weight=0.5,
                                                colour_region=0.5),
    "default": DEFAULT,  # centre+tight, colour 0.5 over the central third
}

Embed = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ThingImage:
    file: Path
    thing: str
    role: str  # "view" or "distractor"
    how: str


def read_things_set(folder: str | Path, shots: int = 1) -> list[ThingImage]:
    """The images of a things set, in table order. Each thing needs more than `shots`
    views (one left to query); a thing with distractors only is refused too."""
    images = []
    for file, cells in read_table(folder, TABLE, WHAT, 3):
        if cells[2] not in ROLES or not cells[1]:
            raise BadInput(f"{Path(folder) / TABLE}: {cells[0]}: expected a thing and a role "
                           f"({' or '.join(ROLES)}), got {cells[1]!r}, {cells[2]!r}")
        images.append(ThingImage(file, cells[1], cells[2], cells[3] if len(cells) > 3 else ""))
    for thing in sorted({i.thing for i in images}):
        views = sum(i.thing == thing and i.role == "view" for i in images)
        if views <= shots:
            raise BadInput(f"{Path(folder) / TABLE}: {thing!r} has {views} views: at least "
                           f"{shots + 1} are needed to enrol {shots} and query one")
    return images


def _counts(scores: np.ndarray, positive: np.ndarray, hard: np.ndarray, t: float) -> dict:
    accept = scores >= t
    tp = int((accept & positive).sum())
    fp = int((accept & ~positive).sum())
    fn = int((~accept & positive).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": t, "precision": round(precision, 3), "recall": round(recall, 3),
            "f1": round(f1, 3), "true": tp, "false_accepts": fp, "false_rejects": fn,
            "distractors_accepted": round(float(accept[hard].mean()), 3) if hard.any() else 0.0}


def evaluate_things(embed: Embed, images: list[ThingImage], root: Path, shots: int = 1,
                    threshold: float = SAME_THING, sweep: tuple[float, ...] = SWEEP,
                    progress: Progress | None = None) -> dict:
    """Enrol, query and count (see the module's docstring); `embed` is an image -> vector
    function (`embed_thing` bound to a classifier). The summary, the sweep and the misses."""
    say = progress or (lambda message: None)
    if shots < 1:
        raise BadInput(f"shots must be at least 1, got {shots}")
    vectors, ms = [], []
    for i, image in enumerate(images, 1):
        picture = read_image(image.file)
        t0 = time.perf_counter()
        vectors.append(embed(picture))
        ms.append((time.perf_counter() - t0) * 1e3)
        if i % 25 == 0 or i == len(images):
            say(f"  embedded {i}/{len(images)}")
    things = list(dict.fromkeys(i.thing for i in images))
    enrolled: dict[str, list[int]] = {}
    for n, image in enumerate(images):
        mine = enrolled.setdefault(image.thing, [])
        if image.role == "view" and len(mine) < shots:
            mine.append(n)
    exemplars = {t: [vectors[n] for n in enrolled[t]] for t in things}
    queries = [n for n in range(len(images)) if n not in enrolled[images[n].thing]]
    stack = np.stack(vectors)
    pairs = []  # (query, thing, score, positive, hard)
    for thing in things:
        sims = stack[queries] @ np.stack(exemplars[thing]).T
        for n, s in zip(queries, sims.max(axis=1), strict=True):
            own = images[n].thing == thing
            pairs.append((n, thing, float(s), own and images[n].role == "view",
                          own and images[n].role == "distractor"))
    scores = np.array([p[2] for p in pairs])
    positive = np.array([p[3] for p in pairs])
    hard = np.array([p[4] for p in pairs])
    at = _counts(scores, positive, hard, threshold)
    table = [_counts(scores, positive, hard, t) for t in sweep]
    best = max(table, key=lambda r: (r["f1"], r["precision"]))

    right = 0
    for n in queries:
        name, _ = best_match(vectors[n], exemplars, threshold)
        right += name == (images[n].thing if images[n].role == "view" else None)
    misses = [{"file": images[n].file.relative_to(root).as_posix(), "thing": thing,
               "role": images[n].role if images[n].thing == thing else "other thing",
               "how": images[n].how, "similarity": round(s, 3),
               "got": "match" if s >= threshold else "no match"}
              for n, thing, s, pos, _ in pairs if (s >= threshold) != pos]
    misses.sort(key=lambda m: -m["similarity"] if m["got"] == "match" else m["similarity"])
    return {"images": len(images), "things": len(things), "shots": shots,
            "queries": len(queries), "positives": int(positive.sum()),
            "negatives": int((~positive).sum()), "distractor_pairs": int(hard.sum()),
            **at,
            "identify_accuracy": round(right / len(queries), 3) if queries else 0.0,
            "best_in_sweep": best, "sweep": table,
            "positive_median": round(float(np.median(scores[positive])), 3),
            "distractor_median": (round(float(np.median(scores[hard])), 3)
                                  if hard.any() else None),
            "embed_median_ms": round(statistics.median(ms), 1), "misses": misses}
