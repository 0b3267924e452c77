"""Answers spoken by the bundled voice, on a thread of their own: to the speaker when
there is one, into the recording when there is one, and logged with their delay."""

import queue
import threading
from collections.abc import Callable

from glasses.device.clock import NS_PER_S, now_ns
from glasses.device.errors import DeviceFailure
from glasses.device.voice import Speaker, Voice
from glasses.pipelines.events import Event, Notice, Spoken
from glasses.simulator.recorder import Recorder


class SpeechOut:
    """`publish` takes its events (spoken, notice); `start_ns` places its sound in the
    recording (the session's media time 0, set once the assistant has started)."""

    def __init__(self, publish: Callable[[Event], None], recorder: Recorder | None):
        self.voice = Voice()
        self.voice.speak("Ready.")  # the first synthesis is slow: not on a wearer's turn
        self.publish, self.recorder = publish, recorder
        self.start_ns = now_ns()
        try:
            self.speaker: Speaker | None = Speaker()
            where = "speaker"
        except DeviceFailure as e:
            self.speaker = None
            where = "the recording" if recorder else "nowhere (no speaker, no recording)"
            publish(Notice(now_ns(), f"speech out: {e}; answers are spoken into {where}"))
        self.where = where
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="speech-out", daemon=True)
        self._thread.start()

    def say(self, text: str, speech_end_ns: int) -> None:
        self._queue.put((text, speech_end_ns))

    def close(self, timeout_s: float = 5.0) -> None:
        """Finish what is queued (bounded by `timeout_s`), then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self.speaker is not None:
            self.speaker.close()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            text, speech_end_ns = job
            audio = self.voice.speak(text)
            at = now_ns()
            self.publish(Spoken(at, text, round(len(audio) / 16000, 2), speech_end_ns))
            if self.recorder is not None:
                self.recorder.add_audio(audio, (at - self.start_ns) / NS_PER_S)
            if self.speaker is not None:
                self.speaker.play(audio)
