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
"""

import logging
from collections import deque
from collections.abc import Callable, Iterator

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.models.deployment import open_vlm
from glasses.models.intent import Intent
from glasses.models.store import ModelStore
from glasses.models.vlm import VlmOptions
from glasses.pipelines.context import Follow, resolve
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
        self.vlm.cancel()

    def close(self) -> None:
        for skill in self.skills:
            try:
                skill.close()
            except Exception:
                log.exception("closing skill %s", skill.name)

    def process(self, item: Transcript) -> Iterator[AnswerToken]:
        if not item.final or not item.text.strip():
            return
        self.busy = True
        try:
            yield from self._answer(item)
        finally:
            self.busy = False

    def _answer(self, item: Transcript) -> Iterator[AnswerToken]:
        image = None if item.frame is None else item.frame.image
        resolved = resolve(item.text, self.history, item.t_ns)
        name = self.router.route(item.text)
        if resolved.follow is Follow.EARLIER:  # about an earlier turn's frame
            image = resolved.turn.image
        elif resolved.follow is Follow.SAME_SKILL:  # "and that one?": the view now
            name = resolved.turn.skill
        elif resolved.follow is Follow.PAST:  # nothing recent fits: the wearer's memory
            name = "recall"
        skill = self._by_name.get(name) or self._by_name[Intent.GENERAL.value]
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
            look = getattr(self.vlm, "look", None)  # the teacher finds facts; the student not
            request = Request(item.text, item.t_ns, image, tuple(self.history), item.source,
                              (lambda: look(image, Intent.GENERAL)) if look else None)
            try:
                for piece in skill.handle(request):
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
            self.history.append(Exchange(item.text, answer, skill.name, item.t_ns,
                                         image if looked else None, facts))
        yield token("", last=True)
        if self.memory is not None and isinstance(skill, LookSkill) and image is not None:
            self.memory.note(seen_of(facts, item.t_ns), item.text, answer)

    def _forget_context(self, since_ns: int) -> None:
        """Turns from `since_ns` on are dropped from the conversation (forgotten)."""
        kept = [e for e in self.history if e.t_ns < since_ns]
        self.history.clear()
        self.history.extend(kept)

    def _skip(self, skill: Skill, why: str) -> None:
        self._notice(f"skill {skill.name!r} skipped: {why}")
        self.skills.remove(skill)
        self._by_name.pop(skill.name, None)
        self.router = router_for(self.skills)
