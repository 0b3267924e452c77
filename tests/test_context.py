"""Follow-ups resolved against the conversation: pure logic on words."""

import numpy as np
import pytest

from glasses.device.clock import NS_PER_S
from glasses.models.vlm import Facts
from glasses.pipelines.context import CONTEXT_S, Follow, resolve
from glasses.pipelines.skills import Exchange

IMAGE = np.zeros((4, 4, 3), np.uint8)
SIGN = Exchange("Read that sign.", 'It says "GATE C7".', "read", 10 * NS_PER_S, IMAGE,
                Facts(text=("GATE C7",)))
CAT = Exchange("What am I looking at?", "It looks like a tabby cat.", "identify",
               20 * NS_PER_S, IMAGE, Facts())
NOW = 30 * NS_PER_S


@pytest.mark.parametrize("question", ["Say that again.", "What did you say?", "Repeat that",
                                      "Sorry, say that again please", "Come again?",
                                      "See that again."])
def test_repeat(question):
    r = resolve(question, [SIGN, CAT], NOW)
    assert r.follow is Follow.REPEAT and r.turn is CAT


@pytest.mark.parametrize("question", ["And that one?", "What about this?", "and these",
                                      "How about that one?"])
def test_same_skill_about_the_view_now(question):
    r = resolve(question, [SIGN, CAT], NOW)
    assert r.follow is Follow.SAME_SKILL and r.turn is CAT


@pytest.mark.parametrize("question, turn", [
    ("What did that sign say?", SIGN),  # the last turn with text, not the last turn
    ("What was written on it?", SIGN),
    ("Read it again.", SIGN),
    ("What colour was it?", CAT),
    ("What was that?", CAT),
    ("What did the gate sign say?", SIGN),  # "gate" is in what was read
])
def test_earlier_turns_frame(question, turn):
    r = resolve(question, [SIGN, CAT], NOW)
    assert r.follow is Follow.EARLIER and r.turn is turn


@pytest.mark.parametrize("question", ["What is this?", "What colour is it?", "Read that sign.",
                                      "Is this my cup?", "Did I see a coffee cup?",
                                      "When did I last see my cup?", "Forget that."])
def test_present_or_routed_questions_look_now(question):
    assert resolve(question, [SIGN, CAT], NOW).follow is Follow.NOW


def test_past_with_nothing_recent_goes_to_memory():
    late = NOW + (CONTEXT_S + 1) * NS_PER_S
    assert resolve("What did that sign say?", [SIGN, CAT], late).follow is Follow.PAST
    assert resolve("What did the platform sign say?", [SIGN, CAT], NOW).follow is Follow.PAST
    assert resolve("Say that again", [], NOW).follow is Follow.NOW
