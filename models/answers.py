"""Answers composed from grounded facts: what the classifier saw, the text read, the colour.

Pure logic, no model. Identify, read and colour answers are worded here, so they carry
exactly what the models found and nothing else; general questions go to the language
model (see `models/vlm.py`). The display shows an answer as cards of `CARD_WORDS` words.
"""

import re
from collections.abc import Sequence

from glasses.models.colour import ColourReading
from glasses.models.vision import Label

CARD_WORDS = 12  # a card on the display holds at most this many words
READ_WORDS = 48  # text read aloud is cut here: four cards

SURE = 0.5  # a label (or a kind) at least this likely is named plainly, with a gloss
GLOSS_WORDS = 7  # a gloss (what the thing is, from its description) is cut to this
PREPOSITIONS = {"in", "into", "on", "of", "at", "to", "for", "from", "by", "over", "under"}
MAYBE = 0.2  # below this the top label is not worth saying: "I can't tell"

# ImageNet-1k class index ranges [start, end) that share a plain word. A kind is named when
# its summed probability is high, though no single breed is ("a dog, maybe a Great Dane").
KINDS = (
    ("fish", ((0, 7), (389, 398))),
    ("bird", ((7, 25), (80, 101), (127, 147))),
    ("snake", ((52, 69),)),
    ("dog", ((151, 269),)),
    ("cat", ((281, 286),)),
    ("big cat", ((286, 294),)),
    ("bear", ((294, 298),)),
    ("insect", ((300, 327),)),
    ("rabbit", ((330, 333),)),
)

ANIMALS = (0, 398)  # ImageNet-1k classes [start, end) that are animals
COUNTS = {2: "two", 3: "three", 4: "four", 5: "five"}  # more people than these: "several"
# ImageNet-1k classes a person wears: clothes, hats, shoes, ties, glasses, masks
WORN = frozenset((399, 400, 411, 433, 445, 451, 452, 457, 459, 465, 474, 501, 514, 515, 518,
                  552, 560, 568, 601, 608, 610, 614, 617, 630, 638, 639, 643, 652, 655, 658,
                  667, 678, 689, 697, 735, 770, 774, 775, 793, 796, 808, 834, 836, 837, 841,
                  842, 869, 903, 906))

CANT_TELL = "I can't tell what this is."
NO_TEXT = "I can't tell: there is no text in view."
BLANK = "I can't tell: the view is blank."
NO_COLOUR = "I can't tell the colour: the picture is black and white."


def kind_of(index: int) -> str | None:
    """The plain word for an ImageNet class index, e.g. 263 -> "dog", or None."""
    for word, ranges in KINDS:
        if any(a <= index < b for a, b in ranges):
            return word
    return None


def is_animal(index: int) -> bool:
    return ANIMALS[0] <= index < ANIMALS[1]


def gloss(description: str, limit: int = GLOSS_WORDS) -> str:
    """What a label is, in a few plain words, from its description: "A small serving of
    concentrated coffee, usually very dark..." -> "a small serving of concentrated coffee"."""
    text = re.sub(r"^(a|an|the) [^,]{1,40}? (is|are) ", "", description.strip(),
                  flags=re.IGNORECASE)
    text = re.split(r" with | that | which | used | typically |[:;.(]", text, maxsplit=1)[0]
    words = text.split()
    comma = next((i for i, w in enumerate(words) if w.endswith(",") and i >= 3), None)
    words = words[: comma + 1 if comma is not None else len(words)]
    if len(words) > limit:  # cut before the last preposition that fits
        words = words[:limit]
        cut = max((i for i, w in enumerate(words) if w in PREPOSITIONS and i >= 3), default=0)
        words = words[:cut] if cut else words
    phrase = " ".join(words).rstrip(",")
    phrase = phrase[:1].lower() + phrase[1:]
    return phrase if re.match(r"(a|an) \S", phrase) else ""


def noun(name: str) -> str:
    """A label as a noun phrase: "a moped", "an espresso"; parentheses dropped."""
    name = re.sub(r"\s*\(.*?\)", "", name).strip()
    if re.match(r"(a|an|the) ", name, re.IGNORECASE):
        return name
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def kind_probabilities(probs: Sequence[float]) -> dict[str, float]:
    """The summed probability of each kind, from all 1000 class probabilities."""
    return {word: float(sum(sum(probs[a:b]) for a, b in ranges)) for word, ranges in KINDS}


def identify(labels: Sequence[Label], probs_by_kind: dict[str, float]) -> str:
    """What it is, as sure as the classifier is and no surer.

    `labels` most likely first; `probs_by_kind` from `kind_probabilities`."""
    if not labels:
        return CANT_TELL
    top = labels[0]
    kind = kind_of(top.index)
    kind_p = probs_by_kind.get(kind, 0.0) if kind else 0.0
    name = noun(top.name)
    if kind and kind_p >= SURE and top.confidence < SURE:
        return f"It looks like a {kind}, maybe {name}."
    if top.confidence >= SURE:
        tail = f", a {kind}" if kind and kind not in top.name.lower() else ""
        what = gloss(top.description)
        return f"It looks like {name}{tail}" + (f": {what}." if what else ".")
    if top.confidence >= MAYBE and len(labels) > 1:
        return f"Maybe {name} or {noun(labels[1].name)}."
    if top.confidence >= MAYBE:
        return f"Maybe {name}."
    return CANT_TELL


def person(count: int, labels: Sequence[Label]) -> str:
    """What a view with `count` people near enough in it shows: "It looks like a person
    wearing a suit." The classifier's top label is added only when it is sure of it and it
    is no animal; who anyone is, is never said."""
    who = "a person" if count == 1 else f"{COUNTS.get(count, 'several')} people"
    top = labels[0] if labels else None
    if top is None or top.confidence < SURE or is_animal(top.index):
        return f"It looks like {who}."
    verb = "wearing" if top.index in WORN else "with"
    thing = noun(top.name)
    if thing.endswith("s") and not thing.endswith("ss"):  # jeans, sunglasses: no article
        thing = thing.split(" ", 1)[1]
    return f"It looks like {who} {verb} {thing}."


def verify(thing: str, known: set[str], seen: str, sure: bool) -> str | None:
    """A yes/no answer to "is this a `thing`?" from the words the facts hold (`known`:
    label words, kind, "animal", colour, text), or None when the facts are too weak."""
    wanted = {thing, thing.removesuffix("s")}
    if wanted & known or thing in " ".join(sorted(known)):
        return f"Yes. {seen}"
    return f"I don't think so. {seen}" if sure else None


def read_text(lines: Sequence[str]) -> str:
    """The text read, in reading order, on one line: at most `READ_WORDS` words, "..."
    after them; "" for none."""
    words = " ".join(line.strip() for line in lines if line.strip()).split()
    return " ".join(words[:READ_WORDS]) + ("..." if len(words) > READ_WORDS else "")


def read(lines: Sequence[str]) -> str:
    """The text read, quoted (`read_text`)."""
    text = read_text(lines)
    return f'It says "{text}".' if text else NO_TEXT



def colour(reading: ColourReading | None, thing: str | None = None) -> str:
    """ "It's dark blue.", or "The mug is red." when the question named the mug."""
    if reading is None:
        return NO_COLOUR
    if not thing:
        return f"It's {reading.name}."
    verb = "are" if thing.endswith("s") and not thing.endswith("ss") else "is"
    return f"The {thing} {verb} {reading.name}."


def cards(text: str, limit: int = CARD_WORDS) -> list[str]:
    """The answer as the display shows it: cards of at most `limit` words, in order."""
    parts = text.split()
    return [" ".join(parts[i : i + limit]) for i in range(0, len(parts), limit)]
