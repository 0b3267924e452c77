"""Turns: each question and its answer as one typed record, built from the assistant's
events as they come and keyed by the exact end of the question's speech (`speech_end_ns`,
the stamp every event of the turn carries), not joined afterwards on rounded times.

A spoken question's turn begins at its `UtteranceHeard`; a question asked as text begins
at its `FinalTranscript` (its speech "ends" when it was asked).
"""

import threading
from dataclasses import dataclass

from glasses.device.clock import NS_PER_S
from glasses.pipelines import events as ev

STEPS = ("final_text", "first_token", "answer_shown", "spoken")  # in the order they come


@dataclass
class Turn:
    speech_start_ns: int
    speech_end_ns: int
    seconds: float = 0.0  # of speech
    frame: int | None = None  # the index of the question's frame
    source: str = "voice"
    text: str | None = None
    answer: str | None = None
    skill: str = ""
    final_text_ns: int | None = None
    first_token_ns: int | None = None
    answer_shown_ns: int | None = None
    spoken_ns: int | None = None

    def delays_ms(self) -> dict[str, float | None]:
        """Each step's delay after the end of speech, ms (None: it did not happen)."""
        return {f"{s}_ms": None if (t := getattr(self, f"{s}_ns")) is None
                else round((t - self.speech_end_ns) / 1e6, 1) for s in STEPS}

    def to_dict(self, start_ns: int) -> dict:
        """The JSON form: times in seconds since `start_ns`, delays in ms."""
        sec = lambda t: round((t - start_ns) / NS_PER_S, 4)  # noqa: E731
        return {"start": sec(self.speech_start_ns), "end": sec(self.speech_end_ns),
                "seconds": self.seconds, "frame": self.frame, "source": self.source,
                "text": self.text, "answer": self.answer, "skill": self.skill,
                **self.delays_ms()}


class TurnLog:
    """Subscribe it to an assistant; `turns` holds the turns in the order they began."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self._by_end: dict[int, Turn] = {}
        self._lock = threading.Lock()

    def __call__(self, e: ev.Event) -> None:
        with self._lock:
            match e:
                case ev.UtteranceHeard():
                    self._begin(Turn(e.start_ns, e.end_ns, e.seconds, e.frame))
                case ev.FinalTranscript():
                    turn = self._by_end.get(e.speech_end_ns)
                    if turn is None and e.source == "text":
                        turn = self._begin(Turn(e.speech_end_ns, e.speech_end_ns,
                                                source="text"))
                    if turn is not None:
                        turn.text, turn.final_text_ns = e.text, e.t_ns
                case ev.AnswerStarted():
                    self._set(e.speech_end_ns, first_token_ns=e.t_ns)
                case ev.Answer():
                    self._set(e.speech_end_ns, answer=e.text, skill=e.skill)
                case ev.AnswerShown():
                    self._set(e.speech_end_ns, answer_shown_ns=e.t_ns)
                case ev.Spoken():
                    self._set(e.speech_end_ns, spoken_ns=e.t_ns)

    def _begin(self, turn: Turn) -> Turn:
        self.turns.append(turn)
        self._by_end[turn.speech_end_ns] = turn
        return turn

    def _set(self, speech_end_ns: int, **fields) -> None:
        turn = self._by_end.get(speech_end_ns)
        if turn is None:
            return
        for name, value in fields.items():
            if name.endswith("_ns") and getattr(turn, name) is not None:
                continue  # the first time counts (a second display frame, a repeat)
            setattr(turn, name, value)
