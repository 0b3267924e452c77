"""Signs read word for word: the sign set generator, the exact scorer, the letter/digit
fixer, and the real PP-OCRv4 reader on generated signs (spaces, inverted boards)."""

import cv2
import numpy as np
import pytest

from glasses.device.boards import BoardProfile
from glasses.evaluation.signs import (
    char_errors,
    evaluate_signs,
    normalise,
    score,
    table,
    word_for_word,
    word_hits,
)
from glasses.export.sign_set import COLOURS, SIZE, TABLE, TEXTS, make_set, sign_image
from glasses.models.ocr import OcrOptions, TextReader, lookalikes

RED, WHITE = (40, 30, 200), (255, 255, 255)


@pytest.fixture(scope="module")
def reader(store) -> TextReader:
    return TextReader(store, BoardProfile.laptop())


def render(lines, board=(245, 245, 245), ink=(20, 20, 20), font=cv2.FONT_HERSHEY_DUPLEX,
           height=30.0, yaw=0.1, roll=6.0, blur=0.6, noise=4.0, seed=0, tracking=0.0):
    img, _ = sign_image(tuple(lines), board, ink, font, 3, height, yaw, roll, blur, noise,
                        np.random.default_rng(seed), tracking)
    return img


def read(reader: TextReader, img: np.ndarray) -> str:
    return normalise(" ".join(line.text for line in reader.read(img).lines))


# -- scoring ---------------------------------------------------------------------


@pytest.mark.parametrize("got, expected, ok", [
    ("LIFT OUT OF ORDER", "LIFT OUT OF ORDER", True),
    ("lift  out of\torder ", "LIFT OUT OF ORDER", True),  # case and runs of whitespace
    ("LIFTOUTOFORDER", "LIFT OUT OF ORDER", False),  # a missing space fails
    ("LIFT OUT OFORDER", "LIFT OUT OF ORDER", False),
    ("R00M101", "ROOM 101", False),
    ("SALE 50 OFF", "SALE 50% OFF", False),  # punctuation must match
    ("LEVEL 1", "LEVEL -1", False),
    ("LEVEL - 1", "LEVEL -1", False),
    ("", "EXIT", False),
])
def test_word_for_word(got, expected, ok):
    assert word_for_word(got, expected) is ok


def test_word_accuracy_and_character_errors():
    assert word_hits("LIFT OUT OF ORDER", "LIFT OUT OF ORDER") == 4
    assert word_hits("LIFT OUT OFORDER", "LIFT OUT OF ORDER") == 2
    assert word_hits("", "GATE C7") == 0
    assert char_errors("LIFTOUTOFORDER", "LIFT OUT OF ORDER") == 3  # three spaces
    assert char_errors("R00M 101", "ROOM 101") == 2
    s = score([{"read": "ROOM 101", "expected": "ROOM 101", "ms": 100.0},
               {"read": "ROOM101", "expected": "ROOM 101", "ms": 300.0}])
    assert (s["signs"], s["passed"], s["pass_rate"]) == (2, 1, 0.5)
    assert s["word_accuracy"] == 0.5  # "ROOM101" matches neither word
    assert s["cer"] == round(1 / 16, 3)
    assert s["median_ms"] == 200.0


# -- letters and digits ----------------------------------------------------------


@pytest.mark.parametrize("got, meant", [
    ("R00M 101", "ROOM 101"), ("PLATF0RM 10", "PLATFORM 10"), ("GATE C7", "GATE C7"),
    ("B8", "B8"), ("B8 EXIT", "B8 EXIT"), ("5ALE", "SALE"), ("SALE 50% 0FF", "SALE 50% OFF"),
    ("0PEN 9-5", "OPEN 9-5"), ("ROOM 1O1", "ROOM 101"), ("5O% OFF", "50% OFF"),
    ("SEAT 14A", "SEAT 14A"), ("UNIT 7B", "UNIT 7B"), ("A1", "A1"), ("LEVEL -1", "LEVEL -1"),
    ("2ONE 3", "ZONE 3"), ("BUS 1S", "BUS 1S"),  # "1S": too little to go by
])
def test_letters_and_digits_from_their_word(got, meant):
    assert lookalikes(got) == meant


# -- the generator -----------------------------------------------------------------


def test_the_sign_set_is_deterministic_and_holds_out(tmp_path):
    rows = make_set(tmp_path / "a", "dev", seed=3, count=4)
    again = make_set(tmp_path / "b", "dev", seed=3, count=4)
    assert rows == again
    for r in rows:
        assert (tmp_path / "a" / r.file).read_bytes() == (tmp_path / "b" / r.file).read_bytes()
        img = cv2.imread(str(tmp_path / "a" / r.file))
        assert img.shape == (SIZE[1], SIZE[0], 3)
    lines = (tmp_path / "a" / TABLE).read_text().splitlines()
    assert [line.split("\t")[:2] for line in lines] == [[r.file, r.text] for r in rows]
    assert all(len(line.split("\t")) == 3 for line in lines)
    dev = {" ".join(t) for t in TEXTS["dev"]}
    assert not dev & {" ".join(t) for t in TEXTS["holdout"]}
    pairs = lambda split: {(b, i) for _, b, i in COLOURS[split]}  # noqa: E731
    assert not pairs("dev") & pairs("holdout")
    assert len(TEXTS["dev"]) >= 24 and any(len(t) == 2 for t in TEXTS["dev"])


# -- the real reader ---------------------------------------------------------------


@pytest.mark.parametrize("lines, tracking", [
    (("ROOM 101",), 0.0), (("PLATFORM 10",), 0.15), (("LIFT", "OUT OF ORDER"), 0.0),
    (("SALE 50% OFF",), 0.35), (("LEVEL -1",), 0.0),
], ids=["room", "platform", "lift-two-lines", "sale-spaced", "level"])
def test_signs_are_read_word_for_word(reader, lines, tracking):
    assert read(reader, render(lines, tracking=tracking)) == " ".join(lines)


def test_white_on_red_is_read_exactly(reader):
    img = render(["GATE C7"], RED, WHITE, cv2.FONT_HERSHEY_SIMPLEX, height=26, roll=-9,
                 blur=1.0, noise=8)
    assert read(reader, img) == "GATE C7"


def test_a_poor_read_of_a_dark_board_is_tried_again(store, reader, tmp_path):
    """Holdout sign 15, white on maroon, far: the first read is poor ("ix t"); the retry
    on the stretched grey or inverted image reads it."""
    rows = make_set(tmp_path, "holdout", seed=0, count=16)
    assert rows[15].text == "D4 EXIT"
    img = cv2.imread(str(tmp_path / rows[15].file))
    once = TextReader(store, BoardProfile.laptop(),
                      OcrOptions(retry_below=0.0, retry_char_below=0.0))
    assert read(once, img) != "D4 EXIT"
    assert read(reader, img) == "D4 EXIT"


def test_evaluate_signs_on_a_small_set(reader, tmp_path):
    make_set(tmp_path, "dev", seed=0, count=6)
    summary = evaluate_signs(tmp_path, reader)
    assert summary["signs"] == 6 and len(summary["results"]) == 6
    assert summary["passed"] >= 5, table(summary)
    assert 0 < summary["median_ms"] <= summary["p90_ms"]
    assert {"expected", "read", "passed", "ms", "description"} <= set(summary["results"][0])
    assert "word for word" in table(summary)


def test_a_digit_after_a_wide_gap_is_found_by_the_second_detection(store, reader, tmp_path):
    """Holdout sign 35 of seed 1, near, letters spaced out: at the frame's size the detector
    stops at "PLATFORM" (its map barely fires on the 7); at half the size it finds the line
    whole, and that longer box is read."""
    rows = make_set(tmp_path, "holdout", seed=1, count=36)
    assert rows[35].text == "PLATFORM 7"
    img = cv2.imread(str(tmp_path / rows[35].file))
    once = TextReader(store, BoardProfile.laptop(), OcrOptions(det_wider=1.0))
    assert read(once, img) == "PLATFORM"
    assert read(reader, img) == "PLATFORM 7"


def test_full_width_letters_are_read_as_ascii(store, reader, tmp_path):
    """The recogniser's dictionary holds full-width Latin forms too ("Ｐ"). With the detector
    at 560 pixels, dev sign 0 of seed 0 had its P read as one: 'DEＰARTURES'."""
    assert reader.characters[reader._ascii[reader.characters.index("Ｐ")]] == "P"
    rows = make_set(tmp_path, "dev", seed=0, count=1)
    img = cv2.imread(str(tmp_path / rows[0].file))
    at_560 = TextReader(store, BoardProfile.laptop(), OcrOptions(det_max_side=560))
    assert read(at_560, img) == rows[0].text == "TERMINAL 2 DEPARTURES"
