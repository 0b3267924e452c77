"""`glasses eval wake`: wake-word detection rate and false accepts per hour."""

import argparse
from pathlib import Path

from glasses.cli.asr_cmd import eval_commands
from glasses.cli.output import progress, result
from glasses.device.boards import BoardProfile
from glasses.evaluation.wake import (
    TARGET_FA_PER_HOUR,
    TARGET_RATE,
    Setting,
    choose,
    score,
    summarize,
    sweep,
)
from glasses.models.store import default_home
from glasses.models.wake import DEFAULT_PHRASE, PHRASES, WakeOptions, WakeWord

DESCRIPTION = f"""\
Measure the wake word on a wake-word set made offline: "okay nabu" alone and before a
question, in espeak-ng voices (and the bundled hibari voice) under a quiet room, white,
pink and babble noise; and an hour of other speech and noise, near-misses among it
("okay", "okay now", "ok google", "nab"). The set is made on first use (about a minute)
and kept under the glasses home (wake-set/dev and wake-set/holdout).

Reports the share of wake phrases detected (overall, per voice, per noise), false
accepts per hour of other speech, how long after the phrase the detection comes, and
whether it comes before the question starts (where the wake stage cuts). Done when at
least {TARGET_RATE:.0%} are detected with fewer than {TARGET_FA_PER_HOUR:g} false accept an hour.

The figures are the holdout split's. --tune first sweeps thresholds and windows on the
dev split (other sentences, voices' speeds and noise), picks the best detection rate
with fewer false accepts there than the target (or else the fewest), and reports the
holdout at that setting beside the model's own (its .json)."""

EPILOG = """examples:
  glasses eval wake                       the holdout at the default setting
  glasses eval wake --tune --json         tune on dev, report the holdout
  glasses eval wake --threshold 0.7 --window 3
make a set elsewhere: python -m glasses.export.wake_set DIR --split dev|holdout"""


def register(commands) -> None:
    p = eval_commands(commands).add_parser(
        "wake", help="wake word: detection rate per voice and noise, false accepts per hour",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    default = WakeOptions()
    p.add_argument("--folder", type=Path, metavar="DIR",
                   help="holds dev/ and holdout/ (default: the glasses home's wake-set/)")
    p.add_argument("--phrase", choices=PHRASES, default=DEFAULT_PHRASE,
                   help=f"which wake word's model (default {DEFAULT_PHRASE}; the set says "
                        "okay nabu, so the others show their false accepts only)")
    p.add_argument("--threshold", type=float, default=default.threshold, metavar="P",
                   help="mean probability above which the word is heard (default: "
                        f"{default.threshold if default.threshold is not None else 'the model'}"
                        "'s)")
    p.add_argument("--window", type=int, default=default.window, metavar="N",
                   help="probabilities averaged, one per 30 ms (default: "
                        f"{default.window if default.window is not None else 'the model'}'s)")
    p.add_argument("--refractory-ms", type=int, default=default.refractory_ms, metavar="MS",
                   help=f"no second detection within this (default {default.refractory_ms})")
    p.add_argument("--minutes", type=int, metavar="M",
                   help="of other speech in the holdout (default 60; a different amount "
                        "makes a separate set)")
    p.add_argument("--tune", action="store_true",
                   help="sweep on the dev split first and report the holdout at the best")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=_eval_wake)


def _eval_wake(args: argparse.Namespace) -> int:
    from glasses.export.wake_set import make_set
    from glasses.models.store import ModelStore

    root = args.folder or default_home() / "wake-set"
    options = WakeOptions(args.threshold, args.window, args.refractory_ms)
    wake = WakeWord(ModelStore(), BoardProfile.laptop(), args.phrase, options)
    holdout_dir = root / ("holdout" if args.minutes is None else f"holdout-{args.minutes}min")
    holdout = make_set(holdout_dir, "holdout", args.minutes, progress)
    out: dict = {"phrase": args.phrase, "set": str(holdout)}
    progress(f"glasses: scoring {holdout}")
    scored = score(wake, holdout, progress)
    setting = Setting(wake.threshold, wake.window, args.refractory_ms)
    if args.tune:
        dev = make_set(root / "dev", "dev", None, progress)
        progress(f"glasses: scoring {dev}")
        dev_scored = score(wake, dev, progress)
        rows = sweep(dev_scored, args.refractory_ms)
        best = choose(rows)
        model = WakeWord(ModelStore(), BoardProfile.laptop(), args.phrase)
        model_setting = Setting(model.threshold, model.window, args.refractory_ms)
        setting = Setting(best["threshold"], best["window"], args.refractory_ms)
        out["dev"] = {"set": str(dev), "chosen": best, "sweep": rows,
                      "at_chosen": summarize(dev_scored, setting, details=False)}
        out["holdout_at_model_setting"] = summarize(scored, model_setting, details=False)
    out["holdout"] = summarize(scored, setting)
    result(out, args.json, _text(out))
    return 0


def _text(out: dict) -> str:
    h = out["holdout"]
    s = h["setting"]
    lines = [f"{out['phrase']} on {out['set']} (threshold {s['threshold']}, window "
             f"{s['window']}, refractory {s['refractory_ms']} ms):",
             f"  detected {h['detected']}/{h['phrases']} ({h['detection_rate']:.1%}); "
             f"false accepts {h['false_accepts']} in {h['other_hours']:.2f} h of other speech "
             f"({h['false_accepts_per_hour']:.2f}/h), {h['false_accepts_in_positives']} "
             f"around the phrases; {'PASS' if h['passes'] else 'FAIL'}",
             f"  detection after the phrase's end: {h['latency_ms']} ms; before the "
             f"question starts: {h['cut_early']}; the gate's cut in the pause: "
             f"{h['cut_in_pause']}"]
    lines.append("  per voice: " + ", ".join(f"{k} {v:.0%}" for k, v in h["per_voice"].items()))
    lines.append("  per noise: " + ", ".join(f"{k} {v:.0%}" for k, v in h["per_noise"].items()))
    if "dev" in out:
        c = out["dev"]["chosen"]
        m = out["holdout_at_model_setting"]
        lines.append(f"  tuned on dev: threshold {c['threshold']}, window {c['window']} "
                     f"(dev: {c['detection_rate']:.1%}, {c['false_accepts']} false accepts); "
                     f"the model's own setting on the holdout: {m['detection_rate']:.1%}, "
                     f"{m['false_accepts_per_hour']:.2f}/h")
    lines += [f"  FALSE ACCEPT {f['file']} at {f['s']} s: {f['text']!r}"
              for f in h["false_accept_list"][:20]]
    lines += [f"  MISS {m['file']} ({m['voice']}, {m['noise']}): {m['text']!r} max "
              f"{m['max_probability']}" for m in h["misses"][:20]]
    return "\n".join(lines)
