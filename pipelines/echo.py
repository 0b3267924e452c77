"""The echo guard: the assistant's own voice, heard back by the microphone, is taken out
before the VAD, so it never starts a turn, while the wearer talking over it still does.

The guard knows what the speaker plays (`device/playback.Playback`, the reference) on the
microphone's clock. For each chunk:

1. the delay from the speaker to the microphone is found by GCC-PHAT between the last
   half second of microphone and reference, and believed when their normalised
   correlation at that delay is high (`min_correlation`);
2. the echo path from just before that delay (`taps` samples: the direct sound and the
   near reflections) is fitted by least squares over the chunks heard, older ones
   forgotten, and not while the wearer talks (the residual is then large); the echo it
   predicts is subtracted;
3. what is left is judged: well below the echo removed (`residual_db`), it is what the
   subtraction missed, and the chunk goes on as silence; otherwise the wearer is
   talking, and the residual goes on.

Until the delay is found (the first echo of a session) a chunk no louder than the
reference could make it (`max_gain`) goes on as silence; once `calibrate_s` of reference
has played with no echo found, the microphone hears none and chunks pass as they are.
Chunks while nothing plays (or has just played) pass as they are, at no cost. The path
found is kept for the session: on glasses the speaker and microphone do not move.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from glasses.device.audio import SAMPLE_RATE
from glasses.device.playback import Playback
from glasses.pipelines.frames import AudioChunk
from glasses.pipelines.stage import Stage

QUIET = 1e-9  # mean square below which no echo is predicted (-90 dB)


@dataclass(frozen=True)
class EchoOptions:
    # the echo path looked for
    max_delay_ms: int = 200  # the longest speaker-to-microphone delay looked for
    taps: int = 128  # samples of echo path fitted (8 ms at 16 kHz) ...
    lead: int = 16  # ... of which before the delay found

    # learning it
    window: int = 8192  # samples compared to find the delay (512 ms)
    search_every: int = 8  # chunks between delay searches while the reference plays
    min_correlation: float = 0.5  # normalised correlation at a delay to believe it ...
    min_overlap_s: float = 0.2  # ... over at least this much of the reference, delayed
    forget: float = 0.9  # per chunk, of the fitted path's statistics
    converge_chunks: int = 4  # chunks fitted before the residual decides what is fitted
    solve_every: int = 4  # once converged, chunks between solving for the path
    stuck_chunks: int = 60  # refused to learn this long while the reference plays: refit

    # judging what is left
    residual_db: float = -12.0  # this far below the echo removed: only echo was there
    calibrate_s: float = 0.75 # reference played before concluding the mic hears none
    max_gain: float = 4.0  # until then: the loudest echo thought possible (x reference)


class EchoGuard(Stage):
    """Audio chunks in, the same chunks out with the speaker's echo removed; see the
    module's docstring. `delay_ms` is the delay found (None: none yet); `silenced` and
    `cleaned` count chunks passed as silence and with echo subtracted."""

    name = "echo-guard"

    def __init__(self, reference: Playback, options: EchoOptions = EchoOptions()):
        self.reference, self.options = reference, options
        self._max_delay = options.max_delay_ms * SAMPLE_RATE // 1000
        self.delay: int | None = None  # samples
        self.silenced = self.cleaned = 0
        self._h: np.ndarray | None = None  # (taps,) the fitted echo path
        self._r = np.zeros((options.taps, options.taps))  # least squares: normal matrix
        self._p = np.zeros(options.taps)  # ... and right-hand side
        self._fitted = self._refused = 0
        self._candidate: int | None = None
        self._heard = 0  # reference samples played so far
        self._since_search = 0
        self._next: int | None = None  # stream offset of the next chunk
        self._y = self._x = np.zeros(0, np.float32)

    @property
    def delay_ms(self) -> float | None:
        return None if self.delay is None else self.delay * 1000 / SAMPLE_RATE

    def process(self, item: AudioChunk) -> Iterable[AudioChunk]:
        y = np.asarray(item.samples, np.float32)
        n = len(y)
        x = self.reference.read(item.t_ns, n)  # what played while this was captured
        self._push(item.offset, y, x)
        o = self.options
        if item.gated or not self._x[-(n + self._max_delay + o.taps):].any():
            return (item,)
        if x.any():
            self._heard += n
        self._since_search += 1
        if self.delay is None or self._since_search >= o.search_every:
            self._since_search = 0
            self._search()
        if self.delay is None:
            if self._heard < o.calibrate_s * SAMPLE_RATE and self._could_be_echo(y):
                return self._silence(item)
            return (item,)
        return self._cancel(item, y)

    # -- the history of both signals, aligned sample for sample ------------------------

    def _push(self, offset: int, y: np.ndarray, x: np.ndarray) -> None:
        size = self.options.window + self._max_delay + self.options.taps + len(y)
        if offset != self._next or len(self._y) != size:  # samples lost upstream, or new
            self._y, self._x = np.zeros(size, np.float32), np.zeros(size, np.float32)
        self._next = offset + len(y)
        self._y = np.concatenate([self._y[len(y):], y])
        self._x = np.concatenate([self._x[len(x):], x])

    # -- 1. the delay ------------------------------------------------------------------

    def _search(self) -> None:
        """Look for the delay over the last `window`; adopt it when believed (a changed
        delay when found twice running)."""
        w, d = self.options.window, self._max_delay
        xs, ys = self._x[-(w + d):].astype(np.float64), self._y[-w:].astype(np.float64)
        active = np.flatnonzero(np.abs(xs) > 1e-3 * np.abs(xs).max(initial=0.0))
        if not len(active) or not ys.any():
            return
        size = 1 << int(np.ceil(np.log2(len(xs) + len(ys))))
        cross = np.fft.rfft(xs, size) * np.conj(np.fft.rfft(ys, size))
        cross /= np.abs(cross) + 1e-3 * np.abs(cross).max() + 1e-20  # PHAT
        r = np.fft.irfft(cross, size)  # r[j] = sum_i xs[i + j] ys[i]
        lags = np.abs(r[: d + 1][::-1])  # lags[m]: ys[k] against xs[d + k - m]
        m = int(np.argmax(lags))
        lo = max(0, active[0] - d + m)  # before this, the lagged reference is silent
        if w - lo < self.options.min_overlap_s * SAMPLE_RATE:
            return
        a, b = ys[lo:], xs[d - m + lo : d - m + w]
        norm = np.sqrt((a * a).sum() * (b * b).sum())
        if not norm or abs((a * b).sum()) / norm < self.options.min_correlation:
            return
        if self.delay is None or abs(m - self.delay) <= 2:
            self.delay = self.delay if self.delay is not None else m
            self._candidate = None
        elif self._candidate is not None and abs(m - self._candidate) <= 2:
            self.delay, self._candidate = m, None  # the echo path moved: fit it again
            self._fitted, self._h = 0, None
        else:
            self._candidate = m

    def _could_be_echo(self, y: np.ndarray) -> bool:
        """Before any echo path is known: no louder than the reference could make it."""
        n = len(y)
        span = self._x[-(n + self._max_delay + self.options.taps):]
        span = span[len(span) % n:].reshape(-1, n)
        loudest = np.sqrt((span.astype(np.float64) ** 2).mean(axis=1).max())
        return bool(np.sqrt((y.astype(np.float64) ** 2).mean()) <= self.options.max_gain * loudest)

    # -- 2. and 3. the echo path, what is left -------------------------------------------

    def _reference(self, rows: int) -> np.ndarray:
        """The reference against the last `rows` microphone samples: (rows + taps - 1,),
        where `seg[i + taps - 1 - j]` is what played `base + j` samples before row i."""
        taps = self.options.taps
        end = len(self._x) - max(0, self.delay - self.options.lead)
        return self._x[end - rows - taps + 1 : end].astype(np.float64)

    def _cancel(self, item: AudioChunk, y: np.ndarray) -> Iterable[AudioChunk]:
        o = self.options
        seg = self._reference(len(y))
        y64 = y.astype(np.float64)
        if seg.any():
            self._learn(seg, y64)
        if self._h is None:
            return (item,)
        echo = np.convolve(seg, self._h, "valid")  # (n,) the echo predicted
        left = y64 - echo
        echo_power, left_power = (echo * echo).mean(), (left * left).mean()
        if echo_power > QUIET and left_power < 10 ** (o.residual_db / 10) * echo_power:
            return self._silence(item)
        self.cleaned += 1
        return (replace(item, samples=left.astype(np.float32)),)

    def _learn(self, seg: np.ndarray, y: np.ndarray) -> None:
        """Fit the echo path with this chunk (the window heard so far, when the delay has
        just been found), unless what is left is too loud to be only echo."""
        o = self.options
        if self._h is None:  # a new delay: start from everything the window holds
            self._r, self._p = _statistics(self._reference(o.window), self._y[-o.window:], o.taps)
        elif self._fitted >= o.converge_chunks:
            predicted = np.convolve(seg, self._h, "valid")
            left = y - predicted
            if (left * left).mean() >= 0.25 * (predicted * predicted).mean():
                self._refused += 1  # the wearer is talking (or the path changed)
                if self._refused < o.stuck_chunks:
                    return
                self._fitted = 0
        self._refused = 0
        if self._h is not None:
            r, p = _statistics(seg, y, o.taps)
            self._r, self._p = o.forget * self._r + r, o.forget * self._p + p
        self._fitted += 1
        if self._h is not None and self._fitted > o.converge_chunks and (
                self._fitted % o.solve_every):
            return  # learnt; solved again every few chunks
        ridge = 1e-3 * np.trace(self._r) / o.taps + 1e-12
        self._h = solve_spd(self._r + ridge * np.eye(o.taps), self._p)

    def _silence(self, item: AudioChunk) -> Iterable[AudioChunk]:
        self.silenced += 1
        return (replace(item, samples=np.zeros_like(item.samples)),)


def _statistics(seg: np.ndarray, y: np.ndarray, taps: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares statistics of `y` (n,) against the tapped reference `seg`
    (n + taps - 1,), whose row i is `seg[i + taps - 1 - j]` for tap j: the normal
    matrix (taps, taps) and the right-hand side (taps,). Exact, from FFTs and running
    sums along the matrix's diagonals (no BLAS: its threads stall under load)."""
    n = len(y)
    size = 1 << int(np.ceil(np.log2(2 * len(seg))))
    first = np.fft.irfft(np.conj(np.fft.rfft(seg[:n], size)) * np.fft.rfft(seg, size),
                         size)[:taps]  # first[d] = sum_i<n seg[i] seg[i + d]
    q, d = np.arange(taps - 1)[:, None], np.arange(taps)[None, :]
    top = np.minimum(q + d, len(seg) - 1 - n)  # (unused entries clamped in range)
    step = seg[n + q] * seg[n + top] - seg[q] * seg[top]  # one sample down a diagonal
    walked = np.vstack([np.zeros(taps), np.cumsum(step, axis=0)])
    u, v = np.arange(taps)[:, None], np.arange(taps)[None, :]
    lag = np.abs(u - v)
    gram = first[lag] + walked[np.minimum(u, v), lag]  # in reversed tap order
    return gram[::-1, ::-1], np.correlate(seg, y, "valid")[::-1]


def solve_spd(m: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x with m @ x = b, m symmetric positive definite (n, n): Cholesky in vector
    operations, O(n^3) multiplications in n steps (no BLAS threads)."""
    a, n = m.copy(), len(b)
    for k in range(n):
        a[k, k] = np.sqrt(a[k, k])
        col = a[k + 1 :, k] / a[k, k]
        a[k + 1 :, k] = col
        a[k + 1 :, k + 1 :] -= np.multiply.outer(col, col)
    y = np.zeros(n)
    for k in range(n):
        y[k] = (b[k] - np.dot(a[k, :k], y[:k])) / a[k, k]
    x = np.zeros(n)
    for k in range(n - 1, -1, -1):
        x[k] = (y[k] - np.dot(a[k + 1 :, k], x[k + 1 :])) / a[k, k]
    return x
