"""The runner under load: drops counted, audio accounted for, memory bounded, clean stops."""

import threading
import time

import numpy as np
import pytest

from conftest import write_video
from glasses.device.audio import SAMPLE_RATE, write_wav
from glasses.device.camera import Camera
from glasses.device.errors import BadInput
from glasses.device.microphone import Microphone
from glasses.pipelines.runner import Interrupted, Runner, RunnerOptions
from glasses.pipelines.sources import CameraSource, MicrophoneSource, Mode
from glasses.pipelines.stage import Stage


class Slow(Stage):
    """Takes `seconds` per item and passes it on; counts what it saw."""

    def __init__(self, name: str, seconds: float):
        self.name, self.seconds = name, seconds
        self.seen: list = []

    def process(self, item):
        time.sleep(self.seconds)
        self.seen.append(item)
        yield item


class Fails(Stage):
    name = "fails"

    def process(self, item):
        raise BadInput("something specific is wrong")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    video = write_video(folder / "fast.mp4", seconds=2.0, fps=30.0)
    wav = folder / "tone.wav"
    t = np.arange(int(2.0 * SAMPLE_RATE)) / SAMPLE_RATE
    write_wav(wav, 0.3 * np.sin(2 * np.pi * 440 * t), SAMPLE_RATE)
    return video, wav


def test_realtime_slow_stages_drop_video_and_account_for_every_audio_sample(media):
    video, wav = media
    runner = Runner(RunnerOptions(mode=Mode.REALTIME, queue_size=4, video_queue_size=2))
    slow_video, slow_audio = Slow("slow-video", 0.1), Slow("slow-audio", 0.1)
    video_stats = runner.add_chain(CameraSource(Camera.open(str(video))), [slow_video])
    audio_stats = runner.add_chain(MicrophoneSource(Microphone.from_wav(wav)), [slow_audio])
    report = runner.run()

    assert report.errors == [] and report.stuck_threads == []
    assert video_stats.produced == 60
    assert video_stats.dropped > 20  # 30 fps into a 10 fps stage
    assert len(slow_video.seen) + video_stats.dropped == video_stats.produced
    delivered = sum(len(c.samples) for c in slow_audio.seen)
    assert audio_stats.lost_samples > 0  # the replay could not wait: loss is counted
    assert delivered + audio_stats.lost_samples == 2 * SAMPLE_RATE  # and nothing else is lost
    # memory stays bounded: queues never grew past their size
    assert all(q.high_water <= q.maxsize for c in runner._chains for q in c.queues)
    # every process call was timed from outside
    assert sum(s.stage == "slow-video" for s in report.spans) == len(slow_video.seen)


def test_offline_slow_stage_loses_nothing(media):
    video, wav = media
    runner = Runner(RunnerOptions(mode=Mode.OFFLINE, queue_size=2, video_queue_size=1))
    slow_video, slow_audio = Slow("slow-video", 0.002), Slow("slow-audio", 0.002)
    video_stats = runner.add_chain(CameraSource(Camera.open(str(video))), [slow_video])
    audio_stats = runner.add_chain(MicrophoneSource(Microphone.from_wav(wav)), [slow_audio])
    runner.run()
    assert video_stats.dropped == 0 and len(slow_video.seen) == 60
    assert audio_stats.lost_samples == 0
    assert sum(len(c.samples) for c in slow_audio.seen) == 2 * SAMPLE_RATE
    ts = [c.t_ns for c in slow_audio.seen]
    assert ts == sorted(ts)


def test_stop_ends_every_thread_within_one_second(media):
    video, wav = media
    runner = Runner(RunnerOptions(mode=Mode.REALTIME))
    runner.add_chain(CameraSource(Camera.open(str(video))), [Slow("v", 0.3)])
    runner.add_chain(MicrophoneSource(Microphone.from_wav(wav)), [Slow("a", 0.3)])
    before = set(threading.enumerate())
    runner.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    stuck = runner.stop()
    assert time.monotonic() - t0 < 1.0
    assert stuck == []
    assert set(threading.enumerate()) <= before


def test_ctrl_c_during_run_stops_and_reports(media):
    video, wav = media
    runner = Runner(RunnerOptions(mode=Mode.REALTIME))
    runner.add_chain(MicrophoneSource(Microphone.from_wav(wav)), [Slow("a", 0.01)])
    timer = threading.Timer(0.3, lambda: __import__("_thread").interrupt_main())
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(Interrupted) as info:
        runner.run()
    assert time.monotonic() - t0 < 1.5
    assert info.value.report.interrupted and info.value.report.stuck_threads == []


def test_a_failing_stage_ends_its_chain_with_its_error(media):
    video, wav = media
    runner = Runner(RunnerOptions(mode=Mode.OFFLINE))
    stats = runner.add_chain(MicrophoneSource(Microphone.from_wav(wav)), [Fails()])
    video_stats = runner.add_chain(CameraSource(Camera.open(str(video))), [Slow("v", 0)])
    report = runner.run()
    assert stats.error == "stage fails: something specific is wrong" and stats.exit_code == 3
    assert video_stats.error is None and video_stats.produced == 60  # the rest ran on
    assert report.stuck_threads == []


class Loads(Stage):
    """Takes `seconds` to open (a model loading), or fails to; records open and close."""

    def __init__(self, name: str, seconds: float, error: Exception | None = None):
        self.name, self.seconds, self.error = name, seconds, error
        self.opened_at: float | None = None
        self.closed = False

    def open(self):
        time.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        self.opened_at = time.monotonic()

    def close(self):
        self.closed = True

    def process(self, item):
        yield item


def test_a_stage_that_fails_to_open_fails_start_and_the_opened_are_closed(media):
    video, wav = media
    runner = Runner(RunnerOptions(mode=Mode.OFFLINE))
    good, bad = Loads("good", 0.1), Loads("bad", 0.3, BadInput("model file truncated"))
    runner.add_chain(MicrophoneSource(Microphone.from_wav(wav)), [good, bad])
    with pytest.raises(BadInput, match="model file truncated"):
        runner.start()
    assert good.opened_at is not None and good.closed, "an opened stage is closed again"
    assert not bad.closed
