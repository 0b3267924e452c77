"""Audio files and sample rates: read any common WAV, mix to mono, resample to 16 kHz.

Samples are float32 in [-1, 1]. `read_wav` is a hand-written RIFF/WAVE parser (the
`wave` module cannot read float WAVs); `Resampler` is a streaming windowed-sinc
resampler whose output does not depend on how the input is chunked.
"""

import math
import mmap
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glasses.device.errors import BadInput

SAMPLE_RATE = 16000  # Hz, the rate of the whole pipeline

# -- WAV format ------------------------------------------------------------------------

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# The sub-format GUID of an extensible WAV is the format code followed by these bytes.
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_STREAMING_SIZES = (0, 0xFFFFFFFF)  # data sizes a writer that cannot seek back leaves
_PCM_BITS = (8, 16, 24, 32)
_FLOAT_BITS = (32, 64)
_FMT_MIN = 16  # bytes of a plain fmt chunk
_FMT_EXTENSIBLE = 40  # bytes of a WAVE_FORMAT_EXTENSIBLE fmt chunk
_INT16_SCALE = 32768  # full scale of 16-bit PCM


MIN_RATE, MAX_RATE = 4_000, 384_000  # Hz: a WAV declaring another rate is refused
MAX_LOAD_S = 2 * 3600  # seconds of audio loaded whole at most (2 h at 16 kHz: 460 MB)
DECODE_BLOCK_S = 10  # long files are decoded this many seconds at a time


def _read_bytes(path: Path) -> bytes | mmap.mmap:
    """The file's bytes, mapped (not read) when it has any: only what is used is read."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder, not a WAV file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from None


def _looks_like_chunks(data: bytes, pos: int) -> bool:
    """Whether data[pos:] is a run of well-formed RIFF chunks ending exactly at EOF."""
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        if not all(32 <= c < 127 for c in cid):
            return False
        pos += 8 + size + (size & 1)
    return pos in (len(data), len(data) + 1)  # the last pad byte may be missing


def _parse_fmt(path: Path, body: bytes) -> tuple[int, int, int, int]:
    """(format code, channels, sample rate, bits per sample) from a fmt chunk's body."""
    if len(body) < _FMT_MIN:
        raise BadInput(f"{path}: fmt chunk is {len(body)} bytes, expected at least {_FMT_MIN}")
    code, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", body)
    if code == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < _FMT_EXTENSIBLE:
            raise BadInput(f"{path}: extensible fmt chunk is {len(body)} bytes, "
                           f"expected {_FMT_EXTENSIBLE}")
        code = struct.unpack_from("<H", body, 24)[0]
        if body[26:40] != _GUID_TAIL:
            raise BadInput(f"{path}: unsupported WAV sub-format GUID {body[24:40].hex()}")
    if channels == 0:
        raise BadInput(f"{path}: WAV declares 0 channels")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise BadInput(f"{path}: WAV declares a sample rate of {rate} Hz; "
                       f"{MIN_RATE}-{MAX_RATE} Hz are accepted")
    if code == WAVE_FORMAT_PCM and bits not in _PCM_BITS:
        raise BadInput(f"{path}: unsupported PCM bit depth {bits} (supported: 8/16/24/32)")
    if code == WAVE_FORMAT_IEEE_FLOAT and bits not in _FLOAT_BITS:
        raise BadInput(f"{path}: unsupported float bit depth {bits} (supported: 32/64)")
    if code not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT):
        raise BadInput(f"{path}: unsupported WAV format code 0x{code:04X} "
                       "(supported: PCM and IEEE float)")
    if align != channels * bits // 8:
        raise BadInput(f"{path}: block align {align} does not match {channels} channel(s) "
                       f"of {bits}-bit samples")
    return code, channels, rate, bits


def _decode(raw: bytes, code: int, bits: int) -> np.ndarray:
    """Interleaved little-endian samples as float32 in [-1, 1] (floats are clipped)."""
    if code == WAVE_FORMAT_IEEE_FLOAT:
        return np.frombuffer(raw, dtype=f"<f{bits // 8}").astype(np.float32)
    if bits == 8:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128
    if bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = (v << 8) >> 8  # sign-extend the top byte
        return v.astype(np.float32) / (1 << 23)
    x = np.frombuffer(raw, dtype=f"<i{bits // 8}")
    return (x / float(1 << (bits - 1))).astype(np.float32)


@dataclass(frozen=True)
class WavInfo:
    """What a WAV file's header says, checked against its size."""

    code: int
    channels: int
    rate: int
    bits: int
    offset: int  # of the audio, in bytes
    size: int  # bytes of audio

    @property
    def frames(self) -> int:
        return self.size // (self.channels * self.bits // 8)

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def wav_info(path: str | os.PathLike) -> WavInfo:
    """The header of a WAV file, read without decoding its audio; BadInput if unusable."""
    return _info(Path(path), _read_bytes(Path(path)))


def _info(path: Path, data) -> WavInfo:
    if not data:
        raise BadInput(f"{path}: empty file")
    if len(data) >= 4 and data[:4] in (b"RIFX", b"RF64"):
        raise BadInput(f"{path}: {data[:4].decode()} WAV files are not supported")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise BadInput(f"{path}: not a WAV file (no RIFF/WAVE header)")

    fmt: tuple[int, int, int, int] | None = None
    audio: tuple[int, int] | None = None  # (offset, size) of the data chunk's body
    pos = 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if cid == b"data":
            held = len(data) - body
            if size in _STREAMING_SIZES and (size or not _looks_like_chunks(data, body)):
                size = held  # written by a streaming writer: the audio runs to the end
            elif size > held:
                raise BadInput(f"{path}: truncated WAV: data chunk declares {size} bytes "
                               f"of audio, file holds {held}")
            audio = (body, size)
        elif body + size > len(data):
            if fmt is not None and audio is not None:
                break  # a cut-off chunk after the audio (metadata) costs nothing
            raise BadInput(f"{path}: truncated WAV: {cid.decode(errors='replace')!r} chunk "
                           f"declares {size} bytes, file holds {len(data) - body}")
        elif cid == b"fmt ":
            fmt = _parse_fmt(path, data[body:body + size])
        pos = body + size + (size & 1)
    if fmt is None:
        raise BadInput(f"{path}: not a usable WAV file (no fmt chunk)")
    if audio is None:
        raise BadInput(f"{path}: not a usable WAV file (no data chunk)")

    code, channels, rate, bits = fmt
    offset, size = audio
    frame = channels * bits // 8
    if size % frame:
        raise BadInput(f"{path}: truncated WAV: {size} bytes of audio is not a whole number "
                       f"of {frame}-byte frames")
    return WavInfo(code, channels, rate, bits, offset, size)


def _frames(path: Path, data, info: WavInfo, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) as (n, channels) float32 in [-1, 1]."""
    frame = info.channels * info.bits // 8
    raw = data[info.offset + start * frame : info.offset + stop * frame]
    x = _decode(raw, info.code, info.bits)
    if info.code == WAVE_FORMAT_IEEE_FLOAT:
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise BadInput(f"{path}: {bad} of {x.size} samples are not finite (NaN or inf)"
                           + (f" in frames {start}-{stop}" if start or stop < info.frames else ""))
        np.clip(x, -1.0, 1.0, out=x)
    return x.reshape(-1, info.channels)


def read_wav(path: str | os.PathLike, max_s: float = MAX_LOAD_S) -> tuple[np.ndarray, int]:
    """Read a WAV file: (samples (n_samples, n_channels) float32 in [-1, 1], sample rate Hz).

    Supports PCM 8 (unsigned), 16, 24 and 32-bit, IEEE float 32/64 and the extensible
    variants of those. Float samples outside [-1, 1] are clipped. Raises BadInput naming
    the file for anything it cannot read exactly (a truncated file is an error), and for
    one longer than `max_s` seconds (checked before any audio is decoded).
    """
    path = Path(path)
    data = _read_bytes(path)
    info = _info(path, data)
    _check_length(path, info, max_s)
    return _frames(path, data, info, 0, info.frames), info.rate


def _check_length(path: Path, info: WavInfo, max_s: float) -> None:
    if info.seconds > max_s:
        raise BadInput(f"{path}: {_duration(info.seconds)} of audio; at most "
                       f"{_duration(max_s)} are accepted here")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    h, m = divmod(round(seconds / 60), 60)
    return f"{h} h {m} min" if h else f"{m} min"


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write (n,) or (n, channels) float samples as 16-bit PCM, clipped to [-1, 1].

    Written to a temporary file in the same folder and renamed into place, so `path`
    never holds a half-written file.
    """
    path = Path(path)
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"samples must be (n,) or (n, channels), got shape {x.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    pcm = np.clip(np.round(x * _INT16_SCALE), -_INT16_SCALE, _INT16_SCALE - 1)
    raw = pcm.astype("<i2").tobytes()
    channels = x.shape[1]
    align = channels * 2
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(raw), b"WAVE",
        b"fmt ", _FMT_MIN, WAVE_FORMAT_PCM, channels, sample_rate, sample_rate * align, align, 16,
        b"data", len(raw),
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make a shared recording private
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(raw)
            if len(raw) & 1:
                f.write(b"\x00")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_mono(x: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) -> (n,) float32, averaging the channels."""
    x = np.asarray(x)
    if x.ndim == 1:
        return x.astype(np.float32, copy=False)
    return x.mean(axis=1, dtype=np.float64).astype(np.float32)


# -- resampling ------------------------------------------------------------------------

CUTOFF = 0.95  # anti-aliasing cutoff, as a fraction of the lower Nyquist frequency
ZERO_CROSSINGS = 32  # of the sinc on each side of its centre; sets the transition width
KAISER_BETA = 8.6  # Kaiser window shape: about 86 dB stop-band attenuation
MAX_MATRIX = 4_000_000  # floats in the polyphase matrix; larger -> interpolated taps
FINE_PHASES = 1024  # taps tabulated per input sample for irregular ratios (e.g. 44101 Hz)
_GROUPS_PER_MATMUL = 2048  # bounds the memory of one-shot resampling of long audio
_OUTPUTS_PER_BLOCK = 4096  # likewise for the direct (irregular ratio) path


def _kernel(tau: np.ndarray, half: int, wc: float) -> np.ndarray:
    """Kaiser-windowed sinc at `tau` input samples from its centre.

    `wc` is the cutoff in cycles per input sample, `half` the window's half width.
    """
    u = np.clip(1.0 - (tau / half) ** 2, 0.0, None)
    return 2 * wc * np.sinc(2 * wc * tau) * np.i0(KAISER_BETA * np.sqrt(u)) / np.i0(KAISER_BETA)


class Resampler:
    """Streaming band-limited resampler from `sr_in` to `sr_out` Hz (1-D float32).

    Output sample k lies at input time k * sr_in / sr_out and is computed from the input
    samples within `half` of it (zero before the start and after the end), so the
    output is the same however the input is chunked. `process` returns what can be
    computed so far (latency: `half` input samples); `flush` returns the rest and
    resets the resampler. In total, ceil(n * sr_out / sr_in) samples come out.
    """

    def __init__(self, sr_in: int, sr_out: int):
        sr_in, sr_out = int(round(sr_in)), int(round(sr_out))
        if sr_in <= 0 or sr_out <= 0:
            raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
        self.sr_in, self.sr_out = sr_in, sr_out
        g = math.gcd(sr_in, sr_out)
        self._up, self._down = sr_out // g, sr_in // g  # output k at input k * down / up
        self._wc = CUTOFF * min(sr_in, sr_out) / 2 / sr_in  # cycles per input sample
        self.half = math.ceil(ZERO_CROSSINGS / (2 * self._wc)) if sr_in != sr_out else 0
        self._taps = 2 * self.half
        self._matrix = self._polyphase_matrix()
        self._fine: np.ndarray | None = None  # (FINE_PHASES + 1, taps), when no matrix
        if self._matrix is None and self.half:
            fine = self._row_taps(np.arange(FINE_PHASES + 1) / FINE_PHASES)
            self._fine = fine.astype(np.float32)
        self._reset()

    def _reset(self) -> None:
        self._buf = np.zeros(max(self.half - 1, 0), dtype=np.float32)
        self._buf_start = -len(self._buf)  # input index of _buf[0]; zeros before the start
        self._n_in = 0  # input samples received
        self._k = 0  # next output sample

    def _row_taps(self, frac: np.ndarray) -> np.ndarray:
        """(len(frac), taps) weights for outputs at fractional offsets `frac`, rows sum to 1."""
        tau = frac[:, None] + (self.half - 1) - np.arange(self._taps)
        w = _kernel(tau, self.half, self._wc)
        return w / w.sum(axis=1, keepdims=True)

    def _polyphase_matrix(self) -> np.ndarray | None:
        """(span, up) matrix mapping one group of `down` inputs to `up` outputs, or None.

        Outputs k = g*up + p (p < up) of group g read inputs g*down - (half-1) + row.
        """
        up, down = self._up, self._down
        if self.half == 0:
            return None
        shifts = np.arange(up) * down // up
        span = int(shifts[-1]) + self._taps
        if span * up > MAX_MATRIX:
            return None
        table = self._row_taps((np.arange(up) * down % up) / up)
        m = np.zeros((span, up), dtype=np.float32)
        for p in range(up):
            m[shifts[p]:shifts[p] + self._taps, p] = table[p]
        return m

    def _first_input(self, k: int) -> int:
        """The first input index that output k (or its polyphase group) reads."""
        if self._matrix is not None:
            k -= k % self._up
        return k * self._down // self._up - (self.half - 1)

    def _compute(self, k0: int, k1: int) -> np.ndarray:
        """Outputs k0..k1-1; every input they read must be in the buffer."""
        if k1 <= k0:
            return np.zeros(0, dtype=np.float32)
        up, down = self._up, self._down
        if self._matrix is not None:
            m = self._matrix
            span = m.shape[0]
            g0, g1 = k0 // up, -(-k1 // up)
            r0 = g0 * down - (self.half - 1) - self._buf_start
            need = r0 + (g1 - g0 - 1) * down + span
            work = self._buf
            if need > len(work):  # the tail of the last group: discarded below
                work = np.concatenate([work, np.zeros(need - len(work), np.float32)])
            out = []
            for a in range(g0, g1, _GROUPS_PER_MATMUL):
                b = min(a + _GROUPS_PER_MATMUL, g1)
                s = r0 + (a - g0) * down
                rows = np.lib.stride_tricks.sliding_window_view(
                    work[s:s + (b - a - 1) * down + span], span)[::down]
                out.append((np.ascontiguousarray(rows) @ m).ravel())
            y = np.concatenate(out)
            return y[k0 - g0 * up:k1 - g0 * up]
        out = []
        for a in range(k0, k1, _OUTPUTS_PER_BLOCK):
            k = np.arange(a, min(a + _OUTPUTS_PER_BLOCK, k1), dtype=np.int64)
            first = k * down // up - (self.half - 1) - self._buf_start
            phase = (k * down % up) * (FINE_PHASES / up)
            i = phase.astype(np.int64)
            t = (phase - i).astype(np.float32)[:, None]
            w = self._fine[i] * (1 - t) + self._fine[i + 1] * t  # linear in the phase
            x = self._buf[first[:, None] + np.arange(self._taps)]
            out.append(np.einsum("ij,ij->i", x, w))
        return np.concatenate(out)

    def _advance(self, k1: int) -> np.ndarray:
        y = self._compute(self._k, k1)
        self._k = max(self._k, k1)
        drop = self._first_input(self._k) - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return y

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed (n,) input samples; return the output samples computable so far."""
        x = np.asarray(chunk, dtype=np.float32).ravel()
        if self.half == 0:
            self._n_in += len(x)
            return x.copy()
        self._buf = np.concatenate([self._buf, x])
        self._n_in += len(x)
        # output k reads inputs up to floor(k * down / up) + half
        ready = max(0, -(-(self._n_in - self.half) * self._up // self._down))
        return self._advance(ready)

    def flush(self) -> np.ndarray:
        """Return the remaining output (the input's end padded with zeros); then reset."""
        if self.half == 0:
            self._reset()
            return np.zeros(0, dtype=np.float32)
        total = -(-self._n_in * self._up // self._down)
        self._buf = np.concatenate([self._buf, np.zeros(self.half, np.float32)])
        y = self._advance(total)
        self._reset()
        return y


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (n,) float samples from `sr_in` to `sr_out` Hz in one go; float32 out."""
    r = Resampler(sr_in, sr_out)
    return np.concatenate([r.process(x), r.flush()])


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE,
               first_s: float | None = None, max_s: float = MAX_LOAD_S) -> np.ndarray:
    """A WAV file as (n,) float32 mono at `sample_rate` Hz (empty if it holds no audio).

    `first_s`: only the first this many seconds are read. A file longer than `max_s`
    (and not cut by `first_s`) is refused before anything is decoded. Long files are
    decoded a block at a time, so memory follows the output, not the file's format."""
    path = Path(path)
    data = _read_bytes(path)
    info = _info(path, data)
    frames = info.frames
    if first_s is not None:
        frames = min(frames, int(first_s * info.rate))
    else:
        _check_length(path, info, max_s)
    resampler = Resampler(info.rate, sample_rate) if info.rate != sample_rate else None
    out, block = [], DECODE_BLOCK_S * info.rate
    for start in range(0, frames, block):
        mono = to_mono(_frames(path, data, info, start, min(frames, start + block)))
        out.append(resampler.process(mono) if resampler else mono)
    if resampler is not None and frames:
        out.append(resampler.flush())
    return np.concatenate(out) if out else np.zeros(0, np.float32)
