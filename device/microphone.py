"""Microphones: a WAV file or a live PyAudio input, as 16 kHz mono blocks.

This layer only reads: it yields each block with its position in the stream and never
sleeps or paces. The pipeline layer stamps capture times and paces playback. A WAV file is
read as it plays (bounded memory, however long). A device whose read fails raises
`DeviceGone`; `reopen()` opens it again, and `blocks()` goes on where it stopped.
"""

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np

from glasses.device.audio import SAMPLE_RATE, Resampler
from glasses.device.errors import DeviceFailure, DeviceGone
from glasses.device.wav_stream import WavStream

SAMPLES_PER_MS = SAMPLE_RATE // 1000
DEFAULT_BLOCK_MS = 32
NO_PYAUDIO = "pyaudio not installed (pip install '.[mic]')"


@dataclass(frozen=True, eq=False)
class AudioBlock:
    """`samples` (n,) float32 at 16 kHz mono; `offset` the index of its first sample in
    the stream, at 16 kHz (so it starts offset / 16000 s into the stream)."""

    samples: np.ndarray
    offset: int


@contextmanager
def quiet_stderr():
    """Send file descriptor 2 to /dev/null for the block (PortAudio/ALSA chatter there)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded, closed stderr)
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _one_line(exc: BaseException) -> str:
    """An exception as one line; PyAudio's IOError carries (message, code) or (code, text)."""
    parts = [str(a) for a in exc.args if not isinstance(a, int)] or [type(exc).__name__]
    return " ".join(" ".join(parts).split())


def _block_samples(block_ms: int) -> int:
    if int(block_ms) != block_ms or block_ms <= 0:
        raise ValueError(f"block_ms must be a positive whole number, got {block_ms}")
    return int(block_ms) * SAMPLES_PER_MS


class Microphone:
    """A source of 16 kHz mono audio blocks: a WAV file or a live input device (`live`).

    Use `Microphone.from_wav(path)` or `Microphone.live()`, iterate `blocks()`, then
    `close()` (or `with`). Attributes: `live`, `name`, `total_samples` (at 16 kHz; None
    when live), `block_samples`, `device_rate` (Hz, the file's or device's own rate
    before resampling) and `overflows` (input overflows seen: 0 for a file; None when
    live, since PyAudio's blocking read drops overflows without reporting them).
    """

    def __init__(self, name: str, block_ms: int) -> None:  # use from_wav or live
        self.name = name
        self.live = False
        self.block_samples = _block_samples(block_ms)
        self.total_samples: int | None = None
        self.device_rate = SAMPLE_RATE
        self.overflows: int | None = 0
        self._wav: WavStream | None = None  # a file, read as it plays
        self._device: int | None = None  # the live device asked for (None: the default)
        self._pos = 0  # next sample to deliver, at 16 kHz
        self._pa: Any = None  # pyaudio.PyAudio, when live
        self._stream: Any = None  # its input stream
        self._format: tuple[Any, int] = (np.float32, 1)  # (dtype, channels) of a read
        self._frames = 0  # device frames per read
        self._resampler: Resampler | None = None  # device rate -> 16 kHz
        self._lock = threading.Lock()
        self._reading = False  # a read is in progress (close waits for it to return)
        self._closed = False

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def from_wav(cls, path: str | os.PathLike, block_ms: int = DEFAULT_BLOCK_MS) -> "Microphone":
        """A WAV file, read as it plays; a bad file raises BadInput here, not mid-stream."""
        mic = cls(str(path), block_ms)
        mic._wav = WavStream(path)
        mic.total_samples = mic._wav.total_samples
        mic.device_rate = mic._wav.info.rate
        return mic

    @classmethod
    def live(cls, device: int | None = None, block_ms: int = DEFAULT_BLOCK_MS) -> "Microphone":
        """A PyAudio input device (None: the default one) at its default rate.

        Opens 1 channel if it can, else all of its input channels mixed down; float32
        if it can, else int16. Raises DeviceFailure("no microphone: ...") when PyAudio is
        missing, there is no such input device or it does not open.
        """
        mic = cls("", block_ms)
        mic.live = True
        mic.overflows = None
        mic.total_samples = None
        mic._device = device
        try:
            mic._open_live(device)
        except BaseException:
            mic.close()
            raise
        return mic

    def _open_live(self, device: int | None) -> None:
        try:
            import pyaudio
        except ImportError:
            raise DeviceFailure(f"no microphone: {NO_PYAUDIO}") from None
        try:
            with quiet_stderr():
                self._pa = pyaudio.PyAudio()
        except Exception as exc:
            reason = _one_line(exc)
            raise DeviceFailure(f"no microphone: PyAudio failed to start ({reason})") from None
        try:
            if device is None:
                info = self._pa.get_default_input_device_info()
            else:
                info = self._pa.get_device_info_by_index(int(device))
        except (OSError, ValueError) as exc:
            which = "no default input device" if device is None else f"no device {device}"
            raise DeviceFailure(f"no microphone: {which} ({_one_line(exc)})") from None
        index = int(info["index"])
        self.name = f"{index}: {info['name']}"
        max_channels = int(info.get("maxInputChannels", 0))
        if max_channels < 1:
            raise DeviceFailure(f"no microphone: device {self.name} has no input channels")
        rate = int(round(float(info.get("defaultSampleRate", 0))))
        if rate <= 0:
            raise DeviceFailure(f"no microphone: device {self.name} reports no sample rate")
        self.device_rate = rate
        self._frames = max(1, round(self.block_samples * rate / SAMPLE_RATE))
        formats = ((pyaudio.paFloat32, np.float32), (pyaudio.paInt16, np.int16))
        attempts = [(ch, pa_fmt, dtype)
                    for ch in dict.fromkeys((1, max_channels)) for pa_fmt, dtype in formats]
        error = "no format to try"
        for channels, pa_fmt, dtype in attempts:
            try:
                with quiet_stderr():
                    self._stream = self._pa.open(
                        rate=rate, channels=channels, format=pa_fmt, input=True,
                        input_device_index=index, frames_per_buffer=self._frames)
            except (OSError, ValueError) as exc:
                error = _one_line(exc)
                continue
            self._format = (dtype, channels)
            self._resampler = Resampler(rate, SAMPLE_RATE)
            return
        raise DeviceFailure(f"no microphone: device {self.name} does not open at "
                            f"{rate} Hz ({error})")

    # -- reading ----------------------------------------------------------------------

    def blocks(self) -> Iterator[AudioBlock]:
        """Yield blocks of `block_samples` (a file's last may be shorter) until the end.

        A file ends at its end; a live device when `close()` is called. Raises
        DeviceGone when a read fails (`reopen`, then `blocks` again, goes on).
        """
        if self._closed:
            raise DeviceFailure(f"microphone {self.name} is closed")
        if self.live:
            yield from self._live_blocks()
            return
        while not self._closed:
            try:
                samples = self._read_file(self.block_samples)
            except OSError as exc:
                if self._closed:
                    return
                raise DeviceGone(f"microphone {self.name} stopped: "
                                 f"{exc.strerror or exc}") from None
            if not len(samples):
                return
            start, self._pos = self._pos, self._pos + len(samples)
            yield AudioBlock(samples=samples, offset=start)

    def _read_file(self, n: int) -> np.ndarray:
        """The file's next `n` samples (fewer at its end); OSError when it cannot be read."""
        if self._wav is None:
            raise OSError(f"{self.name}: not a file")
        return self._wav.read(n)

    def reopen(self) -> None:
        """Open the device or file again after `DeviceGone`, to go on where it stopped.

        Raises DeviceFailure while it is still away, BadInput if a file came back as
        another kind of recording."""
        if self._closed:
            raise DeviceFailure(f"microphone {self.name} is closed")
        if self._wav is not None:
            self._wav.reopen()
        elif self.live:
            self._release()
            self._open_live(self._device)
        else:
            raise DeviceFailure(f"microphone {self.name} cannot be opened again")

    def _read(self) -> np.ndarray | None:
        """One read from the device as (frames,) float32 mono, or None once closed."""
        with self._lock:
            if self._closed or self._stream is None:
                return None
            self._reading = True
        try:
            raw = self._stream.read(self._frames, exception_on_overflow=False)
        except Exception as exc:
            if self._closed:
                return None
            raise DeviceGone(f"microphone {self.name} stopped: {_one_line(exc)}") from None
        finally:
            with self._lock:
                self._reading = False
        dtype, channels = self._format
        x = np.frombuffer(raw, dtype=dtype).astype(np.float32)
        if dtype == np.int16:
            x /= 32768
        if len(x) % channels:
            raise DeviceFailure(f"microphone {self.name} stopped: read {len(x)} samples, "
                                f"not a whole number of {channels}-channel frames")
        return x.reshape(-1, channels).mean(axis=1) if channels > 1 else x

    def _live_blocks(self) -> Iterator[AudioBlock]:
        n, resampler = self.block_samples, self._resampler
        assert resampler is not None
        pending = np.zeros(0, dtype=np.float32)  # resampled, not yet delivered
        try:
            while True:
                x = self._read()
                if x is None:
                    return
                pending = np.concatenate([pending, resampler.process(x)])
                while len(pending) >= n:
                    block, pending = pending[:n], pending[n:]
                    yield AudioBlock(samples=block, offset=self._pos)
                    self._pos += n
        finally:
            if self._closed:
                self._release()

    # -- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop and release the device or file; safe to call more than once, from any
        thread (a read in progress finishes first)."""
        with self._lock:
            self._closed = True
            busy = self._reading
        if self._wav is not None:
            self._wav.close()
        if not busy:
            self._release()

    def _release(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
            pa, self._pa = self._pa, None
        if stream is not None:
            with suppress(Exception):
                stream.stop_stream()
            with suppress(Exception):
                stream.close()
        if pa is not None:
            with suppress(Exception):
                pa.terminate()

    def __enter__(self) -> "Microphone":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "live" if self.live else f"{self.total_samples} samples"
        return f"Microphone({self.name!r}, {self.device_rate} Hz, {kind})"


def list_microphones() -> tuple[list[str], str]:
    """Input devices PyAudio sees, as "index: name" (the index is for `live`), and a
    one-line note. Never raises."""
    try:
        import pyaudio
    except ImportError:
        return [], NO_PYAUDIO
    except Exception as exc:  # e.g. libportaudio missing
        return [], f"pyaudio does not load ({_one_line(exc)})"
    pa = None
    try:
        with quiet_stderr():
            pa = pyaudio.PyAudio()
        names = []
        for i in range(pa.get_device_count()):
            with suppress(Exception):
                info = pa.get_device_info_by_index(i)
                if int(info.get("maxInputChannels", 0)) > 0:
                    names.append(f"{i}: {info['name']}")
        note = f"PyAudio sees {len(names)} input device{'' if len(names) == 1 else 's'}"
        with suppress(Exception):
            note += f" (default: {int(pa.get_default_input_device_info()['index'])})"
        return names, note
    except Exception as exc:
        return [], f"PyAudio failed ({_one_line(exc)})"
    finally:
        if pa is not None:
            with suppress(Exception):
                pa.terminate()
