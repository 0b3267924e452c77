"""Scoring answers against references: word error rate and accepted-word matching."""

import re

_BRITISH = {"colour": "color", "colours": "colors", "favourite": "favorite", "grey": "gray",
            "centre": "center", "metre": "meter", "metres": "meters", "theatre": "theater"}


def normalise_words(text: str) -> list[str]:
    """Lowercase words with punctuation removed (apostrophes inside words kept), and
    British spellings mapped to American, so both references and hypotheses compare."""
    text = text.lower().replace("-", " ")
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", text)
    return [_BRITISH.get(w, w) for w in words]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance over words: substitutions + deletions + insertions."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_error_rate(refs: list[str], hyps: list[str]) -> float:
    """Corpus WER: total word edits over total reference words."""
    errors = words = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r = normalise_words(ref)
        errors += edit_distance(r, normalise_words(hyp))
        words += len(r)
    return errors / max(words, 1)


def accepted(answer: str, accepted_words: list[str]) -> bool:
    """Whether `answer`, lowercased with only letters and digits kept, contains one of
    the accepted words normalised the same way."""
    squash = lambda s: re.sub(r"[^a-z0-9]", "", s.lower())  # noqa: E731
    flat = squash(answer)
    return any(squash(w) and squash(w) in flat for w in accepted_words)
