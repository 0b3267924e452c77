"""The public Python API: `from glasses import Assistant`, on real models and media."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import speak
from glasses.device.audio import SAMPLE_RATE, write_wav
from glasses.pipelines.sources import Mode
from glasses.simulator.session import DEMO_AUDIO, DEMO_VIDEO

pytestmark = pytest.mark.slow


def still_video(path, seconds: float, fps: float = 15.0):
    """The demo's first view (a cup of coffee), held for `seconds`."""
    cap = cv2.VideoCapture(str(DEMO_VIDEO))
    ok, frame = cap.read()
    cap.release()
    assert ok
    h, w = frame.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for _ in range(int(seconds * fps)):
        writer.write(frame)
    writer.release()
    return path


def silence(path, seconds: float):
    write_wav(path, np.zeros(int(seconds * SAMPLE_RATE), np.float32), SAMPLE_RATE)
    return path


def test_the_api_answers_the_demo_and_publishes_typed_events(store):
    from glasses import Assistant
    from glasses.pipelines import events as ev
    from glasses.pipelines.assistant import AssistantOptions

    seen: list[ev.Event] = []
    a = Assistant(AssistantOptions(view=str(DEMO_VIDEO), audio=str(DEMO_AUDIO),
                                   mode=Mode.SIMULATED), store)
    a.subscribe(seen.append)
    answers = []
    a.subscribe(lambda e: answers.append(e.text), ev.Answer)
    report = a.run()
    assert not report.errors
    assert "espresso" in answers[0] and "EXIT" in answers[1], answers
    kinds = [e.kind for e in seen]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end"
    for kind in ("utterance", "partial_transcript", "final_transcript", "answer_start",
                 "answer_token", "answer"):
        assert kind in kinds, kind
    # a turn's events are joined on the exact end of speech, not on rounded times
    heard = [e for e in seen if isinstance(e, ev.UtteranceHeard)]
    done = [e for e in seen if isinstance(e, ev.Answer)]
    assert [u.end_ns for u in heard] == [d.speech_end_ns for d in done]
    assert all(u.frame is not None for u in heard)


def test_ask_by_text_and_the_camera_switch(store, tmp_path):
    from glasses import Assistant
    from glasses.pipelines import events as ev
    from glasses.pipelines.assistant import AssistantOptions

    view = still_video(tmp_path / "coffee.mp4", 12)
    a = Assistant(AssistantOptions(view=str(view), audio=str(silence(tmp_path / "s.wav", 12)),
                                   mode=Mode.REALTIME), store)
    answers: list[ev.Answer] = []
    a.subscribe(answers.append, ev.Answer)
    with a:
        a.wait(1.0)  # a second of frames in the buffer
        a.ask("What am I looking at?")
        _wait_for(lambda: len(answers) == 1)
        a.camera_off()
        a.wait(1.2)  # the frames of the last second are from before it went off
        a.ask("What is this?")
        _wait_for(lambda: len(answers) == 2)
        a.camera_on()
        with pytest.raises(Exception, match="empty"):
            a.ask("   ")
    assert "espresso" in answers[0].text
    assert answers[1].text == "I can't tell: the camera is off."
    assert not a.wait(0) or a.stopping


def _wait_for(condition, timeout_s: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_example_runs_headless_on_the_demo(store):
    from test_cli import ROOT

    script = ROOT / "examples" / "answers.py"
    assert len(script.read_text().splitlines()) < 30
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and "espresso" in lines[0] and "EXIT" in lines[1], lines


def test_a_spoken_question_is_heard_and_a_muted_one_is_not(store, tmp_path):
    from glasses import Assistant
    from glasses.pipelines import events as ev
    from glasses.pipelines.assistant import AssistantOptions

    q = speak("What am I looking at?", tmp_path / "q.wav")
    gap = np.zeros(int(2.5 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([gap, q, gap, q, gap])
    write_wav(tmp_path / "two.wav", audio, SAMPLE_RATE)
    first_mid = (len(gap) + len(q) // 2) / SAMPLE_RATE
    first_end = (len(gap) + len(q)) / SAMPLE_RATE
    a = Assistant(AssistantOptions(view=str(still_video(tmp_path / "v.mp4", 12)),
                                   audio=str(tmp_path / "two.wav")), store)
    heard = []
    a.subscribe(lambda e: heard.append(e), ev.FinalTranscript, ev.Answer)
    a.start()
    a.wait(first_mid)
    a.mute()
    a.wait(first_end + 0.8 - first_mid)
    a.unmute()
    a.wait(30)
    a.stop()
    finals = [e for e in heard if isinstance(e, ev.FinalTranscript)]
    assert len(finals) == 1, [e.text for e in finals]
    assert finals[0].speech_end_ns - a.start_ns > first_end * 1e9, "the second one"


def test_an_early_transcript_goes_to_the_answering_chain_only_when_no_question_waits():
    from glasses.device.errors import BadInput
    from glasses.pipelines.frames import Transcript
    from glasses.pipelines.requests import Requests, ToRequests

    requests = Requests(capacity=2)
    to_requests = ToRequests(requests)
    early = Transcript(1, "What is this?", False, 0, ending=True)
    partial = Transcript(1, "What is", False, 0)
    to_requests.process(partial)
    to_requests.process(early)
    assert requests.get(0.1) is early, "a partial is not a question; an early one is offered"
    question = Transcript(2, "Read it.", True, 1)
    to_requests.process(question)
    to_requests.process(early)  # behind a waiting question it is not let in
    to_requests.process(Transcript(3, "What colour is it?", True, 2))
    assert [requests.get(0.1).text for _ in range(2)] == ["Read it.", "What colour is it?"]
    requests.put(question)
    requests.put(question)
    with pytest.raises(BadInput, match="2 questions are already waiting"):
        requests.put(question, wait=False)
    assert not requests.offer(early), "never waits, never raises"
