"""The speech evaluation set: WAV files and truth.tsv, deterministic, noise at the asked SNR."""

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest

from glasses.device.audio import SAMPLE_RATE, load_audio, read_wav
from glasses.export import speech_set
from glasses.export.speech_set import ESPEAK_VOICES, REQUESTS, make_speech_set, mix_at_snr

COUNT = 4


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict], list[str]]:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (make test installs it)")
    root = tmp_path_factory.mktemp("speech-set")
    lines: list[str] = []
    rows = make_speech_set(root / "set", count=COUNT, seed=7, progress=lines.append,
                           clean_dir=root / "clean")
    return root / "set", root / "clean", rows, lines


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    clean, noisy = clean.astype(np.float64), noisy.astype(np.float64)
    return 10 * np.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2))


def test_truth_names_16k_mono_wavs_of_1_to_7_s(made):
    out, _, rows, lines = made
    truth = (out / "truth.tsv").read_text(encoding="utf-8").splitlines()
    assert len(truth) == COUNT and len(lines) == COUNT and len(rows) == COUNT
    for line, row in zip(truth, rows, strict=True):
        cols = line.split("\t")
        assert len(cols) >= 2 and cols[0] == row["file"] and cols[-1] == row["text"]
        assert cols[-1] in REQUESTS
        x, rate = read_wav(out / cols[0])
        assert rate == SAMPLE_RATE and x.shape[1] == 1
        assert 1.0 <= len(x) / SAMPLE_RATE <= 7.0
        assert len(x) / SAMPLE_RATE == pytest.approx(row["seconds"], abs=1e-3)
        assert 0.1 < np.abs(x).max() < 1.0  # audible, not clipped
    assert sorted(p.name for p in out.glob("*.wav")) == sorted(r["file"] for r in rows)


def test_same_seed_same_bytes_other_seed_other_audio(made, tmp_path):
    out, _, _, _ = made
    make_speech_set(tmp_path / "again", count=COUNT, seed=7, progress=lambda _: None)
    for name in ["truth.tsv", *(p.name for p in out.glob("*.wav"))]:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    make_speech_set(tmp_path / "other", count=1, seed=8, progress=lambda _: None)
    assert (tmp_path / "other/req_000.wav").read_bytes() != (out / "req_000.wav").read_bytes()


def test_noisy_clips_have_the_asked_snr_over_the_speech(made):
    out, clean_dir, rows, _ = made
    noisy = [r for r in rows if r["noise"] != "clean"]
    assert len(noisy) >= COUNT - 1  # the first five clips take five different noises
    for row in rows:
        clip, clean = load_audio(out / row["file"]), load_audio(clean_dir / row["file"])
        assert len(clip) == len(clean)
        if row["snr_db"] is None:
            assert np.array_equal(clip, clean)
            continue
        lead = round(row["lead_s"] * SAMPLE_RATE)
        end = len(clean) - round(row["trail_s"] * SAMPLE_RATE)
        assert _snr_db(clean[lead:end], clip[lead:end]) == pytest.approx(row["snr_db"], abs=1.5)
        assert np.abs(clip[: lead // 2]).max() > 0  # the noise runs through the silence too


@pytest.mark.parametrize("snr", [20.0, 10.0, 5.0, 0.0])
@pytest.mark.parametrize("kind", ["white", "pink", "hum"])
def test_mix_at_snr(kind, snr):
    rng = np.random.default_rng(1)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * np.hanning(len(t))).astype(np.float32)
    noise = speech_set._noise(kind, len(t) + 100, rng, "")
    mix = mix_at_snr(speech, noise, snr)
    assert mix.shape == speech.shape and np.isfinite(mix).all()
    assert _snr_db(speech, mix) == pytest.approx(snr, abs=0.05)


def test_mix_at_snr_refuses_short_or_silent_noise():
    with pytest.raises(ValueError):
        mix_at_snr(np.ones(100), np.ones(50), 10)
    with pytest.raises(ValueError):
        mix_at_snr(np.ones(100), np.zeros(100), 10)


def test_noise_kinds_sound_like_their_names():
    rng = np.random.default_rng(0)
    n = 4 * SAMPLE_RATE
    spectra = {k: np.abs(np.fft.rfft(speech_set._noise(k, n, rng, REQUESTS[0]))) ** 2
               for k in ("white", "pink", "hum", "babble")}
    hz = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    low, high = (hz > 50) & (hz < 500), (hz > 4000) & (hz < 7500)
    ratio = {k: s[low].mean() / s[high].mean() for k, s in spectra.items()}
    assert 0.5 < ratio["white"] < 2 and ratio["pink"] > 10 and ratio["babble"] > 10
    assert hz[np.argmax(spectra["hum"])] in (50, 60, 100, 120)


def test_espeak_voices_all_sound_different():
    said = {v: speech_set._espeak("Read that sign for me.", v, 160, 50) for v in ESPEAK_VOICES}
    for (a, x), (b, y) in itertools.combinations(said.items(), 2):
        assert len(x) != len(y) or not np.array_equal(x, y), f"{a} sounds like {b}"


def test_hibari_bundled_voice_offline():
    pytest.importorskip("hibari")
    x, speed = speech_set._say("Who made this painting?", speech_set.HIBARI_VOICE, 160, 50, 0)
    assert speed == 160 and 0.5 < len(x) / SAMPLE_RATE < 5 and np.abs(x).max() > 0.05


def test_cli(tmp_path, capsys):
    speech_set.main([str(tmp_path / "cli"), "--count", "1", "--seed", "3"])
    assert (tmp_path / "cli/truth.tsv").read_text().startswith("req_000.wav\t")
    assert "wrote 1 clips" in capsys.readouterr().out
