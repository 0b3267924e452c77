"""`glasses transcribe AUDIO` and `glasses eval asr DIR`."""

import argparse
import time
from functools import partial
from pathlib import Path

from glasses.cli.output import progress, result
from glasses.device.audio import load_audio, wav_info
from glasses.device.errors import GlassesError
from glasses.evaluation.asr import EngineFailed, evaluate_isolated, load_clips
from glasses.export.asr_engines import ENGINES, check, make_engine, unavailable
from glasses.models.asr import DEFAULT_MODEL, MODELS, PRECISIONS, AsrOptions, store_name
from glasses.models.store import ModelStore

DEFAULT_ENGINE = "onnx"
REFERENCE = "whisper"  # the engine others are compared with
ONNX_MAX_S = 30.0  # the onnx engine reads this much of a file: one Whisper window


def register(commands) -> None:
    p = commands.add_parser(
        "transcribe", help="speech to text from a WAV file",
        description="Transcribe one WAV file (any rate, any channels; mixed to 16 kHz mono) "
        "with one engine: greedy decoding, English, 2 threads. Prints the text.",
    )
    p.add_argument("audio", type=Path, metavar="AUDIO", help="a WAV file")
    p.add_argument("--engine", choices=list(ENGINES), default=DEFAULT_ENGINE,
                   help=f"which engine (default {DEFAULT_ENGINE})")
    _model_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=_transcribe)

    p = eval_commands(commands).add_parser(
        "asr", help="word error rate and latency over a folder of clips, per engine",
        description="Run each engine over a speech set (*.wav plus truth.tsv: file name, tab, "
        "reference text; columns between are ignored), one engine after another, each in "
        "its own process: load once, warm up on the first clip, then time every clip. "
        "Reports word error rate, median and p90 latency, real-time factor, peak resident "
        "memory and load time, with ratios against the whisper engine.",
    )
    p.add_argument("folder", type=Path, metavar="DIR", help="a speech set folder")
    p.add_argument("--engines", type=_engine_list, default=list(ENGINES), metavar="LIST",
                   help=f"comma-separated engines (default {','.join(ENGINES)}; "
                        "one that is not installed is reported as unavailable)")
    _model_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=_eval_asr)


def eval_commands(commands) -> argparse._SubParsersAction:
    """The subcommands of `glasses eval`, made on the first call. `eval asr` registers
    here; `eval look` registers beside it from its own module."""
    group = commands.choices.get("eval")
    if group is None:
        group = commands.add_parser(
            "eval", help="measure quality and latency over an evaluation folder",
            description="Evaluate a part of the assistant over a folder of cases.")
        group.suites = group.add_subparsers(dest="eval_command", required=True,
                                            metavar="SUITE")
    return group.suites


def _model_options(p: argparse.ArgumentParser) -> None:
    default = AsrOptions()
    p.add_argument("--model", choices=MODELS, default=DEFAULT_MODEL,
                   help=f"Whisper model (default {DEFAULT_MODEL})")
    p.add_argument("--precision", choices=list(PRECISIONS), default=default.precision,
                   help="onnx engine: fp32, int8, or mixed (fp32 encoder, int8 decoder); "
                        f"default {default.precision}")
    p.add_argument("--window", choices=("short", "full"), default=default.window,
                   help="onnx engine: encode the speech plus a little silence (short) or "
                        f"Whisper's whole 30 s window (full); default {default.window}")


def _engine_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one engine")
    for name in names:
        try:
            check(name)
        except GlassesError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return list(dict.fromkeys(names))  # each once, in the order given


def _options(args: argparse.Namespace) -> AsrOptions:
    return AsrOptions(model=args.model, precision=args.precision, window=args.window)


# -- glasses transcribe ------------------------------------------------------------------

def _transcribe(args: argparse.Namespace) -> int:
    info = wav_info(args.audio)  # the header only: a long file is not decoded whole
    audio = load_audio(args.audio, first_s=ONNX_MAX_S if args.engine == "onnx" else None)
    audio_s = info.seconds
    why = unavailable(args.engine)
    if why:
        raise GlassesError(f"the {args.engine} engine cannot run here: {why}")
    engine = make_engine(args.engine, _options(args), ModelStore())
    if args.engine == "onnx" and audio_s > ONNX_MAX_S:
        progress(f"{args.audio}: {audio_s:.1f} s long; the onnx engine reads the first "
                 f"{ONNX_MAX_S:.0f} s")
    progress(f"loading {engine.description}")
    engine.load()
    t0 = time.perf_counter()
    text = engine.transcribe(audio)
    ms = (time.perf_counter() - t0) * 1e3
    data = {"file": str(args.audio), "engine": args.engine, "model": args.model, "text": text,
            "ms": round(ms, 1), "audio_s": round(audio_s, 3),
            "timings_ms": {k: round(v, 1) for k, v in engine.last_timings_ms.items()}}
    result(data, args.json, text)
    return 0


# -- glasses eval asr --------------------------------------------------------------------

def _eval_asr(args: argparse.Namespace) -> int:
    clips = load_clips(args.folder)  # every bad file is found before any engine runs
    store = ModelStore()
    store.entry(store_name(args.model))  # an unprepared store: one error, not one per engine
    options = _options(args)
    audio_s = sum(c.seconds for c in clips)
    progress(f"{args.folder}: {len(clips)} clips, {audio_s:.1f} s of audio")
    engines: dict[str, dict] = {}
    failures: list[EngineFailed] = []
    for name in args.engines:
        why = unavailable(name)
        if why:
            progress(f"{name}: unavailable ({why})")
            engines[name] = {"model": args.model, "unavailable": why}
            continue
        try:
            engines[name] = evaluate_isolated(partial(make_engine, name, options, store),
                                              clips, progress, label=f"{name} {args.model}")
        except EngineFailed as e:
            progress(f"glasses: {e}")
            engines[name] = {"model": args.model, "error": str(e)}
            failures.append(e)
    report = {"clips": len(clips), "engines": engines}
    descriptions = {n: make_engine(n, options, store).backend for n in engines}
    result(report, args.json, _eval_text(report, audio_s, descriptions))
    if failures:
        raise EngineFailed("; ".join(str(e) for e in failures), failures[0].exit_code)
    return 0


_COLUMNS = (  # header, key, format
    ("WER %", "wer", lambda v: f"{v * 100:.1f}"),
    ("median ms", "median_ms", lambda v: f"{v:.0f}"),
    ("p90 ms", "p90_ms", lambda v: f"{v:.0f}"),
    ("RTF", "rtf", lambda v: "-" if v is None else f"{v:.3f}"),
    ("peak RSS MB", "peak_rss_mb", lambda v: f"{v:.0f}"),
    ("load s", "load_s", lambda v: f"{v:.1f}"),
)
_RATIOS = (("median", "median_ms"), ("p90", "p90_ms"), ("RTF", "rtf"),
           ("peak RSS", "peak_rss_mb"), ("load", "load_s"))


def _eval_text(report: dict, audio_s: float, descriptions: dict[str, str]) -> str:
    engines = report["engines"]
    width = max(len("engine"), *(len(n) for n in engines))
    lines = [f"{report['clips']} clips, {audio_s:.1f} s of audio, "
             f"model {next(iter(engines.values()))['model']}", ""]
    header = f"{'engine':{width}}  " + "  ".join(f"{h:>11}" for h, _, _ in _COLUMNS)
    lines += [header + "  runs on", "-" * (len(header) + 9)]
    for name, e in engines.items():
        if "unavailable" in e or "error" in e:
            why = e.get("unavailable") and f"unavailable: {e['unavailable']}"
            lines.append(f"{name:{width}}  {why or 'failed: ' + e['error']}")
            continue
        cells = "  ".join(f"{fmt(e[key]):>11}" for _, key, fmt in _COLUMNS)
        lines.append(f"{name:{width}}  {cells}  {descriptions[name]}")
    ref = engines.get(REFERENCE, {})
    if "results" in ref:
        lines.append("")
        for name, e in engines.items():
            if name == REFERENCE or "results" not in e:
                continue
            ratios = {label: e[key] / ref[key] for label, key in _RATIOS
                      if e[key] is not None and ref[key]}
            median = ratios.pop("median", None)
            head = f"{name} median is {median:.2f}x {REFERENCE}'s" if median else name
            rest = ", ".join(f"{label} {r:.2f}x" for label, r in ratios.items())
            lines.append(f"{head} ({rest}); WER {e['wer'] * 100:.1f}% vs "
                         f"{ref['wer'] * 100:.1f}%")
    return "\n".join(lines)
