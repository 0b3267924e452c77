"""`glasses ask` and `glasses eval look` as a user meets them."""

import json

import cv2
import numpy as np
import pytest
from test_cli import ROOT, assert_one_line_error, glasses

from conftest import ESPRESSO
from glasses.device.audio import SAMPLE_RATE, write_wav
from glasses.export.look_set import make_set
from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo

DEMO = ROOT / "simulator" / "demo"  # questions at 1.0 s and 5.5 s


@pytest.fixture(scope="module")
def coffee_path(store, tmp_path_factory):
    path = tmp_path_factory.mktemp("look") / "coffee.jpg"
    cv2.imwrite(str(path), read_photo(store.home / "downloads" / SKIMAGE_PHOTOS.wheel,
                                      "coffee.png"))
    return path


def ask(store, *args: str):
    return glasses("ask", *args, home=store.home, timeout=120)


def test_ask_about_a_still_prints_the_answer_as_it_comes(store, coffee_path):
    out = ask(store, "--image", str(coffee_path), "--question", "What am I looking at?")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ESPRESSO + "\n"
    assert "identify; first words in" in out.stderr


def test_ask_json(store, coffee_path):
    out = ask(store, "--image", str(coffee_path), "--question", "What is this?", "--json")
    data = json.loads(out.stdout)
    assert data["intent"] == "identify" and "espresso" in data["answer"]
    assert data["cards"] == [data["answer"]]
    assert 0 < data["first_token_ms"] <= data["ms"] and "vision" in data["stages"]


def test_ask_with_speech_takes_the_frame_from_while_it_was_asked(store):
    out = ask(store, "--video", str(DEMO / "demo.mp4"), "--audio", str(DEMO / "demo.wav"),
              "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["heard"] == "What am I looking at?"  # the first question of the two
    assert 1.0 <= data["frame"]["t_s"] <= 3.5, "a frame from inside the first question"
    assert data["stages"]["asr"] > 0 and data["first_token_ms"] >= data["stages"]["asr"]


def test_ask_about_the_end_of_a_video(store):
    out = ask(store, "--video", str(DEMO / "demo.mp4"), "--question", "Read that sign.",
              "--json")
    data = json.loads(out.stdout)
    assert data["answer"] == 'It says "EXIT".' and data["frame"]["t_s"] >= 7.9


def test_grey_and_huge_pictures_are_answered(store, coffee_path, tmp_path):
    photo = cv2.imread(str(coffee_path))
    cv2.imwrite(str(tmp_path / "grey.png"), cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    out = ask(store, "--image", str(tmp_path / "grey.png"), "--question", "What colour is it?")
    assert out.returncode == 0 and "black and white" in out.stdout
    cv2.imwrite(str(tmp_path / "huge.jpg"), np.tile(photo, (15, 14, 1))[:6000, :8000])
    out = ask(store, "--image", str(tmp_path / "huge.jpg"), "--question", "What is this?",
              "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["answer"]


def test_bad_input_is_one_clear_line(store, coffee_path, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    cases = [
        (["--image", str(tmp_path / "notes.png")], ["notes.png", "not a readable image"]),
        (["--image", str(tmp_path / "empty.jpg")], ["empty.jpg", "empty file"]),
        (["--image", str(tmp_path / "missing.jpg")], ["missing.jpg"]),
    ]
    for view, words in cases:
        assert_one_line_error(ask(store, *view, "--question", "What is this?"), 3, *words)
    long = ask(store, "--image", str(coffee_path), "--question", "Why " + "x" * 1996)
    assert_one_line_error(long, 3, "2000 characters")
    write_wav(tmp_path / "quiet.wav", np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    quiet = ask(store, "--image", str(coffee_path), "--audio", str(tmp_path / "quiet.wav"))
    assert_one_line_error(quiet, 3, "quiet.wav", "no speech")


def test_eval_look_reports_quality_and_latency(store, tmp_path):
    rows = make_set(tmp_path, store.home / "downloads" / SKIMAGE_PHOTOS.wheel)
    kept = rows[::6]  # one of each kind, about
    (tmp_path / "cases.tsv").write_text("".join(f"{f}\t{q}\t{a}\n" for f, q, a in kept))
    out = glasses("eval", "look", str(tmp_path), "--json", home=store.home, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["cases"] == len(kept) == len(data["results"])
    assert data["passed"] == sum(r["passed"] for r in data["results"])
    assert data["pass_rate"] >= 0.5, data["results"]
    first = data["results"][0]
    assert {"file", "question", "answer", "passed", "ms", "first_token_ms", "stages"} <= set(first)
    assert first["file"] == kept[0][0]


def test_eval_look_names_a_broken_case_list(store, tmp_path):
    assert_one_line_error(glasses("eval", "look", str(tmp_path), home=store.home), 3,
                          "cases.tsv", "no such file")
    (tmp_path / "cases.tsv").write_text("gone.jpg\tWhat is this?\tcat\n")
    assert_one_line_error(glasses("eval", "look", str(tmp_path), home=store.home), 3,
                          "cases.tsv:1", "gone.jpg")
