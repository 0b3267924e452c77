"""What the wearer wants, decided cheaply from the question's words: no model.

identify ("what am I looking at?"), read ("read that sign"), colour ("what colour is
this?"); anything else is general and goes to the language model with every fact.
Colour wins over read ("what colour is the sign?"), read over identify ("what is written
here?").
"""

import re
from enum import StrEnum


class Intent(StrEnum):
    IDENTIFY = "identify"
    READ = "read"
    COLOUR = "colour"
    GENERAL = "general"


# word patterns over the lowercased question with punctuation turned into spaces
COLOUR_WORDS = r"colou?rs?|colou?red|shade|hue|tint"
READ_WORDS = (r"read|reads|reading|say|says|said|saying|written|writing|write|text|spell|spelled"
              r"|spelt|words?|letters?|label says|sign say")
IDENTIFY_PHRASES = (
    r"what (am i|are we|is he|is she|im|i am) (looking at|seeing|watching|holding)",
    r"what (is|s) (this|that|it|there|here|in front of me|ahead|on the table)",
    r"what (do|can) (you|i) see",
    r"what (kind|sort|type) of",
    r"what (thing|object|animal|bird|dog|cat|plant|food|vehicle)",
    r"what are (these|those|they)",
    r"whats (this|that|it|there|here|in front)",
    r"\b(identify|describe|recogni[sz]e|name)\b",
    r"\bwhat is (the|this|that) (thing|object)",
    r"\bwho is (this|that)",
    r"\bwhat (this|that|it) (is|are)\b",
)


def words(question: str) -> str:
    """Lowercase, apostrophes dropped ("what's" -> "whats"), other punctuation to spaces."""
    text = question.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def intent_of(question: str) -> Intent:
    text = words(question)
    if re.search(rf"\b({COLOUR_WORDS})\b", text):
        return Intent.COLOUR
    if re.search(rf"\b({READ_WORDS})\b", text):
        return Intent.READ
    if any(re.search(p, text) for p in IDENTIFY_PHRASES):
        return Intent.IDENTIFY
    return Intent.GENERAL


def subject(question: str) -> str | None:
    """The thing a colour question names: "What colour is the mug?" -> "mug", else None."""
    m = re.search(rf"\b(?:{COLOUR_WORDS}) (?:is|are) (?:the|that|this|my|those|these) "
                  r"([a-z][a-z ]{0,30}?)(?: (?:in front|over there|here|there|right))?$",
                  words(question))
    return m.group(1) if m and m.group(1) not in ("one", "thing", "object") else None


def asked_thing(question: str) -> str | None:
    """The thing a yes/no question asks about: "Is there an animal here?" -> "animal",
    "Is this a dog?" -> "dog", "Can you see a cat?" -> "cat"; else None."""
    m = re.match(r"(?:is|are) (?:this|that|it|there|these|those|they) (?:a|an|the|some|any) "
                 r"([a-z][a-z ]{0,30}?)(?: (?:here|there|in front of me|in view))?$",
                 words(question))
    m = m or re.match(r"(?:do|can) (?:you|i) see (?:a|an|the|some|any) ([a-z][a-z ]{0,30}?)"
                      r"(?: (?:here|there|in front of me))?$", words(question))
    return m.group(1) if m else None
