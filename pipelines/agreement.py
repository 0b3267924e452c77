"""Local agreement: commit what successive partial hypotheses agree on.

Pure logic, no model. Each time the recogniser re-transcribes the growing utterance it
pushes its hypothesis (a sequence of words or tokens); the prefix on which the last `n`
hypotheses agree is committed and never taken back. At the endpoint the final
hypothesis replaces everything.
"""

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field


def word_key(word: str) -> str:
    """Compare words without case or surrounding punctuation."""
    return word.strip(".,!?;:\"'()").lower()


@dataclass
class LocalAgreement:
    n: int = 2  # hypotheses that must agree before an item is committed
    key: Callable[[Hashable], Hashable] = lambda item: item  # how items compare
    committed: list = field(default_factory=list)
    _history: list[list] = field(default_factory=list)

    def push(self, hypothesis: Sequence) -> list:
        """Add a partial hypothesis; return the items newly committed."""
        items = list(hypothesis)
        self._history = [*self._history[-(self.n - 1) :], items] if self.n > 1 else [items]
        if len(self._history) < self.n:
            return []
        agreed = 0
        for column in zip(*self._history, strict=False):
            if len({self.key(w) for w in column}) != 1:
                break
            agreed += 1
        if agreed <= len(self.committed):
            return []
        new = self._history[-1][len(self.committed) : agreed]
        self.committed.extend(new)
        return new

    def tentative(self) -> list:
        """Committed items followed by the newest hypothesis's uncommitted tail."""
        latest = self._history[-1] if self._history else []
        return self.committed + latest[len(self.committed) :]

    def reset(self) -> None:
        self.committed.clear()
        self._history.clear()
