"""Built-in skills over the wearer's memory (`pipelines/remembering.py`).

- remember: "Remember this is my cup", "this is Anna's bike": the frame's embedding is
  kept as an exemplar of the thing. People are not remembered: "this is Anna" is refused.
- mine: "Is this my cup?": yes or no, by similarity to the exemplars against a threshold.
- recall: "Did I see a coffee cup?", "What did the gate sign say?", "Where is my cup?",
  "When did I last see my keys?", "What did I see?": from the moments, with the time.
- forget: "forget that", "forget the last 10 minutes", "forget my cup", "forget
  everything": deleted from the file and from the conversation.
"""

import re
from collections.abc import Iterator

from glasses.models.intent import words
from glasses.pipelines.context import STOP, TEXTUAL
from glasses.pipelines.memory import Moment
from glasses.pipelines.remembering import ago, yours
from glasses.pipelines.skills import Request, Skill

NO_MEMORY = "I can't: memory is off."
# text-embedding similarity of "saw QUERY" to a moment's description from which it counts
# as seen: on 10 queries ("kitten", "cup of coffee", "something to eat") against 8 moments
# (tests/test_remembering.py) the right ones scored 0.505-0.76, the 70 others at most 0.454
SEEN_MIN = 0.48
FORGET_THAT_S = 60  # "forget that": the last turn and what was noticed this long before it
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
           "seven": 7, "eight": 8, "nine": 9, "ten": 10, "fifteen": 15, "twenty": 20,
           "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "few": 3, "couple": 2}
UNITS = {"second": 1, "seconds": 1, "minute": 60, "minutes": 60, "hour": 3600,
         "hours": 3600, "day": 86400, "days": 86400}
# "my cup", "Anna's bike", "our car": the owner's word and the thing (one or two words)
OWNED = re.compile(r"\b(my|our|(?!(?:it|that|what|there|here|who|where|let|he|she)'s)[a-z]+'s"
                   r"|[a-z]+s') ([a-z]+(?: [a-z]+)?)\b")
PERSON_WORDS = {"me", "him", "her", "them", "mum", "mom", "dad", "friend", "wife",
                "husband", "son", "daughter", "brother", "sister", "boss", "colleague"}


def owned(text: str) -> str | None:
    """ "Remember this is Anna's bike." -> "anna's bike"; None when nothing is owned."""
    t = " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("\u2019", "'")).split())
    m = OWNED.search(t)
    if not m:
        return None
    owner, thing = m.group(1), m.group(2)
    thing = re.sub(r" (?:here|there|now|please|again|one|is|are|was|were)$", "", thing)
    return f"{owner if owner in ('my', 'our') else owner.capitalize()} {thing}"


def known_name(name: str | None, things) -> str | None:
    """The wearer's thing `name` refers to: itself, or one of the same owner whose last
    word is the same ("my coffee cup" -> "my cup"); None if neither is known."""
    if name is None or name in things:
        return name
    owner, last = name.split(" ", 1)[0], name.split()[-1]
    same = [t for t in things if t.split(" ", 1)[0] == owner and t.split()[-1] == last]
    return same[0] if len(same) == 1 else None


class MemorySkill(Skill):
    """A skill over the session's memory: `answer` is asked only when memory is on."""

    def handle(self, request: Request) -> Iterator[str]:
        memory = getattr(self.env, "memory", None)
        if memory is None or memory.broken:
            yield NO_MEMORY
            return
        yield from self.answer(request, memory)

    def answer(self, request: Request, memory) -> Iterator[str]:
        raise NotImplementedError


class RememberSkill(MemorySkill):
    name = "remember"
    examples = ("remember this is my cup", "this is my bag", "this is Anna's bike",
                "remember that this is my coat", "these are my keys", "remember my water bottle",
                "save this as my mug", "remember this one, it's my umbrella",
                "this is my friend's car", "remember this is our car")
    keywords = r"^(?:please )?remember\b|^(?:this|that|these|those|it) (?:is|are) (?:my|our)"

    def answer(self, request: Request, memory) -> Iterator[str]:
        name = owned(request.text)
        if name is None or name.split(" ", 1)[1] in PERSON_WORDS:
            yield ("I remember things, not people: say, for example, "
                   "\"remember this is my cup\".")
            return
        if request.image is None:
            yield "I can't: the camera is off."
            return
        if memory.thing_vec is None:
            yield "I can't remember things with this model: it has no image features."
            return
        memory.remember_thing(name, name.split(" ", 1)[1], request.image, request.t_ns)
        yield f"OK, I'll remember this as {yours(name)}."


class MineSkill(MemorySkill):
    name = "mine"
    # few examples: "is this ..." opens general questions too ("is this a cat?"); the
    # keywords decide "my" and "our", the examples other owners ("Anna's")
    examples = ("is this my cup", "are these my keys", "is this Anna's bike",
                "is this Sam's phone")
    keywords = (r"^(?:is|are) (?:this|that|these|those|it)(?: one)? (?:my|our|mine|ours)\b"
                r"|\b(?:mine|ours)$")

    def answer(self, request: Request, memory) -> Iterator[str]:
        things = memory.things()
        said = owned(request.text)
        name = known_name(said, things) or said
        if (name is None and not things) or (name is not None and name not in things):
            asked = yours(name) if name else "your things"
            yield (f"I don't know {asked} yet: look at it and say "
                   f"\"remember this is {name or 'my cup'}\".")
            return
        if request.image is None:
            yield "I can't tell: the camera is off."
            return
        best, _ = memory.match(request.image)
        if name is None:  # "is this mine?": any of the wearer's things
            yield f"Yes, that's {yours(best)}." if best else "No, I don't think it's yours."
        elif best == name:
            yield f"Yes, that's {yours(name)}."
        elif best is not None:
            yield f"No, that's {yours(best)}."
        else:
            yield f"No, that's not {yours(name)}."


class RecallSkill(MemorySkill):
    name = "recall"
    examples = ("did I see a coffee cup", "have I seen a dog today", "where is my cup",
                "where did I leave my keys", "when did I last see my bag",
                "what did the gate sign say", "what was written on the sign earlier",
                "what did I see", "have you seen my phone", "where did I put my glasses",
                "what have I seen today", "did we pass a pharmacy", "when did I see the cat")
    keywords = (r"last (?:see|saw|seen)|did i see|have i seen|have you seen|did you see"
                r"|where (?:is|are|did i (?:leave|put)) (?:my|our)|seen my|saw my|earlier")

    def answer(self, request: Request, memory) -> Iterator[str]:
        now = memory.wall(request.t_ns)
        name = known_name(owned(request.text), memory.things())
        if name is not None and name in memory.things():
            yield self._thing(name, now)
        elif TEXTUAL.search(words(request.text)):
            yield self._text(request.text, now)
        else:
            yield self._seen(request.text, now)

    def _thing(self, name: str, now: float) -> str:
        seen = self.env.memory.memory.moments(limit=1, thing=name)
        m = seen[0] if seen else None
        like = self.env.memory.last_seen_like(name)
        if like is not None and (m is None or like.t > m.t):
            m = like
        if m is None:
            return f"I haven't seen {yours(name)} since you showed it to me."
        where = f', near a sign saying "{m.text}"' if m.text else ""
        return f"I last saw {yours(name)} {ago(now - m.t)}{where}."

    def _text(self, question: str, now: float) -> str:
        wanted = _content(question)
        texts = self.env.memory.memory.moments(limit=200, with_text=True)
        hits = [m for m in texts if wanted <= set(words(m.text).split())] if wanted else texts
        if not hits and wanted:  # by meaning, among what was read
            found = self.env.memory.search(question, k=20, min_score=SEEN_MIN)
            hits = [f.moment for f in found if f.moment.text]
        if not hits:
            return "I don't remember reading that."
        m = hits[0]
        return f'{ago(now - m.t).capitalize()}, a sign said "{m.text}".'

    def _seen(self, question: str, now: float) -> str:
        wanted = _content(question)
        if not wanted:  # "what did I see?": the latest few things
            recent = [m for m in self.env.memory.memory.moments(limit=20) if m.what or m.text]
            if not recent:
                return "I don't remember seeing anything yet."
            said = [f"{_gist(m)} ({ago(now - m.t)})" for m in recent[:3]]
            return "Most recently: " + ", ".join(said) + "."
        query = " ".join(wanted)
        found = self.env.memory.search(f"saw {query}", k=5, min_score=SEEN_MIN)
        literal = [m for m in self.env.memory.memory.moments(limit=500)
                   if wanted & set(words(f"{m.what} {m.text} {m.thing}").split())]
        best = literal[0] if literal else (found[0].moment if found else None)
        if best is None:
            return f"I don't remember seeing {_article(query)}."
        return f"Yes, {ago(now - best.t)}: {_gist(best)}."


class ForgetSkill(MemorySkill):
    name = "forget"
    examples = ("forget that", "forget the last ten minutes", "forget the last hour",
                "forget my cup", "forget everything", "delete that", "forget what you just saw",
                "don't remember that", "erase the last five minutes", "forget the last minute")
    keywords = r"forget|erase|delete|wipe|dont remember"

    def answer(self, request: Request, memory) -> Iterator[str]:
        w = words(request.text)
        if re.search(r"\b(?:everything|all of it|all memory|all)\b", w):
            n = memory.wipe()
            self.env.forget_context(0)
            yield f"Done: I forgot everything ({n} moments)."
            return
        seconds = _duration(w)
        name = known_name(owned(request.text), memory.things())
        if seconds is None and name is not None and name in memory.things():
            memory.forget_thing(name)
            yield f"Done: I forgot {yours(name)}."
            return
        if seconds is None:  # "forget that": the last turn and just before it
            last = [e for e in request.history if e.t_ns < request.t_ns]
            since = (last[-1].t_ns if last else request.t_ns) - int(FORGET_THAT_S * 1e9)
            if len(last) > 1:
                since = max(since, last[-2].t_ns + 1)
            n = memory.forget_since(since)
            self.env.forget_context(since)
            yield f"Done: forgotten ({n} moments)."
            return
        since = request.t_ns - int(seconds * 1e9)
        n = memory.forget_since(since)
        self.env.forget_context(since)
        yield f"Done: I forgot the last {_say_duration(seconds)} ({n} moments)."


def _content(question: str) -> set[str]:
    asks = {"did", "see", "seen", "saw", "remember", "notice", "noticed", "pass", "passed",
            "we", "today", "anything", "something", "any", "some", "last", "where", "leave",
            "left", "put", "earlier", "yesterday", "ago", "minutes", "hour"}
    return {t for t in words(question).split() if t not in STOP and t not in asks}


def _gist(m: Moment) -> str:
    if m.thing:
        return yours(m.thing)
    if m.what:
        return m.what
    if m.text:
        return f'a sign saying "{m.text}"'
    return m.answer or m.summary


def _article(thing: str) -> str:
    return thing if thing.split()[0] in ("a", "an", "the") else (
        f"an {thing}" if thing[:1] in "aeiou" else f"a {thing}")


def _duration(w: str) -> float | None:
    """ "forget the last 10 minutes" -> 600.0; "the last minute" -> 60.0; else None."""
    m = re.search(r"\b(?:last|past|previous)? ?(\d+|[a-z]+)? ?(seconds?|minutes?|hours?|days?)\b",
                  w)
    if not m:
        return None
    count = m.group(1)
    if count is None or count in ("last", "past", "previous", "the"):
        n = 1
    elif count.isdigit():
        n = int(count)
    else:
        n = NUMBERS.get(count, 1)
    return float(n * UNITS[m.group(2)])


def _say_duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return unit if n == 1 else f"{n} {unit}s"
    return f"{int(seconds)} seconds"


def memory_skills() -> list[Skill]:
    return [RememberSkill(), MineSkill(), RecallSkill(), ForgetSkill()]
