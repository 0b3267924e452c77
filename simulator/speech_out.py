"""Answers spoken by the bundled voice, on a thread of their own: to the speaker when
there is one, into the recording when there is one, and logged with their delay."""

import queue
import threading

from device.clock import NS_PER_S, now_ns
from device.errors import DeviceFailure
from device.voice import Speaker, Voice
from simulator.events import EventLog
from simulator.recorder import Recorder


class SpeechOut:
    def __init__(self, log: EventLog, recorder: Recorder | None):
        self.voice = Voice()
        self.voice.speak("Ready.")  # the first synthesis is slow: not on a wearer's turn
        self.log, self.recorder = log, recorder
        try:
            self.speaker: Speaker | None = Speaker()
            where = "speaker"
        except DeviceFailure as e:
            self.speaker = None
            where = "the recording" if recorder else "nowhere (no speaker, no recording)"
            log.add("notice", message=f"speech out: {e}; answers are spoken into {where}")
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
            self.log.add("spoken", text=text, seconds=round(len(audio) / 16000, 2),
                         speech_end=self.log.seconds(speech_end_ns),
                         since_speech_end_ms=round((at - speech_end_ns) / 1e6, 1))
            if self.recorder is not None:
                self.recorder.add_audio(audio, (at - self.log.start_ns) / NS_PER_S)
            if self.speaker is not None:
                self.speaker.play(audio)
