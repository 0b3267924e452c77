"""Intent from the question's words, and the answers worded from facts: pure logic."""

import pytest

from glasses.models import answers
from glasses.models.colour import ColourReading
from glasses.models.intent import Intent, asked_thing, intent_of, subject
from glasses.models.vision import Label


@pytest.mark.parametrize("question, intent", [
    ("What am I looking at?", Intent.IDENTIFY), ("What is this?", Intent.IDENTIFY),
    ("What's that?", Intent.IDENTIFY), ("Can you tell me what that is?", Intent.IDENTIFY),
    ("what kind of dog is this", Intent.IDENTIFY), ("Describe the scene.", Intent.IDENTIFY),
    ("Read that sign for me.", Intent.READ), ("What does it say?", Intent.READ),
    ("What is written here?", Intent.READ), ("Can you read this?", Intent.READ),
    ("What colour is this?", Intent.COLOUR), ("What color is the sign?", Intent.COLOUR),
    ("Which colour is it?", Intent.COLOUR),
    ("Is this safe to eat?", Intent.GENERAL), ("Where is the exit?", Intent.GENERAL),
    ("", Intent.GENERAL),
])
def test_intent(question, intent):
    assert intent_of(question) is intent


@pytest.mark.parametrize("question, thing", [
    ("What colour is the mug?", "mug"), ("what color are those shoes", "shoes"),
    ("Which colour is my car over there?", "car"), ("What colour is this?", None),
    ("What colour is it", None),
])
def test_subject_of_a_colour_question(question, thing):
    assert subject(question) == thing


def labels(*pairs: tuple[str, float, int]) -> list[Label]:
    return [Label(name, DESCRIPTIONS.get(name, ""), p, index) for name, p, index in pairs]


DESCRIPTIONS = {"espresso": "A small serving of concentrated coffee, usually very dark.",
                "Egyptian Mau": "A small domestic feline with a compact, flexible body."}


def test_identify_is_as_sure_as_the_classifier():
    kinds = {"cat": 0.99}
    assert answers.identify(labels(("espresso", 0.9, 967)), {}) == (
        "It looks like an espresso: a small serving of concentrated coffee.")
    assert answers.identify(labels(("Egyptian Mau", 0.71, 285)), kinds) == (
        "It looks like an Egyptian Mau, a cat: a small domestic feline.")
    assert answers.identify(labels(("moped", 0.8, 665)), {}) == "It looks like a moped."
    assert answers.identify(labels(("Great Dane", 0.3, 246), ("Saluki", 0.2, 176)),
                            {"dog": 0.8}) == "It looks like a dog, maybe a Great Dane."
    assert answers.identify(labels(("pole", 0.25, 733), ("obelisk", 0.2, 682)), {}) == (
        "Maybe a pole or an obelisk.")
    assert answers.identify(labels(("bobsleigh", 0.16, 450), ("T-shirt", 0.1, 610)), {}) == (
        answers.CANT_TELL)
    assert answers.identify([], {}) == answers.CANT_TELL


@pytest.mark.parametrize("description, said", [
    ("A mug is a sturdy drinking vessel with a wide body.", "a sturdy drinking vessel"),
    ("A posted sign used on or beside a street.", "a posted sign"),
    ("A small, lightweight two-wheeled motorized cycle with a step-through frame.",
     "a small, lightweight two-wheeled motorized cycle"),
    ("A large industrial structure standing in open water on tall legs, columns.",
     "a large industrial structure standing"),
    ("Also called slot, one-armed bandit.", ""), ("", ""),
])
def test_a_gloss_says_what_a_thing_is_in_a_few_words(description, said):
    assert answers.gloss(description) == said


def test_kinds_sum_their_classes():
    probs = [0.0] * 1000
    probs[281], probs[285], probs[246] = 0.4, 0.3, 0.2
    kinds = answers.kind_probabilities(probs)
    assert kinds["cat"] == pytest.approx(0.7) and kinds["dog"] == pytest.approx(0.2)
    assert answers.kind_of(246) == "dog" and answers.kind_of(967) is None


def test_read_and_colour_answers():
    assert answers.read(["PLATFORM", " 4 "]) == 'It says "PLATFORM 4".'
    assert answers.read(["", " "]) == answers.NO_TEXT
    long = answers.read(["word"] * 100)
    assert long.endswith('...".') and len(long.split()) == answers.READ_WORDS + 2
    red = ColourReading("red", (200, 30, 30), 0.6)
    assert answers.colour(red) == "It's red."
    assert answers.colour(red, "mug") == "The mug is red."
    assert answers.colour(red, "shoes") == "The shoes are red."
    assert answers.colour(None) == answers.NO_COLOUR


def test_cards_hold_at_most_twelve_words():
    text = " ".join(f"w{i}" for i in range(30))
    parts = answers.cards(text)
    assert [len(c.split()) for c in parts] == [12, 12, 6]
    assert " ".join(parts) == text
    assert answers.noun("Mexican hairless dog (xoloitzcuintli)") == "a Mexican hairless dog"


@pytest.mark.parametrize("question, thing", [
    ("Is there an animal here?", "animal"), ("Is this a dog?", "dog"),
    ("Can you see a cat?", "cat"), ("Is that the exit?", "exit"), ("Is it hot?", None),
    ("Where is the exit?", None),
])
def test_the_thing_a_yes_no_question_asks_about(question, thing):
    assert asked_thing(question) == thing


def test_verify_answers_only_from_the_facts():
    seen = "It looks like an Egyptian Mau, a cat."
    known = {"egyptian", "mau", "egyptian mau", "cat", "animal", "pet", "brown"}
    assert answers.verify("animal", known, seen, sure=True) == f"Yes. {seen}"
    assert answers.verify("cats", known, seen, sure=False) == f"Yes. {seen}"
    assert answers.verify("dog", known, seen, sure=True) == f"I don't think so. {seen}"
    assert answers.verify("dog", known, seen, sure=False) is None, "unsure: not a no"
