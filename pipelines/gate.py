"""Gates the wearer controls: the microphone's mute or push-to-talk, the camera's privacy.

A closed audio gate passes silence of the same length, marked `gated` (the stream's
timing goes on, and the VAD drops a question cut off by mute: what was said before the
mute is not answered); a closed video gate passes nothing (no frame is kept while the
camera is off).
"""

import threading
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from glasses.pipelines.frames import AudioChunk, VideoFrame
from glasses.pipelines.stage import Stage


class Gate(Stage):
    """Passes items while open; thread-safe `open_gate` / `close_gate` / `toggle`."""

    def __init__(self, name: str, is_open: bool = True):
        self.name = name
        self._open = threading.Event()
        if is_open:
            self._open.set()
        self.closed_items = 0  # items silenced or withheld

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def set_open(self, is_open: bool) -> None:
        if is_open:
            self._open.set()
        else:
            self._open.clear()

    def toggle(self) -> bool:
        """Flip the gate; returns whether it is now open."""
        self.set_open(not self.is_open)
        return self.is_open

    def process(self, item: AudioChunk | VideoFrame) -> Iterable[AudioChunk | VideoFrame]:
        if self.is_open:
            return (item,)
        self.closed_items += 1
        if isinstance(item, AudioChunk):
            return (replace(item, samples=np.zeros_like(item.samples), gated=True),)
        return ()
