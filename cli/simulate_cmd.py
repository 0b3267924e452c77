"""`glasses simulate`: the glasses on a laptop, in a window or headless."""

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

from glasses.cli.look_cmd import add_model_option
from glasses.cli.memory_cmd import duration
from glasses.cli.output import progress, result
from glasses.device.boards import BoardProfile
from glasses.device.display import screen_available
from glasses.device.errors import BadInput
from glasses.models.asr import DEFAULT_MODEL, MODELS
from glasses.models.deployment import assistant_options
from glasses.models.store import ModelStore
from glasses.models.vad import ENDPOINTS
from glasses.pipelines.memory import RETENTION_S
from glasses.pipelines.profiler import stage_stats
from glasses.pipelines.sources import Mode
from glasses.simulator.echo_mix import DELAY_MS as ECHO_DELAY_MS
from glasses.simulator.echo_mix import GAIN as ECHO_GAIN
from glasses.simulator.present import KEYS
from glasses.simulator.scenario import check, load_scenario, prepare
from glasses.simulator.session import (
    DEMO_AUDIO,
    DEMO_SCENARIO,
    DEMO_VIDEO,
    SessionOptions,
    SessionSummary,
    run_session,
)


def add_endpoint_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", choices=ENDPOINTS, default="turn",
                   help="how a question's end is found: turn (default): the end-of-turn model "
                   "and the words heard judge each pause, a finished question ends 160 ms into "
                   "its silence, an unfinished one waits up to 1.5 s for the rest; vad: any "
                   "300 ms of silence ends it (no end-of-turn model needed)")


def add_play_options(p: argparse.ArgumentParser) -> None:
    """What to play and what to write: shared by `simulate` and `run --bundle`."""
    p.add_argument("--scenario", metavar="FILE",
                   help="a scenario file, or 'demo' (the default when no source is given)")
    p.add_argument("--view", metavar="SRC", help="camera index, video file or folder of stills "
                   "(with --audio or --live-mic alone: the demo video)")
    audio = p.add_mutually_exclusive_group()
    audio.add_argument("--audio", metavar="WAV", help="speech to replay (with --view alone: the "
                       "demo's questions)")
    audio.add_argument("--live-mic", action="store_true", help="listen to the live microphone")
    p.add_argument("--mode", choices=[m.value for m in Mode], default="realtime",
                   help="realtime: replay files at their own pace (default); offline: as fast "
                   "as possible; simulated: as fast as possible, stamped on the media timeline")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    add_endpoint_option(p)
    p.add_argument("--wake", action="store_true",
                   help="hands-free: only a question after the wake word \"okay nabu\" is "
                   "heard (\"okay nabu, what is this?\", or the wake word, then the question "
                   "within 8 s); other speech is ignored. Needs the wake extra "
                   "(pymicro-features) and the wake-okay-nabu model")
    p.add_argument("--speak", action="store_true",
                   help="speak the answers with the bundled voice, each sentence as soon as it "
                   "is complete (to the speaker if there is one, and into --record's WAV); "
                   "speaking over the voice stops it (barge-in)")
    p.add_argument("--echo", type=float, nargs="?", const=ECHO_GAIN, metavar="GAIN",
                   help="with --speak: mix the voice as it plays into what the microphone "
                   f"hears, {ECHO_DELAY_MS} ms late, at GAIN (default {ECHO_GAIN}), to try the "
                   "echo guard (realtime mode only)")
    p.add_argument("--no-echo-guard", action="store_true",
                   help="with --speak: do not take the voice out of what the microphone hears "
                   "(to see what the echo guard prevents)")
    p.add_argument("--record", type=Path, metavar="OUT.mp4",
                   help="write the frames shown (window or not) to a video, the sound beside it")
    p.add_argument("--events", type=Path, metavar="OUT.jsonl", help="write events as JSON lines")
    p.add_argument("--control", type=Path, metavar="PATH",
                   help="serve a control socket at PATH (Unix, mode 0600): JSON-line commands "
                   "mute, unmute, camera_off, camera_on, talk_start, talk_stop, ask, stop; "
                   "every event sent back (see the README)")
    p.add_argument("--companion", action="store_true",
                   help="serve the companion page on this machine (127.0.0.1, a random port "
                   "and token; the address is printed): the display live, memory to search "
                   "and delete")
    p.add_argument("--no-memory", action="store_true",
                   help="remember nothing: no moments noted, nothing recalled (see `glasses "
                   "memory`)")
    p.add_argument("--retention", type=duration, default=RETENTION_S, metavar="DURATION",
                   help="moments older than this are forgotten (default 24h; e.g. 30m, 2h, 7d)")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")


def register(commands) -> None:
    p = commands.add_parser(
        "simulate",
        help="the glasses on a laptop: camera and microphone through the whole assistant",
        description="Play a camera view and speech through the on-device assistant (camera "
        "-> frame buffer; microphone -> voice activity detection -> speech recognition -> "
        "look and tell) and show what the glasses would: the view with the display over it, "
        "a status line, the transcript as it grows, the answer card, a capture indicator "
        "while the camera records. With no sources it plays the built-in demo scenario; "
        "--scenario plays another (a TOML timeline, see simulator/scenario.py). Without a "
        f"screen it runs headless by itself. Window keys: {KEYS}.",
        epilog="examples:\n  glasses simulate\n"
        "  glasses simulate --headless --record out.mp4 --events out.jsonl\n"
        "  glasses simulate --scenario kitchen.toml --speak\n"
        "  glasses simulate --headless --speak --echo 0.5 --json\n"
        "  glasses simulate --view clip.mp4 --audio question.wav --mode simulated --json\n"
        "  glasses simulate --view 0 --live-mic --push-to-talk",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_play_options(p)
    p.add_argument("--asr-model", choices=MODELS, default=DEFAULT_MODEL,
                   help=f"Whisper model for speech (default {DEFAULT_MODEL})")
    add_model_option(p)
    p.add_argument("--board", default="laptop", choices=BoardProfile.names(),
                   help="board profile: threads, precision, camera size, display (default "
                   "laptop)")
    p.add_argument("--headless", action="store_true", help="no window, even with a screen")
    p.add_argument("--push-to-talk", action="store_true",
                   help="in a window, the microphone is heard only after space (default: "
                   "always on, the voice activity detector finds the questions)")
    p.add_argument("--overlay", action="store_true", help="show the latency overlay (key p)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    headless = args.headless
    if not headless:
        screen, note = screen_available()
        if not screen:
            progress(f"no screen ({note}): running headless")
            headless = True
    board = BoardProfile.by_name(args.board)
    return play(args, ModelStore(), board, headless, args.asr_model, args.push_to_talk,
                args.overlay, args.model)


def play(args: argparse.Namespace, store: ModelStore, board: BoardProfile, headless: bool,
         asr_model: str, push_to_talk: bool = False, overlay: bool = False,
         vlm_model: str = "teacher") -> int:
    """Play a scenario or sources through the assistant; print the summary; exit code."""
    sources = args.view is not None or args.audio is not None or args.live_mic
    if args.scenario and sources:
        raise BadInput("give either --scenario or --view/--audio/--live-mic, not both")
    if args.echo is not None and not args.speak:
        raise BadInput("--echo mixes the spoken answers into the microphone: add --speak")
    asr, vlm = assistant_options(board, asr_model, vlm_model)
    with tempfile.TemporaryDirectory(prefix="glasses-scenario-") as tmp:
        scenario = None
        if sources:  # what is not given comes from the demo
            view = args.view or str(DEMO_VIDEO)
            audio = None if args.live_mic else (args.audio or str(DEMO_AUDIO))
        else:
            path = DEMO_SCENARIO if args.scenario in (None, "demo") else Path(args.scenario)
            scenario = load_scenario(path)
            view, audio = prepare(scenario, Path(tmp), board.camera_size, voice_for(scenario),
                                  args.duration)
        options = SessionOptions(
            view=view, audio=audio, mode=Mode(args.mode), board=board, headless=headless,
            duration_s=args.duration or (scenario.duration_s if scenario else None),
            asr=asr, vlm=vlm, endpoint=args.endpoint, wake=args.wake,
            push_to_talk=push_to_talk and not headless,
            events=args.events, record=args.record, speak=args.speak, echo=args.echo,
            echo_guard=not args.no_echo_guard, overlay=overlay,
            control=args.control, companion=args.companion, memory=not args.no_memory,
            retention_s=args.retention)
        what = f"scenario {scenario.name}" if scenario else f"view {view}, audio {audio or 'mic'}"
        progress(f"simulating {what}: {options.mode.value}, "
                 f"{'headless' if headless else 'window'}"
                 + (f", recording to {args.record}" if args.record else ""))
        summary = run_session(options, store, progress)
    data = _summary(summary, options, scenario)
    result(data, args.json, _text(data))
    for e in summary.errors:
        print(f"glasses: error: {e}", file=sys.stderr)
    return max((c.exit_code for c in summary.report.chains if c.error), default=0)


def voice_for(scenario):
    """The voice's speak function, loaded only when a `say` item needs speaking."""
    if scenario.audio is not None or all(s.wav for s in scenario.says):
        return None
    from glasses.device.voice import Voice

    return Voice().speak


def _summary(summary: SessionSummary, options: SessionOptions, scenario) -> dict:
    events, report = summary.events, summary.report
    realtime = options.mode is Mode.REALTIME  # elsewhere delays are not the wearer's wait
    every = [{k: v if realtime or not k.endswith("_ms") else None
              for k, v in t.to_dict(summary.start_ns).items()} for t in summary.turns]
    turns = [t for t in every if t["source"] == "voice"]
    camera = next((c for c in report.chains if c.source.startswith("camera")), None)
    data = {
        "wall_s": round(report.wall_s, 3),
        "utterances": turns,
        "asked": [t for t in every if t["source"] == "text"],  # by text: API, control socket
        "display": {"frames": summary.display.frames, "fps": round(summary.display.fps, 2),
                    "late_frames": summary.display.late,
                    "extra_frames": summary.display.extra,
                    "first_frame_s": summary.display.first_frame_s},
        "video": {"frames": camera.produced if camera else 0,
                  "dropped": camera.dropped if camera else 0},
        "chains": {c.source: dataclasses.asdict(c) for c in report.chains},
        "stages": stage_stats([(report.spans, [])]),
        "device_errors": [e for e in events if e["type"] == "device_error"],
        "device_returns": [e for e in events if e["type"] in ("device_lost", "device_back")],
        "errors": summary.errors,
        "stuck_threads": report.stuck_threads,
        "voice": summary.voice,
    }
    if scenario is not None:
        checked = check(scenario, turns)
        graded = [c for c in checked if c["passed"] is not None]
        data["scenario"] = {"name": scenario.name, "turns": checked,
                            "passed": sum(c["passed"] for c in graded), "graded": len(graded)}
    return data


def _text(data: dict) -> str:
    lines = []
    for i, u in enumerate(data["utterances"], 1):
        lines.append(f"turn {i}: heard {u['text']!r} ({u['start']:.2f}-{u['end']:.2f} s, frame "
                     f"#{u['frame']}) -> {u['answer']!r}")
        if u["final_text_ms"] is not None:
            lines.append(f"  after the end of speech: final text {u['final_text_ms']} ms, "
                         f"answer on the display {u['answer_shown_ms']} ms"
                         + (f", spoken {u['spoken_ms']} ms" if u["spoken_ms"] else ""))
    if "scenario" in data:
        s = data["scenario"]
        lines.append(f"scenario {s['name']}: {s['passed']}/{s['graded']} answers as expected")
        lines += [f"  expected {'|'.join(t['expect'])} after {t['said']!r}, got {t['answer']!r}"
                  for t in s["turns"] if t["passed"] is False]
    voice = data["voice"]
    if voice is not None:
        lines += [f"barge-in: the voice stopped {s['after_ms']:.0f} ms after the wearer began "
                  f"speaking ({s['cut_s']:.1f} s left unsaid)" for s in voice["stops"]]
        if (g := voice["guard"]) is not None:
            delay = ("no echo heard" if g["delay_ms"] is None
                     else f"the voice heard back {g['delay_ms']:.0f} ms late")
            lines.append(f"echo guard: {delay}, {g['silenced']} chunks of it silenced")
    d, v = data["display"], data["video"]
    lines.append(f"display: {d['frames']} frames, {d['fps']:.1f} fps, {d['late_frames']} late; "
                 f"camera: {v['frames']} frames, {v['dropped']} dropped (stale)"
                 + (f"; first frame shown {d['first_frame_s']:.2f} s after the command"
                    if d["first_frame_s"] is not None else ""))
    lines += [f"{e['device']} went away at {e['t']:.1f} s: {e['reason']}"
              if e["type"] == "device_lost" else
              f"{e['device']} back at {e['t']:.1f} s, after {e['away_s']:.1f} s away"
              for e in data["device_returns"]]
    lines += [f"{e['device']} failed at {e['t']:.1f} s: {e['message']} (the session went on)"
              for e in data["device_errors"]]
    for name, s in data["stages"].items():
        lines.append(f"stage {name}: {s['count']} calls ({s['working']} working), p50 "
                     f"{s['p50_ms']:.2f} ms, p95 {s['p95_ms']:.2f} ms")
    lines.append(f"ran {data['wall_s']:.1f} s, {len(data['utterances'])} utterance(s)")
    return "\n".join(lines)
