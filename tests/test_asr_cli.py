"""`glasses transcribe` and `glasses eval asr` as a user meets them (onnx engine, tiny.en)."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli import ROOT, assert_one_line_error, glasses

from glasses.device.audio import SAMPLE_RATE, load_audio, resample, write_wav
from glasses.models.asr import DEFAULT_MODEL

DEMO = ROOT / "simulator" / "demo" / "demo.wav"  # two questions, at 1.0 s and 5.5 s
QUESTIONS = ((0.5, 3.0, "What am I looking at?"), (5.0, 7.5, "Read that sign for me."),
             (0.5, 7.5, "What am I looking at? Read that sign for me."))  # start s, end s, text


def transcribe(store, path: Path, *args: str):
    return glasses("transcribe", str(path), "--json", *args, home=store.home)


def text_of(result) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)["text"]


def write_float_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """A mono 32-bit IEEE float WAV, written as is (write_wav makes 16-bit PCM)."""
    raw = np.asarray(samples, "<f4").tobytes()
    path.write_bytes(struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(raw), b"WAVE",
                                 b"fmt ", 16, 3, 1, rate, rate * 4, 4, 32, b"data", len(raw))
                     + raw)


@pytest.fixture(scope="module")
def demo() -> np.ndarray:
    return load_audio(DEMO)


def test_transcribes_the_demo_questions(store):
    result = transcribe(store, DEMO)
    text = text_of(result)
    assert "looking at" in text.lower() and "sign" in text.lower(), text
    data = json.loads(result.stdout)
    assert set(data) == {"file", "engine", "model", "text", "ms", "audio_s", "timings_ms"}
    assert data["engine"] == "onnx" and data["model"] == DEFAULT_MODEL
    assert data["audio_s"] == pytest.approx(10.0, abs=0.01) and data["ms"] > 0
    assert set(data["timings_ms"]) == {"mel", "encoder", "decoder"}


def test_8khz_stereo_is_mixed_and_resampled(store, demo, tmp_path):
    low = resample(demo, SAMPLE_RATE, 8000)
    path = tmp_path / "phone.wav"
    write_wav(path, np.stack([low, low], axis=1), 8000)
    assert "looking at" in text_of(transcribe(store, path)).lower()


def test_empty_wav_is_empty_text(store, tmp_path):
    path = tmp_path / "empty.wav"
    write_wav(path, np.zeros(0, np.float32), SAMPLE_RATE)
    result = transcribe(store, path)
    assert text_of(result) == ""
    assert json.loads(result.stdout)["audio_s"] == 0


def test_silence_does_not_crash(store, tmp_path):
    path = tmp_path / "silence.wav"
    write_wav(path, np.zeros(2 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    text_of(transcribe(store, path))  # whatever the model makes of it, exit 0


def test_clipped_speech_still_transcribes(store, demo, tmp_path):
    path = tmp_path / "clipped.wav"
    write_wav(path, np.clip(demo * 20, -1, 1), SAMPLE_RATE)
    assert text_of(transcribe(store, path)).strip()


def test_nan_samples_are_a_one_line_error(store, demo, tmp_path):
    samples = demo[: SAMPLE_RATE].copy()
    samples[100:110] = np.nan
    path = tmp_path / "nan.wav"
    write_float_wav(path, samples)
    assert_one_line_error(transcribe(store, path), 3, "nan.wav", "not finite")


def test_a_text_file_named_wav_is_a_one_line_error(store, tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are my notes, not audio\n")
    assert_one_line_error(transcribe(store, path), 3, "notes.wav", "not a WAV")


# -- glasses eval asr --------------------------------------------------------------------

@pytest.fixture(scope="module")
def speech_set(demo, tmp_path_factory) -> Path:
    """Three clips cut from the demo, with truth.tsv (a column between to be ignored)."""
    folder = tmp_path_factory.mktemp("speech-set")
    lines = []
    for i, (start, end, text) in enumerate(QUESTIONS):
        name = f"{i:02d}.wav"
        write_wav(folder / name, demo[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)],
                  SAMPLE_RATE)
        lines.append(f"{name}\tdemo voice\t{text}\n")
    (folder / "truth.tsv").write_text("".join(lines))
    return folder


def test_eval_asr_reports_the_design_format(store, speech_set):
    result = glasses("eval", "asr", str(speech_set), "--engines", "onnx", "--json",
                     home=store.home, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["clips"] == 3 and list(report["engines"]) == ["onnx"]
    onnx = report["engines"]["onnx"]
    assert list(onnx) == ["model", "wer", "median_ms", "p90_ms", "rtf", "peak_rss_mb",
                          "load_s", "results"]
    assert onnx["model"] == DEFAULT_MODEL and isinstance(onnx["wer"], float)
    assert onnx["wer"] < 0.3, onnx["results"]
    assert 0 < onnx["median_ms"] <= onnx["p90_ms"] and 0 < onnx["rtf"] < 2
    assert onnx["peak_rss_mb"] > 50 and onnx["load_s"] > 0
    assert [r["file"] for r in onnx["results"]] == ["00.wav", "01.wav", "02.wav"]
    assert [r["ref"] for r in onnx["results"]] == [q[2] for q in QUESTIONS]
    assert all(set(r) == {"file", "text", "ref", "ms"} for r in onnx["results"])
    assert f"onnx {DEFAULT_MODEL}: clip 3/3" in result.stderr  # progress goes to stderr


@pytest.mark.parametrize(
    ("truth", "remove", "words"),
    [
        (None, None, ["truth.tsv", "no such file"]),
        ("00.wav\tWhat am I looking at?\n01.wav Read that sign\n", None,
         ["truth.tsv:2", "tab"]),
        ("00.wav\tWhat am I looking at?\n01.wav\tRead that sign for me.\n", "01.wav",
         ["truth.tsv:2", "01.wav", "no such file"]),
    ],
    ids=["no-truth", "one-column", "missing-wav"],
)
def test_eval_asr_bad_speech_set_is_a_one_line_error(store, speech_set, tmp_path,
                                                      truth, remove, words):
    for wav in speech_set.glob("*.wav"):
        if wav.name != remove:
            (tmp_path / wav.name).write_bytes(wav.read_bytes())
    if truth is not None:
        (tmp_path / "truth.tsv").write_text(truth)
    result = glasses("eval", "asr", str(tmp_path), "--engines", "onnx", home=store.home)
    assert_one_line_error(result, 3, *words)


def test_eval_asr_unknown_engine_is_a_usage_error(store, speech_set):
    result = glasses("eval", "asr", str(speech_set), "--engines", "onnx,wisper",
                     home=store.home)
    assert result.returncode == 2 and "wisper" in result.stderr and "faster-whisper" in \
        result.stderr


@pytest.mark.slow
def test_eval_asr_compares_with_whisper_in_separate_processes(store, speech_set):
    result = glasses("eval", "asr", str(speech_set), "--engines", "onnx,whisper", "--json",
                     home=store.home, timeout=300)
    assert result.returncode == 0, result.stderr
    engines = json.loads(result.stdout)["engines"]
    assert list(engines) == ["onnx", "whisper"]
    for report in engines.values():
        assert len(report["results"]) == 3 and report["wer"] < 0.3, report["results"]
    assert engines["whisper"]["peak_rss_mb"] > engines["onnx"]["peak_rss_mb"]


def test_eval_asr_table_has_ratios_against_whisper():
    from glasses.cli.asr_cmd import _eval_text

    def engine(median, rss, wer):
        return {"model": "tiny.en", "wer": wer, "median_ms": median, "p90_ms": median * 1.5,
                "rtf": median / 3000, "peak_rss_mb": rss, "load_s": 1.0, "results": []}

    report = {"clips": 3, "engines": {
        "onnx": engine(100.0, 300.0, 0.12), "whisper": engine(400.0, 600.0, 0.15),
        "faster-whisper": {"model": "tiny.en", "unavailable": "faster_whisper not installed"}}}
    text = _eval_text(report, 9.0, {"onnx": "onnxruntime", "whisper": "PyTorch"})
    assert "onnx median is 0.25x whisper's" in text and "peak RSS 0.50x" in text
    assert "WER 12.0% vs 15.0%" in text
    assert "faster-whisper  unavailable: faster_whisper not installed" in text


def test_an_engine_that_fails_in_its_process_comes_back_as_one_line(demo, tmp_path):
    from functools import partial

    from glasses.evaluation.asr import Clip, EngineFailed, evaluate_isolated
    from glasses.export.asr_engines import make_engine
    from glasses.models.asr import AsrOptions
    from glasses.models.store import ModelStore

    unprepared = ModelStore(tmp_path / "no-store")
    factory = partial(make_engine, "onnx", AsrOptions(), unprepared)
    seen: list[str] = []
    with pytest.raises(EngineFailed) as failed:
        evaluate_isolated(factory, [Clip("00.wav", "hello", demo)], seen.append, "onnx tiny.en")
    assert failed.value.exit_code == 4  # the child's StoreError keeps its exit code
    message = str(failed.value)
    assert "\n" not in message and message.startswith("onnx tiny.en: ")
    assert "not prepared" in message
    assert seen == ["onnx tiny.en: loading"]  # progress came back from the child

    with pytest.raises(EngineFailed, match="process exited with code 7"):
        evaluate_isolated(partial(os._exit, 7), [Clip("00.wav", "hello", demo)])


def test_the_commands_import_neither_torch_nor_faster_whisper():
    code = ("import sys, glasses.cli.main, glasses.export.asr_engines, glasses.evaluation.asr; "
            "print(sorted({'torch', 'whisper', 'faster_whisper'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_percentile_interpolates_as_numpy_does():
    from glasses.evaluation.asr import percentile

    values = [5.0, 1.0, 9.0, 3.0, 7.5, 2.0]
    for q in (0, 10, 50, 90, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([4.0], 90) == 4.0
