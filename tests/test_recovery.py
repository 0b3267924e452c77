"""Devices that go away and come back (#19): a folder of stills moved away for seconds and
moved back, a WAV microphone whose read fails once. Real files, real threads: the session
says so (events, display) and goes on answering; a device that stays away fails in time."""

import errno
import os
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import ESPRESSO
from glasses.device.audio import SAMPLE_RATE, write_wav
from glasses.device.boards import BoardProfile
from glasses.device.camera import Camera
from glasses.device.errors import DeviceGone
from glasses.device.microphone import Microphone
from glasses.pipelines import events as ev
from glasses.pipelines.frames import VideoFrame
from glasses.pipelines.runner import Runner, RunnerOptions
from glasses.pipelines.skill_stage import NO_VIEW
from glasses.pipelines.sources import CameraSource, Mode
from glasses.pipelines.stage import Stage
from glasses.simulator.hud import HudState, card_for, draw
from glasses.simulator.session import _show

AWAY_S = 5.0  # how long a device stays away
BACK_WITHIN_S = 2.0  # the bound: delivering again this soon after it returns


def stills(folder, count: int, image: np.ndarray | None = None):
    folder.mkdir()
    for i in range(count):
        img = image if image is not None else np.full((48, 64, 3), i * 5 % 255, np.uint8)
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), img)
    return folder


class Collect(Stage):
    name = "collect"

    def __init__(self):
        self.seen: list[VideoFrame] = []

    def process(self, item):
        self.seen.append(item)
        return ()


def wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_folder_of_stills_that_goes_away_is_reopened_where_it_stopped(tmp_path):
    folder = stills(tmp_path / "shots", 4)
    cam = Camera.open(folder)
    frames = cam.frames()
    assert [next(frames).index, next(frames).index] == [0, 1]
    os.rename(folder, tmp_path / "away")
    with pytest.raises(DeviceGone, match="gone"):
        next(frames)
    with pytest.raises(DeviceGone, match="still gone"):
        cam.reopen()
    os.rename(tmp_path / "away", folder)
    cam.reopen()
    assert [f.index for f in cam.frames()] == [2, 3]
    cam.close()


def test_a_corrupt_still_is_still_bad_input_not_a_lost_camera(tmp_path):
    folder = stills(tmp_path / "shots", 2)
    (folder / "001.jpg").write_bytes(b"not a jpeg")
    cam = Camera.open(folder)
    frames = cam.frames()
    next(frames)
    with pytest.raises(Exception, match="001.jpg") as info:
        next(frames)
    assert not isinstance(info.value, DeviceGone)
    cam.close()


def run_with_outage(folder, options: RunnerOptions, away_s: float | None):
    """A real-time runner over `folder` at 10 fps whose folder is moved away after 1 s and
    back `away_s` later (None: never); (runner, collected, health changes, returned_at)."""
    runner = Runner(options)
    collect = Collect()
    stats = runner.add_chain(CameraSource(Camera.open(folder, fps=10.0)), [collect])
    changes: list[tuple[float, str]] = []
    runner.on_failure(lambda s: changes.append(
        (time.monotonic(), "error" if s.error else "lost" if s.away else "back")))
    returned = []

    def outage() -> None:
        time.sleep(1.0)
        os.rename(folder, folder.with_name("away"))
        if away_s is not None:
            time.sleep(away_s)
            os.rename(folder.with_name("away"), folder)
            returned.append(time.monotonic())

    mover = threading.Thread(target=outage)
    runner.start()
    mover.start()
    return runner, stats, collect, changes, returned, mover


@pytest.mark.slow
def test_a_camera_away_for_five_seconds_is_back_within_two(tmp_path):
    folder = stills(tmp_path / "shots", 100)  # 10 s at 10 fps
    runner, stats, collect, changes, returned, mover = run_with_outage(
        folder, RunnerOptions(mode=Mode.REALTIME), AWAY_S)
    mover.join()
    wait_for(lambda: len(changes) == 2)
    runner.stop()
    (lost_at, lost), (back_at, back) = changes
    assert (lost, back) == ("lost", "back") and stats.error is None
    assert back_at - returned[0] < BACK_WITHIN_S
    assert stats.losses == 1 and stats.away_s > AWAY_S - 1
    # nothing was delivered while it was away, and it went on with the view of the moment
    gap = max(b.t_ns - a.t_ns for a, b in zip(collect.seen, collect.seen[1:], strict=False))
    assert gap / 1e9 > AWAY_S - 1
    after = [f for f in collect.seen if f.t_ns / 1e9 >= back_at - 1.0]
    assert after and after[0].index >= 10 * (1.0 + AWAY_S) - 2


@pytest.mark.slow
@pytest.mark.parametrize("stop_early", [False, True])
def test_a_camera_that_stays_away_fails_in_bounded_time_or_at_the_stop(tmp_path, stop_early):
    folder = stills(tmp_path / "shots", 100)
    runner, stats, _, changes, _, mover = run_with_outage(
        folder, RunnerOptions(mode=Mode.REALTIME, lost_for_s=1.5), None)
    mover.join()
    wait_for(lambda: changes)
    if stop_early:
        runner.stop()
    else:
        wait_for(lambda: stats.error is not None)
        runner.stop()
    assert [c for _, c in changes] == ["lost", "error"]
    assert stats.exit_code == 5
    assert ("still away at the end" if stop_early else "not back after 1.5 s") in stats.error


def test_the_display_says_a_device_is_lost_and_back(tmp_path):
    hud, board = HudState(), BoardProfile.laptop()
    _show(ev.DeviceLost(time.monotonic_ns(), "camera", "camera x", "x: gone"), hud, None)
    view = hud.get()
    assert "camera lost" in card_for(view).status
    image = np.full((480, 640, 3), 255, np.uint8)
    frame = draw(image, view, board.display, (640, 480))
    assert frame[400:, :300].max() < 255, "no view while the camera is lost"
    _show(ev.DeviceBack(time.monotonic_ns(), "camera", "camera x", "x: gone", 5.0), hud, None)
    view = hud.get()
    assert "camera back" in card_for(view).status and "lost" not in card_for(view).status
    assert draw(image, view, board.display, (640, 480))[470, 600].min() == 255
    assert "back" not in card_for(view, time.monotonic_ns() + int(5e9)).status


class FlakyMicrophone(Microphone):
    """A WAV microphone whose `fail_at`-th read fails as a USB device's would (EIO)."""

    fail_at = 40

    def __init__(self, name: str, block_ms: int):
        super().__init__(name, block_ms)
        self.reads = 0

    def _read_file(self, n: int) -> np.ndarray:
        self.reads += 1
        if self.reads == self.fail_at:
            raise OSError(errno.EIO, "Input/output error")
        return super()._read_file(n)


def test_a_wav_microphone_whose_read_fails_once_goes_on_where_it_stopped(tmp_path):
    x = np.random.default_rng(3).uniform(-0.5, 0.5, 2 * SAMPLE_RATE).astype(np.float32)
    write_wav(tmp_path / "a.wav", x, SAMPLE_RATE)
    mic = FlakyMicrophone.from_wav(tmp_path / "a.wav")
    got = []
    with pytest.raises(DeviceGone, match="Input/output error"):
        for block in mic.blocks():
            got.append(block)
    assert len(got) == FlakyMicrophone.fail_at - 1
    mic.reopen()
    got += list(mic.blocks())
    assert [b.offset for b in got] == list(range(0, len(x), 512))
    assert np.abs(np.concatenate([b.samples for b in got]) - x).max() < 1e-4


# -- the whole assistant, on the real models ---------------------------------------------

@pytest.mark.slow
def test_the_session_says_the_camera_went_away_and_came_back_and_answers_so(
        store, tmp_path):
    from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo
    from glasses.pipelines.assistant import Assistant, AssistantOptions

    photo = read_photo(store.home / "downloads" / SKIMAGE_PHOTOS.wheel, "coffee.png")
    folder = stills(tmp_path / "shots", 60, photo)  # 15 s at 4 fps
    write_wav(tmp_path / "quiet.wav", np.zeros(16 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    board = BoardProfile.laptop()
    a = Assistant(AssistantOptions(view=str(folder), audio=str(tmp_path / "quiet.wav"),
                                   mode=Mode.REALTIME, board=board, memory=False), store)
    seen: list[ev.Event] = []
    a.subscribe(seen.append, ev.DeviceLost, ev.DeviceBack, ev.DeviceError, ev.Answer)
    hud = HudState()
    a.subscribe(lambda e: _show(e, hud, None))
    of = lambda kind: [e for e in seen if isinstance(e, kind)]  # noqa: E731
    a.start(camera=Camera.open(folder, fps=4.0, size=board.camera_size))
    try:
        a.wait(1.5)
        os.rename(folder, tmp_path / "away")
        wait_for(lambda: of(ev.DeviceLost))
        assert "camera lost" in card_for(hud.get()).status
        a.ask("What am I looking at?")
        wait_for(lambda: len(of(ev.Answer)) == 1)
        time.sleep(max(0.0, AWAY_S - (time.monotonic_ns() - of(ev.DeviceLost)[0].t_ns) / 1e9))
        os.rename(tmp_path / "away", folder)
        returned_ns = time.monotonic_ns()
        wait_for(lambda: of(ev.DeviceBack))
        a.wait(0.5)
        a.ask("What am I looking at?")
        wait_for(lambda: len(of(ev.Answer)) == 2)
    finally:
        report = a.stop()
    (lost,), (back,) = of(ev.DeviceLost), of(ev.DeviceBack)
    assert lost.device == back.device == "camera" and "gone" in lost.reason
    assert (back.t_ns - returned_ns) / 1e9 < BACK_WITHIN_S and back.away_s > AWAY_S - 1
    first, second = (e.text for e in of(ev.Answer))
    assert first == NO_VIEW, "no stale frame while the camera was away"
    assert second == ESPRESSO
    assert not of(ev.DeviceError) and not report.errors
    assert back.to_dict(a.start_ns)["type"] == "device_back"


@pytest.mark.slow
def test_the_session_hears_both_questions_around_a_microphone_that_failed_once(
        store, two_questions):
    from glasses.pipelines.assistant import Assistant, AssistantOptions
    from glasses.simulator.session import DEMO_VIDEO

    wav, bounds = two_questions
    mic = FlakyMicrophone.from_wav(wav)
    mic.fail_at = int((bounds[0][1] + 1.0) * SAMPLE_RATE / mic.block_samples)  # between them
    a = Assistant(AssistantOptions(view=str(DEMO_VIDEO), audio=str(wav), mode=Mode.SIMULATED,
                                   memory=False), store)
    seen: list[ev.Event] = []
    a.subscribe(seen.append, ev.DeviceLost, ev.DeviceBack, ev.FinalTranscript, ev.Answer)
    a.start(microphone=mic)
    a.wait(120)
    report = a.stop()
    kinds = [e.kind for e in seen if isinstance(e, ev.DeviceLost | ev.DeviceBack)]
    assert kinds == ["device_lost", "device_back"]
    back = next(e for e in seen if isinstance(e, ev.DeviceBack))
    assert back.device == "microphone" and "Input/output error" in back.reason
    heard = [e.text.lower() for e in seen if isinstance(e, ev.FinalTranscript)]
    assert len(heard) == 2 and "look" in heard[0] and "sign" in heard[1], heard
    assert len([e for e in seen if isinstance(e, ev.Answer)]) == 2
    assert not report.errors
    mic_chain = next(c for c in report.chains if c.source.startswith("microphone"))
    assert mic_chain.losses == 1 and mic_chain.lost_samples == 0
