"""The endpointer is pure logic: fed made-up probabilities, no model."""

from glasses.models.vad import WINDOW, Endpointer, VadOptions


def feed(probs, options=VadOptions()):
    ep = Endpointer(options)
    events = []
    for i, p in enumerate(probs):
        events += ep.push(p, i * WINDOW)
    events += ep.finish(len(probs) * WINDOW)
    return events


def windows(ms: int) -> int:
    return ms * 16 // WINDOW


def test_one_utterance_start_and_end_at_the_speech_bounds():
    probs = [0.02] * 10 + [0.9] * windows(800) + [0.05] * windows(600)
    events = feed(probs)
    assert [e.kind for e in events] == ["start", "end"]
    assert events[0].sample == 10 * WINDOW
    assert events[1].sample == (10 + windows(800)) * WINDOW
    assert events[1].start == events[0].sample


def test_short_pause_inside_speech_does_not_end_it():
    probs = [0.9] * 20 + [0.1] * windows(150) + [0.9] * 20 + [0.0] * windows(500)
    assert [e.kind for e in feed(probs)] == ["start", "end"]


def test_hysteresis_keeps_speech_between_release_and_threshold():
    probs = [0.9] * 20 + [0.4] * 30 + [0.0] * windows(500)
    events = feed(probs)
    assert events[-1].sample == 50 * WINDOW


def test_a_click_is_cancelled_not_an_utterance():
    probs = [0.0] * 5 + [0.95] * 2 + [0.0] * windows(500)
    assert [e.kind for e in feed(probs)] == ["start", "cancel"]


def test_stream_ending_in_speech_closes_the_utterance():
    events = feed([0.9] * 40)
    assert [e.kind for e in events] == ["start", "end"]
    assert events[-1].sample == 40 * WINDOW


def test_long_speech_is_cut_at_the_maximum():
    events = feed([0.9] * 200, VadOptions(max_utterance_s=2.0))
    ends = [e for e in events if e.kind == "end"]
    assert len(ends) >= 2
    assert ends[0].sample - ends[0].start <= 2 * 16000 + WINDOW
