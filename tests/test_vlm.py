"""Look and tell on the real models: facts found, answers worded, bad input refused."""

import numpy as np
import pytest

from conftest import ESPRESSO
from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.evaluation.look import answer_turn
from glasses.export.look_set import colour_view, sign_view
from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo
from glasses.models import answers
from glasses.models.intent import Intent
from glasses.models.vlm import MAX_QUESTION_CHARS, Teacher


@pytest.fixture(scope="module")
def teacher(store) -> Teacher:
    vlm = Teacher(store, BoardProfile.laptop())
    vlm.warm_up()
    return vlm


@pytest.fixture(scope="module")
def coffee(store) -> np.ndarray:
    return read_photo(store.home / "downloads" / SKIMAGE_PHOTOS.wheel, "coffee.png")


LAST = {}  # the last answer's stream, for its intent, stages and facts


def ask(vlm: Teacher, image: np.ndarray, question: str) -> str:
    stream = LAST["stream"] = vlm.stream(image, question)
    pieces = list(stream)
    assert all(pieces), "no empty pieces"
    return "".join(pieces)


def test_identify_runs_only_the_people_detectors_and_the_classifier(teacher, coffee):
    assert ask(teacher, coffee, "What am I looking at?") == ESPRESSO
    assert LAST['stream'].intent is Intent.IDENTIFY
    assert set(LAST['stream'].stages_ms) == {"intent", "people", "vision"}
    assert LAST['stream'].facts.people == 0


def test_reads_a_sign_at_an_angle(teacher):
    image = sign_view("PLATFORM 4", np.random.default_rng(3))
    assert ask(teacher, image, "Read that sign for me.") == 'It says "PLATFORM 4".'
    assert set(LAST['stream'].stages_ms) == {"intent", "ocr"}


def test_names_the_colour_of_the_thing_in_the_middle(teacher):
    rng = np.random.default_rng(5)
    assert ask(teacher, colour_view((200, 90, 30), "mug", rng), "What colour is the mug?") == (
        "The mug is blue.")
    assert ask(teacher, colour_view((40, 30, 200), "ball", rng), "What color is it?") == (
        "It's red.")


def test_general_questions_go_to_the_language_model_with_the_facts(teacher, coffee):
    answer = ask(teacher, coffee, "Is this something I could drink?")
    assert LAST['stream'].intent is Intent.GENERAL and "lm" in LAST['stream'].stages_ms
    assert "espresso" in LAST['stream'].facts.for_lm()
    assert len(answer.split()) > 0
    assert LAST['stream'].facts.text == (), "no stray letters as facts"


def test_yes_no_questions_are_checked_against_the_facts(teacher, coffee):
    seen = ESPRESSO
    assert ask(teacher, coffee, "Is this an espresso?") == f"Yes. {seen}"
    assert ask(teacher, coffee, "Is there a cat here?") == f"I don't think so. {seen}"
    assert "lm" not in LAST['stream'].stages_ms


def test_honest_when_there_is_nothing_to_see(teacher):
    blank = np.full((480, 640, 3), 200, np.uint8)
    assert ask(teacher, blank, "What is this?") == answers.BLANK
    assert ask(teacher, blank, "What does it say?") == answers.NO_TEXT
    assert set(LAST['stream'].stages_ms) == {"intent"}, "no model runs on a blank view"


def test_a_grey_picture_has_no_colour_but_can_be_named(teacher, coffee):
    grey = np.repeat(coffee.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    assert ask(teacher, grey, "What colour is this?") == answers.NO_COLOUR
    assert ask(teacher, grey[:, :, 0], "What am I looking at?").startswith("It looks like")


def test_a_huge_picture_is_answered(teacher, coffee):
    huge = np.ascontiguousarray(np.tile(coffee, (15, 14, 1))[:6000, :8000])
    assert huge.shape == (6000, 8000, 3)
    turn = answer_turn(teacher, huge, "What does it say?")
    assert turn.intent == "read" and turn.answer


def test_bad_input_is_refused(teacher, coffee):
    with pytest.raises(BadInput, match="2000 characters"):
        ask(teacher, coffee, "What is " + "x" * 1992)
    with pytest.raises(BadInput, match="empty"):
        ask(teacher, coffee, "   ")
    with pytest.raises(BadInput, match="empty image"):
        ask(teacher, np.zeros((0, 0, 3), np.uint8), "What is this?")
    assert MAX_QUESTION_CHARS < 2000


def test_look_stage_answers_about_the_frame_chosen_when_speech_ended(store, coffee):
    from glasses.pipelines.frame_buffer import FrameBuffer
    from glasses.pipelines.frame_choice import FrameChoice
    from glasses.pipelines.frames import Transcript, Utterance, VideoFrame
    from glasses.pipelines.skill_stage import NO_VIEW, SkillStage

    ms = 1_000_000
    frames = FrameBuffer(capacity=4)
    choice = FrameChoice(frames)
    stage = SkillStage(store, BoardProfile.laptop())
    stage.open()
    for i in range(4):
        frames.process(VideoFrame(i * 100 * ms, coffee, i))
    question = Utterance(400 * ms, 100 * ms, 400 * ms, np.zeros(1, np.float32), 0, 1)
    (chosen,) = choice.process(question)
    assert chosen.frame.index == 3, "the utterance carries its frame down the stream"
    partial = Utterance(300 * ms, 100 * ms, 300 * ms, np.zeros(1, np.float32), 0, 1, final=False)
    assert choice.process(partial)[0].frame is None
    sign = sign_view("EXIT", np.random.default_rng(0))
    for i in range(4, 8):  # the camera runs on: the question's frames leave the buffer
        frames.process(VideoFrame(i * 100 * ms, sign, i))
    tokens = list(stage.process(Transcript(400 * ms, "What is this?", True, 100 * ms,
                                           frame=chosen.frame)))
    assert "".join(t.text for t in tokens) == ESPRESSO
    assert [t.last for t in tokens][-1] and not any(t.last for t in tokens[:-1])
    assert all(t.t_ns == 400 * ms for t in tokens), "answers keep the end of speech"
    later = list(stage.process(Transcript(750 * ms, "Read it.", True, 600 * ms,
                                          frame=frames.latest())))
    assert "".join(t.text for t in later) == 'It says "EXIT".'
    unseen = list(stage.process(Transcript(900 * ms, "What is this?", True, 800 * ms)))
    assert "".join(t.text for t in unseen) == NO_VIEW
    assert list(stage.process(Transcript(800 * ms, "What is", False))) == []


def test_the_look_stage_works_the_answer_out_ahead_and_gives_it_only_to_that_question(
        store, coffee):
    from glasses.pipelines.frames import Transcript, VideoFrame
    from glasses.pipelines.skill_stage import SkillStage
    from glasses.pipelines.skills import builtin_skills

    assert [s.name for s in builtin_skills() if s.ahead] == ["identify", "read", "colour"], (
        "the language model's answers take too long to work out ahead")
    ms = 1_000_000
    stage = SkillStage(store, BoardProfile.laptop())
    stage.open()
    view = VideoFrame(300 * ms, coffee, 3)
    ahead = Transcript(400 * ms, "What is this?", False, 100 * ms, frame=view, ending=True)
    assert list(stage.process(ahead)) == [], "nothing is shown before the turn has ended"
    tokens = list(stage.process(Transcript(400 * ms, "What is this?", True, 100 * ms,
                                           frame=view)))
    assert "".join(t.text for t in tokens) == ESPRESSO and tokens[-1].last
    assert all(t.t_ns == 400 * ms for t in tokens) and stage.answered_ahead == 1
    assert stage.history[-1].question == "What is this?", "the turn is kept as any other"

    # the wearer went on after that pause: the turn that ends later is answered afresh,
    # about its own frame, and what was worked out on the coffee is not given
    sign = VideoFrame(900 * ms, sign_view("EXIT", np.random.default_rng(0)), 9)
    list(stage.process(Transcript(1000 * ms, "Read it.", False, 600 * ms, frame=view,
                                  ending=True)))
    later = list(stage.process(Transcript(1500 * ms, "Read it.", True, 600 * ms, frame=sign)))
    assert "".join(t.text for t in later) == 'It says "EXIT".' and stage.answered_ahead == 1
