"""The stage interface: Open / Process / Flush / Close.

A stage is a small class that turns one item into zero or more items. It knows
nothing of threads, queues or timers: the runner calls it from one thread and times
every `process` call from outside.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any


class Stage(ABC):
    """Base class with no-op hooks; subclasses set `name` and implement `process`."""

    name: str = "stage"

    def open(self) -> None:
        """Acquire resources (load models); called once before the first item."""

    @abstractmethod
    def process(self, item: Any) -> Iterable[Any]:
        """Handle one item; yield the items it produces (possibly none)."""

    def supersedes(self, item: Any, newer: Any) -> bool:
        """Whether `newer`, queued behind `item`, makes `item` pointless to process.

        The runner then skips `item` and counts it (e.g. a partial utterance when a
        longer one is already waiting). Default: never.
        """
        return False

    def preempt(self, newer: Any) -> None:
        """Called from the thread before this stage as soon as `newer` is queued for it:
        a stage may end its current `process` call early when `newer` makes it pointless
        (a partial transcription once the utterance's end has come). Default: nothing."""

    def flush(self) -> Iterable[Any]:
        """Called once at the end of the stream: yield what the stage still holds."""
        return ()

    def cancel(self) -> None:
        """Called from another thread on a stop request: end a long `process` call early
        (it may raise). Default: nothing, the call runs to its end."""

    def close(self) -> None:
        """Release resources; called once, also after an error."""
