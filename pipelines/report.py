"""The profile as one self-contained HTML page: tables, a waterfall of a typical turn and a
histogram per stage, drawn as inline SVG (no plotting library, nothing fetched)."""

import html

import numpy as np

WIDTH, ROW = 720, 22  # SVG width and waterfall row height, pixels
BINS = 20
COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")


def render_report(profile: dict, typical: dict, stage_ms: dict[str, list[float]]) -> str:
    """`profile` is `glasses profile --json`'s object; `typical` a turn with its stage
    spans as (stage, start_ms, end_ms) relative to its speech start (`typical["spans"]`);
    `stage_ms` every working call's duration per stage."""
    e = html.escape
    head = (f"<h1>Profile: {e(profile['scenario'])} on {e(profile['board'])} "
            f"({e(profile['precision'])}), {profile['runs']} run(s)</h1>"
            f"<p>{e(profile['note'])}</p><p>CPU {profile['cpu_percent']:.0f}% of one core, "
            f"peak RSS {profile['peak_rss_mb']:.0f} MB; video {profile['video']['fps']:.1f} "
            f"fps, {profile['video']['dropped']} frames dropped; display "
            f"{profile['display']['fps']:.1f} fps. Recording spans cost "
            f"{profile['profiler']['overhead_share'] * 100:.2f}% of turn time.</p>")
    stages = _table(["stage", "calls", "working", "p50 ms", "p95 ms", "p99 ms", "max ms",
                     "share of turn"],
                    [[k, v["count"], v["working"], v["p50_ms"], v["p95_ms"], v["p99_ms"],
                      v["max_ms"], "" if v["turn_share"] is None else f"{v['turn_share']:.1%}"]
                     for k, v in profile["stages"].items()])
    turns = _table(["after the end of speech", "turns", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                   [[k, v["count"], v["p50_ms"], v["p95_ms"], v["p99_ms"], v["max_ms"]]
                    for k, v in profile["turns"].items()])
    hists = "".join(f"<h3>{e(name)}</h3>{_histogram(ms)}" for name, ms in stage_ms.items()
                    if len(ms) > 1)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>glasses profile</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;"
            f"text-align:right}}th{{background:#eee}}</style></head><body>{head}"
            f"<h2>Stages</h2>{stages}<h2>Turns</h2>{turns}"
            f"<h2>A typical turn</h2>{_waterfall(typical)}"
            f"<h2>Per-stage histograms (working calls, ms)</h2>{hists}</body></html>")


def _table(header: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _waterfall(turn: dict) -> str:
    """Rows of bars on one time axis from the start of speech: the turn's steps, then each
    stage call inside it."""
    if not turn:
        return "<p>no answered turn</p>"
    speech = (turn["speech_end"] - turn["speech_start"]) * 1e3
    steps, at = [("speech", 0.0, speech)], speech
    for step in ("final_text", "first_token", "answer_shown", "spoken"):
        if turn.get(f"{step}_ms") is not None:
            end = speech + turn[f"{step}_ms"]
            steps.append((step.replace("_", " "), at, end))
            at = end
    bars = steps + [(name, a, b) for name, a, b in turn.get("spans", [])]
    total = max(b for _, _, b in bars) or 1.0
    scale = (WIDTH - 170) / total
    rows = []
    for i, (name, a, b) in enumerate(bars):
        y = i * ROW
        colour = COLOURS[i % len(COLOURS)] if i < len(steps) else "#999"
        x, width = 160 + a * scale, max(1.0, (b - a) * scale)
        rows.append(f"<text x='0' y='{y + 15}' font-size='12'>{html.escape(name)}</text>"
                    f"<rect x='{x:.1f}' y='{y + 3}' width='{width:.1f}' height='{ROW - 6}' "
                    f"fill='{colour}'><title>{a:.0f}-{b:.0f} ms</title></rect>"
                    f"<text x='{x + width + 5:.1f}' y='{y + 15}' font-size='10'>"
                    f"{b - a:.0f} ms</text>")
    height = len(bars) * ROW + 20
    axis = (f"<text x='160' y='{height - 4}' font-size='10'>0 ms (speech starts) ... "
            f"{total:.0f} ms</text>")
    return f"<svg width='{WIDTH}' height='{height}'>{''.join(rows)}{axis}</svg>"


def _histogram(ms: list[float]) -> str:
    counts, edges = np.histogram(ms, bins=BINS)
    top, w, h = max(counts.max(), 1), (WIDTH - 60) / BINS, 100
    bars = "".join(
        f"<rect x='{40 + i * w:.1f}' y='{h - c / top * h:.1f}' width='{w - 2:.1f}' "
        f"height='{c / top * h:.1f}' fill='#4e79a7'><title>{edges[i]:.2f}-{edges[i + 1]:.2f} "
        f"ms: {c}</title></rect>" for i, c in enumerate(counts))
    labels = (f"<text x='40' y='{h + 14}' font-size='10'>{edges[0]:.2f} ms</text>"
              f"<text x='{WIDTH - 80}' y='{h + 14}' font-size='10'>{edges[-1]:.2f} ms</text>"
              f"<text x='0' y='12' font-size='10'>{top}</text>")
    return f"<svg width='{WIDTH}' height='{h + 20}'>{bars}{labels}</svg>"

