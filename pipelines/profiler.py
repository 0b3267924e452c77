"""From spans and turns to stage statistics, turn metrics and a trace.

Stage statistics: per stage the number of calls and, over the calls that did work (busy
at least `IDLE_MS`: a speech stage handed a partial it skips is not work), p50, p95, p99
and max, and the stage's share of the turns (its busy time inside the turns' windows over
the turns' total time). Turns (`pipelines/turns.py`, as dicts): end of speech -> final
transcript -> first answer token -> answer on the display -> spoken. The trace is Chrome's JSON
trace format (Perfetto and chrome://tracing open it), optionally merged with
onnxruntime's per-operator profiles of the same run, put on the same clock.
"""

import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from glasses.models.sessions import START_SUFFIX
from glasses.pipelines.spans import Span, SpanRecorder
from glasses.pipelines.turns import STEPS as TURN_STEPS

IDLE_MS = 0.05  # calls shorter than this are counted, but not in the percentiles

OP_MIN_US = 20  # onnxruntime operator events shorter than this are left out of the trace


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not len(values):
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3),
            "p99_ms": round(float(p99), 3), "max_ms": round(float(max(values)), 3)}


def turn_windows(turns: list[dict], start_ns: int) -> list[tuple[int, int]]:
    """Each answered turn as (end of speech, answer shown) in monotonic ns."""
    return [(start_ns + int(t["speech_end"] * 1e9),
             start_ns + int((t["speech_end"] + t["answer_shown_ms"] / 1e3) * 1e9))
            for t in turns if t["answer_shown_ms"] is not None]


def stage_stats(runs: Iterable[tuple[list[Span], list[tuple[int, int]]]]) -> dict[str, dict]:
    """Per stage over runs of (spans, turn windows): calls, percentiles of the working
    calls, and the stage's busy time inside the turns over the turns' total time."""
    by_stage: dict[str, list[float]] = {}
    inside: dict[str, int] = {}
    turn_ns = 0
    for spans, windows in runs:
        turn_ns += sum(b - a for a, b in windows)
        for s in spans:
            by_stage.setdefault(s.stage, []).append(s.busy_ns / 1e6)
            inside[s.stage] = inside.get(s.stage, 0) + sum(
                max(0, min(s.end_ns, b) - max(s.start_ns, a)) for a, b in windows)
    out = {}
    for name, busy in by_stage.items():
        working = [b for b in busy if b >= IDLE_MS]
        out[name] = {"count": len(busy), "working": len(working),
                     **percentiles(working or busy),
                     "turn_share": round(inside[name] / turn_ns, 3) if turn_ns else None}
    return out


def working_ms(spans: Iterable[Span]) -> dict[str, list[float]]:
    """Each stage's working calls, ms (for histograms)."""
    out: dict[str, list[float]] = {}
    for s in spans:
        if s.busy_ns / 1e6 >= IDLE_MS:
            out.setdefault(s.stage, []).append(s.busy_ns / 1e6)
    return out


def turn_summary(turns: list[dict]) -> dict[str, dict]:
    """Percentiles of each step's delay after the end of speech, over all turns."""
    out = {}
    for step in TURN_STEPS:
        values = [t[f"{step}_ms"] for t in turns if t[f"{step}_ms"] is not None]
        if values:
            out[step] = {"count": len(values), **percentiles(values)}
    return out


def recorder_overhead_us(samples: int = 20_000) -> float:
    """What recording one span costs, in microseconds (measured here, now)."""
    recorder = SpanRecorder(capacity=samples)
    span = Span("bench", 0, 0, 1)
    t0 = time.perf_counter()
    for _ in range(samples):
        recorder.record(span)
    return (time.perf_counter() - t0) / samples * 1e6


# -- the trace ------------------------------------------------------------------------

def trace_events(run: int, spans: Iterable[Span], turns: list[dict], start_ns: int,
                 origin_ns: int) -> list[dict]:
    """Chrome trace events for one run: a process per run, a thread per stage, and the
    turns on a track of their own. Times in microseconds since `origin_ns`."""
    us = lambda ns: (ns - origin_ns) / 1e3  # noqa: E731
    events = [{"ph": "M", "pid": run, "name": "process_name",
               "args": {"name": f"pipeline, run {run}"}}]
    tids: dict[str, int] = {"turns": 1}
    for s in spans:
        tid = tids.setdefault(s.stage, len(tids) + 1)
        events.append({"ph": "X", "pid": run, "tid": tid, "name": s.stage, "cat": "stage",
                       "ts": us(s.start_ns), "dur": max(0.001, s.busy_ns / 1e3),
                       "args": {"latency_ms": round((s.end_ns - s.t_ns) / 1e6, 3),
                                "wait_ms": round(s.wait_ns / 1e6, 3)}})
    for i, t in enumerate(turns, 1):
        end_ns = start_ns + int(t["speech_end"] * 1e9)
        if t["answer_shown_ms"] is not None:
            events.append({"ph": "X", "pid": run, "tid": 1, "name": f"turn {i}", "cat": "turn",
                           "ts": us(end_ns), "dur": t["answer_shown_ms"] * 1e3})
        for step in TURN_STEPS:
            if t[f"{step}_ms"] is not None:
                events.append({"ph": "i", "s": "t", "pid": run, "tid": 1, "name": step,
                               "ts": us(end_ns) + t[f"{step}_ms"] * 1e3})
    events += [{"ph": "M", "pid": run, "tid": tid, "name": "thread_name",
                "args": {"name": name}} for name, tid in tids.items()]
    return events


def onnxruntime_events(folder: Path, pid: int, origin_ns: int) -> list[dict]:
    """onnxruntime's profiles in `folder` (one JSON file per session) as trace events on
    the monotonic clock: a thread per model file, operators and whole runs."""
    to_monotonic = time.monotonic_ns() - time.time_ns()  # its profiles use the wall clock
    events = [{"ph": "M", "pid": pid, "name": "process_name", "args": {"name": "onnxruntime"}}]
    for tid, path in enumerate(sorted(folder.glob("*.json")), 1):
        prefix = path.name.rsplit("_", 3)[0]  # onnxruntime appends _date_time_ms.json
        try:
            raw = json.loads(path.read_text())
            base_ns = int((folder / f"{prefix}{START_SUFFIX}").read_text())
        except (OSError, ValueError):
            continue  # a profile cut short, or not one of ours
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name",
                       "args": {"name": prefix}})
        for e in raw:
            if e.get("ph") != "X" or (e.get("cat") == "Node" and e.get("dur", 0) < OP_MIN_US):
                continue
            ts_ns = base_ns + to_monotonic + int(e["ts"]) * 1000
            events.append({"ph": "X", "pid": pid, "tid": tid, "cat": e.get("cat", ""),
                           "name": e.get("args", {}).get("op_name") or e["name"],
                           "ts": (ts_ns - origin_ns) / 1e3, "dur": e["dur"]})
    return events


def write_trace(path: Path, events: list[dict]) -> None:
    path.write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}))
