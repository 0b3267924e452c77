"""Answers spoken by the bundled voice, sentence by sentence as they stream in, on a
thread of their own; stopped when the wearer talks over them (barge-in).

Speak early: each sentence is synthesised as soon as it is complete (it ends in ., ? or !,
or the answer ends) and queued on the speaker's timeline (`device/playback.Playback`)
right behind the one before, so the voice starts with the first sentence, not after the
whole answer. The timeline goes to the speaker when there is one (without one it is the
model of what would play, read by the echo mixer and the echo guard) and into the
recording when there is one.

Barge-in: the assistant's `SpeechStarted` (the VAD heard speech begin, after the echo
guard: the wearer, not the voice) while the voice plays or has sentences waiting stops
it: what has not played is cut, what is still to come for earlier questions is dropped,
and a `VoiceStopped` event says when, measured from the capture time of the speech start.
"""

import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from glasses.device.audio import SAMPLE_RATE
from glasses.device.clock import NS_PER_MS, NS_PER_S, now_ns, sleep_until
from glasses.device.errors import DeviceFailure
from glasses.device.playback import Playback, Sound
from glasses.device.voice import Speaker, Voice
from glasses.pipelines.events import (
    Announcement,
    Answer,
    AnswerPiece,
    Event,
    FinalTranscript,
    SpeechStarted,
    Spoken,
)
from glasses.simulator.recorder import Recorder

SPEAKER_BLOCK = 512  # samples written to a sound card at a time (32 ms) ...
SPEAKER_LEAD_NS = 64 * NS_PER_MS  # ... at most this far ahead of their time (a stop cuts the rest)
# a sentence ends at ., ? or ! (closing quotes and brackets with it) before a space or the end
SENTENCE_END = re.compile(r"[.?!]+[\"')\]\u201d\u2019]*(?=\s|$)")
NOT_AN_END = {"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "approx", "no"}


@dataclass(frozen=True)
class VoiceStopped(Event):
    """The voice stopped for the wearer's speech (barge-in), at `t_ns`: the speech began
    at `start_ns` (capture time), `after_ms` before; `cut_s` of voice was not played,
    `text` is the sentence it stopped in ("" when none had begun playing)."""

    start_ns: int
    after_ms: float
    cut_s: float
    text: str
    kind: ClassVar[str] = "voice_stopped"


def split_sentences(text: str, final: bool = False) -> tuple[list[str], str]:
    """The complete sentences at the start of `text`, and the rest; with `final` (the
    answer has ended) the rest is a sentence too. A stop at the very end of unfinished
    text after a digit ("3.") waits: it may be a decimal point."""
    done, start = [], 0
    for m in SENTENCE_END.finditer(text):
        before = text[start : m.start()].split()
        word = before[-1].lower().lstrip("\"'(") if before else ""
        if m.group().startswith(".") and m.end() - m.start() == 1 and (
                word in NOT_AN_END or (len(word) == 1 and word.isalpha())):
            continue  # "Dr. Who", "J. Smith"
        if m.end() == len(text) and not final and word[-1:].isdigit():
            break
        if sentence := text[start : m.end()].strip():
            done.append(sentence)
        start = m.end()
    rest = text[start:]
    if final:
        if rest.strip():
            done.append(rest.strip())
        rest = ""
    return done, rest


class SpeechOut:
    """Speaks the assistant's answers; `on_event` takes its events (answer pieces and
    answers, announcements, speech starts). `publish` sends its own (spoken, voice
    stopped); `start_ns` places its sound in the recording (the session's media time 0,
    set once the assistant has started). `note` says why there is no speaker, if none."""

    def __init__(self, publish: Callable[[Event], None] | None, recorder: Recorder | None,
                 playback: Playback | None = None, barge_in: bool = True,
                 speaker: bool = True):
        self.voice = Voice()
        self.voice.speak("Ready.")  # the first synthesis is slow: not on a wearer's turn
        self.publish = publish or (lambda e: None)
        self.recorder = recorder
        self.playback = playback or Playback()
        self.barge_in = barge_in
        self.start_ns = now_ns()
        self.note = ""
        self.speaker: Speaker | None = None
        if speaker:
            try:
                self.speaker = Speaker()
            except DeviceFailure as e:
                where = "the recording" if recorder else "nowhere (no speaker, no recording)"
                self.note = f"speech out: {e}; answers are spoken into {where}"
        self.barged_in = False  # stopped for the wearer, who has not finished the question
        self.stops: list[VoiceStopped] = []
        self.sentences = 0  # put on the timeline
        self._texts: dict[int, str] = {}  # answers' text not yet queued, by speech_end_ns
        self._hush_ns = 0  # answers to questions that ended before this are not spoken
        self._pending = 0  # sentences queued and not yet on the timeline
        self._unrecorded: list[Sound] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="speech-out", daemon=True)
        self._thread.start()
        self._out = None
        if self.speaker is not None:
            self._out = threading.Thread(target=self._play_out, name="speaker", daemon=True)
            self._out.start()

    # -- what it is told -----------------------------------------------------------------

    def on_event(self, e: Event) -> None:
        match e:
            case AnswerPiece():
                self._add(e.speech_end_ns, e.text)
            case Answer():
                self._add(e.speech_end_ns, "", whole=e.text)
            case Announcement():
                self.say(e.text, e.t_ns)
            case SpeechStarted():
                if not (self.barge_in and self.interrupt(e.start_ns)):
                    self.barged_in = False
            case FinalTranscript():
                self.barged_in = False

    def say(self, text: str, speech_end_ns: int) -> None:
        """Speak `text` (all of it, sentence by sentence) for the question ended then."""
        self._add(speech_end_ns, "", whole=text, fresh=True)

    def interrupt(self, start_ns: int) -> VoiceStopped | None:
        """The wearer began speaking at `start_ns`: stop the voice if it plays or has
        sentences waiting (and drop what is still to come for earlier questions)."""
        with self._lock:
            t = now_ns()
            if not (self.playback.playing(t) or self._pending):
                return None
            self._hush_ns = max(self._hush_ns, start_ns)
            self._texts = {k: v for k, v in self._texts.items() if k >= start_ns}
            cut_s, sound = self.playback.stop(t)
            self.barged_in = True
            stop = VoiceStopped(t, start_ns, round((t - start_ns) / NS_PER_MS, 1),
                                round(cut_s, 3), sound.label if sound else "")
            self.stops.append(stop)
        self.publish(stop)
        return stop

    def close(self, timeout_s: float = 5.0) -> None:
        """Finish what is queued (bounded by `timeout_s`), then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        self._closed.set()
        if self._out is not None:
            self._out.join(1.0)
        if self.speaker is not None:
            self.speaker.close()
        self._record(everything=True)

    # -- sentences, as soon as they are complete -----------------------------------------

    def _add(self, key: int, text: str, whole: str | None = None, fresh: bool = False) -> None:
        """Add a piece of the answer for the question ended at `key`; `whole`: the answer
        has ended, and this is its text (spoken as it is if no piece came, or `fresh`)."""
        with self._lock:
            if key < self._hush_ns:
                self._texts.pop(key, None)
                return
            if whole is None:
                done, self._texts[key] = split_sentences(self._texts.get(key, "") + text)
            else:
                buffered = self._texts.pop(key, None)
                done, _ = split_sentences(whole if fresh or buffered is None else buffered,
                                          final=True)
            self._pending += len(done)
        for sentence in done:
            self._queue.put((sentence, key))

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            text, key = job
            audio = self.voice.speak(text) if key >= self._hush_ns else None
            with self._lock:
                self._pending -= 1
                if audio is None or not len(audio) or key < self._hush_ns:
                    continue  # the wearer spoke meanwhile
                sound = self.playback.play(audio, label=text)
                self._unrecorded.append(sound)
                self.sentences += 1
            self.publish(Spoken(now_ns(), text, round(len(audio) / SAMPLE_RATE, 2), key))
            self._record()

    def _record(self, everything: bool = False) -> None:
        """Sounds that have played (all, at the end) go into the recording, as played."""
        if self.recorder is None:
            return
        with self._lock:
            t = now_ns()
            done = [s for s in self._unrecorded if everything or s.end_ns <= t]
            self._unrecorded = [s for s in self._unrecorded if not (everything or s.end_ns <= t)]
        for s in done:
            if len(s.samples):
                self.recorder.add_audio(s.samples, (s.start_ns - self.start_ns) / NS_PER_S)

    def _play_out(self) -> None:
        """The timeline to the sound card, a block at a time as it comes due."""
        block_ns = SPEAKER_BLOCK * NS_PER_S // SAMPLE_RATE
        t = None  # the time of the next block to write
        while not self._closed.is_set():
            now = now_ns()
            if not self.playback.playing(now):
                t = None
                self.playback.wait(0.05)
                continue
            if t is None or t < now:
                t = max(now, min((s.start_ns for s in self.playback.sounds()
                                  if s.end_ns > now), default=now))
            if not sleep_until(t - SPEAKER_LEAD_NS, self._closed):
                return
            self.speaker.play(self.playback.read(t, SPEAKER_BLOCK))
            t += block_ns
