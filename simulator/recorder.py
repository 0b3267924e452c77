"""`--record out.mp4`: the frames the window shows, and beside them `out.wav`: what the
microphone heard with the spoken answers mixed in (OpenCV writes video without sound).

Both are written under temporary names beside their place and renamed when closed: a
recording cut short (Ctrl-C, SIGTERM) is still finalised, and an earlier recording at the
same path is replaced only by a complete one.

Bystanders' faces never reach the file: every frame goes through the face detectors
(`models/people.py`) and each face found is blurred before the frame is encoded."""

import os
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from glasses.device.audio import SAMPLE_RATE, write_wav
from glasses.device.errors import BadInput


class Recorder:
    def __init__(self, path: Path, fps: float, size: tuple[int, int],
                 blur_faces: Callable[[np.ndarray], np.ndarray]):
        """`blur_faces`: BGR frame -> a copy with every face blurred (`People.blur`)."""
        if path.suffix.lower() not in (".mp4", ".avi"):
            raise BadInput(f"{path}: record to a .mp4 or .avi file")
        if not path.parent.is_dir():
            raise BadInput(f"{path.parent}: no such folder to record into")
        self.path, self.size, self._blur = path, size, blur_faces
        self._partial = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
        self._writer = cv2.VideoWriter(str(self._partial), fourcc, fps, size)
        if not self._writer.isOpened():
            self._partial.unlink(missing_ok=True)
            raise BadInput(f"{path}: cannot write video here")
        self.frames = 0
        self._audio = np.zeros(SAMPLE_RATE * 60, np.float32)  # grown by doubling
        self._audio_len = 0
        self._lock = threading.Lock()

    @property
    def audio_path(self) -> Path:
        return self.path.with_suffix(".wav")

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(self._blur(frame))
        self.frames += 1

    def add_audio(self, samples: np.ndarray, at_s: float) -> None:
        """Mix 16 kHz `samples` into the sound track at `at_s` seconds."""
        start = max(0, int(at_s * SAMPLE_RATE))
        with self._lock:
            end = start + len(samples)
            if end > len(self._audio):
                grown = np.zeros(max(end, 2 * len(self._audio)), np.float32)
                grown[: self._audio_len] = self._audio[: self._audio_len]
                self._audio = grown
            self._audio[start:end] += samples
            self._audio_len = max(self._audio_len, end)

    def close(self) -> None:
        self._writer.release()
        with self._lock:
            if self._audio_len:
                partial = self._partial.with_suffix(".wav")
                write_wav(partial, np.clip(self._audio[: self._audio_len], -1, 1),
                          SAMPLE_RATE)
                os.replace(partial, self.audio_path)
        os.replace(self._partial, self.path)
