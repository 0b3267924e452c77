"""`--record out.mp4`: the frames the window shows, and beside them `out.wav`: what the
microphone heard with the spoken answers mixed in (OpenCV writes video without sound)."""

import threading
from pathlib import Path

import cv2
import numpy as np

from glasses.device.audio import SAMPLE_RATE, write_wav
from glasses.device.errors import BadInput


class Recorder:
    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        if path.suffix.lower() not in (".mp4", ".avi"):
            raise BadInput(f"{path}: record to a .mp4 or .avi file")
        if not path.parent.is_dir():
            raise BadInput(f"{path.parent}: no such folder to record into")
        self.path, self.size = path, size
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
        self._writer = cv2.VideoWriter(str(path), fourcc, fps, size)
        if not self._writer.isOpened():
            raise BadInput(f"{path}: cannot write video here")
        self.frames = 0
        self._audio = np.zeros(0, np.float32)
        self._lock = threading.Lock()

    @property
    def audio_path(self) -> Path:
        return self.path.with_suffix(".wav")

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        self.frames += 1

    def add_audio(self, samples: np.ndarray, at_s: float) -> None:
        """Mix 16 kHz `samples` into the sound track at `at_s` seconds."""
        start = max(0, int(at_s * SAMPLE_RATE))
        with self._lock:
            end = start + len(samples)
            if end > len(self._audio):
                self._audio = np.concatenate([self._audio, np.zeros(end - len(self._audio),
                                                                    np.float32)])
            self._audio[start:end] += samples

    def close(self) -> None:
        self._writer.release()
        with self._lock:
            if len(self._audio):
                write_wav(self.audio_path, np.clip(self._audio, -1, 1), SAMPLE_RATE)
