"""`glasses soak` on a tiny scale: its media, its refusals, and a minute of stream through
the real assistant, simulated and in real time, every question answered."""

import json

import numpy as np
import pytest
from test_cli import assert_one_line_error, glasses

from glasses.device.audio import SAMPLE_RATE, load_audio, wav_info
from glasses.simulator.soak_media import HALF_S, SoakCamera, schedule, write_track


def test_the_looped_demo_gives_each_question_its_half_of_the_demo(tmp_path):
    questions = schedule(60, 10)
    assert [q.at_s for q in questions] == [0, 10, 20, 30, 40, 50]
    assert [q.text for q in questions[:2]] == ["What am I looking at?", "Read that sign for me."]
    write_track(tmp_path / "t.wav", questions, 60)
    assert wav_info(tmp_path / "t.wav").seconds == pytest.approx(60)
    track = load_audio(tmp_path / "t.wav")
    loud = lambda a, b: np.abs(track[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)]).max()  # noqa: E731
    assert loud(0, HALF_S) > 0.05 and loud(10, 10 + HALF_S) > 0.05 and loud(6, 10) < 0.01
    camera = SoakCamera(25, 10, (160, 120))
    frames = list(camera.frames())
    assert len(frames) == 25 * 15 and [f.index for f in frames] == list(range(len(frames)))
    assert all(f.image.shape == (120, 160, 3) for f in frames)
    coffee, sign, coffee_again = (frames[int(t * 15)].image.astype(int) for t in (2, 12, 22))
    assert np.abs(coffee - coffee_again).mean() < 3 and np.abs(coffee - sign).mean() > 20
    camera.close()
    assert list(camera.frames()) == []


@pytest.mark.parametrize("args,words", [
    (("--minutes", "0"), ("--minutes 0", "more than 0")),
    (("--minutes", "nan"), ("--minutes nan",)),
    (("--every", "3"), ("every 3 s", "at least 6 s")),
])
def test_a_soak_refuses_what_it_cannot_play(args, words):
    assert_one_line_error(glasses("soak", *args), 3, *words)


def soak(store, *args: str, timeout: float) -> dict:
    result = glasses("soak", "--json", *args, home=store.home, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "soak:" in result.stderr  # progress there
    return json.loads(result.stdout)


def assert_sane(d: dict, asked: int) -> None:
    t, lat, rss = d["turns"], d["latency"], d["rss_mb"]
    assert t["asked"] == t["heard"] == t["answered"] == asked, t
    assert t["as_expected"] == asked and not t["unanswered_at_s"]
    assert lat["turns"] == asked and 0 < lat["median_ms"] <= lat["max_ms"]
    assert lat["drift_pct"] is not None
    assert 100 < rss["warm"] <= rss["peak"] and 100 < rss["end"] <= rss["peak"]
    assert rss["growth"] == pytest.approx(rss["end"] - rss["warm"], abs=0.11)
    assert rss["min_after_warm"] <= rss["warm_floor"] <= rss["warm"] <= rss["max_after_warm"]
    assert rss["floor_growth"] == pytest.approx(rss["end_floor"] - rss["warm_floor"], abs=0.11)
    assert d["queues_within_bounds"] and len(d["queues"]) >= 8
    assert all(0 < q["high_water"] <= q["bound"] for q in d["queues"])
    assert d["video"]["frames"] == d["minutes"] * 60 * 15 and not d["errors"]
    assert d["audio_lost_samples"] == 0 and d["samples"]
    assert d["cpu"]["own_percent"] > 0 and d["cpu"]["others_percent"] >= 0


@pytest.mark.slow
def test_a_minute_of_simulated_stream_answers_every_question(store):
    d = soak(store, "--minutes", "1", timeout=300)
    assert d["mode"] == "simulated" and "display" not in d
    assert_sane(d, asked=6)


@pytest.mark.slow
def test_half_a_minute_in_real_time_draws_the_display_at_its_rate(store):
    d = soak(store, "--minutes", "0.5", "--mode", "realtime", timeout=300)
    assert d["mode"] == "realtime" and d["wall_s"] >= 30
    assert_sane(d, asked=3)
    s = d["display"]
    assert s["frames"] > 0 and 0 < s["fps"] <= 15.5
    assert s["late"] == s["late_first_half"] + s["late_second_half"]
    assert d["video"]["dropped"] >= 0
