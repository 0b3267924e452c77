"""`glasses profile`: stage and turn statistics, a trace on one clock, a report, ratios."""

import json

import pytest
from test_cli import assert_one_line_error, glasses

from glasses.pipelines import events as ev
from glasses.pipelines.profiler import percentiles, stage_stats, turn_summary
from glasses.pipelines.spans import Span
from glasses.pipelines.turns import TurnLog

MS = 1_000_000


@pytest.fixture(scope="module")
def profiled(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("profile")
    result = glasses("profile", "demo", "--runs", "1", "--trace", str(out / "t.json"),
                     "--report", str(out / "r.html"), "--json", home=store.home, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "does not emulate the board's speed" in result.stderr
    (out / "p.json").write_text(result.stdout)
    return out, json.loads(result.stdout)


def test_every_stage_and_turn_step_is_measured(profiled):
    _, p = profiled
    for stage in ("vad", "asr", "look", "frame-buffer"):
        s = p["stages"][stage]
        assert s["count"] > 0 and s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert 0 < p["stages"]["asr"]["turn_share"] <= 1
    assert [t["answer_shown_ms"] is not None for t in p["turn_list"]] == [True, True]
    for step in ("final_text", "first_token", "answer_shown"):
        assert p["turns"][step]["count"] == 2
    assert p["turns"]["final_text"]["p50_ms"] < p["turns"]["answer_shown"]["p50_ms"]
    assert p["video"]["dropped"] == 0 and p["cpu_percent"] > 0 and p["peak_rss_mb"] > 100
    assert 0 < p["profiler"]["overhead_share"] < 1


def test_the_trace_puts_onnxruntime_and_the_stages_on_one_clock(profiled):
    out, _ = profiled
    events = json.loads((out / "t.json").read_text())["traceEvents"]
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
               if e.get("name") == "thread_name"}
    asr = [e for e in events if e.get("cat") == "stage" and e["name"] == "asr"]
    encoder_tid = next(k for k, v in threads.items() if v.startswith("whisper-base-encoder"))
    runs = [e for e in events if (e["pid"], e.get("tid")) == encoder_tid
            and e.get("name") == "model_run"]
    started = min(e["ts"] for e in events if e.get("cat") == "stage")
    runs = [r for r in runs if r["ts"] > started]  # not the runs while loading (silence)
    assert asr and runs
    for run in runs:  # every encoder run while streaming happened inside an asr call
        assert any(a["ts"] - 2000 <= run["ts"] and run["ts"] + run["dur"] <= a["ts"] + a["dur"]
                   + 2000 for a in asr), run
    assert any(e.get("cat") == "Node" for e in events), "operators are in the trace"


def test_the_report_is_one_page_with_its_plots(profiled):
    out, _ = profiled
    page = (out / "r.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") >= 4
    assert "A typical turn" in page and "asr" in page and "http" not in page


def test_compare_prints_ratios(store, profiled, tmp_path):
    out, p = profiled
    slower = json.loads(json.dumps(p))
    slower["stages"]["asr"]["p50_ms"] *= 2
    (tmp_path / "b.json").write_text(json.dumps(slower))
    result = glasses("profile", "compare", str(out / "p.json"), str(tmp_path / "b.json"),
                     "--json", home=store.home)
    data = json.loads(result.stdout)
    assert data["stages"]["asr"]["ratio"] == 2.0 and data["stages"]["vad"]["ratio"] == 1.0
    text = glasses("profile", "compare", str(out / "p.json"), str(tmp_path / "b.json"),
                   home=store.home).stdout
    assert "asr" in text and "2.00" in text


def test_bad_requests_are_one_line(store, tmp_path):
    (tmp_path / "x.json").write_text("{}")
    cases = [(["compare", str(tmp_path / "nope.json"), str(tmp_path / "x.json")], "nope.json"),
             (["compare", str(tmp_path / "x.json"), str(tmp_path / "x.json")], "not a profile"),
             (["compare", "a.json"], "usage"), (["demo", "--runs", "0"], "--runs"),
             ([str(tmp_path / "missing.toml")], "no such scenario")]
    for args, word in cases:
        assert_one_line_error(glasses("profile", *args, home=store.home), 3, word)


def test_statistics_from_spans_and_turns():
    s = 1_000_000_000
    log = TurnLog()
    for e in [ev.UtteranceHeard(2 * s, 1 * s, 2 * s, 1.0, 7),
              ev.FinalTranscript(2300 * MS, "What is this?", 2 * s),
              ev.AnswerStarted(2400 * MS, 2 * s), ev.AnswerShown(2500 * MS, 2 * s),
              ev.AnswerShown(2600 * MS, 2 * s),  # a later frame: the first one counts
              ev.FinalTranscript(3 * s, "Read it.", 3 * s, source="text")]:
        log(e)
    first, typed = log.turns
    turn = first.to_dict(0)
    assert (turn["final_text_ms"], turn["first_token_ms"], turn["answer_shown_ms"]) == (
        300.0, 400.0, 500.0)
    assert turn["spoken_ms"] is None and turn["frame"] == 7 and turn["text"] == "What is this?"
    assert typed.source == "text" and typed.final_text_ns == 3 * s
    spans = [Span("asr", 0, 2000 * MS, 2300 * MS), Span("vad", 0, 0, 1 * MS),
             Span("look", 0, 2300 * MS, 2300 * MS + MS // 100)]  # 0.01 ms: idle
    stats = stage_stats([(spans, [(2000 * MS, 2500 * MS)])])
    assert stats["asr"]["turn_share"] == 0.6 and stats["asr"]["p50_ms"] == 300.0
    assert stats["vad"]["turn_share"] == 0.0 and stats["look"]["working"] == 0
    assert turn_summary([turn])["answer_shown"]["p50_ms"] == 500.0
    assert percentiles([])["max_ms"] == 0.0
