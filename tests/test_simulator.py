"""The simulator as a wearer and a developer meet it: headless with a recording, a camera
that fails mid-run, and a real window under Xvfb, looked at with a screenshot."""

import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from test_cli import ROOT, glasses

from conftest import ESPRESSO
from glasses.device.audio import SAMPLE_RATE, load_audio, write_wav
from glasses.device.boards import BoardProfile
from glasses.device.camera import Camera
from glasses.device.errors import DeviceFailure
from glasses.device.microphone import AudioBlock, Microphone
from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo
from glasses.pipelines.assistant import Assistant, AssistantOptions
from glasses.pipelines.frames import AudioChunk, VideoFrame
from glasses.pipelines.gate import Gate
from glasses.pipelines.skill_stage import NO_VIEW
from glasses.simulator.events import EventLog
from glasses.simulator.hud import HudState, HudView, draw
from glasses.simulator.present import Presenter
from glasses.simulator.session import DEMO_AUDIO, _show

FIRST_QUESTION_S = 4.0  # the demo's first question ends before this


@pytest.fixture(scope="module")
def coffee_stills(store, tmp_path_factory):
    """A folder of three stills of the coffee photo (shown at 1 per second)."""
    folder = tmp_path_factory.mktemp("stills")
    photo = read_photo(store.home / "downloads" / SKIMAGE_PHOTOS.wheel, "coffee.png")
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), photo)
    return folder


@pytest.fixture(scope="module")
def first_question(tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "q1.wav"
    write_wav(path, load_audio(DEMO_AUDIO)[: int(FIRST_QUESTION_S * SAMPLE_RATE)], SAMPLE_RATE)
    return path


def events_of(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_hud_says_when_an_answer_first_arrives():
    hud = HudState()
    hud.update(status="thinking", question="What is this?", answer="")
    assert not hud.answer_arrived.is_set(), "a question is not an answer"
    hud.update(answer="It looks")
    assert hud.answer_arrived.is_set()
    hud.answer_arrived.clear()
    hud.update(answer="It looks like a cup.")
    assert not hud.answer_arrived.is_set(), "only the first words wake the display"
    hud.update(question="Read it.", answer="")
    hud.update(answer="It says")
    assert hud.answer_arrived.is_set(), "the next turn's answer does"


def test_gates_silence_audio_and_withhold_frames():
    gate = Gate("mic-gate")
    chunk = AudioChunk(0, np.ones(512, np.float32), 0)
    assert list(gate.process(chunk)) == [chunk]
    assert gate.toggle() is False
    (silent,) = gate.process(chunk)
    assert silent.t_ns == chunk.t_ns and not silent.samples.any() and silent.gated
    camera = Gate("camera-gate", is_open=False)
    assert list(camera.process(VideoFrame(0, np.zeros((2, 2, 3), np.uint8), 0))) == []
    assert gate.closed_items == camera.closed_items == 1


def test_headless_demo_records_what_the_window_would_show(store, tmp_path):
    video, events = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    result = glasses("simulate", "--headless", "--record", str(video), "--events", str(events),
                     "--speak", "--json", home=store.home, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["scenario"]["passed"] == data["scenario"]["graded"] == 2
    assert data["display"]["frames"] > 0 and data["video"]["dropped"] == 0
    # the command -> the first frame: the interpreter, the models, then the first draw
    assert 0.3 < data["display"]["first_frame_s"] < data["wall_s"] + 60
    assert data["stuck_threads"] == []
    for turn in data["utterances"]:
        assert 0 < turn["final_text_ms"] < min(turn["answer_shown_ms"], turn["spoken_ms"])
    # an answer is drawn when it arrives, between the frames; the recording keeps its rate
    assert 1 <= data["display"]["extra_frames"] <= len(data["utterances"])
    kinds = [e["type"] for e in events_of(events)]
    for kind in ("session_start", "utterance", "partial_transcript", "final_transcript",
                 "answer_start", "answer_token", "answer", "answer_shown", "spoken",
                 "session_end"):
        assert kind in kinds, kind
    cap = cv2.VideoCapture(str(video))
    assert abs(cap.get(cv2.CAP_PROP_FRAME_COUNT) - data["display"]["frames"]) <= 1
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 480)
    sound = load_audio(video.with_suffix(".wav"))
    spoken = [e for e in events_of(events) if e["type"] == "spoken"]
    assert len(sound) >= int((spoken[-1]["t"] + 0.5) * SAMPLE_RATE), "answers are in the track"
    after = sound[int((spoken[-1]["t"] + 0.1) * SAMPLE_RATE):][: SAMPLE_RATE // 2]
    assert np.abs(after).max() > 0.05, "the spoken answer is in the recording's sound"


def test_a_camera_that_fails_mid_run_is_reported_and_the_session_goes_on(
        store, coffee_stills, tmp_path):
    folder = tmp_path / "stills"
    shutil.copytree(coffee_stills, folder)
    (folder / "3.png").write_text("not an image any more")  # read at 3 s
    events = tmp_path / "events.jsonl"
    result = glasses("simulate", "--view", str(folder), "--audio", str(DEMO_AUDIO), "--mode",
                     "simulated", "--events", str(events), "--json", home=store.home,
                     timeout=120)
    assert result.returncode == 3, result.stderr  # the camera's error, after the whole run
    data = json.loads(result.stdout)
    (failure,) = data["device_errors"]
    assert failure["device"] == "camera" and "3.png" in failure["message"]
    answers = [u["answer"] for u in data["utterances"]]
    assert answers == [ESPRESSO, NO_VIEW]
    assert "3.png" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture()
def xdisplay():
    """A fresh Xvfb server on a display number no other server holds."""
    from Xlib import display, error

    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed (make test installs it)")
    rng = np.random.default_rng()
    number = next(n for n in rng.permutation(np.arange(100, 1000))
                  if not os.path.exists(f"/tmp/.X{n}-lock"))
    name = f":{number}"
    server = subprocess.Popen(["Xvfb", name, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:  # ready when it accepts a connection
        try:
            display.Display(name).close()
            break
        except error.DisplayConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield name
    server.terminate()
    server.wait(5)


def screenshot(display) -> np.ndarray:
    from Xlib import X

    root = display.screen().root
    geometry = root.get_geometry()
    raw = root.get_image(0, 0, geometry.width, geometry.height, X.ZPixmap, 0xFFFFFFFF)
    pixels = np.frombuffer(raw.data, np.uint8).reshape(geometry.height, geometry.width, 4)
    return np.ascontiguousarray(pixels[:, :, :3])  # BGRX -> BGR


def press(display, key: str) -> None:
    from Xlib import XK, X
    from Xlib.ext import xtest

    code = display.keysym_to_keycode(XK.string_to_keysym(key))
    xtest.fake_input(display, X.KeyPress, code)
    xtest.fake_input(display, X.KeyRelease, code)
    display.sync()


def wait_for(path, kind: str, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            found = [e for e in events_of(path) if e["type"] == kind]
            if found:
                return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event within {timeout_s} s")


def test_the_window_shows_the_answer_card_and_obeys_its_keys(
        store, coffee_stills, first_question, xdisplay, tmp_path):
    from Xlib import display

    events = tmp_path / "events.jsonl"
    env = {**os.environ, "DISPLAY": xdisplay, "GLASSES_HOME": str(store.home)}
    proc = subprocess.Popen([sys.executable, "-m", "glasses.cli.main", "simulate", "--view",
                             str(coffee_stills), "--audio", str(first_question), "--duration",
                             "60", "--events", str(events)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        x = display.Display(xdisplay)
        answer = wait_for(events, "answer")
        wait_for(events, "answer_shown")
        time.sleep(0.5)
        shot = screenshot(x)
        heard = wait_for(events, "final_transcript")["text"]
        board = BoardProfile.laptop()
        photo = cv2.resize(cv2.imread(str(coffee_stills / "0.png")), board.camera_size)
        expected = draw(photo, HudView(status="answer", question=heard, answer=answer["text"]),
                        board.display, board.camera_size)
        hud = expected[130:300, 200:440]  # the display's region, answer card included
        view = expected[320:470, 40:600]  # the camera's picture below the card, no card in it
        score = cv2.matchTemplate(shot, hud, cv2.TM_CCOEFF_NORMED).max()
        assert answer["text"] == ESPRESSO
        assert score > 0.9, f"the window does not show the answer card (match {score:.2f})"
        assert cv2.matchTemplate(shot, view, cv2.TM_CCOEFF_NORMED).max() > 0.9, "view shown"

        x.screen().root.warp_pointer(100, 100)  # the window has the keyboard under the pointer
        x.sync()
        press(x, "c")
        assert wait_for(events, "camera")["on"] is False
        time.sleep(0.5)
        dark = screenshot(x)
        # the card stays on the display; the camera's picture around it is gone
        assert cv2.matchTemplate(dark, view, cv2.TM_CCOEFF_NORMED).max() < 0.5, "view gone"
        press(x, "q")
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "turn 1: heard" in out


class UnpluggedMicrophone(Microphone):
    """Stands in for a USB microphone pulled out after about a second of silence."""

    def __init__(self):
        super().__init__("usb", 32)

    def blocks(self):
        for i in range(31):
            yield AudioBlock(np.zeros(512, np.float32), i * 512)
        raise DeviceFailure("microphone usb: the device was unplugged")


def test_a_microphone_that_fails_mid_run_is_reported_and_the_view_goes_on(store, video):
    camera = Camera.open(video)  # 8 s at 15 fps
    assistant = Assistant(AssistantOptions(view=str(video), audio=None), store)
    hud, board = HudState(), BoardProfile.laptop()
    log = EventLog()
    assistant.subscribe(log.add_event)
    assistant.subscribe(lambda e: _show(e, hud, None))
    assistant.start(camera=camera, microphone=UnpluggedMicrophone())
    presenter = Presenter(assistant, hud, board.display, (160, 120), 15.0, window=False,
                          recorder=None)
    stats = presenter.run(duration_s=3.0)
    report = assistant.stop()
    (failure,) = [e for e in log.events if e["type"] == "device_error"]
    assert failure["device"] == "microphone" and "unplugged" in failure["message"]
    assert hud.get().message == "microphone lost" and hud.get().camera_on
    camera_chain = next(c for c in report.chains if c.source.startswith("camera"))
    assert stats.wall_s > failure["t"] and camera_chain.error is None
    assert camera_chain.produced > 15 * failure["t"], "the camera went on after the mic died"
