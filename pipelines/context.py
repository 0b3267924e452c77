"""Conversation context: what a follow-up question is about.

The last turns (question, answer, skill, the frame and the facts found in it) are kept
for `CONTEXT_S`. A question is resolved against them before it is routed:

- "say that again", "what did you say?": REPEAT the last answer (also as Whisper often
  hears a synthetic "say that": "see that again");
- "and that one?", "what about this?": SAME_SKILL as the last turn, about the view now;
- a question in the past about something said or seen ("what did that sign say?",
  "what colour was it?", "read it again"): EARLIER, about the frame of the turn it
  refers to (the last one, or the last with text when it asks about a sign or text),
  even though the view has changed since; when no recent turn fits, PAST: it is for
  the wearer's memory of what was seen;
- anything else is about the view NOW ("what is this?" still looks now).

Pure logic on words; no model.
"""

import re
from dataclasses import dataclass
from enum import Enum

from glasses.device.clock import NS_PER_S
from glasses.models.intent import words

CONTEXT_S = 300  # turns older than this are no context for a follow-up

REPEAT = re.compile(
    r"^(?:(?:please|sorry|could you|can you) )*(?:(?:say|repeat|tell me) (?:that|it|this)"
    r"(?: again| once more)?|(?:see|said) (?:that|it) again|say again|repeat|come again"
    r"|pardon|what did you (?:just )?say"
    r"|what was that again|again|once more|one more time)(?: please)?$")
SAME_SKILL = re.compile(
    r"^(?:and|what about|how about|and what about|now) (?:this|that|these|those|here|it)"
    r"(?: one| ones| thing| here| there)?(?: then| now)?$")
PAST = re.compile(r"\b(?:was|were|did|had|said|saw|earlier|before|again)\b")
REFERS = re.compile(r"\b(?:it|that|this|they|them|those|these|the one|one)\b")
TEXTUAL = re.compile(r"\b(?:sign|signs|text|written|writing|say|said|says|label|note|poster|"
                     r"board|words?|letters?|read)\b")
# words that say nothing about which thing is meant
STOP = frozenset("""a an the and or of to in on at for with by from it its that this these those
they them was were is are be been did do does had has have i me my you your what which who
whom whose when where why how again earlier before last one ones there here please tell
say said says read colour color colours colors sign text written writing label note poster
board word words letter letters thing things just now then so can could would will see saw
look looked looking kind sort""".split())  # noqa: SIM905


class Follow(Enum):
    NOW = "now"
    REPEAT = "repeat"
    SAME_SKILL = "same skill"
    EARLIER = "earlier"
    PAST = "past"


@dataclass(frozen=True)
class Resolved:
    follow: Follow
    turn: object | None = None  # the earlier turn it refers to (an `Exchange`)


def resolve(question: str, history, now_ns: int, context_s: float = CONTEXT_S) -> Resolved:
    """What `question` is about, given the conversation `history` (Exchanges, oldest first,
    each with `t_ns`, `skill`, `image`, `facts`, `answer`) at `now_ns`."""
    w = words(question)
    recent = [e for e in history if now_ns - e.t_ns <= context_s * NS_PER_S]
    if REPEAT.match(w):
        return Resolved(Follow.REPEAT, recent[-1]) if recent else Resolved(Follow.NOW)
    looks = [e for e in recent if getattr(e, "image", None) is not None]
    if SAME_SKILL.match(w):
        return Resolved(Follow.SAME_SKILL, looks[-1]) if looks else Resolved(Follow.NOW)
    if not (PAST.search(w) and (REFERS.search(w) or TEXTUAL.search(w))):
        return Resolved(Follow.NOW)
    wanted = _content(w)
    textual = bool(TEXTUAL.search(w))
    for e in reversed(looks):
        if textual and not _text_of(e):
            continue
        if wanted and not wanted <= _known(e):
            continue
        return Resolved(Follow.EARLIER, e)
    return Resolved(Follow.PAST)


def _content(w: str) -> set[str]:
    return {t for t in w.split() if t not in STOP and not t.isdigit()}


def _text_of(e) -> tuple[str, ...]:
    facts = getattr(e, "facts", None)
    return tuple(getattr(facts, "text", None) or ())


def _known(e) -> set[str]:
    facts = getattr(e, "facts", None)
    known = set(facts.known()) if facts is not None else set()
    return known | set(words(e.answer).split()) | set(words(e.question).split())
