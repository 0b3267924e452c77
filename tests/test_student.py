"""The committed student (`look-student`, assembled by `models prepare` from its delta) on
cases no training example showed."""

import numpy as np
import pytest

from glasses.device.boards import BoardProfile
from glasses.export.look_set import sign_view
from glasses.models.student import Student
from glasses.models.vlm import VlmOptions


@pytest.fixture(scope="module")
def look_student(store) -> Student:
    return Student(store, BoardProfile.laptop(), VlmOptions(model="student"))


@pytest.mark.parametrize("text", ["ZEBRA LANE 42", "QUAY 9"])
def test_a_general_question_about_a_sign_says_what_it_reads_word_for_word(look_student,
                                                                         text):
    image = sign_view(text, np.random.default_rng(3))
    stream = look_student.stream(image, "Can I go in?")
    said = "".join(stream)
    assert stream.intent.value == "general" and "ocr" in stream.stages_ms
    assert text in said and said.count(text) == 1, said  # copied once, whole


def test_a_sign_asked_to_identify_is_not_read_into_the_answer(look_student):
    said = "".join(look_student.stream(sign_view("ZEBRA LANE 42", np.random.default_rng(3)),
                                       "What is this?"))
    assert "ZEBRA" not in said  # the teacher reads no text to identify
