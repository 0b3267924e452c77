"""The VAD stage: audio chunks in, whole utterances out at each endpoint."""

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from glasses.device.audio import SAMPLE_RATE
from glasses.device.boards import BoardProfile
from glasses.device.clock import NS_PER_S
from glasses.models.end_of_turn import SmartTurn
from glasses.models.store import ModelStore
from glasses.models.vad import WINDOW, Endpointer, SileroVad, VadEvent, VadOptions
from glasses.pipelines.frames import AudioChunk, Utterance
from glasses.pipelines.stage import Stage
from glasses.pipelines.turn_judge import TurnJudge

KEPT_WINDOWS = 10 * 60 * SAMPLE_RATE // WINDOW  # probabilities kept for inspection: 10 min
WORDS_WAIT_MS = 600  # a silence's words not back from speech recognition by then: sound alone
KEPT_EVENTS = 1000  # likewise, speech starts and ends (a session of hours keeps no more)


class VadStage(Stage):
    """Runs silero VAD over 32 ms windows and emits an `Utterance` at each end of turn.

    With the "turn" endpoint, each silence is judged once `judge_ms` of it is heard, by
    the words of the early `ending` utterance (sent after `tail_ms`, so speech recognition
    runs while the silence grows) and, where they leave it open, by the end-of-turn model
    (`models/end_of_turn.py`) on the audio of the turn so far. Keeps the audio since
    the current speech started (plus padding), and the capture times of the chunks it came
    in, from which the capture time of any kept sample follows.
    """

    name = "vad"

    def __init__(self, store: ModelStore, board: BoardProfile, options: VadOptions = VadOptions(),
                 on_start: Callable[[int], None] | None = None, judge: TurnJudge | None = None):
        self.store, self.board, self.options = store, board, options
        self.on_start = on_start  # called with the capture time (ns) of each speech start
        self.judge = judge or TurnJudge()  # the ASR stage hands it the early words
        self._words_wait = WORDS_WAIT_MS * SAMPLE_RATE // 1000
        self._pad = options.pad_ms * SAMPLE_RATE // 1000
        self._tail = options.tail_ms * SAMPLE_RATE // 1000
        self.probabilities: deque[float] = deque(maxlen=KEPT_WINDOWS)  # the latest windows'
        self.events: deque[VadEvent] = deque(maxlen=KEPT_EVENTS)
        self.verdicts: deque[tuple[int, float]] = deque(maxlen=KEPT_EVENTS)  # (silence, p)

    def open(self) -> None:
        self._vad = SileroVad(self.store, self.board)
        self._turn = (SmartTurn(self.store, self.board) if self.options.endpoint == "turn"
                      else None)
        self._endpointer = Endpointer(self.options)
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet in a window
        self._pos = 0  # stream index of the first pending sample
        self._kept = np.zeros(0, dtype=np.float32)  # recent audio, for utterances
        self._kept_from = 0  # stream index of the first kept sample
        self._anchors: deque[tuple[int, int]] = deque()  # (stream index, capture ns) per chunk
        self._last_partial = 0  # stream index where the last partial utterance ended
        self._sounded: int | None = None  # the silence the end-of-turn model last judged
        self._early_sent: int | None = None  # speech end of the last `ending` utterance sent

    def process(self, item: AudioChunk) -> Iterator[Utterance]:
        if item.offset != self._pos + len(self._pending):  # samples were lost upstream
            yield from self._windows(final=True)
            self._pending = np.zeros(0, dtype=np.float32)
            self._pos = self._kept_from = item.offset
            self._kept = np.zeros(0, dtype=np.float32)
        if item.gated and self._endpointer.speech_start is not None:
            self._drop_open_speech()
        self._anchors.append((item.offset, item.t_ns))
        self._pending = np.concatenate([self._pending, item.samples])
        self._kept = np.concatenate([self._kept, item.samples])
        yield from self._windows(final=False)

    def flush(self) -> Iterable[Utterance]:
        yield from self._windows(final=True)

    def _drop_open_speech(self) -> None:
        """Muted mid-question: what was said is not the wearer's question to answer."""
        self._endpointer.reset()
        self._early_sent = None

    def _windows(self, final: bool) -> Iterator[Utterance]:
        while len(self._pending) >= WINDOW or (final and len(self._pending)):
            window = self._pending[:WINDOW]
            if len(window) < WINDOW:
                window = np.pad(window, (0, WINDOW - len(window)))
            prob = self._vad(window)
            self.probabilities.append(prob)
            for event in self._endpointer.push(prob, self._pos):
                yield from self._on(event)
            used = min(WINDOW, len(self._pending))
            self._pending = self._pending[used:]
            self._pos += used
            yield from self._partial()
            if self._endpointer.wants_verdict:
                for event in self._judge():
                    yield from self._on(event)
        if final:
            for event in self._endpointer.finish(self._pos):
                yield from self._on(event)
        self._trim()

    def _on(self, event: VadEvent) -> Iterator[Utterance]:
        self.events.append(event)
        if event.kind == "start":
            self._last_partial = event.sample
            if self.on_start is not None:
                self.on_start(self._time(event.sample))
        if event.kind == "end":
            yield self._utterance(event.start, event.sample, event.sample + self._tail, True)

    def _judge(self) -> list[VadEvent]:
        """The silence judged: by the words of the early decode once they come and, where
        they leave it open, by the end-of-turn model on the turn heard so far (once;
        `pipelines/turn_judge.py`)."""
        silence = self._endpointer.silence_from
        words_due = self.options.early_end and self._pos - silence < self._words_wait
        if self._sounded != silence and self.judge.wants_sound(silence, words_due):
            self._sounded = silence
            lo = max(self._endpointer.speech_start - self._pad, self._kept_from) - self._kept_from
            p = self._turn.probability(self._kept[lo : self._pos - self._kept_from])
            self.verdicts.append((silence, round(p, 3)))
            self.judge.sound(silence, p)
        complete = self.judge.decision(silence, words_due)
        return [] if complete is None else self._endpointer.verdict(complete)

    def _partial(self) -> Iterator[Utterance]:
        """The speech so far, every `partial_every_ms` while the wearer speaks; and, with
        `early_end`, the utterance as it would end, once its padding has been heard. No
        partial once a silence began: it would hold the speech recognition the early
        utterance (the one the final reuses) needs, and is preempted by it anyway."""
        every = self.options.partial_every_ms * SAMPLE_RATE // 1000
        start = self._endpointer.speech_start
        if start is None:
            return
        silence = self._endpointer.silence_from
        if (self.options.early_end and silence is not None and silence != self._early_sent
                and self._pos >= silence + self._tail):
            self._early_sent = silence
            yield self._utterance(start, silence, silence + self._tail, False, ending=True)
        elif every and silence is None and self._pos - self._last_partial >= every:
            self._last_partial = self._pos
            yield self._utterance(start, self._pos, self._pos, False)

    def _utterance(self, start: int, end: int, keep_to: int, final: bool,
                   ending: bool = False) -> Utterance:
        lo = max(start - self._pad, self._kept_from) - self._kept_from
        end_ns = self._time(end)
        return Utterance(
            t_ns=end_ns,
            start_ns=self._time(start),
            end_ns=end_ns,
            samples=self._kept[lo : keep_to - self._kept_from].copy(),
            speech_start=start,
            speech_end=end,
            final=final,
            ending=ending,
        )

    def _time(self, index: int) -> int:
        """Capture time of stream sample `index`, from the chunk that brought it."""
        i = bisect_right(self._anchors, index, key=lambda a: a[0]) - 1
        offset, t_ns = self._anchors[max(i, 0)]
        return t_ns + (index - offset) * NS_PER_S // SAMPLE_RATE

    def _trim(self) -> None:
        """Keep audio from the open utterance's start (or the last `pad`) onwards."""
        keep_from = self._pos - self._pad - WINDOW
        if (start := self._endpointer.speech_start) is not None:
            keep_from = min(keep_from, start - self._pad)
        cut = max(0, keep_from - self._kept_from)
        if cut:
            self._kept = self._kept[cut:]
            self._kept_from += cut
        while len(self._anchors) > 1 and self._anchors[1][0] <= self._kept_from:
            self._anchors.popleft()
