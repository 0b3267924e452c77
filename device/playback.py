"""What the speaker plays, as a timeline on the monotonic clock.

Sounds are queued back to back; each plays in real time from its start, as a sound card
takes it (without one, the timeline is the model of it). `stop` cuts what has not played
yet (barge-in). Readers ask what was playing over any stretch of time: the echo guard,
for the reference of what the microphone may hear (`pipelines/echo.py`), and the
simulator's echo mixer. Thread-safe; what is before `now` never changes, so a reader
that has read a stretch of the past reads it again the same.
"""

import threading
from dataclasses import dataclass

import numpy as np

from glasses.device.audio import SAMPLE_RATE
from glasses.device.clock import NS_PER_S, now_ns

KEEP_S = 10.0  # sounds that ended longer ago than this are forgotten


def _ns(samples: int) -> int:
    return samples * NS_PER_S // SAMPLE_RATE


def _samples(ns: int) -> int:
    """Samples in `ns` nanoseconds, rounded (a sample plays at start + i / SAMPLE_RATE)."""
    return (ns * SAMPLE_RATE + NS_PER_S // 2) // NS_PER_S


@dataclass(eq=False)
class Sound:
    """One sound on the timeline: `samples` (n,) float32 at 16 kHz as it plays (cut short
    by a stop), from `start_ns`; `label` says what it is (the sentence spoken)."""

    start_ns: int
    samples: np.ndarray
    label: str = ""
    cut: int = 0  # samples cut off by a stop

    @property
    def end_ns(self) -> int:
        return self.start_ns + _ns(len(self.samples))

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


class Playback:
    """The speaker's timeline; see the module's docstring."""

    def __init__(self, keep_s: float = KEEP_S):
        self._sounds: list[Sound] = []
        self._keep_ns = int(keep_s * NS_PER_S)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def play(self, samples: np.ndarray, label: str = "", at_ns: int | None = None) -> Sound:
        """Queue `samples` to play from `at_ns` (default now), or when what is queued has
        played, whichever is later; the sound as placed."""
        with self._lock:
            now = now_ns() if at_ns is None else at_ns
            start = max(now, self._sounds[-1].end_ns if self._sounds else 0)
            sound = Sound(start, np.asarray(samples, np.float32).copy(), label)
            self._sounds.append(sound)
            cutoff = now - self._keep_ns
            self._sounds = [s for s in self._sounds if s.end_ns >= cutoff]
            self._changed.notify_all()
        return sound

    def stop(self, at_ns: int | None = None) -> tuple[float, Sound | None]:
        """Cut everything that would play after `at_ns` (default now): the seconds cut,
        and the sound that was playing then (None if none was)."""
        with self._lock:
            at = now_ns() if at_ns is None else at_ns
            cut, playing, kept = 0, None, []
            for s in self._sounds:
                if s.end_ns <= at:
                    kept.append(s)
                    continue
                keep = max(0, _samples(at - s.start_ns))
                if keep:
                    playing = s
                    kept.append(s)
                cut += len(s.samples) - keep
                s.cut += len(s.samples) - keep
                s.samples = s.samples[:keep]
            self._sounds = kept
            self._changed.notify_all()
        return cut / SAMPLE_RATE, playing

    @property
    def end_ns(self) -> int:
        """When what is queued has played (0: nothing ever played)."""
        with self._lock:
            return self._sounds[-1].end_ns if self._sounds else 0

    def playing(self, at_ns: int | None = None) -> bool:
        """Whether a sound plays at `at_ns` (default now) or is queued after it."""
        at = now_ns() if at_ns is None else at_ns
        return self.end_ns > at

    def read(self, t_ns: int, n: int) -> np.ndarray:
        """What plays from `t_ns` for `n` samples: (n,) float32, zeros where nothing does."""
        out = np.zeros(n, np.float32)
        end_ns = t_ns + _ns(n)
        with self._lock:
            sounds = [s for s in self._sounds if s.start_ns < end_ns and s.end_ns > t_ns]
        for s in sounds:
            samples = s.samples  # once: a stop may cut it meanwhile
            offset = _samples(t_ns - s.start_ns) if t_ns >= s.start_ns else -_samples(
                s.start_ns - t_ns)  # sound sample `offset + i` plays with out[i]
            lo, hi = max(0, -offset), min(n, len(samples) - offset)
            if lo < hi:
                out[lo:hi] += samples[lo + offset : hi + offset]
        return out

    def sounds(self) -> list[Sound]:
        """The sounds kept (the last `keep_s` seconds and what is queued), oldest first."""
        with self._lock:
            return list(self._sounds)

    def wait(self, timeout_s: float) -> None:
        """Wait until a sound is queued or stopped, or `timeout_s` passed."""
        with self._lock:
            self._changed.wait(timeout_s)
