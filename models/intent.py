"""What the wearer wants, decided cheaply from the question's words: no model.

identify ("what am I looking at?"), read ("read that sign"), colour ("what colour is
this?"); anything else is general and goes to the language model with every fact. The
router (`models/router.py`) matches the question against example phrasings of each; colour
and read words decide among themselves by the same scores ("what colour is the sign?" is
colour, "read the colour label" is read).
"""

import re
from enum import StrEnum
from functools import cache

from glasses.models.router import Router, normalise


class Intent(StrEnum):
    IDENTIFY = "identify"
    READ = "read"
    COLOUR = "colour"
    GENERAL = "general"


# decisive words, over the lowercased question with punctuation turned into spaces
COLOUR_WORDS = r"colou?rs?|colou?red|shade|hue|tint"
READ_WORDS = (r"read|reads|reading|say|says|said|saying|written|writing|write|text|spell|spelled"
              r"|spelt|words?|letters?|label says|sign say")
KEYWORDS = {Intent.COLOUR: COLOUR_WORDS, Intent.READ: READ_WORDS}

# example phrasings the router matches requests against (`models/router.py`); measured on
# the routing sets in `evaluation/` (the holdout set was not looked at while these were
# written)
EXAMPLES: dict[Intent, tuple[str, ...]] = {
    Intent.IDENTIFY: (
        "what is this", "what's that", "what am I looking at", "what is in front of me",
        "what do you see", "what can you see", "what kind of thing is this",
        "what type of bird is that", "what animal is this", "tell me what this is",
        "name this object", "identify this", "describe this", "describe the view",
        "what are these",
        "do you know what that is", "what have I got here", "what's this object",
        "what am I holding", "what is it", "what plant is that", "what breed is this",
        "any idea what that is", "recognise this", "what's over there",
        "so what's this then", "what thing is this",
    ),
    Intent.READ: (
        "read this", "read it", "read the sign", "what does this say", "what does the sign say",
        "what is written on it", "what's written there", "read the label",
        "what does the text say", "read the words", "read that out", "what does the board say",
        "read the screen", "what's on the label", "what do the letters say", "read me the note",
        "what does the poster say", "spell what it says", "what's the text",
        "which gate does the sign show", "what number is on the sign",
        "what's the name on the sign", "read the writing", "what does the menu say",
    ),
    Intent.COLOUR: (
        "what colour is this", "what color is it", "what colour is the car",
        "what's the colour", "which colour is that", "what colour are these",
        "tell me the colour", "what shade is it", "is it red", "is this blue or black",
        "what color is the wall", "what hue is this", "is it green or yellow",
        "what colours does it have", "what colour is my shirt",
        "is this dark or light coloured",
    ),
    Intent.GENERAL: (
        "can I eat this", "is it safe", "how much is it", "where can I get one",
        "is this a cat", "is there a dog", "where is the exit", "is it cold", "is this mine",
        "how far away is that", "can I enter", "will it rain", "is the shop open",
        "how old is it", "do you see anyone", "is anybody there", "is it fresh",
        "is it broken", "what should I do", "is it expensive", "can I sit here",
        "which way should I go", "is this the right bus", "is it clean",
    ),
}


def words(question: str) -> str:
    """Lowercase, apostrophes dropped ("what's" -> "whats"), other punctuation to spaces."""
    return normalise(question)


@cache
def _router() -> Router:
    return Router({i.value: e for i, e in EXAMPLES.items()}, Intent.GENERAL.value,
                  {i.value: k for i, k in KEYWORDS.items()})


def intent_of(question: str) -> Intent:
    """The built-in skill a question is for, by the router over the examples above."""
    return Intent(_router().route(question))


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
