"""Where questions meet: heard ones (the speech chain's final transcripts) and ones asked
as text (the API, the control socket) go into one inbox, answered in order by one chain.

`ToRequests` ends the speech chain by putting its final transcripts into the inbox (and
its early `ending` ones when nothing waits: see `SkillStage`, thinking ahead);
`RequestSource` is the answering chain's source. The inbox is bounded; a question asked
as text while it is full is refused, never silently lost.
"""

import queue
from collections.abc import Iterable, Iterator

from glasses.device.errors import BadInput
from glasses.pipelines.frames import Transcript
from glasses.pipelines.queues import POLL_S, Policy
from glasses.pipelines.sources import Source, Timeline
from glasses.pipelines.stage import Stage

CAPACITY = 16  # questions waiting to be answered, at most
_END = object()


class Requests:
    """The inbox of questions; thread-safe."""

    def __init__(self, capacity: int = CAPACITY):
        self._queue: queue.Queue = queue.Queue(capacity)
        self.capacity = capacity
        self.high_water = 0  # the most questions ever waiting at once
        self.closed = False

    def put(self, request: Transcript, wait: bool = True) -> None:
        if self.closed:
            raise BadInput("the session has ended: no more questions are answered")
        try:
            self._queue.put(request, block=wait)
        except queue.Full:
            raise BadInput(f"{self.capacity} questions are already waiting; "
                           "ask again later") from None
        self.high_water = max(self.high_water, self._queue.qsize())

    def offer(self, request: Transcript) -> bool:
        """Put `request` in if nothing waits (never waits, never raises): for what may be
        dropped, an early transcript the answering stage could think ahead on (behind a
        waiting question it would be skipped anyway, and it must not take a question's
        room)."""
        if self.closed or self._queue.qsize():
            return False
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            return False
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put(_END)

    def get(self, timeout_s: float) -> object:
        return self._queue.get(timeout=timeout_s)


class ToRequests(Stage):
    """The last stage of the speech chain: final transcripts into the inbox, and the early
    `ending` ones when nothing waits (the answering stage thinks ahead on them)."""

    name = "to-requests"

    def __init__(self, requests: Requests):
        self.requests = requests

    def process(self, item: Transcript) -> Iterable[Transcript]:
        if not item.text.strip():
            return ()
        if item.final:
            self.requests.put(item)
        elif item.ending:
            self.requests.offer(item)
        return ()

    def close(self) -> None:
        self.requests.close()  # the speech has ended: so do the questions


class RequestSource(Source):
    """The answering chain's source: questions from the inbox until it is closed."""

    name = "requests"
    policy = Policy.KEEP_ALL
    live = True  # stamped by whoever asked; never paced by the media timeline

    def __init__(self, requests: Requests):
        self.requests = requests

    def can_wait(self, mode) -> bool:
        return True  # a question waits for the one before it to be answered

    def items(self, timeline: Timeline, sid: int) -> Iterator[Transcript]:
        while not timeline.stop.is_set():
            try:
                item = self.requests.get(POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item
