"""End of turn by sound and words: the endpointer's verdicts (pure logic), the words rule,
the judge, and the real end-of-turn model and speech recognition on spoken questions."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.models.end_of_turn import SmartTurn, turn_features, words_unfinished
from glasses.models.store import ModelStore
from glasses.models.vad import WINDOW, Endpointer, VadOptions
from glasses.pipelines.frames import Utterance
from glasses.pipelines.turn_judge import TurnJudge

REAL_SPEECH = Path(__file__).resolve().parents[1].parent / "shared/data/real-speech"

TURN = VadOptions(endpoint="turn")


def windows(ms: int) -> int:
    return ms * 16 // WINDOW


def run(probs, verdict: bool | None):
    """Feed `probs`; answer every verdict asked with `verdict` (None: never answer)."""
    ep, events = Endpointer(TURN), []
    asked = 0
    for i, p in enumerate(probs):
        events += ep.push(p, i * WINDOW)
        if ep.wants_verdict and verdict is not None:
            asked += 1
            events += ep.verdict(verdict)
    return events + ep.finish(len(probs) * WINDOW), asked


def test_a_complete_turn_ends_where_its_silence_began_once_judged():
    speech = windows(800)
    events, asked = run([0.9] * speech + [0.0] * windows(2000), verdict=True)
    assert [e.kind for e in events] == ["start", "end"] and asked == 1
    assert events[1].sample == speech * WINDOW


def test_an_incomplete_turn_waits_and_goes_on_as_one_utterance():
    probs = [0.9] * windows(600) + [0.0] * windows(900) + [0.9] * windows(600)
    events, asked = run(probs + [0.0] * windows(1000), verdict=False)
    assert asked == 2  # each silence judged once
    assert [e.kind for e in events] == ["start", "end"]  # the pause did not cut it
    assert events[1].sample == len(probs) * WINDOW  # ended with the speech after the pause
    # nothing to judge by: the longest silence still ends the turn
    events, _ = run([0.9] * 20 + [0.0] * windows(1600), verdict=None)
    assert [e.kind for e in events] == ["start", "end"] and events[1].sample == 20 * WINDOW


def test_gaps_between_words_are_not_judged():
    probs = [0.9] * 20 + [0.1] * windows(128) + [0.9] * 20 + [0.0] * windows(300)
    events, asked = run(probs, verdict=True)
    assert asked == 1 and [e.kind for e in events] == ["start", "end"]
    assert events[1].sample == 40 * WINDOW + windows(128) * WINDOW


def test_the_vad_endpoint_needs_no_verdict():
    ep = Endpointer(VadOptions(endpoint="vad"))
    for i, p in enumerate([0.9] * 20 + [0.0] * windows(400)):
        ep.push(p, i * WINDOW)
        assert not ep.wants_verdict
    with pytest.raises(ValueError, match="unknown endpoint"):
        Endpointer(VadOptions(endpoint="sometimes"))


@pytest.mark.parametrize("text, unfinished", [
    ("What colour is", True), ("Remind me to.", True), ("What kind of...", True),
    ("How much does.", True), ("Translate the", True), ("", True), ("Well, ", True),
    ("What is this?", False), ("Read that sign for me.", False), ("What should I do?", False),
    ("Where did I leave it?", False), ("Is it raining", False),
    ("What am I looking at?", False), ("What is this used for?", False),
])
def test_words_that_leave_a_question_unfinished(text, unfinished):
    assert words_unfinished(text) is unfinished


def test_the_judge_weighs_sound_and_how_sure_the_words_end():
    judge = TurnJudge()
    assert judge.decision(100) is None
    judge.sound(100, 0.9)
    assert judge.decision(100) is None  # the words are still coming
    assert judge.decision(100, words_due=False) is True  # none will come: sound alone
    judge.words(100, "What colour is", 0.99)
    assert judge.decision(100) is False  # words that cannot end a sentence
    judge.words(100, "What colour is the wall?", 0.7)
    assert judge.decision(100) is True  # likely, and the sound agrees
    judge.words(100, "Can you tell me?", 0.5)
    assert judge.decision(100) is False  # the decoder unsure of its question mark
    judge.words(100, "Can you tell me?", None)
    assert judge.decision(100) is False
    judge.sound(200, 0.2)
    judge.words(200, "What colour is the wall?", 0.7)
    assert judge.decision(200) is False and judge.decision(100) is None  # sound disagrees
    judge.words(200, "What colour is the wall?", 0.9)
    assert judge.decision(200) is True  # sure words end it whatever the sound says
    assert TurnJudge("sound").decision(200) is None
    words = TurnJudge("words")
    assert words.decision(5) is None
    words.words(5, "Is it?", 0.65)
    assert words.decision(5) is True
    with pytest.raises(ValueError, match="unknown rule"):
        TurnJudge("coin")


def test_the_sound_is_asked_only_where_the_words_leave_it_open():
    judge = TurnJudge()
    assert not judge.wants_sound(1)  # the words are still coming
    assert judge.wants_sound(1, words_due=False)  # none will come
    for text, end_p, wanted in [("What colour is the wall?", 0.9, False),  # sure
                                ("What colour is the wall?", 0.7, True),  # likely
                                ("Can you tell me?", 0.3, False), ("What colour is", 0.7, False)]:
        judge.words(1, text, end_p)
        assert judge.wants_sound(1) is wanted, (text, end_p)
        assert judge.decision(1) is (None if wanted else end_p >= 0.8)
    assert TurnJudge("sound").wants_sound(1) and not TurnJudge("words").wants_sound(1, False)


def test_features_are_the_newest_8_seconds_zero_padded_in_front():
    rng = np.random.default_rng(0)
    short = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    feats = turn_features(short)
    assert feats.shape == (80, 800) and feats.dtype == np.float32
    # silence (each band constant in time), then the audio
    assert np.ptp(feats[:, :600], axis=1).max() < 1e-6 < np.ptp(feats[:, -90:], axis=1).min()
    long = (0.1 * rng.standard_normal(200_000)).astype(np.float32)
    np.testing.assert_array_equal(turn_features(long), turn_features(long[-128_000:]))


def test_the_end_of_turn_model_hears_a_finished_question(store):
    from glasses.device.audio import load_audio
    from glasses.simulator.session import DEMO_AUDIO

    audio = load_audio(DEMO_AUDIO)  # "What am I looking at?" from 1 s, the bundled voice
    model = SmartTurn(store, BoardProfile.laptop())
    end = int(2.05 * 16000)
    assert model.probability(audio[:end + 2560]) > 0.9
    assert model.probability(audio[:int(1.45 * 16000)]) < model.probability(audio[:end + 2560])


def test_a_missing_end_of_turn_model_is_named_in_one_line(tmp_path, store):
    from glasses.pipelines.vad_stage import VadStage

    other = ModelStore(tmp_path / "other")  # prepared, but without the end-of-turn model
    vad = store.home / "models" / "silero-vad"
    other.add("silero-vad", {f.name: f for f in vad.iterdir()}, {})
    with pytest.raises(StoreError) as e:
        VadStage(other, BoardProfile.laptop(), VadOptions(endpoint="turn")).open()
    assert "'smart-turn'" in str(e.value) and "\n" not in str(e.value)
    assert "glasses models prepare" in str(e.value)
    # asked for the VAD alone, the end-of-turn model is not needed
    VadStage(other, BoardProfile.laptop(), VadOptions(endpoint="vad")).open()


def test_whisper_is_unsure_how_a_fragment_ends_and_sure_of_a_whole_question(store):
    """It finishes "What kind of" as a question, but less sure of the mark it ends with."""
    from glasses.device.audio import load_audio
    from glasses.export.pause_set import _paused
    from glasses.models.asr import WhisperOnnx
    from glasses.pipelines.turn_judge import LIKELY_END, SURE_END

    whisper = WhisperOnnx(store, BoardProfile.laptop())
    pad = np.zeros(4000, np.float32)
    for voice in ("en-us", "en-gb-x-rp"):
        speech, pause, _ = _paused("What kind of", "bird is sitting on the fence?", voice,
                                   160, 50, 0.8, 0)
        fragment = whisper.transcribe(np.concatenate([pad, speech[:pause], pad]))
        whole = whisper.transcribe(np.concatenate([pad, speech, pad]))
        assert fragment.end_p < LIKELY_END, fragment
        assert whole.end_p >= SURE_END and "fence" in whole.text, whole
    real = whisper.transcribe(load_audio(REAL_SPEECH / "horizon.wav"))  # a real voice
    assert real.end_p >= SURE_END and real.text.endswith(".")
    assert whisper.transcribe(np.zeros(16000, np.float32)).end_p is None  # nothing decoded


def test_a_pause_inside_a_question_does_not_cut_it(store, tmp_path):
    """Spoken with a 0.8 s pause: one utterance with the turn endpoint, two with the VAD."""
    from glasses.evaluation.turns import _stream
    from glasses.export.pause_set import _paused
    from glasses.models.asr import WhisperOnnx
    from glasses.pipelines.vad_stage import VadStage

    speech, _, _ = _paused("Remind me to", "buy milk on the way home.", "en-us", 160, 50, 0.8, 0)
    audio = np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(32000, np.float32)])
    board = BoardProfile.laptop()
    whisper = WhisperOnnx(store, board)
    counts = {}
    for endpoint in ("turn", "vad"):
        vad = VadStage(store, board, VadOptions(endpoint=endpoint, early_end=True))
        finals = _stream(vad, whisper, audio)
        counts[endpoint] = len(finals)
        if endpoint == "turn":
            assert "milk" in whisper.transcribe(finals[0][0].samples).text.lower()
    assert counts == {"turn": 1, "vad": 2}


def test_a_partial_decode_gives_way_to_the_end_of_the_utterance(store):
    from glasses.pipelines.asr_stage import AsrStage

    stage = AsrStage(store, BoardProfile.laptop())
    stage.open()
    rng = np.random.default_rng(1)
    samples = (0.1 * rng.standard_normal(16000 * 8)).astype(np.float32)
    partial = Utterance(t_ns=0, start_ns=0, end_ns=0, samples=samples, speech_start=0,
                        speech_end=len(samples), final=False)
    out, took = [], []

    def decode():
        t = time.perf_counter()
        out.extend(stage.process(partial))
        took.append(time.perf_counter() - t)

    worker = threading.Thread(target=decode)
    worker.start()
    time.sleep(0.05)
    ending = Utterance(t_ns=0, start_ns=0, end_ns=0, samples=samples[:8000], speech_start=0,
                       speech_end=8000, final=False, ending=True)
    stage.preempt(ending)
    worker.join(10)
    assert out == [] and stage.preempted == 1
    # with nothing decoding, or for a newer partial, nothing is ended
    stage.preempt(partial)
    stage.preempt("not an utterance")
    assert len(list(stage.process(partial))) == 1 and stage.preempted == 1
