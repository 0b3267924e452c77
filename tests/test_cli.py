"""The `glasses` command as a user meets it: one-line errors, exit codes, no tracebacks."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ESPRESSO, write_video
from glasses.device.audio import SAMPLE_RATE, write_wav

ROOT = Path(__file__).resolve().parents[1]


def glasses(*args: str, home: Path | None = None, timeout: float = 60):
    env = dict(os.environ)
    if home is not None:
        env["GLASSES_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "glasses.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("glasses: error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], (word, errors[0])


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    good = folder / "good.wav"
    write_wav(good, np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    (folder / "truncated.wav").write_bytes(good.read_bytes()[:9000])
    (folder / "notes.wav").write_text("these are my notes, not audio\n")
    (folder / "unreadable.mp4").write_bytes(os.urandom(4096))
    stills = folder / "stills"
    stills.mkdir()
    for i in range(3):
        cv2.imwrite(str(stills / f"{i:02d}.png"), np.full((120, 160, 3), 60 * i, np.uint8))
    (stills / "01.png").write_bytes(b"\x89PNG but then nothing sensible" * 20)
    write_video(folder / "short.mp4", seconds=1.0)
    return folder


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--audio", "truncated.wav"], ["truncated.wav", "truncated"]),
        (["--audio", "notes.wav"], ["notes.wav", "not a WAV"]),
        (["--audio", "absent.wav"], ["absent.wav", "no such file"]),
        (["--view", "unreadable.mp4"], ["unreadable.mp4", "cannot decode video"]),
        (["--view", "stills", "--audio", "good.wav"], ["01.png", "not a readable image"]),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_3(bad, store, args, words):
    args = [a if a.startswith("--") else str(bad / a) for a in args]
    result = glasses("simulate", "--headless", "--mode", "offline", *args)
    assert_one_line_error(result, 3, *words)


def test_missing_store_is_exit_code_4(tmp_path):
    result = glasses("simulate", "--headless", "--mode", "offline", home=tmp_path / "none")
    assert_one_line_error(result, 4, "not prepared", "glasses models prepare")
    result = glasses("doctor", home=tmp_path / "none")
    assert_one_line_error(result, 4, "not prepared")


def test_tampered_model_is_refused_with_exit_code_4(store, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(store.home / "models", home / "models")
    shutil.copy(store.manifest_path, home / "store.json")
    model = home / "models" / "silero-vad" / "silero_vad.onnx"
    data = bytearray(model.read_bytes())
    data[5000] ^= 0xFF
    model.write_bytes(bytes(data))
    result = glasses("simulate", "--headless", "--mode", "offline", home=home)
    assert_one_line_error(result, 4, str(model), "sha256 mismatch")
    doctor = glasses("doctor", "--json", home=home)
    assert doctor.returncode == 4
    report = json.loads(doctor.stdout)
    assert report["store"]["ready"] is False and "sha256" in report["store"]["note"]


def test_doctor_reports_the_machine_as_json(store):
    result = glasses("doctor", "--json", home=store.home)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout holds the JSON object and nothing else
    assert set(report) >= {"cameras", "microphones", "screen", "onnxruntime", "store"}
    assert "CPUExecutionProvider" in report["onnxruntime"]["providers"]
    assert report["store"]["models"]["silero-vad"] == "ok"
    assert set(report["store"]["models"].values()) == {"ok"}


def test_prepare_twice_does_nothing_the_second_time(store):
    result = glasses("models", "prepare", "--json", home=store.home)
    assert result.returncode == 0, result.stderr
    models = json.loads(result.stdout)["models"]
    assert "silero-vad" in models and set(models.values()) == {"up to date"}
    assert "up to date" in result.stderr  # progress goes to stderr


def test_simulate_demo_headless_prints_what_it_did(store):
    result = glasses("simulate", "--headless", "--mode", "simulated", "--json", home=store.home)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert len(summary["utterances"]) == 2  # the demo asks two questions
    answers = [u["answer"] for u in summary["utterances"]]
    assert answers == [ESPRESSO, 'It says "EXIT".']  # about their frames
    assert summary["stages"]["vad"]["count"] > 0 and summary["errors"] == []


def test_ctrl_c_ends_a_realtime_session_within_one_second(bad, store, tmp_path):
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "glasses.cli.main", "simulate", "--headless", "--asr-model",
         "tiny.en", "--view", str(bad / "short.mp4"), "--events", str(events)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not (events.exists() and "session_start" in events.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None, "never started streaming"
        time.sleep(0.1)
    time.sleep(1.0)  # streaming (the demo WAV lasts 10 s)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=5)
    assert time.monotonic() - sent < 1.0
    assert proc.returncode == 130, err
    assert "Traceback" not in err
