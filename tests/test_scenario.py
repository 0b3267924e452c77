"""Scenario files: checked with clear errors, turned into media, answers graded."""

import cv2
import numpy as np
import pytest

from conftest import write_video
from glasses.device.audio import SAMPLE_RATE, load_audio
from glasses.device.errors import BadInput
from glasses.simulator.scenario import FPS, check, load_scenario, prepare
from glasses.simulator.session import DEMO_SCENARIO


def write(folder, text: str):
    path = folder / "s.toml"
    path.write_text(text)
    return path


@pytest.fixture()
def media(tmp_path):
    cv2.imwrite(str(tmp_path / "red.png"), np.full((120, 160, 3), (30, 30, 200), np.uint8))
    cv2.imwrite(str(tmp_path / "blue.png"), np.full((120, 160, 3), (200, 60, 30), np.uint8))
    return tmp_path


@pytest.mark.parametrize("text, words", [
    ("name = ", ["not valid TOML"]),
    ('[[view]]\nat = 0\nimage = "red.png"\ncolour = 3', ["view 1", "unknown key", "colour"]),
    ('[[view]]\nat = 0\nimage = "gone.png"', ["view 1", "gone.png", "no such file"]),
    ('[[view]]\nat = -1\nimage = "red.png"', ["view 1", "`at`"]),
    ('[[view]]\nat = 0\nimage = "red.png"\nvideo = "red.png"', ["exactly one"]),
    ('[[say]]\nat = 1\ntext = "hi"', ["no [[view]]"]),
    ('[[view]]\nat = 0\nimage = "red.png"\n[[say]]\nat = 1', ["say 1", "`text`"]),
    ('duration_s = 0\n[[view]]\nat = 0\nimage = "red.png"', ["duration_s"]),
])
def test_a_bad_scenario_is_named_with_what_is_wrong(media, text, words):
    with pytest.raises(BadInput) as e:
        load_scenario(write(media, text))
    assert str(media / "s.toml") in str(e.value)
    for word in words:
        assert word in str(e.value)


def test_views_and_spoken_questions_become_media(media):
    scenario = load_scenario(write(media, """
name = "colours"
[[view]]
at = 0.0
image = "red.png"
[[view]]
at = 2.0
image = "blue.png"
[[say]]
at = 0.5
text = "What colour is this?"
expect = ["red"]
[[say]]
at = 2.5
text = "What colour is it now?"
expect = "blue"
"""))
    assert scenario.duration_s is None and scenario.length_s == 2.5 + 4.0
    spoken = []

    def speak(text: str) -> np.ndarray:
        spoken.append(text)
        return np.full(SAMPLE_RATE // 2, 0.1, np.float32)

    out = media / "out"
    out.mkdir()
    view, audio = prepare(scenario, out, (160, 120), speak)
    assert spoken == ["What colour is this?", "What colour is it now?"]
    track = load_audio(audio)
    assert len(track) == int(6.5 * SAMPLE_RATE)
    loud = np.flatnonzero(np.abs(track) > 0.05)
    assert loud[0] == int(0.5 * SAMPLE_RATE) and abs(loud[-1] - 3.0 * SAMPLE_RATE) < 2
    cap = cv2.VideoCapture(view)
    frames = [cap.read()[1] for _ in range(int(6.5 * FPS))]
    assert frames[int(1.9 * FPS)][60, 80, 2] > 150 and frames[int(2.1 * FPS)][60, 80, 0] > 150

    turns = [{"start": 0.6, "text": "What colour is this?", "answer": "It's red."},
             {"start": 2.7, "text": "What colour is it now?", "answer": "It's red."}]
    graded = check(scenario, turns)
    assert [g["passed"] for g in graded] == [True, False]


def test_the_demo_scenario_uses_its_media_as_they_are(tmp_path):
    scenario = load_scenario(DEMO_SCENARIO)
    view, audio = prepare(scenario, tmp_path, (640, 480))
    assert view.endswith("demo.mp4") and audio.endswith("demo.wav")
    assert [s.expect for s in scenario.says] == [("espresso", "coffee", "cup"), ("exit",)]
    assert list(tmp_path.iterdir()) == [], "nothing rendered"


def test_text_without_a_voice_is_a_clear_error(media):
    scenario = load_scenario(write(media, '[[view]]\nat = 0\nimage = "red.png"\n'
                                          '[[say]]\nat = 1\ntext = "Hello"'))
    with pytest.raises(BadInput, match="no `wav` and no voice"):
        prepare(scenario, media, (160, 120))


def test_a_video_view_plays_at_its_own_pace(media):
    write_video(media / "clip.mp4", seconds=3.0, fps=30.0, size=(160, 120))  # frame i: blue 7i
    scenario = load_scenario(write(media, 'duration_s = 5\n[[view]]\nat = 0\nimage = "red.png"\n'
                                          '[[view]]\nat = 1.0\nvideo = "clip.mp4"'))
    out = media / "out"
    out.mkdir()
    view, _ = prepare(scenario, out, (160, 120), lambda text: np.zeros(0, np.float32))
    cap = cv2.VideoCapture(view)
    frames = [cap.read()[1] for _ in range(int(5 * FPS))]
    blue = lambda t: int(frames[int(t * FPS)][100, 150, 0])  # noqa: E731 (below the number)
    assert abs(blue(2.0) - 30 * 7 % 255) < 20, "1 s into a 30 fps clip: its frame 30"
    assert abs(blue(4.5) - 89 * 7 % 255) < 20, "after its end, its last frame stays"
    assert blue(4.5) == blue(4.9)
