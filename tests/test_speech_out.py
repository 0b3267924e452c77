"""Speech out, piece by piece: the speaker's timeline, sentences as they complete, the echo
guard on the bundled voice heard back (judged by the real VAD model), and the display
keeping its card while the wearer talks over the voice."""

import time

import numpy as np
import pytest
from test_cli import assert_one_line_error, glasses

from glasses.device.audio import SAMPLE_RATE
from glasses.device.boards import BoardProfile
from glasses.device.clock import NS_PER_S, now_ns
from glasses.device.playback import Playback
from glasses.device.voice import Voice
from glasses.models.vad import SileroVad, VadOptions
from glasses.pipelines import events as ev
from glasses.pipelines.echo import EchoGuard, solve_spd
from glasses.pipelines.frames import AudioChunk
from glasses.simulator.echo_mix import EchoMixer
from glasses.simulator.hud import HudState
from glasses.simulator.session import _show
from glasses.simulator.speech_out import SpeechOut, VoiceStopped, split_sentences

T0 = 10**15  # an arbitrary monotonic origin for timelines built by hand
CHUNK = 512
ANSWER = "It looks like an espresso: a small serving of concentrated coffee."


def at(seconds: float) -> int:
    return T0 + round(seconds * NS_PER_S)


@pytest.fixture(scope="module")
def voice() -> Voice:
    return Voice()


def test_sounds_play_back_to_back_and_a_stop_cuts_what_is_left():
    p = Playback()
    a = p.play(np.ones(SAMPLE_RATE, np.float32), "one", at_ns=at(1.0))
    b = p.play(np.full(SAMPLE_RATE // 2, 2.0, np.float32), "two", at_ns=at(1.2))
    assert (a.start_ns, b.start_ns) == (at(1.0), at(2.0)), "queued behind the first"
    assert p.end_ns == at(2.5) and p.playing(at(2.4)) and not p.playing(at(2.5))
    x = p.read(at(0.999), 32)  # 16 samples of silence, then the first sound
    assert not x[:16].any() and (x[16:] == 1).all()
    assert (p.read(at(1.99), 320)[160:] == 2).all(), "the second starts as the first ends"
    cut, playing = p.stop(at(1.5))
    assert playing is a and cut == pytest.approx(1.0) and p.end_ns == at(1.5)
    assert not p.read(at(1.5), 16000).any() and (p.read(at(1.4), 160) == 1).all()
    assert [s.label for s in p.sounds()] == ["one"] and b.cut == SAMPLE_RATE // 2


@pytest.mark.parametrize("text, final, done, rest", [
    ("It's red. It", False, ["It's red."], " It"),
    ("For how long? Say, for example: set a timer.", False,
     ["For how long?", "Say, for example: set a timer."], ""),
    ("It costs 3.", False, [], "It costs 3."),  # perhaps 3.5
    ("It costs 3.", True, ["It costs 3."], ""),
    ('It says "EXIT". Go', False, ['It says "EXIT".'], " Go"),
    ("Ask Dr. Smith now! Then", False, ["Ask Dr. Smith now!"], " Then"),
    ("No stop yet", False, [], "No stop yet"),
    ("No stop yet", True, ["No stop yet"], ""),
])
def test_sentences_are_complete_at_their_stop(text, final, done, rest):
    assert split_sentences(text, final) == (done, rest)


def test_each_sentence_is_spoken_as_soon_as_it_is_complete():
    heard: list[ev.Event] = []
    speech = SpeechOut(heard.append, None, speaker=False)
    try:
        end = now_ns()
        speech.on_event(ev.AnswerPiece(now_ns(), "It's a cup.", end))
        time.sleep(1.0)  # the rest of the answer is slow to come
        speech.on_event(ev.AnswerPiece(now_ns(), " It is full", end))
        speech.on_event(ev.AnswerPiece(now_ns(), " of coffee.", end))
        answered = now_ns()
        speech.on_event(ev.Answer(answered, "It's a cup. It is full of coffee.", end))
    finally:
        speech.close()
    spoken = [e for e in heard if isinstance(e, ev.Spoken)]
    assert [e.text for e in spoken] == ["It's a cup.", "It is full of coffee."]
    assert spoken[0].t_ns < answered - 0.5 * NS_PER_S, "the first sentence did not wait"
    first, second = speech.playback.sounds()
    assert second.start_ns == first.end_ns, "the second follows the first without a gap"


def test_speaking_over_the_voice_stops_it_and_drops_the_rest_of_that_answer():
    heard: list[ev.Event] = []
    speech = SpeechOut(heard.append, None, speaker=False)
    try:
        end = now_ns()
        speech.on_event(ev.AnswerPiece(now_ns(), "One sentence that takes a while to say.", end))
        deadline = time.monotonic() + 5
        while not speech.playback.playing() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        start = now_ns() - 40_000_000  # the VAD heard speech begin 40 ms ago
        speech.on_event(ev.SpeechStarted(now_ns(), start))
        speech.on_event(ev.AnswerPiece(now_ns(), " And more.", end))  # too late: dropped
        speech.on_event(ev.Answer(now_ns(), "One sentence ... And more.", end))
        assert speech.barged_in and not speech.playback.playing()
        speech.on_event(ev.SpeechStarted(now_ns(), now_ns()))  # nothing plays: no stop
    finally:
        speech.close()
    (stop,) = [e for e in heard if isinstance(e, VoiceStopped)]
    assert stop is speech.stops[0] and 40 <= stop.after_ms < 100 and stop.cut_s > 0.5
    assert stop.text == "One sentence that takes a while to say."
    assert [e.text for e in heard if isinstance(e, ev.Spoken)] == [stop.text]
    assert (stop.t_ns - stop.start_ns) / 1e6 == pytest.approx(stop.after_ms, abs=0.1)


class _Talking:  # what `_show` asks of the voice
    barged_in = True


def test_the_card_stays_while_the_wearer_talks_over_the_voice():
    hud = HudState()
    end = now_ns()
    for e in (ev.FinalTranscript(now_ns(), "What am I looking at?", end),
              ev.AnswerStarted(now_ns(), end), ev.AnswerPiece(now_ns(), ANSWER, end),
              ev.Answer(now_ns(), ANSWER, end)):
        _show(e, hud, None)
    for e in (ev.SpeechStarted(now_ns(), now_ns()),
              ev.PartialTranscript(now_ns(), "Read that", now_ns())):
        _show(e, hud, _Talking())
        view = hud.get()
        assert (view.question, view.answer) == ("What am I looking at?", ANSWER)
    assert view.status == "listening"
    _show(ev.FinalTranscript(now_ns(), "Read that sign for me.", now_ns()), hud, _Talking())
    assert (hud.get().question, hud.get().answer) == ("Read that sign for me.", "")


def test_the_least_squares_solver_needs_no_blas():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(200, 40))
    m, b = a.T @ a + np.eye(40), rng.normal(size=40)
    assert np.allclose(m @ solve_spd(m, b), b)


# -- the echo guard against the real VAD, on a timeline built by hand ------------------------

def _heard(mic: np.ndarray, playback: Playback, gain: float | None, guard: bool,
           vad: SileroVad) -> tuple[np.ndarray, EchoGuard]:
    """The VAD's speech probability for each chunk of what the assistant would hear."""
    mixer = EchoMixer(playback, gain) if gain else None
    echo_guard = EchoGuard(playback)
    probs = []
    for i in range(0, len(mic) - CHUNK + 1, CHUNK):
        chunk = AudioChunk(T0 + i * NS_PER_S // SAMPLE_RATE, mic[i : i + CHUNK], i)
        if mixer is not None:
            (chunk,) = mixer.process(chunk)
        if guard:
            (chunk,) = echo_guard.process(chunk)
        probs.append(vad(chunk.samples))
    return np.array(probs), echo_guard


@pytest.fixture(scope="module")
def vad(store) -> SileroVad:
    return SileroVad(store, BoardProfile.laptop())


@pytest.fixture(scope="module")
def sounds(voice) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {"answer": voice.speak(ANSWER), "question": voice.speak("Read that sign for me."),
            "room": rng.normal(0, 0.003, 9 * SAMPLE_RATE).astype(np.float32)}


@pytest.mark.parametrize("gain", [0.25, 0.5, 1.0, 2.0])
def test_the_voice_heard_back_never_reaches_the_vad(vad, sounds, gain):
    playback = Playback()
    playback.play(sounds["answer"], at_ns=at(1.0))
    threshold = VadOptions().threshold
    guarded, guard = _heard(sounds["room"], playback, gain, True, vad)
    bare, _ = _heard(sounds["room"], playback, gain, False, vad)
    assert (bare >= threshold).sum() > 20, "without the guard the VAD hears the voice"
    assert guarded.max() < threshold, f"speech heard at {np.argmax(guarded) * 0.032:.2f} s"
    assert guard.delay_ms == 30.0 and guard.silenced > 20


def test_the_wearer_talking_over_the_voice_is_heard_at_once(vad, sounds):
    threshold = VadOptions().threshold
    mic = sounds["room"].copy()
    q = sounds["question"]
    mic[3 * SAMPLE_RATE : 3 * SAMPLE_RATE + len(q)] += q  # 2 s into the answer
    alone, _ = _heard(mic, Playback(), None, False, vad)  # no voice playing at all
    playback = Playback()
    playback.play(sounds["answer"], at_ns=at(1.0))
    over, _ = _heard(mic, playback, 0.5, True, vad)
    first_alone = np.flatnonzero(alone >= threshold)[0]
    first_over = np.flatnonzero(over >= threshold)[0]
    assert first_alone * CHUNK >= 3 * SAMPLE_RATE, "the question alone starts where it is"
    assert first_over - first_alone <= 1, "over the echo, heard within a chunk as quickly"
    assert over[first_over : first_over + 20].mean() > 0.7, "and heard throughout"


def test_a_microphone_that_hears_no_echo_passes_untouched_after_a_moment(vad, sounds):
    mic = sounds["room"].copy()
    playback = Playback()
    playback.play(sounds["answer"], at_ns=at(1.0))
    guard = EchoGuard(playback)
    changed = 0
    for i in range(0, len(mic) - CHUNK + 1, CHUNK):
        chunk = AudioChunk(T0 + i * NS_PER_S // SAMPLE_RATE, mic[i : i + CHUNK], i)
        (out,) = guard.process(chunk)
        if i > 2 * SAMPLE_RATE:  # the voice has played a second with no echo of it
            changed += out is not chunk
    assert guard.delay is None and changed == 0


def test_the_guard_keeps_up_with_the_microphone(sounds):
    playback = Playback()
    playback.play(sounds["answer"], at_ns=at(1.0))
    mixer, guard = EchoMixer(playback, 0.5), EchoGuard(playback)
    mic = sounds["room"]
    chunks = [mixer.process(AudioChunk(T0 + i * NS_PER_S // SAMPLE_RATE, mic[i : i + CHUNK], i))[0]
              for i in range(0, len(mic) - CHUNK + 1, CHUNK)]
    t = time.perf_counter()
    for c in chunks:
        guard.process(c)
    seconds = time.perf_counter() - t
    assert seconds < 0.25 * len(mic) / SAMPLE_RATE, f"{seconds:.2f} s for {len(mic) / 16000} s"


@pytest.mark.parametrize("args, words", [
    (["--echo"], ["--echo", "--speak"]),
    (["--speak", "--echo", "0.3", "--mode", "simulated"], ["--echo", "realtime"]),
    (["--speak", "--echo", "9"], ["GAIN", "at most 4"]),
])
def test_echo_without_its_conditions_is_a_one_line_error(args, words):
    result = glasses("simulate", "--headless", *args)
    assert_one_line_error(result, 3, *words)
