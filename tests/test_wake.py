"""Wake word: the detector's logic, the gate around the VAD, the real model on espeak
speech, and a model missing from the store."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import speak, speech_bounds
from glasses.device.audio import SAMPLE_RATE
from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.models.store import ModelStore
from glasses.models.wake import Detector, WakeWord, store_name
from glasses.pipelines.frames import AudioChunk, Utterance
from glasses.pipelines.wake_stage import GateOptions, WakeDetections, WakeGate, wake_stages

S = SAMPLE_RATE
PAD = 64 * S // 1000  # the VAD's default padding


# -- the detector: pure logic ------------------------------------------------------------

def test_detector_averages_a_window_and_stays_quiet_after_a_detection():
    d = Detector(threshold=0.8, window=3, refractory_ms=1000)
    probs = [0.9, 0.95, 0.99, 0.99, 0.99, 0.99, 0.1, 0.99, 0.99, 0.99, 0.99]
    ends = [i * 480 for i in range(len(probs))]  # one step per 30 ms
    hits = [e for p, e in zip(probs, ends, strict=True) if d.push(p, e)]
    # the first full window is over threshold; the next ones fall inside the refractory
    # period (1 s = 16000 samples), so one detection only
    assert hits == [960]
    d.reset()
    assert not d.push(0.99, 0) and not d.push(0.99, 480)  # a window must fill first
    assert d.push(0.99, 960)


# -- the gate: pure logic over utterances and detections -----------------------------------

def utterance(start_s: float, end_s: float, final: bool = True, now_s: float | None = None,
              pause_s: tuple[float, float] | None = None) -> Utterance:
    """What the VAD sends for speech from `start_s` to `end_s` (a partial ends at `now_s`),
    loud throughout but for a silent `pause_s`."""
    start, end = int(start_s * S), int(end_s * S)
    keep_to = end + PAD if final else int((now_s or end_s) * S)
    first = max(start - PAD, 0)
    samples = np.full(keep_to - first, 0.5, np.float32)
    if pause_s:
        samples[int(pause_s[0] * S) - first : int(pause_s[1] * S) - first] = 0
    return Utterance(t_ns=end * 62500, start_ns=start * 62500, end_ns=end * 62500,
                     samples=samples, speech_start=start, speech_end=end, final=final)


def gate_with(*detections_s: float) -> tuple[WakeGate, WakeDetections]:
    found = WakeDetections()
    found.add(int(t * S) for t in detections_s)
    return WakeGate(found), found


def test_an_utterance_holding_the_wake_word_is_cut_to_start_after_it():
    # "okay nabu" ends at 1.6 s, the question starts at 1.7 s, the model decides at 1.8 s:
    # the cut goes back to the pause's last 10 ms
    gate, _ = gate_with(1.8)
    pause = (1.6, 1.7)
    partial = list(gate.process(utterance(1.0, 2.5, False, 2.5, pause)))
    (out,) = list(gate.process(utterance(1.0, 3.0, pause_s=pause)))
    cut = int(1.69 * S)
    assert len(partial) == 1 and partial[0].speech_start == cut
    assert out.speech_start == cut and len(out.samples) == int(3.0 * S) + PAD - cut
    assert out.samples[0] == 0 and out.samples[S // 100] == 0.5  # then the question
    assert out.speech_end == int(3.0 * S)
    assert out.start_ns == cut * 62500 and out.t_ns == out.end_ns
    assert (gate.questions, gate.ignored) == (1, 0)


def test_a_wake_word_said_alone_makes_the_next_utterance_the_question():
    gate, _ = gate_with(1.9)
    assert list(gate.process(utterance(1.0, 1.8))) == []  # "okay nabu" and nothing else
    assert gate.wakes == 1
    partial = list(gate.process(utterance(4.0, 5.0, final=False)))
    (question,) = list(gate.process(utterance(4.0, 6.0)))
    assert len(partial) == 1 and question.speech_start == int(4.0 * S)  # whole, not cut
    assert list(gate.process(utterance(7.0, 8.0))) == []  # only the next one
    assert (gate.questions, gate.ignored) == (1, 1)


def test_a_question_must_start_within_follow_s_of_the_wake_word():
    gate, _ = gate_with(1.9)
    list(gate.process(utterance(1.0, 1.8)))
    late = 1.9 + GateOptions().follow_s + 0.5
    assert list(gate.process(utterance(late, late + 1))) == []
    assert (gate.wakes, gate.questions, gate.ignored) == (1, 0, 1)


def test_speech_without_a_wake_word_is_dropped_and_counted():
    gate, _ = gate_with()
    items = [utterance(1.0, 1.5, final=False), utterance(1.0, 2.0, final=False),
             utterance(1.0, 2.5), utterance(4.0, 5.0)]
    assert [u for item in items for u in gate.process(item)] == []
    assert (gate.ignored, gate.ignored_partials, gate.questions) == (2, 2, 0)


def test_a_wake_word_the_vad_missed_still_opens_the_next_utterance():
    gate, _ = gate_with(2.0)  # heard, but no utterance held it (said softly)
    (out,) = list(gate.process(utterance(4.0, 5.0)))
    assert out.speech_start == int(4.0 * S) and gate.wakes == 1


# -- the real model on espeak speech -------------------------------------------------------

@pytest.fixture(scope="module")
def wake(store) -> WakeWord:
    return WakeWord(store, BoardProfile.laptop())


def padded(x: np.ndarray, lead_s: float = 2.0, tail_s: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(3)
    out = np.concatenate([np.zeros(int(lead_s * S), np.float32), x,
                          np.zeros(int(tail_s * S), np.float32)])
    return out + rng.normal(0, 1e-3, len(out)).astype(np.float32)  # a quiet room


def test_the_wake_phrase_is_detected_just_after_it_ends(wake, tmp_path):
    x = speak("okay nabu", tmp_path / "wake.wav")
    _, end = speech_bounds(x)
    audio = padded(x)
    found = wake.push(audio, 0)
    assert len(found) == 1
    assert 0 <= found[0] - (2 * S + end) <= int(0.5 * S)  # within half a second of its end


@pytest.mark.parametrize("text", ["What am I looking at?", "Okay, read that sign.",
                                  "Nab the ball and run."])
def test_other_speech_is_not_taken_for_the_wake_word(wake, tmp_path, text):
    assert wake.push(padded(speak(text, tmp_path / "other.wav")), 0) == []


def test_detections_do_not_depend_on_how_the_audio_is_chunked(wake, tmp_path):
    audio = padded(speak("okay nabu, what is this?", tmp_path / "wake.wav"))
    whole = wake.push(audio, 0)
    for size in (100, 512, 4801):
        chunked = [d for i in range(0, len(audio), size)
                   for d in wake.push(audio[i : i + size], 1000 + i)]
        assert chunked == [d + 1000 for d in whole]  # stream indices from the offset
    assert whole


def test_the_onnx_conversion_was_checked_against_tflite(store):
    from glasses.export.wake_build import MAX_DIFFERENCE

    validation = store.entry(store_name("okay_nabu")).provenance["validation"]
    assert validation["speech"] and validation["max_difference"] <= MAX_DIFFERENCE
    assert validation["detections_onnx"]  # the espeak phrases were heard by both
    assert len(validation["detections_onnx"]) == len(validation["detections_tflite"])


def test_the_stages_pass_only_what_follows_the_wake_word(store, tmp_path):
    """mic -> listener -> VAD -> gate over a conversation made with espeak."""
    from glasses.pipelines.vad_stage import VadStage

    def say(text: str, name: str) -> np.ndarray:  # the speech alone, espeak's silence cut
        x = speak(text, tmp_path / f"{name}.wav")
        start, end = speech_bounds(x)
        return x[start:end]

    gap = lambda s: np.zeros(int(s * S), np.float32)  # noqa: E731
    wake1, question1 = say("okay nabu", "w1"), say("what is this?", "q1")
    other, wake2, question2 = say("what time is it?", "o"), say("okay nabu", "w2"), say(
        "read that sign.", "q2")
    parts = [gap(1.0), wake1, gap(0.15), question1, gap(1.5), other, gap(1.5), wake2, gap(1.2),
             question2, gap(1.5)]
    starts = np.cumsum([0] + [len(p) for p in parts])
    audio = np.concatenate(parts) + np.random.default_rng(1).normal(
        0, 1e-3, starts[-1]).astype(np.float32)
    listener, gate = wake_stages(store, BoardProfile.laptop())
    vad = VadStage(store, BoardProfile.laptop())
    for stage in (listener, vad, gate):
        stage.open()
    passed = []
    for i in range(0, len(audio), 512):
        for chunk in listener.process(AudioChunk(i * 62500, audio[i : i + 512], i)):
            for u in vad.process(chunk):
                passed += [p for p in gate.process(u) if p.final]
    for u in vad.flush():
        passed += [p for p in gate.process(u) if p.final]
    assert len(passed) == 2, [(p.speech_start / S, p.speech_end / S) for p in passed]
    # one utterance "okay nabu, what is this?", cut in the pause between them
    assert starts[2] - S // 50 <= passed[0].speech_start <= starts[3] + S // 50
    assert passed[0].speech_end >= starts[4] - int(0.1 * S)
    assert abs(passed[1].speech_start - starts[9]) < 0.2 * S  # the question after a pause
    assert (gate.wakes, gate.ignored, gate.questions) == (1, 1, 2)


# -- a wake-word model missing from the store ------------------------------------------------

def test_a_missing_wake_model_is_one_line_naming_it(tmp_path, store):
    empty = ModelStore(tmp_path / "empty")
    other = ModelStore(tmp_path / "other")  # prepared, but without the wake word
    vad = store.home / "models" / "silero-vad"
    other.add("silero-vad", {f.name: f for f in vad.iterdir()}, {})
    for s in (empty, other):
        for make in (lambda s=s: WakeWord(s, BoardProfile.laptop()),
                     lambda s=s: wake_stages(s, BoardProfile.laptop())):
            with pytest.raises(StoreError) as e:
                make()
            assert "\n" not in str(e.value) and "'wake-okay-nabu'" in str(e.value)
            assert "glasses models prepare" in str(e.value)


def test_eval_wake_without_the_model_exits_4_with_one_line(tmp_path):
    env = {**os.environ, "GLASSES_HOME": str(tmp_path / "home")}
    ModelStore(tmp_path / "home").add("silero-vad", {"x": _file(tmp_path)}, {})
    run = subprocess.run([sys.executable, "-m", "glasses.cli.main", "eval", "wake"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 4 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "wake-okay-nabu" in run.stderr


def _file(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"x")
    return path


def test_the_wake_word_runs_on_onnxruntime_alone(store):
    code = ("import sys, numpy as np\n"
            "from glasses.device.boards import BoardProfile\n"
            "from glasses.models.store import ModelStore\n"
            "from glasses.pipelines.wake_stage import wake_stages\n"
            "listener, gate = wake_stages(ModelStore(), BoardProfile.laptop())\n"
            "listener.open()\n"
            "from glasses.pipelines.frames import AudioChunk\n"
            "list(listener.process(AudioChunk(0, np.zeros(16000, np.float32), 0)))\n"
            "bad = [m for m in ('tflite', 'tensorflow', 'pymicro_wakeword', 'torch', 'onnx')\n"
            "       if m in sys.modules]\n"
            "assert not bad, bad\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "GLASSES_HOME": str(store.home)})
    assert run.returncode == 0, run.stderr


# -- the assistant with --wake ------------------------------------------------------------

def test_with_wake_a_question_without_the_wake_word_is_ignored(store, tmp_path, video):
    """The whole assistant, simulated: the first question has no wake word and is not
    answered; the second, after "okay nabu", is."""
    from glasses.device.audio import write_wav
    from glasses.pipelines import events as ev
    from glasses.pipelines.assistant import Assistant, AssistantOptions
    from glasses.pipelines.sources import Mode

    silence = np.zeros(SAMPLE_RATE, np.float32)
    plain = speak("What colour is this?", tmp_path / "a.wav")
    woken = speak("Okay nabu. Read that sign for me.", tmp_path / "b.wav")
    audio = tmp_path / "both.wav"
    write_wav(audio, np.concatenate([silence, plain, silence, silence, woken, silence,
                                     silence]), SAMPLE_RATE)
    heard = {}
    for wake_on in (False, True):
        options = AssistantOptions(view=str(video), audio=str(audio), mode=Mode.SIMULATED,
                                   wake=wake_on, memory=False)
        assistant = Assistant(options, store)
        finals = []
        assistant.subscribe(lambda e, finals=finals: finals.append(e.text), ev.FinalTranscript)
        report = assistant.run()
        assert not report.errors
        heard[wake_on] = [t.lower() for t in finals]
        if wake_on:
            gate = assistant.wake_gate
    assert len(heard[False]) == 2  # without --wake both are questions
    assert len(heard[True]) == 1 and "sign" in heard[True][0] and "colo" not in heard[True][0]
    assert "nabu" not in heard[True][0]  # cut after the wake word
    assert gate.questions == 1 and gate.ignored >= 1
