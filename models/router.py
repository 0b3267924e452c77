"""Which skill a request is for, from its words: nearest example phrasings, no model file.

Each skill declares example phrasings and, optionally, keywords: a regular expression of
words that decide it ("colour", "timer"). A request is compared with every example by the
cosine of their TF-IDF vectors over the opening words, word unigrams and bigrams, and
character 3- to 5-grams of each word (padded with spaces, so "colour" and "color", "whats"
and "what's", "reed" and "read" stay close). A skill's score is the mean of its best `TOP`
example scores. When keywords match, the best-scoring of the skills they name wins; else
the best-scoring skill, or the fallback below `MIN_SCORE`. Pure numpy, well under a
millisecond a request (measured against the old rules: `glasses eval route`).
"""

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

TOP = 2  # a skill's score: the mean of its best this many example scores
MIN_SCORE = 0.2  # below this, the fallback skill takes the request
NGRAMS = (3, 4, 5)
OPENING = 5  # counts of the opening-word features: "is this ..." asks, "what is this" names
MAX_TEXT = 500  # characters of a request looked at


def normalise(text: str) -> str:
    """Lowercase, apostrophes dropped ("what's" -> "whats"), other punctuation to spaces."""
    text = text[:MAX_TEXT].lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def features(text: str) -> Counter:
    words = normalise(text).split()
    out: Counter = Counter()
    out.update(f"w:{w}" for w in words)
    if words:  # how a question opens says most of what it asks: "is it ...", "what ..."
        out.update({f"f:{words[0]}": OPENING, f"f2:{' '.join(words[:2])}": OPENING})
    out.update(f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False))
    for w in words:
        padded = f" {w} "
        for n in NGRAMS:
            out.update(f"c:{padded[i:i + n]}" for i in range(max(1, len(padded) - n + 1)))
    return out


class Router:
    """Routes a request to one of `examples`' skills, else to `fallback`."""

    def __init__(self, examples: Mapping[str, Iterable[str]], fallback: str,
                 keywords: Mapping[str, str] | None = None, min_score: float = MIN_SCORE):
        self.fallback, self.min_score = fallback, min_score
        self.keywords = {k: re.compile(rf"\b(?:{p})\b") for k, p in (keywords or {}).items()}
        self.skills: list[str] = []
        rows: list[Counter] = []
        for skill, phrasings in examples.items():
            for p in phrasings:
                self.skills.append(skill)
                rows.append(features(p))
        if not rows:
            raise ValueError("a router needs at least one example phrasing")
        df: Counter = Counter()
        for r in rows:
            df.update(r.keys())
        n = len(rows)
        self._index = {f: i for i, f in enumerate(sorted(df))}
        self._idf = np.array([math.log((1 + n) / (1 + df[f])) + 1 for f in sorted(df)],
                             np.float32)
        self._matrix = np.stack([self._vector(r) for r in rows])
        self._names = sorted(set(self.skills))
        self._owner = np.array([self._names.index(s) for s in self.skills])

    def _vector(self, counts: Counter) -> np.ndarray:
        v = np.zeros(len(self._index), np.float32)
        for f, c in counts.items():
            if (i := self._index.get(f)) is not None:
                v[i] = 1 + math.log(c)
        v *= self._idf
        norm = float(np.linalg.norm(v))
        return v / norm if norm else v

    def scores(self, text: str) -> dict[str, float]:
        """Each skill's score for `text` (0 to 1)."""
        sims = self._matrix @ self._vector(features(text))
        out = {}
        for k, name in enumerate(self._names):
            mine = np.sort(sims[self._owner == k])[::-1][:TOP]
            out[name] = float(mine.mean()) if len(mine) else 0.0
        return out

    def route(self, text: str) -> str:
        scores = self.scores(text)
        words = normalise(text)
        decided = [k for k, p in self.keywords.items() if p.search(words)]
        if decided:
            return max(decided, key=lambda k: scores.get(k, 0.0))
        best = max(scores, key=scores.get)
        return best if scores[best] >= self.min_score else self.fallback
