"""`glasses bench` on a tiny scale: real engines on real spoken questions, a real demo run
per board and real starts of the simulator."""

import json

from test_cli import glasses


def test_bench_measures_speech_memory_and_cold_start_in_one_run(store):
    done = glasses("bench", "--models", "tiny.en", "--clips", "2", "--boards", "rpi5",
                   "--starts", "1", "--json", home=store.home, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    speech = report["speech"]
    assert speech["clips"] == 2 and 0.5 < speech["seconds"][0] <= speech["seconds"][1] < 8
    row = speech["models"]["tiny.en"]
    for engine in ("onnx", "whisper", "faster-whisper"):
        assert row[engine]["median_ms"] > 0 and row[engine]["wer"] >= 0, engine
    assert row["onnx"]["wer"] < 0.5  # two noisy clips; the references may loop on them
    for ref, ratio in row["ratios"].items():  # the references' time over ours
        assert abs(ratio - row[ref]["median_ms"] / row["onnx"]["median_ms"]) < 0.01
    assert set(row["ratios"]) == {"whisper", "faster-whisper"}
    rpi5 = report["memory"]["rpi5"]
    assert rpi5["budget_mb"] == 400 and rpi5["within"] == (rpi5["peak_rss_mb"] <= 400)
    assert 100 < rpi5["peak_rss_mb"] < 4000
    cold = report["cold_start"]
    assert len(cold["starts"]) == 1 and 0.3 < cold["first_frame_s"] < 60


def test_bench_refuses_nonsense_counts():
    done = glasses("bench", "--clips", "0")
    assert done.returncode == 3 and "--clips and --starts must be at least 1" in done.stderr
