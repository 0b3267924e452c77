"""Microphone from WAV files (real files, no mocks); live devices only where present."""

import struct
import subprocess
import sys

import numpy as np
import pytest

from glasses.device.audio import SAMPLE_RATE, load_audio, write_wav
from glasses.device.errors import BadInput, DeviceFailure
from glasses.device.microphone import AudioBlock, Microphone, list_microphones


def noise_wav(path, rate: int, seconds: float, channels: int = 1):
    rng = np.random.default_rng(rate)
    write_wav(path, rng.uniform(-0.5, 0.5, (int(rate * seconds), channels)), rate)
    return path


@pytest.mark.parametrize("rate,channels,block_ms", [
    (16000, 1, 32), (44100, 2, 32), (48000, 1, 10), (22050, 2, 20), (8000, 1, 32)])
def test_blocks_cover_the_file_exactly_once(tmp_path, rate, channels, block_ms):
    path = noise_wav(tmp_path / "speech.wav", rate, 0.5, channels)
    expected = load_audio(path)
    with Microphone.from_wav(path, block_ms=block_ms) as mic:
        assert not mic.live and mic.name == str(path)
        assert mic.total_samples == len(expected)
        blocks = list(mic.blocks())
    n = block_ms * SAMPLE_RATE // 1000
    assert all(isinstance(b, AudioBlock) for b in blocks)
    assert [b.offset for b in blocks] == list(range(0, len(expected), n))
    assert all(len(b.samples) == n for b in blocks[:-1]) and 0 < len(blocks[-1].samples) <= n
    assert all(b.samples.dtype == np.float32 and b.samples.ndim == 1 for b in blocks)
    assert np.array_equal(np.concatenate([b.samples for b in blocks]), expected)


def test_empty_file_yields_nothing(tmp_path):
    path = tmp_path / "empty_audio.wav"
    write_wav(path, np.zeros(0), 16000)
    with Microphone.from_wav(path) as mic:
        assert mic.total_samples == 0
        assert list(mic.blocks()) == []


def test_bad_file_fails_at_open(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_text("not audio")
    with pytest.raises(BadInput, match="garbage.wav"):
        Microphone.from_wav(path)
    with pytest.raises(BadInput, match="missing.wav"):
        Microphone.from_wav(tmp_path / "missing.wav")


def test_close_is_idempotent_and_stops_blocks(tmp_path):
    path = noise_wav(tmp_path / "a.wav", 16000, 0.5)
    mic = Microphone.from_wav(path)
    blocks = mic.blocks()
    first = next(blocks)
    assert first.offset == 0
    mic.close()
    mic.close()
    assert list(blocks) == []  # a closed microphone ends its stream
    with pytest.raises(DeviceFailure):
        next(mic.blocks())


def test_blocks_continue_where_they_stopped(tmp_path):
    path = noise_wav(tmp_path / "b.wav", 16000, 0.2)
    with Microphone.from_wav(path) as mic:
        it = mic.blocks()
        head = [next(it), next(it)]
        rest = list(mic.blocks())
    assert [b.offset for b in head + rest] == list(range(0, 3200, 512))


def test_list_microphones_never_raises():
    names, note = list_microphones()
    assert isinstance(names, list) and all(isinstance(n, str) for n in names)
    assert isinstance(note, str) and note and "\n" not in note


def test_live_opens_or_says_why():
    """Without PyAudio or a sound card this is a DeviceFailure naming the reason."""
    try:
        mic = Microphone.live()
    except DeviceFailure as e:
        assert str(e).startswith("no microphone: ") and "\n" not in str(e)
        return
    with mic:
        assert mic.live and mic.total_samples is None


PEAK_MB = ("\nprint(next(int(line.split()[1]) for line in open('/proc/self/status') "
           "if line.startswith('VmHWM')) // 1024)\n")  # the process's peak RSS, MB
READ_ALL = ("import sys\nfrom glasses.device.microphone import Microphone\n"
            "with Microphone.from_wav(sys.argv[1]) as mic:\n"
            "    n = sum(len(b.samples) for b in mic.blocks())\n"
            "assert n == mic.total_samples, (n, mic.total_samples)\nprint(n)\n")


def sparse_wav(path, rate: int, seconds: int) -> int:
    """A 16-bit mono WAV of `seconds` of silence, written as a sparse file (no disk used);
    its size in bytes."""
    n = rate * seconds
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + 2 * n) + b"WAVE" + b"fmt " + fmt + b"data"
                + struct.pack("<I", 2 * n))
        f.write(np.full(rate, 1000, "<i2").tobytes())  # a second of sound at the start
        f.truncate(44 + 2 * n)
    return 44 + 2 * n


@pytest.mark.slow
@pytest.mark.parametrize("rate,seconds", [(16000, 3600), (48000, 1200)])
def test_a_long_wav_plays_in_bounded_memory(tmp_path, rate, seconds):
    """An hour at 16 kHz (115 MB of file, 230 MB as float32) and 20 minutes at 48 kHz
    (resampled as it plays) are read a block at a time, whatever their length."""
    size = sparse_wav(tmp_path / "long.wav", rate, seconds)
    out = subprocess.run([sys.executable, "-c", READ_ALL + PEAK_MB, str(tmp_path / "long.wav")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    samples, peak_mb = (int(x) for x in out.stdout.split())
    assert samples == seconds * SAMPLE_RATE
    assert peak_mb < 80 and peak_mb * 2**20 < size / 1.4, (peak_mb, size)
