"""What the assistant tells the world: typed events, and the bus that delivers them.

Every event is a frozen dataclass stamped `t_ns` (monotonic, when it happened). Fields
named `*_ns` are monotonic times too; `speech_end_ns` ties an event to its question (the
utterance's end of speech, exact, so a turn's events are joined on it). `to_dict` writes
the JSON form of the event log and the control socket: `{"t": seconds since the session
started, "type": KIND, ...}`, each `x_ns` field as `x` in seconds, and
`since_speech_end_ms` wherever there is a `speech_end_ns`.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from glasses.device.clock import NS_PER_S
from glasses.pipelines.frames import Card

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    t_ns: int
    kind: ClassVar[str] = "event"

    def to_dict(self, start_ns: int) -> dict[str, Any]:
        out: dict[str, Any] = {"t": _seconds(self.t_ns, start_ns), "type": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "t_ns":
                continue
            if f.name.endswith("_ns"):
                out[f.name[:-3]] = None if value is None else _seconds(value, start_ns)
            elif isinstance(value, Card):
                out[f.name] = {"title": value.title, "body": value.body, "until": None
                               if value.until_ns is None else _seconds(value.until_ns, start_ns)}
            else:
                out[f.name] = value
        speech_end = getattr(self, "speech_end_ns", None)
        if speech_end is not None:
            out["since_speech_end_ms"] = round((self.t_ns - speech_end) / 1e6, 1)
        return out


def _seconds(t_ns: int, start_ns: int) -> float:
    return round((t_ns - start_ns) / NS_PER_S, 4)


@dataclass(frozen=True)
class SessionStarted(Event):
    """Streaming began: `t_ns` is media time 0, the session clock's zero."""

    view: str
    audio: str
    mode: str
    board: str
    kind: ClassVar[str] = "session_start"


@dataclass(frozen=True)
class SpeechStarted(Event):
    """The VAD heard speech begin (at `start_ns`, capture time): perhaps a question, perhaps
    the wearer talking over the answer being spoken (barge-in)."""

    start_ns: int
    kind: ClassVar[str] = "speech_start"


@dataclass(frozen=True)
class UtteranceHeard(Event):
    """The end of a question's speech was found; `frame` is the index of its frame."""

    start_ns: int
    end_ns: int
    seconds: float
    frame: int | None
    kind: ClassVar[str] = "utterance"


@dataclass(frozen=True)
class PartialTranscript(Event):
    text: str
    speech_end_ns: int
    kind: ClassVar[str] = "partial_transcript"


@dataclass(frozen=True)
class FinalTranscript(Event):
    """The question's text: heard (`source` "voice") or asked as text ("text")."""

    text: str
    speech_end_ns: int
    source: str = "voice"
    kind: ClassVar[str] = "final_transcript"


@dataclass(frozen=True)
class AnswerStarted(Event):
    speech_end_ns: int
    kind: ClassVar[str] = "answer_start"


@dataclass(frozen=True)
class AnswerPiece(Event):
    text: str
    speech_end_ns: int
    kind: ClassVar[str] = "answer_token"


@dataclass(frozen=True)
class Answer(Event):
    """The whole answer; `skill` is the skill that gave it, `card` its card for the display,
    if any (in JSON {"title", "body", "until"}, `until` in seconds of the session clock)."""

    text: str
    speech_end_ns: int
    skill: str = ""
    card: Card | None = None
    kind: ClassVar[str] = "answer"


@dataclass(frozen=True)
class Announcement(Event):
    """A skill speaking up by itself, later (a timer that is done)."""

    text: str
    skill: str
    card: Card | None = None
    kind: ClassVar[str] = "announcement"


@dataclass(frozen=True)
class AnswerShown(Event):
    """A display drew the answer (sent by whatever draws it: the simulator's presenter)."""

    speech_end_ns: int
    kind: ClassVar[str] = "answer_shown"


@dataclass(frozen=True)
class Spoken(Event):
    """A sentence of the answer is ready to play in the voice (`seconds` long): one event
    per sentence, the first as soon as it is complete."""

    text: str
    seconds: float
    speech_end_ns: int
    kind: ClassVar[str] = "spoken"


@dataclass(frozen=True)
class DeviceError(Event):
    device: str  # "camera" or "microphone"
    source: str
    message: str
    kind: ClassVar[str] = "device_error"


@dataclass(frozen=True)
class Muted(Event):
    """The microphone was muted (`muted`) or unmuted."""

    muted: bool
    kind: ClassVar[str] = "mute"


@dataclass(frozen=True)
class CameraSwitched(Event):
    on: bool
    kind: ClassVar[str] = "camera"


@dataclass(frozen=True)
class PushToTalk(Event):
    talking: bool
    kind: ClassVar[str] = "push_to_talk"


@dataclass(frozen=True)
class Notice(Event):
    message: str
    kind: ClassVar[str] = "notice"


@dataclass(frozen=True)
class ControlError(Event):
    """A control command that could not be taken; the session goes on."""

    message: str
    kind: ClassVar[str] = "error"


@dataclass(frozen=True)
class SessionEnded(Event):
    errors: tuple[str, ...] = ()
    kind: ClassVar[str] = "session_end"


Subscriber = Callable[[Event], None]


class EventBus:
    """Delivers every event to every subscriber, in order, on the publishing thread.

    A subscriber must be quick (it runs on a pipeline thread); one that raises is logged
    and keeps its subscription: it cannot stop the assistant.
    """

    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, tuple[type[Event], ...]]] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber, *kinds: type[Event]) -> Callable[[], None]:
        """Call `subscriber(event)` for every event (or those of `kinds`); returns the
        function that unsubscribes."""
        entry = (subscriber, kinds)
        with self._lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber, kinds in subscribers:
            if kinds and not isinstance(event, kinds):
                continue
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, event.kind)


@dataclass(frozen=True)
class DeviceLost(Event):
    """A camera or microphone went away; it is tried again (a `DeviceBack` when it returns,
    a `DeviceError` if it does not). While the camera is away no frame is kept."""

    device: str  # "camera" or "microphone"
    source: str
    reason: str
    kind: ClassVar[str] = "device_lost"


@dataclass(frozen=True)
class DeviceBack(Event):
    """A device that went away delivers again, `away_s` seconds after it went."""

    device: str  # "camera" or "microphone"
    source: str
    reason: str  # why it had gone away
    away_s: float
    kind: ClassVar[str] = "device_back"
