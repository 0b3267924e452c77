"""`glasses soak`: the assistant on a long stream, a question every few seconds."""

import argparse

from glasses.cli.look_cmd import add_model_option
from glasses.cli.output import progress, result
from glasses.device.boards import BoardProfile
from glasses.models.asr import DEFAULT_MODEL, MODELS
from glasses.models.deployment import assistant_options
from glasses.models.store import ModelStore
from glasses.pipelines.sources import Mode
from glasses.simulator.soak import SoakOptions, run_soak

GROWTH_MB = 20  # targets of #19, shown beside the figures
DRIFT_PCT = 10


def register(commands) -> None:
    p = commands.add_parser(
        "soak", help="hours of use: the assistant on a long looped stream, a question every "
        "few seconds; memory, queues, answers, latency drift",
        description="Play --minutes of media through the whole assistant: the built-in demo "
        "looped (its coffee half and its sign half in turn, each with its spoken question) "
        "with a question every --every seconds. Reports resident memory after warm-up and "
        "at the end, each queue's high-water mark and bound, questions asked, heard and "
        "answered, the latency of the first 10 turns against the last 10, and in realtime "
        "the display's rate and late frames. --mode simulated (the default) plays an hour "
        "of media in minutes; --mode realtime takes as long as the media.",
        epilog="examples:\n  glasses soak --minutes 60 --json\n"
        "  glasses soak --minutes 30 --mode realtime --json > soak.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--minutes", type=float, default=60.0,
                   help="minutes of media to play (default 60)")
    p.add_argument("--mode", choices=("simulated", "realtime"), default="simulated",
                   help="simulated: as fast as it goes (default); realtime: the wall clock, "
                   "with the display drawn at 15 fps")
    p.add_argument("--every", type=float, default=10.0, metavar="S",
                   help="a question every S seconds of media (default 10; at least 6)")
    p.add_argument("--board", default="laptop", choices=BoardProfile.names(),
                   help="board profile: threads, precision, camera size (default laptop)")
    p.add_argument("--asr-model", choices=MODELS, default=DEFAULT_MODEL,
                   help=f"Whisper model for speech (default {DEFAULT_MODEL})")
    add_model_option(p)
    p.add_argument("--no-memory", action="store_true",
                   help="without memory (by default a memory file of the soak's own is used)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    board = BoardProfile.by_name(args.board)
    asr, vlm = assistant_options(board, args.asr_model, args.model)
    options = SoakOptions(minutes=args.minutes, every_s=args.every, mode=Mode(args.mode),
                          board=board, asr=asr, vlm=vlm, memory=not args.no_memory)
    data = run_soak(options, ModelStore(), lambda msg: progress(f"glasses: {msg}"))
    result(data, args.json, _text(data))
    return 0


def _text(d: dict) -> str:
    t, lat, rss = d["turns"], d["latency"], d["rss_mb"]
    first, last = (v for k, v in lat.items() if k.startswith(("first_", "last_")))
    drift = "n/a" if lat["drift_pct"] is None else f"{lat['drift_pct']:+.1f}%"
    lines = [
        f"soak: {d['minutes']:g} min of media, {d['mode']}, board {d['board']}: "
        f"{d['wall_s']:.0f} s of wall time",
        f"questions: {t['asked']} asked, {t['heard']} heard, {t['answered']} answered, "
        f"{t['as_expected']} as expected",
        f"latency ({lat['measure']}): first turns {first} ms, last turns {last} ms, drift "
        f"{drift} (target within {DRIFT_PCT}%)",
        f"RSS: {rss['warm']:.0f} MB after warm-up, {rss['end']:.0f} MB at the end, growth "
        f"{rss['growth']:+.1f} MB, of its floor {rss['floor_growth']:+.1f} MB (target under "
        f"{GROWTH_MB} MB), {rss['slope_mb_per_media_hour'] or 'n/a'} MB per hour of media, "
        f"peak {rss['peak']:.0f} MB",
        "queues: " + ("all within their bounds" if d["queues_within_bounds"] else "OVER BOUND"),
    ]
    lines += [f"  {q['chain']} -> {q['stage']}: high water {q['high_water']} of {q['bound']}"
              + (f", {q['dropped']} dropped" if q["dropped"] else "") for q in d["queues"]]
    if "display" in d:
        s = d["display"]
        lines.append(f"display: {s['fps']:.1f} fps, {s['late']} late frames ("
                     f"{s['late_first_half']} in the first half, {s['late_second_half']} in "
                     "the second)")
    c = d["cpu"]
    lines.append(f"CPU: this process {c['own_percent']:.0f}% of one core ({c['cores']} cores), "
                 f"other programs {c['others_percent']:.0f}% ({c['others_percent_first_turns']}% "
                 f"during the first turns, {c['others_percent_last_turns']}% the last)")
    lines += [f"error: {e}" for e in d["errors"]]
    return "\n".join(lines)
