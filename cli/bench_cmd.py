"""`glasses bench`: speech against the references, peak memory per board, cold start."""

import argparse

from glasses.cli.output import progress, result
from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.evaluation import bench
from glasses.models.asr import MODELS

PARTS = ("speech", "memory", "cold-start")
SPEECH_TARGET = 3.0  # the references' median time over ours (#18)
COLD_START_TARGET_S = 2.0


def register(commands) -> None:
    p = commands.add_parser(
        "bench", help="this machine against the references: speech vs openai-whisper and "
        "faster-whisper, peak memory per board, cold start",
        description="Measure, in one run on this machine: (speech) short spoken questions "
        "made offline, transcribed by the ONNX engine, openai-whisper and faster-whisper "
        "(int8), each in its own process with the same threads: median time and word error "
        "rate, and how many times longer each reference takes; (memory) the peak resident "
        "memory of one demo run on each board profile against its budget; (cold-start) the "
        "command -> the first frame shown of the headless simulator, after a start that "
        "warms the page cache. Takes a few minutes.",
        epilog="examples:\n  glasses bench\n  glasses bench --only speech --models base "
        "--clips 40\n  glasses bench --only memory --boards rpi5 --json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=PARTS, action="append",
                   help="measure only this (repeatable; default: all)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                   help="speech models (default: all)")
    p.add_argument("--clips", type=int, default=24, help="spoken questions (default 24)")
    p.add_argument("--seed", type=int, default=11, help="of the spoken questions (default 11)")
    p.add_argument("--boards", nargs="+", choices=BoardProfile.names(), default=["laptop", "rpi5"],
                   help="board profiles for memory (default: laptop rpi5)")
    p.add_argument("--starts", type=int, default=3, help="cold starts timed (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.clips < 1 or args.starts < 1:
        raise BadInput("--clips and --starts must be at least 1")
    parts = args.only or list(PARTS)
    report: dict = {}
    if "speech" in parts:
        report["speech"] = bench.speech(args.models, args.clips, args.seed, progress)
    if "memory" in parts:
        report["memory"] = bench.memory(args.boards, progress)
    if "cold-start" in parts:
        report["cold_start"] = bench.cold_start(args.starts, progress)
    result(report, args.json, _text(report))
    return 0


def _text(report: dict) -> str:
    lines = []
    if (s := report.get("speech")) is not None:
        lines.append(f"speech: {s['clips']} questions, {s['seconds'][0]}-{s['seconds'][1]} s "
                     f"each; ONNX {s['onnx_precision']}; references over ours (target "
                     f"{SPEECH_TARGET:.0f}x)")
        for model, row in s["models"].items():
            cells = []
            for engine, e in row.items():
                if engine == "ratios":
                    continue
                cells.append(f"{engine} {e['median_ms']:.0f} ms WER {e['wer'] * 100:.1f}%"
                             if "median_ms" in e else
                             f"{engine} {e.get('unavailable') or e.get('error')}")
            ratios = ", ".join(f"{ref} {r:.2f}x" for ref, r in row["ratios"].items())
            lines.append(f"  {model}: {'; '.join(cells)}; {ratios or 'no ratio'}")
    if (m := report.get("memory")) is not None:
        lines.append("peak memory of one demo run:")
        lines += [f"  {board}: {r['peak_rss_mb']:.0f} MB"
                  + (f" (budget {r['budget_mb']} MB: {'within' if r['within'] else 'over'})"
                     if r["budget_mb"] is not None else " (no budget)")
                  for board, r in m.items()]
    if (c := report.get("cold_start")) is not None:
        lines.append(f"cold start (command -> first frame, laptop): {c['first_frame_s']:.2f} s "
                     f"median of {len(c['starts'])} (target {COLD_START_TARGET_S:.0f} s)")
    return "\n".join(lines)
