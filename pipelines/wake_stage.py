"""Hands-free turns: only speech that follows the wake word is a question.

Two stages around the VAD share one `WakeDetections`:

    mic -> mic gate -> WakeListener -> VAD -> WakeGate -> frame choice -> ASR -> ...

`WakeListener` runs the wake-word model (`models/wake.py`) over every audio chunk and
passes the chunk on unchanged. It hears the whole stream, pauses included, as the model
was trained to, and it sits upstream of the VAD in the same chain, so every detection in
audio the VAD has seen is recorded before the VAD's utterance reaches the gate.

`WakeGate` is pure logic over utterances and detections (stream sample indices):
- an utterance holding a detection, with speech after it, is cut to start there
  ("okay nabu, what is this?" goes on as "what is this?"). The model decides 0.1-0.4 s
  after the phrase ends, often inside the question's first word when the pause is short,
  so the cut goes back to the pause: the latest 10 ms frame, in the `back_ms` before the
  detection, within 6 dB of the quietest (`quiet_cut`);
- a wake word with (almost) nothing after it makes the next utterance that starts within
  `follow_s` the question, whole;
- every other utterance, final or partial, is dropped and counted.
A detection outside any utterance (the VAD missed a soft "okay nabu") counts as a wake
word said alone.

An utterance's first sample is taken as `speech_start - pad` (the VAD's padding, from its
options), or 0 at the start of the stream.
"""

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from glasses.device.audio import SAMPLE_RATE
from glasses.device.boards import BoardProfile
from glasses.device.clock import NS_PER_S
from glasses.models.store import ModelStore
from glasses.models.vad import VadOptions
from glasses.models.wake import DEFAULT_PHRASE, WakeOptions, WakeWord, model_files
from glasses.pipelines.frames import AudioChunk, Utterance
from glasses.pipelines.stage import Stage

KEPT_DETECTIONS = 100  # detections not yet used: more would mean nothing listens
CUT_FRAME = SAMPLE_RATE // 100  # 10 ms frames, to find the pause before a question


class WakeDetections:
    """Where the wake word was heard, as stream sample indices; written by the listener's
    thread, read by the gate's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: deque[int] = deque(maxlen=KEPT_DETECTIONS)
        self.heard = 0  # every detection, for counters

    def add(self, indices: Iterable[int]) -> None:
        with self._lock:
            for i in indices:
                self._found.append(i)
                self.heard += 1

    def until(self, index: int) -> list[int]:
        """The detections at or before `index`, oldest first."""
        with self._lock:
            return [d for d in self._found if d <= index]

    def forget(self, before: int) -> None:
        """Drop the detections before stream index `before`: they have been used."""
        with self._lock:
            while self._found and self._found[0] < before:
                self._found.popleft()


class WakeListener(Stage):
    """Runs the wake word over the microphone's chunks; passes them on unchanged."""

    name = "wake"

    def __init__(self, store: ModelStore, board: BoardProfile, detections: WakeDetections,
                 phrase: str = DEFAULT_PHRASE, options: WakeOptions = WakeOptions()):
        self.store, self.board, self.phrase, self.options = store, board, phrase, options
        self.detections = detections
        model_files(store, phrase)  # a missing model fails here, naming it

    def open(self) -> None:
        self._wake = WakeWord(self.store, self.board, self.phrase, self.options)

    def process(self, item: AudioChunk) -> Iterator[AudioChunk]:
        found = self._wake.push(item.samples, item.offset)
        if found:
            self.detections.add(found)
        yield item


@dataclass(frozen=True)
class GateOptions:
    follow_s: float = 8.0  # after a wake word said alone, the question must start within this
    min_question_ms: int = 250  # less speech than this after the wake word: it was alone
    late_ms: int = 300  # a detection this long after an utterance's speech still belongs to it
    back_ms: int = 400  # the cut is looked for this far before the detection


class WakeGate(Stage):
    """Passes only the utterances that follow a wake word, cut to start after it."""

    name = "wake-gate"

    def __init__(self, detections: WakeDetections, options: GateOptions = GateOptions(),
                 vad: VadOptions = VadOptions()):
        self.detections, self.options = detections, options
        self._pad = vad.pad_ms * SAMPLE_RATE // 1000
        self._follow = int(options.follow_s * SAMPLE_RATE)
        self._min_question = options.min_question_ms * SAMPLE_RATE // 1000
        self._late = options.late_ms * SAMPLE_RATE // 1000
        self._back = options.back_ms * SAMPLE_RATE // 1000
        # what was ignored and passed (finals; partials counted apart)
        self.ignored = 0  # utterances without a wake word before them
        self.ignored_partials = 0
        self.wakes = 0  # wake words heard said alone (the next utterance is the question)
        self.questions = 0  # utterances passed on
        self._current: int | None = None  # speech start of the utterance under way
        self._is_question = False  # it follows a wake word said alone
        self._armed_until: int | None = None  # a question may start up to here

    def process(self, item: Utterance) -> Iterator[Utterance]:
        first = max(item.speech_start - self._pad, 0)
        if item.speech_start != self._current:
            self._begin(item.speech_start, first)
        heard = [d for d in self.detections.until(item.speech_end + self._late) if d >= first]
        if heard:
            cut = quiet_cut(item.samples, first, heard[-1], self._back)
            if item.speech_end - cut >= self._min_question:
                yield from self._pass(self._cut(item, first, cut))
                return
            if item.final:  # the wake word alone: the next utterance is the question
                self.wakes += 1
                self._armed_until = heard[-1] + self._follow
                self._current = None
                self.detections.forget(heard[-1] + 1)
            else:
                self.ignored_partials += 1
            return
        if self._is_question:
            yield from self._pass(item)
            return
        if item.final:
            self.ignored += 1
        else:
            self.ignored_partials += 1

    def _begin(self, speech_start: int, first: int) -> None:
        """A new utterance: is it the question a wake word said alone asked for?"""
        self._current = speech_start
        earlier = self.detections.until(first - 1)
        if earlier:  # heard outside any utterance: as if said alone
            self.wakes += 1
            self._armed_until = earlier[-1] + self._follow
            self.detections.forget(first)
        self._is_question = self._armed_until is not None and speech_start <= self._armed_until
        self._armed_until = None  # only the next utterance

    def _pass(self, item: Utterance) -> Iterator[Utterance]:
        if item.final:
            self.questions += 1
            self._current = None
            self._is_question = False
            self.detections.forget(item.speech_end + self._late + 1)
        yield item

    @staticmethod
    def _cut(item: Utterance, first: int, cut: int) -> Utterance:
        """The utterance from stream index `cut` on (its samples begin at `first`)."""
        start = max(cut, item.speech_start)
        return replace(item, samples=item.samples[cut - first :], speech_start=start,
                       start_ns=item.start_ns + (start - item.speech_start) * NS_PER_S
                       // SAMPLE_RATE)


def quiet_cut(samples: np.ndarray, first: int, detection: int, back: int) -> int:
    """Where to cut an utterance whose `samples` begin at stream index `first`, for a
    detection at `detection`: the start of the latest 10 ms frame among the `back` samples
    before it that is within 6 dB of the quietest of them."""
    lo = max(first, detection - back)
    part = samples[lo - first : detection - first]
    n = len(part) // CUT_FRAME
    if n < 2:
        return detection
    energy = (part[: n * CUT_FRAME].reshape(n, CUT_FRAME).astype(np.float64) ** 2).mean(axis=1)
    quiet = np.flatnonzero(energy <= energy.min() * 4 + 1e-12)
    return lo + int(quiet[-1]) * CUT_FRAME


def wake_stages(store: ModelStore, board: BoardProfile, phrase: str = DEFAULT_PHRASE,
                options: WakeOptions = WakeOptions(), gate: GateOptions = GateOptions(),
                vad: VadOptions = VadOptions()) -> tuple[WakeListener, WakeGate]:
    """The listener (in front of the VAD) and the gate (right after it), sharing their
    detections. `vad`: the VAD stage's options (its padding places utterances' samples)."""
    detections = WakeDetections()
    return (WakeListener(store, board, detections, phrase, options),
            WakeGate(detections, gate, vad))
