"""The answering stage: questions in (final transcripts carrying their frame), the answer's
pieces out, from the skill the router chooses (`pipelines/skills.py`).

Each question is answered about its own frame: for a spoken one, the sharpest recent
frame captured while it was asked (chosen in the stream by `FrameChoice`); for one asked
as text, the frame of the moment it was asked. Answer pieces keep the question's stamp
(the end of speech), so `now - t_ns` is the wearer's wait. The stage keeps the name
"look" in spans and reports: it is where the look-and-tell models run.

Before it is routed, a question is resolved against the conversation (`pipelines/context
.py`): a follow-up is answered about an earlier turn's frame, repeats the last answer, or
goes to the wearer's memory. The memory skills (`pipelines/memory_skills.py`) are built in
beside the look skills; every answered look turn is noted in memory after its last piece.

Thinking ahead: when the wearer stops, the early `ending` transcript (the question as it
will be if the silence lasts) comes here while the end of the turn is still being judged
(`pipelines/turn_judge.py`). A quick skill that changes nothing (`Skill.ahead`: identify,
read, colour) works its answer out then; when the final transcript is that same question
about that same frame, in an unchanged conversation, the answer is given at once. Nothing
is shown or kept before the turn is known to have ended there.
"""

import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.models.deployment import open_vlm
from glasses.models.intent import Intent
from glasses.models.store import ModelStore
from glasses.models.vlm import VlmOptions
from glasses.pipelines.context import Follow, Resolved, resolve
from glasses.pipelines.frames import AnswerToken, Card, Transcript
from glasses.pipelines.memory_skills import memory_skills
from glasses.pipelines.remembering import Remembering, seen_of
from glasses.pipelines.skills import (
    Exchange,
    LookSkill,
    Request,
    Skill,
    SkillEnv,
    builtin_skills,
    router_for,
)
from glasses.pipelines.stage import Stage

log = logging.getLogger(__name__)

NO_VIEW = "I can't tell: the camera is off."
HISTORY = 8  # earlier turns handed to skills
LOOKING = ("mine", "remember")  # skills besides the look skills whose turns are about a view


class SkillStage(Stage):
    name = "look"

    def __init__(self, store: ModelStore, board: BoardProfile, options: VlmOptions | None = None,
                 extra: list[Skill] = (),
                 announce: Callable[[str, str, Card | None], None] = lambda *a: None,
                 notice: Callable[[str], None] = lambda m: None,
                 memory: Remembering | None = None):
        self.store, self.board = store, board
        self.options = options or VlmOptions()
        self.memory = memory
        self.skills: list[Skill] = builtin_skills() + memory_skills()
        taken = {s.name for s in self.skills}
        self.busy = False  # answering: glances wait
        for s in extra:
            if s.name in taken:
                notice(f"skill {s.name!r} skipped: the name is taken")
                continue
            taken.add(s.name)
            self.skills.append(s)
        self._announce, self._notice = announce, notice
        self.router = router_for(self.skills)
        self._by_name = {s.name: s for s in self.skills}
        self.history: deque[Exchange] = deque(maxlen=HISTORY)
        self._version = 0  # counts changes to the conversation
        self._ahead: _Ahead | None = None  # the answer worked out on an `ending` transcript
        self.answered_ahead = 0  # questions answered from it

    def open(self) -> None:
        self.vlm = open_vlm(self.store, self.board, self.options)
        self.vlm.warm_up()
        for skill in list(self.skills):
            env = SkillEnv(self.store, self.board, self.vlm,
                           lambda text, card=None, s=skill.name: self._announce(s, text, card),
                           self._notice, self.memory, self._forget_context)
            try:
                skill.open(env)
            except Exception as e:
                self._skip(skill, f"failed to open: {type(e).__name__}: {e}")

    def cancel(self) -> None:
        self._ahead = None
        self.vlm.cancel()

    def close(self) -> None:
        for skill in self.skills:
            try:
                skill.close()
            except Exception:
                log.exception("closing skill %s", skill.name)

    def supersedes(self, item: Transcript, newer) -> bool:
        """Thinking ahead is pointless once anything newer waits."""
        return item.ending

    def process(self, item: Transcript) -> Iterator[AnswerToken]:
        if not item.text.strip():
            return
        self.busy = True
        try:
            if item.ending:
                self._think_ahead(item)
            elif item.final:
                yield from self._answer(item)
        finally:
            self.busy = False

    def _route(self, item: Transcript) -> tuple[Skill, np.ndarray | None, Resolved]:
        """The skill that answers `item`, the picture it is about, and how it follows on."""
        image = None if item.frame is None else item.frame.image
        resolved = resolve(item.text, self.history, item.t_ns)
        name = self.router.route(item.text)
        if resolved.follow is Follow.EARLIER:  # about an earlier turn's frame
            image = resolved.turn.image
        elif resolved.follow is Follow.SAME_SKILL:  # "and that one?": the view now
            name = resolved.turn.skill
        elif resolved.follow is Follow.PAST:  # nothing recent fits: the wearer's memory
            name = "recall"
        return self._by_name.get(name) or self._by_name[Intent.GENERAL.value], image, resolved

    def _request(self, item: Transcript, image: np.ndarray | None) -> Request:
        look = getattr(self.vlm, "look", None)  # the teacher finds facts; the student not
        return Request(item.text, item.t_ns, image, tuple(self.history), item.source,
                       (lambda: look(image, Intent.GENERAL)) if look else None)

    def _think_ahead(self, item: Transcript) -> None:
        """Work out the answer to an `ending` transcript (the question as it will be if the
        silence lasts) while the end of the turn is judged; `_answer` gives it if the final
        transcript is that same question about that same frame, in the same conversation.
        Only for skills marked `ahead`; a failure is left for the final to meet and report."""
        self._ahead = None
        skill, image, resolved = self._route(item)
        if not skill.ahead or image is None or resolved.follow is Follow.REPEAT:
            return
        request = self._request(item, image)
        try:
            pieces = list(skill.handle(request))
        except Exception:
            return
        self._ahead = _Ahead(_question_key(item), self._version, skill.name, request, pieces)

    def _worked_out(self, item: Transcript, skill: Skill) -> tuple[Request, list] | None:
        ahead, self._ahead = self._ahead, None
        if (ahead is None or ahead.key != _question_key(item) or ahead.version != self._version
                or ahead.skill != skill.name):
            return None
        self.answered_ahead += 1
        return ahead.request, ahead.pieces

    def _answer(self, item: Transcript) -> Iterator[AnswerToken]:
        skill, image, resolved = self._route(item)
        said: list[str] = []

        def token(text: str, last: bool = False, card: Card | None = None) -> AnswerToken:
            return AnswerToken(item.t_ns, text, last, card, skill.name)

        request = None
        if resolved.follow is Follow.REPEAT:
            said.append(resolved.turn.answer)
            yield token(resolved.turn.answer)
        elif image is None and isinstance(skill, LookSkill):
            said.append(NO_VIEW)
            yield token(NO_VIEW)
        else:
            worked_out = self._worked_out(item, skill)
            if worked_out is None:
                request = self._request(item, image)
                pieces = skill.handle(request)
            else:
                request, pieces = worked_out
            try:
                for piece in pieces:
                    if isinstance(piece, Card):
                        yield token("", card=piece)
                        continue
                    said.append(piece)
                    yield token(piece)
            except BadInput as e:  # a question the models refuse: say why, keep going
                said.append(f"Sorry: {e}.")
                yield token(said[-1])
            except Exception as e:  # a skill's own failure: reported, and the session goes on
                log.debug("skill %s failed", skill.name, exc_info=True)
                self._notice(f"skill {skill.name!r} failed: {type(e).__name__}: {e}")
                said.append(f" Sorry: the {skill.name} skill failed.")
                yield token(said[-1])
        answer = "".join(said).strip()
        facts = request.found.get("facts") if request is not None else None
        looked = isinstance(skill, LookSkill) or skill.name in LOOKING
        if resolved.follow is not Follow.REPEAT:
            self._version += 1
            self.history.append(Exchange(item.text, answer, skill.name, item.t_ns,
                                         image if looked else None, facts))
        yield token("", last=True)
        if self.memory is not None and isinstance(skill, LookSkill) and image is not None:
            self.memory.note(seen_of(facts, item.t_ns), item.text, answer)

    def _forget_context(self, since_ns: int) -> None:
        """Turns from `since_ns` on are dropped from the conversation (forgotten)."""
        self._version += 1
        kept = [e for e in self.history if e.t_ns < since_ns]
        self.history.clear()
        self.history.extend(kept)

    def _skip(self, skill: Skill, why: str) -> None:
        self._notice(f"skill {skill.name!r} skipped: {why}")
        self.skills.remove(skill)
        self._by_name.pop(skill.name, None)
        self.router = router_for(self.skills)


@dataclass(frozen=True)
class _Ahead:
    """An answer worked out ahead (`SkillStage._think_ahead`), for the question `key`."""

    key: tuple
    version: int  # of the conversation it was worked out in
    skill: str
    request: Request
    pieces: list


def _question_key(item: Transcript) -> tuple:
    """What a final transcript must share with an `ending` one to take its answer: the
    words, the speech's bounds and the frame."""
    frame = None if item.frame is None else item.frame.index
    return item.text, item.t_ns, item.start_ns, frame
