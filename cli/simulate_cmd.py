"""`glasses simulate`: the glasses on a laptop, in a window or headless."""

import argparse
import dataclasses
import sys
from pathlib import Path

from cli.output import progress, result
from device.boards import BoardProfile
from device.display import screen_available
from models.asr import DEFAULT_MODEL, MODELS, AsrOptions
from models.store import ModelStore
from pipelines.sources import Mode
from simulator.session import DEMO_AUDIO, DEMO_VIDEO, SessionOptions, run_session


def register(commands) -> None:
    p = commands.add_parser(
        "simulate",
        help="the glasses on a laptop: camera and microphone through the pipeline",
        description="Play a camera view and speech through the on-device pipeline (camera -> "
        "frame buffer, microphone -> voice activity detection -> speech recognition) and "
        "show what the glasses would: partial transcripts while the wearer speaks, the "
        "final one at the end of speech. With no sources it plays the built-in demo. "
        "Without a screen it runs headless by itself.",
        epilog="examples:\n  glasses simulate --headless\n"
        "  glasses simulate --view clip.mp4 --audio question.wav --mode simulated --json\n"
        "  glasses simulate --view 0 --live-mic --duration 30",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--view", metavar="SRC",
                   help="camera index, video file or folder of stills (default: the demo video)")
    audio = p.add_mutually_exclusive_group()
    audio.add_argument("--audio", metavar="WAV", help="speech to replay (default: the demo)")
    audio.add_argument("--live-mic", action="store_true", help="listen to the live microphone")
    p.add_argument("--mode", choices=[m.value for m in Mode], default="realtime",
                   help="realtime: replay files at their own pace (default); offline: as fast "
                   "as possible; simulated: as fast as possible, stamped on the media timeline")
    p.add_argument("--model", choices=MODELS, default=DEFAULT_MODEL,
                   help=f"Whisper model for speech (default {DEFAULT_MODEL})")
    p.add_argument("--board", default="laptop", choices=BoardProfile.names(),
                   help="board profile: threads, camera size, display (default laptop)")
    p.add_argument("--headless", action="store_true", help="no window, even with a screen")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--events", type=Path, metavar="OUT.jsonl", help="write events as JSON lines")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    headless = args.headless
    if not headless:
        screen, note = screen_available()
        if not screen:
            progress(f"no screen ({note}): running headless")
            headless = True
    demo = args.view is None and args.audio is None and not args.live_mic
    options = SessionOptions(
        view=args.view or str(DEMO_VIDEO),
        audio=None if args.live_mic else (args.audio or str(DEMO_AUDIO)),
        mode=Mode(args.mode),
        board=BoardProfile.by_name(args.board),
        headless=headless,
        duration_s=args.duration,
        events=args.events,
        asr=AsrOptions(model=args.model),
    )
    progress(f"simulating{' the built-in demo' if demo else ''}: view {options.view}, "
             f"audio {options.audio or 'live microphone'}, {options.mode.value}, "
             f"{'headless' if headless else 'window'}")
    summary = run_session(options, ModelStore())
    report = summary.report
    chains = {c.source: dataclasses.asdict(c) for c in report.chains}
    def by_end(kind: str) -> dict:
        return {e["speech_end"]: e for e in summary.events if e["type"] == kind}

    finals, starts, answers = by_end("final_transcript"), by_end("answer_start"), by_end("answer")
    realtime = options.mode is Mode.REALTIME
    turns = []
    for u in (e for e in summary.events if e["type"] == "utterance"):
        final, start, answer = finals.get(u["end"]), starts.get(u["end"]), answers.get(u["end"])
        turns.append({**u, "text": final["text"] if final else None,
                      "final_text_ms": round((final["t"] - u["end"]) * 1000)
                      if final and realtime else None,
                      "answer": answer["text"] if answer else None,
                      "first_answer_ms": start["since_speech_end_ms"]
                      if start and realtime else None,
                      "answer_ms": answer["since_speech_end_ms"] if answer and realtime else None})
    data = {
        "wall_s": round(report.wall_s, 3),
        "utterances": turns,
        "chains": chains,
        "stages": _stage_summary(report.spans),
        "errors": summary.errors,
    }
    lines = []
    for i, u in enumerate(data["utterances"], 1):
        lines.append(f"utterance {i}: {u['text']!r}, speech {u['start']:.2f}-{u['end']:.2f} s, "
                     f"frame #{u['frame']} -> {u['answer']!r}")
        if u["final_text_ms"] is not None:
            lines.append(f"  after the end of speech: final text {u['final_text_ms']} ms, "
                         f"first answer words {u['first_answer_ms']} ms, whole answer "
                         f"{u['answer_ms']} ms")
    for c in report.chains:
        lines.append(f"{c.source}: {c.produced} items, {c.dropped} dropped (stale), "
                     f"{c.lost_samples} audio samples lost, {c.superseded} partials skipped")
    for name, s in data["stages"].items():
        lines.append(f"stage {name}: {s['count']} calls, p50 {s['p50_ms']:.2f} ms, "
                     f"p95 {s['p95_ms']:.2f} ms")
    lines.append(f"ran {report.wall_s:.1f} s, {len(data['utterances'])} utterance(s)")
    result(data, args.json, "\n".join(lines))
    for e in summary.errors:
        print(f"glasses: error: {e}", file=sys.stderr)
    return max((c.exit_code for c in report.chains if c.error), default=0)


def _stage_summary(spans) -> dict:
    by_stage: dict[str, list[float]] = {}
    for s in spans:
        by_stage.setdefault(s.stage, []).append(s.busy_ns / 1e6)
    out = {}
    for name, ms in by_stage.items():
        ms.sort()
        out[name] = {
            "count": len(ms),
            "p50_ms": round(ms[len(ms) // 2], 3),
            "p95_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 3),
        }
    return out
