"""A WAV file read as it plays: 16 kHz mono decoded a piece at a time.

Memory stays bounded however long the file: the audio is read with `pread` (not mapped:
mapped pages would count as the process's own memory) `STREAM_BLOCK_S` at a time and
resampled by the streaming `Resampler`, whose output does not depend on the chunking, so
the samples are those `load_audio` returns for the whole file. The header is checked as
`load_audio` checks it (format, rate bounds, sizes) and, for float files, every sample is
checked to be finite, all when the file is opened: a bad file fails there, not mid-stream.
"""

import math
import os
from pathlib import Path

import numpy as np

from glasses.device.audio import (
    SAMPLE_RATE,
    WAVE_FORMAT_IEEE_FLOAT,
    Resampler,
    WavInfo,
    _frames,
    to_mono,
    wav_info,
)
from glasses.device.errors import BadInput, DeviceGone

STREAM_BLOCK_S = 0.5  # seconds of the file decoded at a time
CHECK_BLOCK_S = 10  # float files are checked for NaN and inf this many seconds at a time


class _FileBytes:
    """Byte ranges of an open file, sliced like `bytes` (what `_frames` reads from)."""

    def __init__(self, fd: int):
        self.fd = fd

    def __getitem__(self, span: slice) -> bytes:
        return os.pread(self.fd, span.stop - span.start, span.start)


class WavStream:
    """A WAV file as 16 kHz mono float32, `read(n)` samples at a time.

    `total_samples` is how many come out in all (at 16 kHz); `info` the file's header.
    Raises BadInput at open for anything `load_audio` refuses; `read` raises OSError when
    the file cannot be read (the microphone calls that a device gone).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.info = wav_info(self.path)
        self._fd = self._open()
        try:
            if self.info.code == WAVE_FORMAT_IEEE_FLOAT:
                self._check_finite()
        except BaseException:
            self.close()
            raise
        rate, frames = self.info.rate, self.info.frames
        self.total_samples = frames if rate == SAMPLE_RATE else math.ceil(
            frames * SAMPLE_RATE / rate)
        self._resampler = Resampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None
        self._frame = 0  # the next frame of the file to decode
        self._pending = np.zeros(0, np.float32)  # decoded at 16 kHz, not yet read
        self._flushed = False

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise DeviceGone(f"{self.path}: the file is gone") from None
        except OSError as exc:
            raise DeviceGone(f"{self.path}: cannot read ({exc.strerror or exc})") from None

    def _check_finite(self) -> None:
        data, block = _FileBytes(self._fd), CHECK_BLOCK_S * self.info.rate
        for start in range(0, self.info.frames, block):
            _frames(self.path, data, self.info, start, min(self.info.frames, start + block))

    def read(self, n: int) -> np.ndarray:
        """The next `n` samples (fewer only at the end; none after it), (k,) float32."""
        block = max(1, int(STREAM_BLOCK_S * self.info.rate))
        while len(self._pending) < n and not self._flushed:
            if self._fd < 0:
                raise OSError(f"{self.path}: closed")
            stop = min(self.info.frames, self._frame + block)
            if self._frame < stop:
                mono = to_mono(_frames(self.path, _FileBytes(self._fd), self.info, self._frame,
                                       stop))
                out = self._resampler.process(mono) if self._resampler else mono
                self._frame = stop
            else:
                out = self._resampler.flush() if self._resampler and self.info.frames else None
                self._flushed = True
            if out is not None and len(out):
                self._pending = np.concatenate([self._pending, out])
        samples, self._pending = self._pending[:n], self._pending[n:]
        return samples

    def reopen(self) -> None:
        """Open the file again where reading stopped: DeviceGone while it is missing,
        BadInput if it came back as another kind of file."""
        self.close()
        try:
            info = wav_info(self.path)
        except BadInput:
            if not self.path.exists():
                raise DeviceGone(f"{self.path}: the file is still gone") from None
            raise
        if _format(info) != _format(self.info):
            raise BadInput(f"{self.path}: came back as another recording (was {_says(self.info)}, "
                           f"now {_says(info)})")
        self._fd = self._open()

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            os.close(fd)


def _format(info: WavInfo) -> tuple:
    return info.code, info.channels, info.rate, info.bits, info.offset


def _says(info: WavInfo) -> str:
    return f"{info.channels} channel(s) of {info.bits}-bit at {info.rate} Hz"
