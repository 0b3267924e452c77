"""Microphone -> VAD and camera -> frame buffer through the runner, on real media."""

from glasses.device.boards import BoardProfile
from glasses.device.camera import Camera
from glasses.device.clock import NS_PER_S
from glasses.device.microphone import Microphone
from glasses.pipelines.frame_buffer import FrameBuffer
from glasses.pipelines.frames import Utterance
from glasses.pipelines.runner import Runner, RunnerOptions
from glasses.pipelines.sources import CameraSource, MicrophoneSource, Mode
from glasses.pipelines.vad_stage import VadStage

TOLERANCE_S = 0.150


def run_pipeline(store, wav, video, mode=Mode.SIMULATED):
    frames = FrameBuffer(capacity=1000)
    vad = VadStage(store, BoardProfile.laptop())
    runner = Runner(RunnerOptions(mode=mode))
    runner.add_chain(CameraSource(Camera.open(str(video))), [frames])
    runner.add_chain(MicrophoneSource(Microphone.from_wav(wav)), [vad])
    utterances = []
    runner.observe(lambda name, item: utterances.append(item) if isinstance(item, Utterance)
                   else None)
    report = runner.run()
    return runner, report, utterances, frames


def test_vad_finds_both_questions_within_150_ms(store, two_questions, video):
    wav, truth = two_questions
    runner, report, utterances, _ = run_pipeline(store, wav, video)
    assert report.errors == []
    found = [((u.start_ns - runner.start_ns) / NS_PER_S, (u.end_ns - runner.start_ns) / NS_PER_S)
             for u in utterances]
    assert len(found) == 2, f"expected 2 utterances, VAD found {found}"
    for (start, end), (true_start, true_end) in zip(found, truth, strict=True):
        assert abs(start - true_start) <= TOLERANCE_S, (start, true_start)
        assert abs(end - true_end) <= TOLERANCE_S, (end, true_end)
    for u, (true_start, true_end) in zip(utterances, truth, strict=True):
        assert len(u.samples) / 16000 >= (true_end - true_start)  # the words are all there


def test_frame_buffer_returns_the_frame_nearest_a_capture_time(store, two_questions, video):
    wav, _ = two_questions
    runner, report, utterances, frames = run_pipeline(store, wav, video)
    assert len(frames) == frames.received == 120  # 8 s at 15 fps, none dropped offline
    fps = 15
    for u in utterances:  # simulated stamps are the media timeline: frame i at i / fps
        frame = frames.nearest(u.end_ns)
        expected = round((u.end_ns - runner.start_ns) / NS_PER_S * fps)
        assert frame.index == min(expected, 119)
    t = runner.start_ns + int(3.02 * NS_PER_S)
    assert frames.nearest(t).index == 45
    inside = frames.between(runner.start_ns + NS_PER_S, runner.start_ns + 2 * NS_PER_S)
    assert [f.index for f in inside] == list(range(15, 31))


def test_speech_spans_of_a_whole_recording(store, two_questions):
    from glasses.device.audio import SAMPLE_RATE, load_audio
    from glasses.models.vad import SileroVad, speech_spans

    path, bounds = two_questions
    spans = speech_spans(SileroVad(store, BoardProfile.laptop()), load_audio(path))
    assert len(spans) == len(bounds)
    for (start, end), (true_start, true_end) in zip(spans, bounds, strict=True):
        assert abs(start / SAMPLE_RATE - true_start) < 0.15
        assert abs(end / SAMPLE_RATE - true_end) < 0.15
