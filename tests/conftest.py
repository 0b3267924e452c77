"""Shared fixtures: the prepared model store, speech made offline, media files."""

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from glasses.device.audio import SAMPLE_RATE, load_audio, write_wav
from glasses.models.store import ModelStore

# what the assistant says about scikit-image's coffee photo (the demo's first view)
ESPRESSO = "It looks like an espresso: a small serving of concentrated coffee."


@pytest.fixture(autouse=True)
def memory_file(tmp_path_factory, monkeypatch) -> Path:
    """Every test has its own memory file ($GLASSES_MEMORY, inherited by the commands it
    runs), outside its `tmp_path`: no test reads or writes the wearer's own memory."""
    path = tmp_path_factory.mktemp("memory") / "memory.db"
    monkeypatch.setenv("GLASSES_MEMORY", str(path))
    return path


@pytest.fixture(scope="session")
def store() -> ModelStore:
    """The real model store, prepared once (a no-op when it already is)."""
    from glasses.export.prepare import prepare

    store = ModelStore()
    prepare(store, progress=lambda msg: print(msg, file=sys.stderr))
    return store


def speak(text: str, path: Path, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    """Speech made offline with espeak-ng: float32 (n,) at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (make test installs it)")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text],
                   check=True)
    return load_audio(path)


def speech_bounds(x: np.ndarray, frame: int = 160) -> tuple[int, int]:
    """First and last sample of 10 ms frames louder than -35 dB below the peak frame."""
    n = len(x) // frame
    rms = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-35 / 20))
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)


@pytest.fixture(scope="session")
def two_questions(tmp_path_factory) -> tuple[Path, list[tuple[float, float]]]:
    """A WAV with two spoken questions separated by silence, and their true bounds (s)."""
    folder = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(7)
    q1 = speak("What am I looking at?", folder / "q1.wav")
    q2 = speak("Read that sign for me, please.", folder / "q2.wav", voice="en-us+f3", speed=140)
    parts, bounds, pos = [], [], 0
    for gap, q in ((1.0, q1), (2.0, q2)):
        parts.append(np.zeros(int(gap * SAMPLE_RATE), np.float32))
        pos += len(parts[-1])
        a, b = speech_bounds(q)
        bounds.append(((pos + a) / SAMPLE_RATE, (pos + b) / SAMPLE_RATE))
        parts.append(q)
        pos += len(q)
    parts.append(np.zeros(int(1.5 * SAMPLE_RATE), np.float32))
    audio = np.concatenate(parts)
    audio += rng.normal(0, 0.002, len(audio)).astype(np.float32)  # a quiet room
    path = folder / "two_questions.wav"
    write_wav(path, audio, SAMPLE_RATE)
    return path, bounds


def write_video(path: Path, seconds: float, fps: float = 15.0, size=(160, 120)) -> Path:
    """A video whose frame i shows the number i (and a colour that changes with i)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(int(seconds * fps)):
        img = np.full((size[1], size[0], 3), (i * 7 % 255, 80, 160), np.uint8)
        cv2.putText(img, str(i), (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        writer.write(img)
    writer.release()
    return path


@pytest.fixture(scope="session")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "view.mp4", seconds=8.0)


def pytest_collection_modifyitems(items) -> None:
    """Tests that load the real models (the `store` fixture, directly or through another
    fixture) are marked `models`: `make test-fast` leaves them and the `slow` ones out."""
    for item in items:
        if "store" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.models)
