"""Microphone from WAV files (real files, no mocks); live devices only where present."""

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
