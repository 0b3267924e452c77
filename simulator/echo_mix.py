"""`glasses simulate --speak --echo [GAIN]`: the assistant's voice heard back by the
microphone, as glasses' microphone would hear their speaker.

A stage in front of the echo guard: to each chunk it adds what the speaker played when
the chunk was captured (`device/playback.Playback`), `delay_ms` earlier, through a short
echo path (the direct sound and three reflections off the face and frame, the longest
6 ms after it), scaled by `gain`. A muted chunk stays silent.
"""

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from glasses.device.audio import SAMPLE_RATE
from glasses.device.clock import NS_PER_S
from glasses.device.playback import Playback
from glasses.pipelines.frames import AudioChunk
from glasses.pipelines.stage import Stage

GAIN = 0.5  # the echo's level against the voice played: speaker and microphone centimetres apart
DELAY_MS = 30  # from playing to hearing: the output's buffers, then the air
# (delay after the direct sound, ms; relative level)
REFLECTIONS = ((1.9, 0.35), (3.7, -0.2), (6.1, 0.1))


def echo_path() -> np.ndarray:
    """The impulse response after the delay: (n,) float32, the direct sound first."""
    taps = [(round(ms * SAMPLE_RATE / 1000), level) for ms, level in REFLECTIONS]
    h = np.zeros(max(t for t, _ in taps) + 1, np.float32)
    h[0] = 1.0
    for t, level in taps:
        h[t] += level
    return h


class EchoMixer(Stage):
    name = "echo-mix"

    def __init__(self, playback: Playback, gain: float = GAIN, delay_ms: float = DELAY_MS):
        self.playback, self.gain = playback, gain
        self.delay_ns = int(delay_ms * NS_PER_S / 1000)
        self.path = echo_path() * np.float32(gain)

    def process(self, item: AudioChunk) -> Iterable[AudioChunk]:
        if item.gated or not self.gain:
            return (item,)
        n, tail = len(item.samples), len(self.path) - 1
        start = item.t_ns - self.delay_ns - tail * NS_PER_S // SAMPLE_RATE
        played = self.playback.read(start, n + tail)
        if not played.any():
            return (item,)
        echo = np.convolve(played, self.path, mode="valid")  # (n,)
        return (replace(item, samples=(item.samples + echo).astype(np.float32)),)
