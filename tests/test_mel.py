"""Whisper's log-mel front end in numpy: filter properties, framing, edge cases, speed,
and (when openai-whisper is installed) agreement with whisper's own torch version."""

import os
from pathlib import Path

import numpy as np
import pytest

from glasses.device.audio import load_audio
from glasses.models.mel import (
    FRAMES_PER_SECOND,
    HOP_LENGTH,
    N_FFT,
    N_FRAMES,
    N_FREQS,
    N_SAMPLES,
    SAMPLE_RATE,
    TOKENS_PER_SECOND,
    hz_to_mel,
    log_mel_spectrogram,
    mel_band_edges,
    mel_filters,
    mel_to_hz,
    pad_or_trim,
    power_spectrogram,
)

JFK = Path(__file__).resolve().parents[1].parent / "shared/data/real-speech/jfk.wav"
BIN_HZ = SAMPLE_RATE / N_FFT  # 40 Hz between rfft bins
SILENCE = (np.log10(1e-10) + 4) / 4  # -1.5: the value of all-zero input

# Entries of whisper's assets/mel_filters.npz (librosa.filters.mel): (row, column, value).
STORED = {
    80: [(0, 1, 0.0248625949), (0, 2, 0.0), (7, 7, 0.0139357522), (7, 8, 0.0109268408),
         (25, 24, 0.0208740104), (25, 25, 0.00404042564), (40, 43, 0.0147355665),
         (40, 44, 0.0065181898), (70, 136, 0.00457197428), (70, 137, 0.00407972885),
         (79, 192, 0.00316471187), (79, 193, 0.00314131333)],
    128: [(0, 1, 0.0123739867), (0, 2, 0.0), (7, 5, 0.0191033799), (7, 6, 0.0),
          (25, 15, 0.0282229595), (25, 16, 0.0), (64, 43, 0.0180915184), (64, 44, 0.0),
          (118, 157, 0.00633910485), (118, 158, 0.00512815686), (127, 195, 0.0050416016),
          (127, 196, 0.00445712078)],
}
STORED_SUM = {80: 1.99902409239, 128: 3.19098554094}


def tone(freq: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def generated_signals() -> dict[str, np.ndarray]:
    """Deterministic test signals, float32 at 16 kHz."""
    rng = np.random.default_rng(3)
    n = 3 * SAMPLE_RATE
    t = np.arange(n) / SAMPLE_RATE
    chirp = 0.5 * np.sin(2 * np.pi * (50 * t + (7900 - 50) / 6 * t**2))
    signals = {
        "tone440": tone(440, 3.0),
        "quiet_tone": tone(1000, 3.0, amp=1e-3),
        "chirp": chirp,
        "noise": rng.normal(0, 0.1, n),
        "tone_in_noise": 0.3 * np.sin(2 * np.pi * 300 * t) + rng.normal(0, 1e-3, n),
        "square": np.sign(np.sin(2 * np.pi * 200 * t)),
        "clicks": (np.arange(n) % 4000 == 0).astype(np.float64),
        "odd_length": rng.normal(0, 0.1, 12345),
        "short_201": rng.normal(0, 0.1, 201),
    }
    return {k: v.astype(np.float32) for k, v in signals.items()}


# -- constants and the mel scale -------------------------------------------------------


def test_constants_are_whispers():
    assert (N_FFT, HOP_LENGTH, N_SAMPLES, N_FRAMES) == (400, 160, 480000, 3000)
    assert (N_FREQS, FRAMES_PER_SECOND, TOKENS_PER_SECOND) == (201, 100, 50)


def test_slaney_mel_scale():
    # linear below 1 kHz (3 mel per 200 Hz), logarithmic above: 6.4x in Hz is 27 mel
    np.testing.assert_allclose(hz_to_mel([0, 200, 500, 1000]), [0, 3, 7.5, 15])
    np.testing.assert_allclose(hz_to_mel([6400, 6400 * 6.4]), [42, 69])
    hz = np.linspace(0, 8000, 1001)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)
    assert np.all(np.diff(hz_to_mel(hz)) > 0)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_band_edges_equally_spaced_in_mel(n_mels):
    edges = mel_band_edges(n_mels)
    assert edges.shape == (n_mels + 2,)
    assert edges[0] == 0 and edges[-1] == pytest.approx(SAMPLE_RATE / 2)
    step = np.diff(hz_to_mel(edges))
    np.testing.assert_allclose(step, step[0], rtol=1e-9)


# -- the filterbank --------------------------------------------------------------------


@pytest.mark.parametrize("n_mels", [80, 128])
def test_filters_match_stored_librosa_values(n_mels):
    f = mel_filters(n_mels)
    assert f.shape == (n_mels, N_FREQS) and f.dtype == np.float32
    for row, col, value in STORED[n_mels]:
        assert f[row, col] == pytest.approx(value, rel=1e-6, abs=1e-9), (row, col)
    assert f.astype(np.float64).sum() == pytest.approx(STORED_SUM[n_mels], rel=1e-7)


@pytest.mark.parametrize("n_mels", [40, 80, 128])
def test_filters_are_area_normalised_triangles(n_mels):
    f = mel_filters(n_mels).astype(np.float64)
    edges = mel_band_edges(n_mels)
    freqs = np.arange(N_FREQS) * BIN_HZ
    assert np.all(f >= 0)
    for i, row in enumerate(f):
        lo, centre, hi = edges[i:i + 3]
        height = 2 / (hi - lo)  # a triangle over [lo, hi] with unit area in Hz
        support = np.flatnonzero(row)
        assert len(support) > 0, f"band {i} is empty"
        assert lo < freqs[support[0]] and freqs[support[-1]] < hi
        assert row.max() <= height * (1 + 1e-6)
        # the peak is the bin nearest the centre frequency, on one side or the other
        peak = freqs[row.argmax()]
        assert abs(peak - centre) < BIN_HZ
        # rising up to the peak, falling after it, linearly in Hz
        rising = freqs[support] <= centre
        np.testing.assert_allclose(row[support][rising],
                                   height * (freqs[support][rising] - lo) / (centre - lo),
                                   rtol=1e-6)
        np.testing.assert_allclose(row[support][~rising],
                                   height * (hi - freqs[support][~rising]) / (hi - centre),
                                   rtol=1e-6)
        if hi - lo > 10 * BIN_HZ:  # sampled finely enough for the sum to be the area
            assert row.sum() * BIN_HZ == pytest.approx(1.0, abs=0.02)


def test_filters_are_cached_and_read_only():
    f = mel_filters(80)
    assert mel_filters(80) is f
    with pytest.raises(ValueError):
        f[0, 0] = 1.0
    with pytest.raises(ValueError):
        mel_filters(0)


# -- the spectrogram without whisper ---------------------------------------------------


def naive_power(x: np.ndarray) -> np.ndarray:
    """(N_FREQS, n // HOP_LENGTH) |DFT|^2 of centred, reflect-padded Hann frames, by hand."""
    n = len(x)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    k = np.arange(N_FREQS)
    dft = np.exp(-2j * np.pi * np.outer(np.arange(N_FFT), k) / N_FFT)
    out = []
    for t in range(n // HOP_LENGTH):
        idx = t * HOP_LENGTH - N_FFT // 2 + np.arange(N_FFT)
        idx = np.where(idx < 0, -idx, idx)
        idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)
        out.append(np.abs((x[idx].astype(np.float64) * window) @ dft) ** 2)
    return np.array(out).T


def test_power_matches_a_hand_written_stft():
    rng = np.random.default_rng(5)
    t = np.arange(700 * HOP_LENGTH + 77) / SAMPLE_RATE  # several blocks of frames
    x = (0.3 * np.sin(2 * np.pi * 300 * t) + rng.normal(0, 1e-3, len(t))).astype(np.float32)
    got = power_spectrogram(x)
    want = naive_power(x)
    assert got.shape == want.shape == (N_FREQS, 700)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9 * want.max())


@pytest.mark.parametrize("n", [160, 199, 200, 201, 399, 400, 401, 16000, 16159, 16160])
def test_frame_count(n):
    x = np.random.default_rng(n).normal(0, 0.1, n).astype(np.float32)
    out = log_mel_spectrogram(x)
    assert out.shape == (80, n // HOP_LENGTH) and out.dtype == np.float32
    assert np.all(np.isfinite(out))


def test_frames_are_centred():
    # a click at sample t * HOP_LENGTH is loudest in frame t
    x = np.zeros(SAMPLE_RATE, np.float32)
    for t in (10, 37, 80):
        x[:] = 0
        x[t * HOP_LENGTH] = 1
        assert log_mel_spectrogram(x).sum(axis=0).argmax() == t


def test_tone_lands_in_the_band_at_its_frequency():
    edges = mel_band_edges(80)
    for freq in (300.0, 1000.0, 3000.0, 6000.0):
        band = log_mel_spectrogram(tone(freq)).mean(axis=1).argmax()
        assert edges[band] < freq < edges[band + 2]
        assert abs(edges[band + 1] - freq) <= 0.5 * (edges[band + 2] - edges[band])


def test_ten_times_louder_is_half_a_unit_higher():
    x = np.random.default_rng(0).normal(0, 0.01, 2 * SAMPLE_RATE).astype(np.float32)
    np.testing.assert_allclose(log_mel_spectrogram(10 * x) - log_mel_spectrogram(x), 0.5,
                               atol=1e-4)


def test_range_is_eight_decades():
    out = log_mel_spectrogram(load_audio(JFK))
    assert out.shape == (80, 1100)
    assert out.max() - out.min() == pytest.approx(2.0, abs=1e-6)  # (8 decades) / 4


def test_silence_is_a_finite_constant():
    out = log_mel_spectrogram(np.zeros(SAMPLE_RATE, np.float32))
    assert out.shape == (80, 100)
    assert np.all(out == np.float32(SILENCE))


def test_empty_audio():
    assert log_mel_spectrogram(np.zeros(0, np.float32)).shape == (80, 0)
    out = log_mel_spectrogram(np.zeros(0, np.float32), n_mels=128, padding=N_SAMPLES)
    assert out.shape == (128, N_FRAMES)
    assert np.all(out == np.float32(SILENCE))


def test_very_short_audio():
    x = np.random.default_rng(1).normal(0, 0.1, 100).astype(np.float32)
    assert log_mel_spectrogram(x).shape == (80, 0)  # less than one 10 ms hop
    out = log_mel_spectrogram(x, padding=N_SAMPLES)
    assert out.shape == (80, N_FRAMES)
    assert np.all(np.isfinite(out))
    assert out[:, 0].max() > SILENCE + 1  # the 100 samples are in the first frame
    assert np.all(out[:, 5:] == out.max() - 2.0)  # the rest is floored padding


def test_inputs_are_checked():
    with pytest.raises(ValueError):
        log_mel_spectrogram(np.zeros((2, 1000), np.float32))
    with pytest.raises(ValueError):
        log_mel_spectrogram(np.zeros(1000, np.float32), padding=-1)
    with pytest.raises(ValueError):
        log_mel_spectrogram(np.zeros(1000, np.float32), n_mels=0)
    # float64 input is fine and gives float32 out
    assert log_mel_spectrogram(np.zeros(1000)).dtype == np.float32


def test_pad_or_trim():
    x = np.arange(10, dtype=np.float32)
    assert pad_or_trim(x, 10) is x
    np.testing.assert_array_equal(pad_or_trim(x, 4), x[:4])
    np.testing.assert_array_equal(pad_or_trim(x, 12), np.r_[x, 0, 0])
    assert pad_or_trim(x).shape == (N_SAMPLES,)
    m = np.ones((80, 3100), np.float32)
    assert pad_or_trim(m, N_FRAMES).shape == (80, N_FRAMES)
    assert pad_or_trim(m, 5, axis=0).shape == (5, 3100)


# -- against whisper itself ------------------------------------------------------------


@pytest.fixture(scope="module")
def whisper_audio():
    return pytest.importorskip("whisper.audio")


@pytest.mark.parametrize("n_mels", [80, 128])
def test_filters_equal_whispers(whisper_audio, n_mels):
    path = os.path.join(os.path.dirname(whisper_audio.__file__), "assets", "mel_filters.npz")
    with np.load(path) as npz:
        want = npz[f"mel_{n_mels}"]
    np.testing.assert_allclose(mel_filters(n_mels), want, rtol=0, atol=1e-6)


def assert_like_whisper(whisper_audio, x, n_mels, padding, atol=1e-4):
    want = whisper_audio.log_mel_spectrogram(x, n_mels, padding=padding).numpy()
    got = log_mel_spectrogram(x, n_mels, padding=padding)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("padding", [0, N_SAMPLES])
def test_jfk_like_whisper(whisper_audio, n_mels, padding):
    assert_like_whisper(whisper_audio, load_audio(JFK), n_mels, padding)


@pytest.mark.parametrize("name", list(generated_signals()))
@pytest.mark.parametrize("padding", [0, N_SAMPLES])
def test_generated_like_whisper(whisper_audio, name, padding):
    assert_like_whisper(whisper_audio, generated_signals()[name], 80, padding)


def test_short_and_empty_like_whisper(whisper_audio):
    # torch.stft needs more than N_FFT // 2 samples, so whisper needs padding here
    x = np.random.default_rng(1).normal(0, 0.1, 100).astype(np.float32)
    assert_like_whisper(whisper_audio, x, 80, N_SAMPLES)
    assert_like_whisper(whisper_audio, np.zeros(0, np.float32), 80, N_SAMPLES)
    assert_like_whisper(whisper_audio, np.zeros(SAMPLE_RATE, np.float32), 128, 0)


def test_pad_or_trim_like_whisper(whisper_audio):
    x = np.random.default_rng(2).normal(size=(3, 1234)).astype(np.float32)
    for length in (100, 1234, 5000):
        for axis in (-1, 0, 1):
            np.testing.assert_array_equal(pad_or_trim(x, length, axis=axis),
                                          whisper_audio.pad_or_trim(x, length, axis=axis))
