"""`glasses eval turns`: questions with a pause inside heard whole, and how soon a complete
question's turn ends."""

import argparse
from pathlib import Path

from glasses.cli.asr_cmd import eval_commands
from glasses.cli.output import progress, result
from glasses.device.boards import BoardProfile
from glasses.models.store import ModelStore, default_home
from glasses.models.vad import ENDPOINTS
from glasses.pipelines.turn_judge import RULES

DESCRIPTION = """\
Measure turn taking on a pause set made offline (python -m glasses.export.pause_set):
30 questions, each said once with a 0.5-1.0 s pause inside ("Can you tell me ... what is
written on that sign?") and once whole, in espeak-ng voices and the bundled voice, some
in light noise. Each clip goes through the assistant's own VAD stage with the endpoint
under test, and every final utterance is transcribed.

Reports the share of paused questions heard whole (one utterance holding the speech
after the pause), the share of whole questions not cut, and the endpoint delay of the
whole questions: audio heard after the end of speech before the turn ended (stream
time, the same on any machine; what speech recognition adds on top is measured by
`glasses profile`). The set is made on first use (about a minute) under the glasses
home (pause-set/)."""

EPILOG = """examples:
  glasses eval turns                      both endpoints, side by side
  glasses eval turns --endpoint turn --rule sound --json"""


def register(commands) -> None:
    p = eval_commands(commands).add_parser(
        "turns", help="turn taking: pauses inside questions heard whole, end-of-turn delay",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folder", type=Path, metavar="DIR",
                   help="a pause set (default: the glasses home's pause-set/, made if absent)")
    p.add_argument("--endpoint", choices=ENDPOINTS, action="append",
                   help="turn: the end-of-turn model and the words; vad: 300 ms of silence "
                        "(default: both)")
    p.add_argument("--rule", choices=RULES, default="both",
                   help="with --endpoint turn, what ends a turn: sound and words (default), "
                        "or one alone, to measure it")
    p.add_argument("--verbose", action="store_true", help="one line per clip")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=_eval_turns)


def _eval_turns(args: argparse.Namespace) -> int:
    from glasses.evaluation.turns import evaluate_turns
    from glasses.export.pause_set import TRUTH, make_pause_set

    folder = args.folder or default_home() / "pause-set"
    if args.folder is None and not (folder / TRUTH).is_file():
        progress(f"making the pause set in {folder}")
        make_pause_set(folder, progress=progress)
    store, board = ModelStore(), BoardProfile.laptop()
    runs = []
    for endpoint in args.endpoint or ENDPOINTS:
        progress(f"endpoint {endpoint}" + (f", rule {args.rule}" if endpoint == "turn" else ""))
        runs.append(evaluate_turns(folder, endpoint, store, board, rule=args.rule,
                                   progress=progress if args.verbose else None))
    lines = [f"{'endpoint':11} {'paused heard whole':>19} {'whole not cut':>14} "
             f"{'delay p50':>10} {'p90':>8} {'WER':>6}"]
    for r in runs:
        name = r["endpoint"] + (f"/{args.rule}" if r["endpoint"] == "turn" else "")
        lines.append(f"{name:11} {r['paused_heard_whole']:>13.0%} ({r['paused']}) "
                     f"{r['whole_heard_whole']:>8.0%} ({r['whole']}) "
                     f"{r['whole_delay_ms_p50']:>7.0f} ms {r['whole_delay_ms_p90']:>5.0f} ms "
                     f"{r['wer_whole']:>6.1%}")
    result({"folder": str(folder), "runs": runs}, args.json, "\n".join(lines))
    return 0
