"""Whisper's log-mel spectrogram front end, in numpy alone (no torch, librosa or scipy).

Matches openai-whisper's `whisper.audio.log_mel_spectrogram`: a 25 ms periodic-Hann
STFT every 10 ms (centred, reflect-padded, last frame dropped), power spectrum, a
Slaney mel filterbank (as `librosa.filters.mel`, i.e. whisper's `mel_filters.npz`),
log10 floored at 1e-10 and at 8 decades below the peak, then scaled by (x + 4) / 4.
"""

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000  # Hz
N_FFT = 400  # samples per STFT window (25 ms)
HOP_LENGTH = 160  # samples between STFT frames (10 ms)
CHUNK_LENGTH = 30  # seconds of audio in one encoder input
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples in a 30 s chunk
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames in a 30 s chunk
N_FREQS = N_FFT // 2 + 1  # 201 rfft bins, 0..8000 Hz
N_SAMPLES_PER_TOKEN = HOP_LENGTH * 2  # the encoder's first convolutions have stride 2
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 mel frames per second (10 ms)
TOKENS_PER_SECOND = SAMPLE_RATE // N_SAMPLES_PER_TOKEN  # 50 audio tokens per second (20 ms)

assert N_SAMPLES % HOP_LENGTH == 0 and SAMPLE_RATE % N_SAMPLES_PER_TOKEN == 0

LOG_FLOOR = 1e-10  # power floor before log10
DYNAMIC_RANGE = 8.0  # decades kept below the loudest mel bin
_BLOCK_FRAMES = 256  # STFT frames transformed at a time

# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, log above.
_F_SP = 200.0 / 3  # Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15 mel
_LOGSTEP = np.log(6.4) / 27.0  # mel step in the log part


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Frequencies in Hz to Slaney mels (float64)."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    log_part = hz >= _MIN_LOG_HZ
    return np.where(log_part,
                    _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP,
                    mel)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Slaney mels to frequencies in Hz (float64); the inverse of `hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    hz = _F_SP * mel
    log_part = mel >= _MIN_LOG_MEL
    return np.where(log_part, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), hz)


def mel_band_edges(n_mels: int) -> np.ndarray:
    """(n_mels + 2,) Hz: band i rises from edge i, peaks at edge i+1, falls to edge i+2."""
    mels = np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), n_mels + 2)
    return mel_to_hz(mels)


@lru_cache(maxsize=8)  # 80 and 128 are the ones whisper uses
def mel_filters(n_mels: int) -> np.ndarray:
    """(n_mels, N_FREQS) float32, read-only: the mel filterbank whisper ships.

    Same as `librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels)`: triangles on the
    Slaney mel scale from 0 to 8000 Hz, each scaled to unit area in Hz (2 / bandwidth).
    Rows multiply a power spectrum (rfft bins k * 40 Hz) to give mel band power.
    """
    if int(n_mels) != n_mels or n_mels < 1:
        raise ValueError(f"n_mels must be a positive integer, got {n_mels!r}")
    n_mels = int(n_mels)
    fft_hz = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE)  # (N_FREQS,)
    edges = mel_band_edges(n_mels)  # (n_mels + 2,)
    width = np.diff(edges)  # (n_mels + 1,)
    ramps = edges[:, None] - fft_hz[None, :]  # (n_mels + 2, N_FREQS)
    rising = -ramps[:-2] / width[:-1, None]
    falling = ramps[2:] / width[1:, None]
    # librosa stores the triangles as float32, then scales them in place.
    weights = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.flags.writeable = False  # shared by every caller through the cache
    return weights


@lru_cache(maxsize=1)
def hann_window() -> np.ndarray:
    """(N_FFT,) float64, read-only: the periodic Hann window (torch.hann_window(N_FFT))."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    window.flags.writeable = False
    return window


def pad_or_trim(array: np.ndarray, length: int = N_SAMPLES, *, axis: int = -1) -> np.ndarray:
    """`array` cut or zero-padded at the end to `length` along `axis` (default: the last).

    Returns the input itself when it already has that length, like whisper's.
    """
    array = np.asarray(array)
    n = array.shape[axis]
    if n > length:
        array = array.take(indices=range(length), axis=axis)
    elif n < length:
        widths = [(0, 0)] * array.ndim
        widths[axis] = (0, length - n)
        array = np.pad(array, widths)
    return array


def power_spectrogram(audio: np.ndarray, padding: int = 0) -> np.ndarray:
    """(N_FREQS, n_frames) float32 |STFT|^2 of (n,) samples plus `padding` zeros.

    The result is a transposed view of a C-ordered (n_frames, N_FREQS) array.

    n_frames = (n + padding) // HOP_LENGTH: frame t is centred on sample t * HOP_LENGTH
    (the signal is reflect-padded by N_FFT // 2 at both ends, as torch.stft with
    center=True), and whisper drops the one frame after the last full hop.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D (n,) samples, got shape {audio.shape}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    total = len(audio) + padding
    n_frames = total // HOP_LENGTH
    if n_frames == 0:
        return np.zeros((N_FREQS, 0), dtype=np.float32)
    if padding:
        audio = np.concatenate([audio, np.zeros(padding, dtype=np.float32)])
    # total >= HOP_LENGTH > 1, so reflect padding is defined (numpy reflects repeatedly
    # when total <= N_FFT // 2, where torch.stft refuses).
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    power = np.empty((n_frames, N_FREQS), dtype=np.float32)
    window = hann_window()
    # Blocks of frames keep the float64 temporaries in cache: about twice as fast as one
    # pass over 30 s. float64 also makes numpy's rfft faster than float32 does.
    for start in range(0, n_frames, _BLOCK_FRAMES):
        block = slice(start, start + _BLOCK_FRAMES)
        magnitude = np.abs(np.fft.rfft(frames[block] * window, axis=-1))
        magnitude *= magnitude
        power[block] = magnitude
    return power.T


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = 80, padding: int = 0) -> np.ndarray:
    """(n_mels, n_frames) float32 log-mel spectrogram of (n,) float32 16 kHz samples.

    Whisper's encoder input features: n_frames = (n + padding) // HOP_LENGTH (one per
    10 ms; 0 frames for under 10 ms of audio), `padding` zeros appended to the audio
    first (whisper's transcribe passes N_SAMPLES). Values are log10 of mel band power,
    floored at 8 decades below the spectrogram's maximum and mapped by (x + 4) / 4: so
    max - min <= 2, speech peaks near 1 to 1.5, and silence gives -1.5 everywhere.
    Accepts any length: under N_FFT // 2 samples numpy reflects repeatedly where
    torch.stft (so whisper) raises unless `padding` makes the audio long enough.
    """
    filters = mel_filters(n_mels)  # validates n_mels even when there are no frames
    power = power_spectrogram(audio, padding)
    if power.shape[1] == 0:
        return np.zeros((n_mels, 0), dtype=np.float32)
    log_spec = filters @ power  # (n_mels, n_frames) mel band power
    np.maximum(log_spec, np.float32(LOG_FLOOR), out=log_spec)
    np.log(log_spec, out=log_spec)  # ln then scale: several times faster than np.log10
    log_spec *= np.float32(1 / np.log(10))
    np.maximum(log_spec, log_spec.max() - np.float32(DYNAMIC_RANGE), out=log_spec)
    log_spec += np.float32(4.0)
    log_spec /= np.float32(4.0)
    return log_spec
