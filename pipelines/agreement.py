"""Local agreement: commit the words that successive partial hypotheses agree on.

Pure logic, no model. Each time the recogniser re-transcribes the growing utterance it
pushes its hypothesis; words on which the last `n` hypotheses agree (their common
prefix) are committed and never taken back. At the endpoint the final hypothesis
replaces everything.
"""

from dataclasses import dataclass, field


def _key(word: str) -> str:
    """Compare words without case or surrounding punctuation."""
    return word.strip(".,!?;:\"'()").lower()


@dataclass
class LocalAgreement:
    n: int = 2  # hypotheses that must agree before a word is committed
    committed: list[str] = field(default_factory=list)
    _history: list[list[str]] = field(default_factory=list)

    def push(self, hypothesis: str) -> list[str]:
        """Add a partial hypothesis; return the words newly committed."""
        words = hypothesis.split()
        self._history = [*self._history[-(self.n - 1) :], words] if self.n > 1 else [words]
        if len(self._history) < self.n:
            return []
        agreed = 0
        for column in zip(*self._history, strict=False):
            if len({_key(w) for w in column}) != 1:
                break
            agreed += 1
        if agreed <= len(self.committed):
            return []
        new = self._history[-1][len(self.committed) : agreed]
        self.committed.extend(new)
        return new

    @property
    def text(self) -> str:
        return " ".join(self.committed)

    def tentative(self) -> str:
        """Committed words followed by the newest hypothesis's uncommitted tail."""
        latest = self._history[-1] if self._history else []
        return " ".join(self.committed + latest[len(self.committed) :])

    def reset(self) -> None:
        self.committed.clear()
        self._history.clear()
