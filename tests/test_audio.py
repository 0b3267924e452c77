"""WAV reading/writing and resampling, on generated signals written as real WAV files."""

import struct
import time

import numpy as np
import pytest

from glasses.device.audio import (
    SAMPLE_RATE,
    Resampler,
    load_audio,
    read_wav,
    resample,
    to_mono,
    write_wav,
)
from glasses.device.errors import BadInput

RATES = (8000, 16000, 22050, 44100, 48000)
PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def sweep(rate: int, seconds: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    """(n, channels) float64 in (-1, 1): a log sine sweep 50 Hz..0.45*rate plus noise."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0, f1 = 50.0, 0.45 * rate
    k = np.log(f1 / f0) / seconds
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
    rng = np.random.default_rng(seed)
    cols = [0.6 * np.sin(phase + c) + 0.1 * rng.uniform(-1, 1, n) for c in range(channels)]
    return np.stack(cols, axis=1)


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(
        np.float32)


def encode(x: np.ndarray, code: int, bits: int) -> bytes:
    """(n, ch) floats in [-1, 1] as interleaved little-endian WAV sample bytes."""
    flat = x.ravel()
    if code == FLOAT:
        return flat.astype(f"<f{bits // 8}").tobytes()
    full = 2 ** (bits - 1)
    q = np.clip(np.round(flat * full), -full, full - 1).astype(np.int64)
    if bits == 8:
        return (q + 128).astype(np.uint8).tobytes()
    if bits == 24:
        u = (q & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
        return u.tobytes()
    return q.astype(f"<i{bits // 8}").tobytes()


def wav_bytes(audio: bytes, code: int, channels: int, rate: int, bits: int, *,
              extensible: bool = False, before: bytes = b"", after: bytes = b"",
              data_size: int | None = None) -> bytes:
    """A RIFF/WAVE file around `audio`; `before`/`after` are extra chunks."""
    align = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHHHHI", EXTENSIBLE, channels, rate, rate * align, align, bits,
                          22, bits, 0) + struct.pack("<H", code) + GUID_TAIL
    else:
        fmt = struct.pack("<HHIIHH", code, channels, rate, rate * align, align, bits)
    size = len(audio) if data_size is None else data_size
    pad = b"\x00" if len(audio) % 2 else b""
    body = (b"WAVE" + chunk(b"fmt ", fmt) + before
            + b"data" + struct.pack("<I", size) + audio + pad + after)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")


def tolerance(code: int, bits: int) -> float:
    return 1e-6 if code == FLOAT else max(1e-6, 1.01 / 2 ** (bits - 1))  # float32 out


# -- reading ---------------------------------------------------------------------------

FORMATS = [(PCM, 8), (PCM, 16), (PCM, 24), (PCM, 32), (FLOAT, 32), (FLOAT, 64)]


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("code,bits", FORMATS)
def test_read_wav_formats(tmp_path, rate, channels, code, bits):
    x = sweep(rate, 0.05, channels)
    path = tmp_path / "sweep.wav"
    path.write_bytes(wav_bytes(encode(x, code, bits), code, channels, rate, bits))
    y, sr = read_wav(path)
    assert sr == rate
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() <= tolerance(code, bits)


@pytest.mark.parametrize("code,bits", [(PCM, 16), (PCM, 24), (FLOAT, 32)])
def test_read_wav_extensible(tmp_path, code, bits):
    x = sweep(48000, 0.05, 2)
    path = tmp_path / "ext.wav"
    path.write_bytes(wav_bytes(encode(x, code, bits), code, 2, 48000, bits, extensible=True))
    y, sr = read_wav(path)
    assert sr == 48000 and y.shape == x.shape
    assert np.abs(y - x).max() <= tolerance(code, bits)


def test_read_wav_skips_unknown_chunks_with_pad_bytes(tmp_path):
    x = sweep(16000, 0.05, 1)
    odd = chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00abcd\x00")  # odd size: padded
    path = tmp_path / "list.wav"
    path.write_bytes(wav_bytes(encode(x, PCM, 16), PCM, 1, 16000, 16,
                               before=odd + chunk(b"fact", b"\x01\x02\x03"),
                               after=chunk(b"id3 ", b"xyz")))
    y, sr = read_wav(path)
    assert sr == 16000 and np.abs(y - x).max() <= tolerance(PCM, 16)


def test_read_wav_odd_data_size_with_pad_byte(tmp_path):
    x = sweep(8000, 0.01, 1)[:79]  # 79 bytes of 8-bit audio
    path = tmp_path / "odd.wav"
    path.write_bytes(wav_bytes(encode(x, PCM, 8), PCM, 1, 8000, 8, after=chunk(b"LIST", b"ab")))
    y, _ = read_wav(path)
    assert y.shape == (79, 1)


@pytest.mark.parametrize("declared", [0xFFFFFFFF, 0])
def test_read_wav_streaming_writer_sizes(tmp_path, declared):
    x = sweep(22050, 0.05, 2)
    path = tmp_path / "stream.wav"
    path.write_bytes(wav_bytes(encode(x, PCM, 16), PCM, 2, 22050, 16, data_size=declared))
    y, sr = read_wav(path)
    assert sr == 22050 and y.shape == x.shape


def test_read_wav_empty_data_followed_by_a_chunk(tmp_path):
    path = tmp_path / "nothing.wav"
    path.write_bytes(wav_bytes(b"", PCM, 1, 16000, 16, after=chunk(b"LIST", b"INFOabcd")))
    y, _ = read_wav(path)
    assert y.shape == (0, 1)


def test_read_wav_clips_float_beyond_full_scale(tmp_path):
    x = np.array([[0.5], [1.5], [-2.0]])
    path = tmp_path / "loud.wav"
    path.write_bytes(wav_bytes(encode(x, FLOAT, 32), FLOAT, 1, 16000, 32))
    y, _ = read_wav(path)
    assert y.ravel().tolist() == [0.5, 1.0, -1.0]


# -- bad input -------------------------------------------------------------------------

def bad(path) -> str:
    with pytest.raises(BadInput) as info:
        read_wav(path)
    msg = str(info.value)
    assert path.name in msg and "\n" not in msg
    return msg


def test_truncated_wav(tmp_path):
    path = tmp_path / "cut.wav"
    whole = wav_bytes(encode(sweep(16000, 0.1, 1), PCM, 16), PCM, 1, 16000, 16)
    path.write_bytes(whole[:len(whole) // 2])
    msg = bad(path)
    assert "truncated" in msg and "3200 bytes" in msg and str(len(whole) // 2 - 44) in msg


def test_text_file_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio, just some words\n")
    assert "not a WAV file" in bad(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert "empty" in bad(path)


def test_missing_file(tmp_path):
    assert "no such file" in bad(tmp_path / "absent.wav")


def test_float_wav_with_nan(tmp_path):
    x = sweep(16000, 0.01, 1)
    x[[3, 10, 20], 0] = [np.nan, np.inf, np.nan]
    path = tmp_path / "nan.wav"
    path.write_bytes(wav_bytes(encode(x, FLOAT, 32), FLOAT, 1, 16000, 32))
    assert "3 of 160 samples are not finite" in bad(path)


@pytest.mark.parametrize("code", [2, 6, 0x55])  # ADPCM, A-law, MP3
def test_unsupported_format_code(tmp_path, code):
    path = tmp_path / "adpcm.wav"
    path.write_bytes(wav_bytes(b"\x00" * 64, code, 1, 8000, 8))
    assert f"0x{code:04X}" in bad(path)


def test_unsupported_bit_depth(tmp_path):
    path = tmp_path / "twelve.wav"
    path.write_bytes(wav_bytes(b"\x00" * 64, PCM, 1, 8000, 12))
    assert "bit depth 12" in bad(path)


@pytest.mark.parametrize("channels,rate,what", [(0, 16000, "0 channels"), (1, 0, "0 Hz")])
def test_zero_channels_or_rate(tmp_path, channels, rate, what):
    path = tmp_path / "zero.wav"
    path.write_bytes(wav_bytes(b"\x00" * 64, PCM, channels, rate, 16))
    assert what in bad(path)


def test_missing_fmt_and_data_chunks(tmp_path):
    path = tmp_path / "nofmt.wav"
    body = b"WAVE" + chunk(b"data", b"\x00" * 8)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert "no fmt chunk" in bad(path)
    whole = wav_bytes(b"\x00" * 8, PCM, 1, 8000, 16)
    path = tmp_path / "nodata.wav"
    path.write_bytes(whole[:36])  # header and fmt chunk only
    assert "no data chunk" in bad(path)


def test_partial_frame(tmp_path):
    path = tmp_path / "partial.wav"
    path.write_bytes(wav_bytes(b"\x00" * 7, PCM, 2, 8000, 16))  # 4-byte frames
    assert "whole number" in bad(path)


def test_streaming_size_with_partial_frame_is_an_error(tmp_path):
    path = tmp_path / "killed.wav"
    path.write_bytes(wav_bytes(b"\x00" * 10, PCM, 1, 8000, 24, data_size=0xFFFFFFFF))
    assert "whole number" in bad(path)


# -- writing and mixing ----------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 2])
def test_write_wav_round_trip(tmp_path, channels):
    x = sweep(44100, 0.05, channels)
    path = tmp_path / "out.wav"
    write_wav(path, x[:, 0] if channels == 1 else x, 44100)
    y, sr = read_wav(path)
    assert sr == 44100 and y.shape == (len(x), channels)
    assert np.abs(y - x).max() <= 0.5 / 32768 + 1e-7
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temporary left behind


def test_write_wav_clips_and_replaces(tmp_path):
    path = tmp_path / "clip.wav"
    path.write_bytes(b"old contents")
    write_wav(path, np.array([2.0, -3.0, 0.25, np.nan]), 8000)
    y, _ = read_wav(path)
    assert y.ravel().tolist() == [32767 / 32768, -1.0, 0.25, 0.0]


def test_to_mono():
    x = np.array([[1.0, 0.0], [0.5, -0.5], [-1.0, -1.0]])
    assert to_mono(x).tolist() == [0.5, 0.0, -1.0]
    assert to_mono(x).dtype == np.float32
    assert to_mono(np.array([0.25, 0.5])).tolist() == [0.25, 0.5]


@pytest.mark.parametrize("rate", RATES)
def test_load_audio_stereo_to_16k_mono(tmp_path, rate):
    x = sweep(rate, 0.25, 2)
    path = tmp_path / "stereo.wav"
    write_wav(path, x, rate)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - round(len(x) * SAMPLE_RATE / rate)) <= 1


def test_load_audio_empty(tmp_path):
    path = tmp_path / "silence.wav"
    write_wav(path, np.zeros(0), 44100)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.shape == (0,)


# -- resampling ------------------------------------------------------------------------

def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def level_db(y: np.ndarray, x: np.ndarray) -> float:
    """RMS of y relative to x, ignoring the edges."""
    cut = len(y) // 10
    ry = np.sqrt(np.mean(y[cut:-cut] ** 2))
    return float(20 * np.log10(ry / np.sqrt(np.mean(x**2)) + 1e-20))


def test_resample_keeps_frequency():
    y = resample(tone(1000, 44100), 44100, 16000)
    assert len(y) == 16000
    assert abs(peak_hz(y, 16000) - 1000) <= 1


@pytest.mark.parametrize("freq", [100, 1000, 4000, 6500])
def test_resample_passband_is_flat(freq):
    x = tone(freq, 48000)
    assert abs(level_db(resample(x, 48000, 16000), x)) < 0.1


@pytest.mark.parametrize("sr_in,freq", [(48000, 9000), (48000, 12000), (44100, 10000)])
def test_resample_suppresses_aliases(sr_in, freq):
    """Tones above the new Nyquist frequency (8 kHz) would fold into the band."""
    x = tone(freq, sr_in)
    assert level_db(resample(x, sr_in, 16000), x) < -40


@pytest.mark.parametrize("sr_in,sr_out", [(44100, 16000), (48000, 16000), (8000, 16000),
                                          (16000, 44100), (22050, 16000), (44101, 16000)])
def test_resample_length(sr_in, sr_out):
    for n in (0, 1, 999, 12345):
        y = resample(np.zeros(n, np.float32), sr_in, sr_out)
        assert abs(len(y) - round(n * sr_out / sr_in)) <= 1


@pytest.mark.parametrize("sr_in,sr_out", [(44100, 16000), (48000, 16000), (8000, 16000),
                                          (16000, 48000), (22050, 16000), (44101, 16000)])
def test_streaming_equals_one_shot(sr_in, sr_out):
    rng = np.random.default_rng(sr_in + sr_out)
    x = sweep(sr_in, 0.3, 1, seed=1)[:, 0].astype(np.float32)
    whole = resample(x, sr_in, sr_out)
    for _ in range(3):
        r = Resampler(sr_in, sr_out)
        cuts = np.sort(rng.integers(0, len(x), size=int(rng.integers(1, 40))))
        parts = [r.process(piece) for piece in np.split(x, cuts)] + [r.flush()]
        got = np.concatenate(parts)
        assert len(got) == len(whole)
        assert np.abs(got - whole).max() < 1e-5


def test_resampler_identity_and_reuse():
    x = sweep(16000, 0.1, 1)[:, 0].astype(np.float32)
    r = Resampler(16000, 16000)
    assert np.array_equal(np.concatenate([r.process(x[:100]), r.process(x[100:]), r.flush()]), x)
    r = Resampler(44100, 16000)
    first = np.concatenate([r.process(x), r.flush()])
    again = np.concatenate([r.process(x), r.flush()])  # flush resets
    assert np.array_equal(first, again)


def test_resample_is_fast():
    x = sweep(44100, 60.0, 1)[:, 0].astype(np.float32)
    start = time.perf_counter()
    y = resample(x, 44100, 16000)
    elapsed = time.perf_counter() - start
    assert len(y) == 60 * 16000
    assert elapsed < 2.0, f"60 s at 44.1 kHz took {elapsed:.2f} s to resample"
