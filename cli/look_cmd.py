"""`glasses ask` (one look-and-tell turn), `glasses eval look DIR` and `eval things DIR`."""

import argparse
import time
from dataclasses import replace
from pathlib import Path

from glasses.cli.asr_cmd import eval_commands
from glasses.cli.output import progress, result
from glasses.device.audio import SAMPLE_RATE, load_audio
from glasses.device.boards import BoardProfile
from glasses.device.camera import Camera, read_image
from glasses.device.errors import BadInput
from glasses.evaluation.look import WHAT, Turn, answer_turn, evaluate_look, read_look_set
from glasses.evaluation.things import VARIANTS, evaluate_things, read_things_set
from glasses.models.asr import DEFAULT_MODEL, MODELS, AsrOptions, WhisperOnnx
from glasses.models.deployment import assistant_options, open_vlm, precisions
from glasses.models.store import ModelStore
from glasses.models.things import DEFAULT, SAME_THING, embed_thing
from glasses.models.vad import SileroVad, speech_spans
from glasses.models.vision import Classifier
from glasses.pipelines.frame_buffer import FrameBuffer
from glasses.pipelines.frame_choice import frame_for, sharpness
from glasses.pipelines.frames import VideoFrame

QUESTION_S = 2.0  # a typed question counts as asked over a video's last this many seconds
CAMERA_LOOK_S = 1.0  # a live camera is watched this long, and its sharpest frame taken
FRAME_CAPACITY = 300  # video frames kept while looking for the question's frame
ASR_PAD_S = 0.2  # audio kept around the speech the VAD found


def register(commands) -> None:
    p = commands.add_parser(
        "ask", help="one look-and-tell turn: a picture and a question, an answer",
        description="Answer one question about what the camera sees. The picture is a still "
        "(--image), the sharpest recent frame of a video while the question was asked "
        "(--video: with --audio, during the speech; with --question, over its last "
        f"{QUESTION_S:g} s), or the sharpest of a webcam's frames over {CAMERA_LOOK_S:g} s "
        "(--camera). The question is typed (--question) or spoken in a WAV (--audio, "
        "recognised on the device; its time is part of the turn). The answer is printed as "
        "it is produced.",
        epilog='example: glasses ask --image mug.jpg --question "What colour is this?"',
    )
    view = p.add_mutually_exclusive_group(required=True)
    view.add_argument("--image", type=Path, metavar="IMG", help="a still image")
    view.add_argument("--video", type=Path, metavar="FILE", help="a video file")
    view.add_argument("--camera", type=int, metavar="N", help="a webcam index")
    ask = p.add_mutually_exclusive_group(required=True)
    ask.add_argument("--question", metavar="TEXT", help="the question, typed")
    ask.add_argument("--audio", type=Path, metavar="WAV", help="the question, spoken")
    _options(p)
    p.add_argument("--asr-model", choices=MODELS, default=DEFAULT_MODEL,
                   help=f"Whisper model for --audio (default {DEFAULT_MODEL})")
    p.set_defaults(run=_ask)

    p = eval_commands(commands).add_parser(
        "look", help="answer quality and latency over a folder of look-and-tell cases",
        description=f"Answer every case of a look-and-tell set ({WHAT}). An answer passes "
        "when, lowercased with only letters and digits kept, it contains an accepted word "
        "normalised the same way. The models are loaded and warmed up first; then every "
        "turn is timed from the question to its first piece of answer and to its end, "
        "stage by stage. Progress goes to stderr.",
        epilog="make a set: python -m glasses.export.look_set DIR",
    )
    p.add_argument("folder", type=Path, metavar="DIR", help="a look-and-tell set folder")
    _options(p)
    p.set_defaults(run=_eval_look)

    p = eval_commands(commands).add_parser(
        "things", help="is this my X: a thing's other views against other things' views",
        description="Enrol the first view (or two) of every thing of a things set (images "
        "plus things.tsv: file, thing, view|distractor, how it was made), then compare every "
        "other image with every thing: its own views should match, its distractors (other "
        "things of the same kind) and the other things should not. Prints precision and "
        f"recall at the threshold (default {SAME_THING}, models/things.py) and over a sweep, "
        "and how often the best match is right.",
        epilog="make a set: python -m glasses.export.things_set DIR [--split holdout]")
    p.add_argument("folder", type=Path, metavar="DIR", help="a things set folder")
    p.add_argument("--shots", type=int, choices=(1, 2), default=1,
                   help="views enrolled per thing (default 1)")
    p.add_argument("--threshold", type=float, default=SAME_THING,
                   help=f"similarity from which two views match (default {SAME_THING})")
    p.add_argument("--variants", action="store_true",
                   help=f"compare the embeddings {', '.join(VARIANTS)} (else the default)")
    p.add_argument("--precision", choices=("fp32", "int8"),
                   help="the classifier's weights (default: the board's precision)")
    p.add_argument("--board", choices=BoardProfile.names(), default="laptop",
                   help="board profile: threads and providers (default laptop)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=_eval_things)


def add_model_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=("teacher", "student"), default="teacher",
                   help="what answers: the teacher (classifier, OCR, colour reader and "
                   "SmolLM2; the default) or the distilled student (`glasses distill`)")


def _options(p: argparse.ArgumentParser) -> None:
    add_model_option(p)
    p.add_argument("--precision", choices=("fp32", "int8"),
                   help="the models' weights (default: the board's precision)")
    p.add_argument("--board", choices=BoardProfile.names(), default="laptop",
                   help="board profile: threads and providers (default laptop)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _board(args) -> BoardProfile:
    board = BoardProfile.by_name(args.board)
    return replace(board, precision=args.precision) if args.precision else board


def _ask(args) -> int:
    store, board = ModelStore(), _board(args)
    asr_options, vlm_options = assistant_options(board, args.asr_model, args.model)
    heard, asr_ms, span = None, 0.0, None
    if args.audio is not None:
        heard, asr_ms, span = _listen(args, store, board, asr_options)
        question = heard
    else:
        question = args.question
    frame = _frame(args, span)
    progress("glasses: loading the look-and-tell models")
    vlm = open_vlm(store, board, vlm_options)
    stream = None if args.json else (lambda piece: print(piece, end="", flush=True))
    turn = answer_turn(vlm, frame.image, question, stream)
    if stream:
        print()
    if heard is not None:  # the turn starts at the end of speech: recognition is part of it
        turn = replace(turn, first_token_ms=round(turn.first_token_ms + asr_ms, 1),
                       ms=round(turn.ms + asr_ms, 1), stages={"asr": asr_ms, **turn.stages})
    if args.json:
        result(_turn_json(turn, heard, frame), True, "")
    else:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in turn.stages.items())
        progress(f"glasses: {turn.intent}; first words in {turn.first_token_ms:.0f} ms, "
                 f"answer in {turn.ms:.0f} ms ({stages} ms)")
    return 0


def _turn_json(turn: Turn, heard: str | None, frame: VideoFrame) -> dict:
    data = {"question": turn.question, "intent": turn.intent, "answer": turn.answer,
            "cards": turn.cards, "first_token_ms": turn.first_token_ms, "ms": turn.ms,
            "stages": turn.stages,
            "frame": {"index": frame.index, "t_s": round(frame.t_ns / 1e9, 3),
                      "sharpness": round(sharpness(frame.image), 1)}}
    if heard is not None:
        data["heard"] = heard
    return data


def _listen(args, store: ModelStore, board: BoardProfile, options: AsrOptions
            ) -> tuple[str, float, tuple]:
    """The question in `args.audio`: (text, recognition ms, (start, end) seconds)."""
    audio = load_audio(args.audio)
    spans = speech_spans(SileroVad(store, board), audio)
    if not spans:
        raise BadInput(f"{args.audio}: no speech found (nothing to answer)")
    start, end = spans[0]
    pad = int(ASR_PAD_S * SAMPLE_RATE)
    asr = WhisperOnnx(store, board, options)
    t0 = time.perf_counter()
    text = asr.transcribe(audio[max(0, start - pad) : end + pad]).text
    asr_ms = round((time.perf_counter() - t0) * 1e3, 1)
    if not text:
        raise BadInput(f"{args.audio}: the speech was not understood (no words recognised)")
    if not args.json:
        progress(f"glasses: heard {text!r}")
    return text, asr_ms, (start / SAMPLE_RATE, end / SAMPLE_RATE)


def _frame(args, span: tuple[float, float] | None) -> VideoFrame:
    """The picture the question is about, as a frame stamped with its media time."""
    if args.image is not None:
        return VideoFrame(0, read_image(args.image), 0)
    if args.camera is not None:
        return _watch(Camera.open(args.camera), (0.0, CAMERA_LOOK_S))
    return _watch(Camera.open(args.video), span)


def _watch(camera: Camera, span: tuple[float, float] | None) -> VideoFrame:
    """Read frames up to the end of `span` (seconds; None: the whole video, whose last
    `QUESTION_S` seconds are the span) and choose among those inside it."""
    buffer = FrameBuffer(FRAME_CAPACITY)
    stop_ns = None if span is None else int(span[1] * 1e9)
    with camera:
        for f in camera.frames():
            if stop_ns is not None and f.media_ns > stop_ns:
                break
            buffer.process(VideoFrame(f.media_ns, f.image, f.index))
    last = buffer.latest()
    if last is None:
        raise BadInput(f"{camera}: delivered no frames")
    if span is None:
        span = (last.t_ns / 1e9 - QUESTION_S, last.t_ns / 1e9)
    return frame_for(buffer, int(span[0] * 1e9), int(span[1] * 1e9))


def _eval_look(args) -> int:
    cases = read_look_set(args.folder)
    store, board = ModelStore(), _board(args)
    progress(f"glasses: {len(cases)} cases; loading and warming up the models")
    vlm = open_vlm(store, board, assistant_options(board, vlm_model=args.model)[1])
    vlm.warm_up()
    summary = evaluate_look(vlm, cases, args.folder, progress)
    summary = {**summary, "model": vlm.name, "precision": board.precision, "board": board.name}
    result(summary, args.json, _eval_text(summary))
    return 0


def _eval_text(s: dict) -> str:
    lines = [f"{s['passed']}/{s['cases']} passed ({s['pass_rate']:.0%}); first words "
             f"median {s['first_token_median_ms']:.0f} ms; answer median {s['median_ms']:.0f} "
             f"ms, p90 {s['p90_ms']:.0f} ms ({s['model']}, {s['precision']}, {s['board']})"]
    for intent, e in s["intents"].items():
        lines.append(f"  {intent:9} {e['passed']:3}/{e['cases']:<3} first words "
                     f"{e['first_token_median_ms']:5.0f} ms, answer {e['median_ms']:5.0f} ms")
    lines.append("  stage medians: " + ", ".join(
        f"{k} {v:.0f} ms" for k, v in s["stages_median_ms"].items()))
    failed = [r for r in s["results"] if not r["passed"]]
    lines += [f"  FAIL {r['file']}: {r['question']!r} -> {r['answer']!r}" for r in failed]
    return "\n".join(lines)



def _eval_things(args) -> int:
    images = read_things_set(args.folder, args.shots)
    board = _board(args)
    weights = precisions(board)["vision"]
    classifier = Classifier(ModelStore(), board, weights)
    variants = VARIANTS if args.variants else {"default": DEFAULT}
    out = {"weights": weights, "board": board.name, "variants": {}}
    lines = []
    for name, embedding in variants.items():
        progress(f"glasses: {len(images)} images; embedding: {name} ({embedding})")
        r = evaluate_things(lambda image, e=embedding: embed_thing(classifier, image, e),
                            images, args.folder, args.shots, args.threshold, progress=progress)
        out["variants"][name] = r
        b = r["best_in_sweep"]
        lines.append(f"{name}: at {r['threshold']}: precision {r['precision']:.2f}, recall "
                     f"{r['recall']:.2f}, F1 {r['f1']:.2f}, distractors accepted "
                     f"{r['distractors_accepted']:.0%}, identified {r['identify_accuracy']:.0%};"
                     f" best F1 {b['f1']:.2f} at {b['threshold']} (precision "
                     f"{b['precision']:.2f}, recall {b['recall']:.2f}); {r['embed_median_ms']:.0f}"
                     f" ms a view")
    if not args.variants:
        out = {**out, **out.pop("variants")["default"]}
        r = out
        lines = [f"{r['things']} things, {r['images']} images, {r['shots']} enrolled each "
                 f"({r['weights']}, {r['board']})", *lines]
        lines.append("  sweep: " + ", ".join(f"{x['threshold']:.2f} P{x['precision']:.2f} "
                                             f"R{x['recall']:.2f}" for x in r["sweep"][::5]))
        lines += [f"  {m['got']}: {m['file']} vs {m['thing']} ({m['role']}, {m['how']}): "
                  f"{m['similarity']:.3f}" for m in r["misses"][:20]]
    result(out, args.json, "\n".join(lines))
    return 0
