"""Skills: what the assistant can do, as a list a router chooses from.

A skill declares which requests it takes (`examples`: phrasings the router matches;
`keywords`: words that decide it) and a `handle` that receives the `Request` (the
question, its frame, the facts found in it on demand, the conversation so far) and
streams its answer: pieces of text, and optionally a `Card` for the display. Built in:
identify, read, colour and general, answered by the look-and-tell models
(`models/vlm.py`). Others are found through the entry-point group `glasses.skills`: an
entry point names a `Skill` subclass (or any callable returning a skill).

    [project.entry-points."glasses.skills"]
    timer = "glasses_timer:TimerSkill"

A skill that cannot be loaded, or whose handler raises, is reported by name and skipped;
the assistant keeps answering.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata

import numpy as np

from glasses.device.boards import BoardProfile
from glasses.models.intent import EXAMPLES, KEYWORDS, Intent
from glasses.models.router import Router
from glasses.models.store import ModelStore
from glasses.models.vlm import Facts, Vlm
from glasses.pipelines.frames import Card

__all__ = ["Card", "Exchange", "LookSkill", "Request", "Skill", "SkillEnv", "discover"]

ENTRY_POINTS = "glasses.skills"
FALLBACK = Intent.GENERAL.value


@dataclass(frozen=True)
class Exchange:
    """One earlier turn of the conversation: its frame ((H, W, 3) BGR, or None) and the
    facts found in it (None when no model looked), for follow-ups (`pipelines/context.py`)."""

    question: str
    answer: str
    skill: str
    t_ns: int
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    facts: Facts | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Request:
    """What a skill is asked: `text`, stamped `t_ns` (the end of speech), about `image`
    ((H, W, 3) BGR uint8, or None when the camera is off); `history` is the conversation
    so far, oldest first."""

    text: str
    t_ns: int
    image: np.ndarray | None
    history: tuple[Exchange, ...] = ()
    source: str = "voice"
    _facts: Callable[[], Facts] | None = field(default=None, repr=False)
    found: dict = field(default_factory=dict, repr=False, compare=False)  # see `facts`

    def facts(self) -> Facts:
        """What the vision models find in the image (computed once, when first asked; a
        skill that found facts its own way leaves them in `found["facts"]`)."""
        if "facts" not in self.found:
            self.found["facts"] = (self._facts() if self._facts and self.image is not None
                                   else Facts())
        return self.found["facts"]


@dataclass
class SkillEnv:
    """What a skill may use: the model store and board, the look-and-tell models, and a
    way to speak up later (`announce`, e.g. a timer that is done) or report a problem."""

    store: ModelStore
    board: BoardProfile
    vlm: Vlm
    announce: Callable[[str, Card | None], None]
    notice: Callable[[str], None]
    memory: object | None = None  # the session's `Remembering`; None with memory off
    forget_context: Callable[[int], None] = lambda since_ns: None  # drop turns from then on


class Skill:
    """Base class of skills; subclasses set `name` and `examples` and implement `handle`."""

    name: str = "skill"
    examples: tuple[str, ...] = ()
    keywords: str | None = None  # a regular expression over the lowercased words
    # True: the answer may be worked out ahead, on the question as heard when the wearer
    # stops (before the pause is known to end the turn), and given only if it does: for a
    # quick handler that changes nothing (`pipelines/skill_stage.py`)
    ahead: bool = False

    def open(self, env: SkillEnv) -> None:
        """Called once before the first request."""
        self.env = env

    def handle(self, request: Request) -> Iterator[str | Card]:
        """The answer, piece by piece (joined, the pieces are the answer's text)."""
        raise NotImplementedError

    def close(self) -> None:
        """Called once at the end of the session."""


class LookSkill(Skill):
    """A built-in skill: one intent of the look-and-tell models."""

    def __init__(self, intent: Intent):
        self.intent = intent
        self.name = intent.value
        self.examples = EXAMPLES[intent]
        self.keywords = KEYWORDS.get(intent)
        self.ahead = intent is not Intent.GENERAL  # the language model's answers take long

    def handle(self, request: Request) -> Iterator[str]:
        stream = self.env.vlm.stream(request.image, request.text, self.intent)
        yield from stream
        if getattr(stream, "facts", None) is not None:
            request.found["facts"] = stream.facts
        memory = self.env.memory
        if self.intent is Intent.IDENTIFY and memory is not None and memory.things():
            # after the answer's first words, not before them: matching takes a few runs
            name, _ = memory.match(request.image)
            if name is not None:  # one of the wearer's own things
                yield f" It's {re.sub(r'^my ', 'your ', name)}."


def builtin_skills() -> list[Skill]:
    return [LookSkill(intent) for intent in Intent]


def discover(group: str = ENTRY_POINTS) -> tuple[list[Skill], list[str]]:
    """The installed skills of `group`, and a line for each one that failed to load."""
    skills, problems = [], []
    for ep in metadata.entry_points(group=group):
        try:
            made = ep.load()
            skill = made() if callable(made) else made
            _check(skill)
        except Exception as e:  # a third party's code: any failure is reported, not raised
            problems.append(f"skill {ep.name!r} ({ep.value}) skipped: {type(e).__name__}: {e}")
            continue
        skills.append(skill)
    return skills, problems


def _check(skill) -> None:
    if not isinstance(getattr(skill, "name", None), str) or not skill.name:
        raise TypeError("a skill needs a name")
    examples = getattr(skill, "examples", None)
    if not examples or not all(isinstance(e, str) for e in examples):
        raise TypeError("a skill needs example phrasings (strings)")
    if not callable(getattr(skill, "handle", None)):
        raise TypeError("a skill needs a handle(request) method")


def router_for(skills: list[Skill]) -> Router:
    return Router({s.name: s.examples for s in skills}, FALLBACK,
                  {s.name: s.keywords for s in skills if s.keywords})
