"""`glasses profile SCENARIO` and `glasses profile compare A.json B.json`."""

import argparse
import gc
import json
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from glasses.cli.look_cmd import add_model_option
from glasses.cli.output import progress, result
from glasses.cli.simulate_cmd import add_endpoint_option, voice_for
from glasses.device.boards import BoardProfile, pin_to_board
from glasses.device.errors import BadInput
from glasses.device.memory import give_back_freed
from glasses.models.deployment import assistant_options
from glasses.models.store import ModelStore
from glasses.pipelines import profiler
from glasses.pipelines.report import render_report
from glasses.pipelines.sources import Mode
from glasses.simulator.scenario import load_scenario, prepare
from glasses.simulator.session import DEMO_SCENARIO, SessionOptions, run_session

USAGE = "glasses profile SCENARIO [options]  |  glasses profile compare A.json B.json"


def register(commands) -> None:
    p = commands.add_parser(
        "profile", help="per-stage latency, trace and report over repeated runs of a scenario",
        usage=USAGE,
        description="Play a scenario (a file, or 'demo') in real time, headless, --runs times, "
        "and measure every pipeline stage (calls, p50/p95/p99/max of the calls that did "
        "work, share of the turn), every turn (end of speech -> final transcript -> first "
        "answer token -> answer on the display -> spoken), video and display frame rates, "
        "CPU and peak memory. --trace writes a Chrome/Perfetto trace merging the stages' "
        "spans with onnxruntime's per-operator profile of the same runs; --report an HTML "
        "page with a waterfall of a typical turn and per-stage histograms. "
        "'glasses profile compare A.json B.json' prints B's per-stage ratios to A's "
        "(files written by --json).",
        epilog="examples:\n  glasses profile demo --json > fp32.json\n"
        "  glasses profile demo --precision int8 --json > int8.json\n"
        "  glasses profile compare fp32.json int8.json\n"
        "  glasses profile demo --board rpi5 --trace t.json --report r.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", nargs="+", metavar="SCENARIO",
                   help="a scenario file or 'demo'; or: compare A.json B.json")
    p.add_argument("--runs", type=int, default=3, help="how many times to play it (default 3)")
    p.add_argument("--board", choices=BoardProfile.names(), default="laptop",
                   help="board profile: its threads, precision and cores (CPU affinity)")
    p.add_argument("--precision", choices=("fp32", "int8"),
                   help="override the board's precision")
    add_model_option(p)
    p.add_argument("--speak", action="store_true", help="speak the answers (times 'spoken')")
    add_endpoint_option(p)
    p.add_argument("--no-memory", action="store_true",
                   help="without memory (no glances, nothing noted): to measure what it costs; "
                   "with it, a memory file of the run's own is used, never the wearer's")
    p.add_argument("--trace", type=Path, metavar="OUT.json", help="write a Chrome trace")
    p.add_argument("--report", type=Path, metavar="OUT.html", help="write an HTML report")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.target[0] == "compare":
        if len(args.target) != 3:
            raise BadInput(f"usage: {USAGE}")
        return _compare(Path(args.target[1]), Path(args.target[2]), args.json)
    if len(args.target) != 1:
        raise BadInput(f"usage: {USAGE}")
    if args.runs < 1:
        raise BadInput(f"--runs must be at least 1, got {args.runs}")
    board = BoardProfile.by_name(args.board)
    if args.precision:
        board = replace(board, precision=args.precision)
    note = pin_to_board(board)
    progress(f"glasses: {note}")
    name = args.target[0]
    scenario = load_scenario(DEMO_SCENARIO if name == "demo" else Path(name))
    asr, vlm = assistant_options(board, vlm_model=args.model)
    with tempfile.TemporaryDirectory(prefix="glasses-profile-") as tmp:
        view, audio = prepare(scenario, Path(tmp), board.camera_size, voice_for(scenario))
        ops = Path(tmp) / "ops"
        if args.trace:
            ops.mkdir()
            board = replace(board, op_profile_dir=str(ops))
        store = ModelStore()
        before, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        runs = []
        for i in range(1, args.runs + 1):
            progress(f"glasses: run {i}/{args.runs}")
            options = SessionOptions(view=view, audio=audio, mode=Mode.REALTIME, board=board,
                                     headless=True, duration_s=scenario.duration_s, asr=asr,
                                     vlm=vlm, speak=args.speak, endpoint=args.endpoint,
                                     memory=not args.no_memory,
                                     memory_path=str(Path(tmp) / "memory.db"))
            runs.append(run_session(options, store))
            gc.collect()  # releases the sessions: onnxruntime writes their profiles
            give_back_freed()  # else the next run's peak stacks on this run's freed heap
        after, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall0
        profile, typical = _measure(runs, scenario.name, board, note, args.runs, args.model)
        cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / wall
        profile["cpu_percent"] = round(100 * cpu, 1)
        profile["peak_rss_mb"] = round(after.ru_maxrss / 1024, 1)
        if args.trace:
            profile["note"] += ("; onnxruntime's operator profiler was on (--trace): it slows "
                                "the models (turns ~20% longer here), so take latency figures "
                                "from a run without --trace")
            origin = runs[0].start_ns
            events = [ev for i, r in enumerate(runs, 1) for ev in profiler.trace_events(
                i, r.report.spans, _turns(r), r.start_ns, origin)]
            events += profiler.onnxruntime_events(ops, 0, origin)
            profiler.write_trace(args.trace, events)
            progress(f"glasses: trace in {args.trace} ({len(events)} events): open it in "
                     "https://ui.perfetto.dev or chrome://tracing")
    if args.report:
        spans = [s for r in runs for s in r.report.spans]
        args.report.write_text(render_report(profile, typical, profiler.working_ms(spans)))
        progress(f"glasses: report in {args.report}")
    result(profile, args.json, _text(profile))
    return 0


def _turns(run) -> list[dict]:
    """The run's spoken turns, as dicts: times in seconds of its clock, delays in ms."""
    return [{**t.to_dict(run.start_ns), "speech_start": round((t.speech_start_ns
             - run.start_ns) / 1e9, 4), "speech_end": round((t.speech_end_ns - run.start_ns)
             / 1e9, 4)} for t in run.turns if t.source == "voice"]


def _measure(runs, name: str, board: BoardProfile, note: str, n: int, model: str
             ) -> tuple[dict, dict]:
    per_run = [(r, _turns(r)) for r in runs]
    stats = profiler.stage_stats((r.report.spans, profiler.turn_windows(t, r.start_ns))
                                 for r, t in per_run)
    turns = [t for _, ts in per_run for t in ts]
    answered = [t for t in turns if t["answer_shown_ms"] is not None]
    spans_per_turn = sum(len(r.report.spans) for r in runs) / max(1, len(answered))
    cost_us = profiler.recorder_overhead_us()
    turn_ms = sum(t["answer_shown_ms"] for t in answered) / max(1, len(answered))
    wall = sum(r.report.wall_s for r in runs)
    camera = [c for r in runs for c in r.report.chains if c.source.startswith("camera")]
    profile = {
        "scenario": name, "board": board.name, "precision": board.precision,
        "model": model, "runs": n,
        "note": note, "stages": stats, "turns": profiler.turn_summary(turns),
        "turn_list": turns,
        "video": {"fps": round(sum(c.produced for c in camera) / wall, 2) if wall else 0.0,
                  "dropped": sum(c.dropped for c in camera)},
        "display": {"fps": round(sum(r.display.frames for r in runs)
                                 / max(1e-9, sum(r.display.wall_s for r in runs)), 2),
                    "late_frames": sum(r.display.late for r in runs),
                    "extra_frames": sum(r.display.extra for r in runs)},
        "profiler": {"span_record_us": round(cost_us, 3),
                     "spans_per_turn": round(spans_per_turn, 1),
                     "overhead_share": round(spans_per_turn * cost_us / 1e3 / turn_ms, 5)
                     if turn_ms else 0.0},
    }
    typical = {}
    if answered:
        mid = sorted(answered, key=lambda t: t["answer_shown_ms"])[len(answered) // 2]
        run = next(r for r, ts in per_run if mid in ts)
        speech_start_ns = run.start_ns + int(mid["speech_start"] * 1e9)
        end_ns = run.start_ns + int((mid["speech_end"] + mid["answer_shown_ms"] / 1e3) * 1e9)
        typical = {**mid, "spans": [(s.stage, (s.start_ns - speech_start_ns) / 1e6,
                                     (s.end_ns - speech_start_ns) / 1e6)
                                    for s in run.report.spans
                                    if s.end_ns > speech_start_ns and s.start_ns < end_ns
                                    and s.busy_ns / 1e6 >= profiler.IDLE_MS
                                    and s.stage != "vad"]}
    return profile, typical


def _text(p: dict) -> str:
    lines = [p["note"], f"{p['scenario']}: {p['runs']} run(s); CPU {p['cpu_percent']:.0f}% of "
             f"one core, peak RSS {p['peak_rss_mb']:.0f} MB; video {p['video']['fps']:.1f} "
             f"fps, {p['video']['dropped']} dropped; display {p['display']['fps']:.1f} fps",
             f"{'stage':14} {'calls':>6} {'work':>5} {'p50':>9} {'p95':>9} {'p99':>9} "
             f"{'max':>9} {'turn':>6}"]
    for name, s in p["stages"].items():
        share = "" if s["turn_share"] is None else f"{s['turn_share']:.0%}"
        lines.append(f"{name:14} {s['count']:6} {s['working']:5} {s['p50_ms']:9.2f} "
                     f"{s['p95_ms']:9.2f} {s['p99_ms']:9.2f} {s['max_ms']:9.2f} {share:>6}")
    lines.append("after the end of speech (ms):")
    for step, s in p["turns"].items():
        lines.append(f"  {step:14} p50 {s['p50_ms']:7.0f}  p95 {s['p95_ms']:7.0f}  "
                     f"max {s['max_ms']:7.0f}  ({s['count']} turns)")
    o = p["profiler"]
    lines.append(f"profiler: {o['span_record_us']:.2f} us a span, {o['spans_per_turn']:.0f} "
                 f"spans a turn: {o['overhead_share']:.3%} of turn time")
    return "\n".join(lines)


def _compare(a_path: Path, b_path: Path, as_json: bool) -> int:
    a, b = (_load(p) for p in (a_path, b_path))
    stages = {name: {"a_p50_ms": a["stages"][name]["p50_ms"], "b_p50_ms": s["p50_ms"],
                     "ratio": round(s["p50_ms"] / a["stages"][name]["p50_ms"], 3)
                     if a["stages"][name]["p50_ms"] else None}
              for name, s in b["stages"].items() if name in a["stages"]}
    turns = {step: {"a_p50_ms": a["turns"][step]["p50_ms"], "b_p50_ms": s["p50_ms"],
                    "ratio": round(s["p50_ms"] / a["turns"][step]["p50_ms"], 3)
                    if a["turns"][step]["p50_ms"] else None}
             for step, s in b["turns"].items() if step in a["turns"]}
    data = {"a": str(a_path), "b": str(b_path), "stages": stages, "turns": turns,
            "peak_rss_ratio": round(b["peak_rss_mb"] / a["peak_rss_mb"], 3)}
    label = lambda p: f"{p['board']} {p['precision']} {p.get('model', 'teacher')}"  # noqa: E731
    lines = [f"B/A: B = {b_path} ({label(b)}), A = {a_path} ({label(a)}); below 1: B faster",
             f"{'':16} {'A p50 ms':>10} {'B p50 ms':>10} {'B/A':>7}"]
    for name, s in [*stages.items(), *turns.items()]:
        ratio = "" if s["ratio"] is None else f"{s['ratio']:.2f}"
        lines.append(f"{name:16} {s['a_p50_ms']:10.2f} {s['b_p50_ms']:10.2f} {ratio:>7}")
    lines.append(f"peak RSS: {a['peak_rss_mb']:.0f} -> {b['peak_rss_mb']:.0f} MB "
                 f"({data['peak_rss_ratio']:.2f})")
    result(data, as_json, "\n".join(lines))
    return 0


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        if missing := [k for k in ("stages", "turns", "peak_rss_mb") if k not in data]:
            raise ValueError(f"no {', '.join(missing)}")
        return data
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInput(f"{path}: not a profile written by 'glasses profile --json' ({e})"
                       ) from None
