"""`glasses deploy --board NAME --out PATH` and `glasses run --bundle PATH`."""

import argparse
from pathlib import Path

from glasses.cli.look_cmd import add_model_option
from glasses.cli.output import progress, result
from glasses.cli.simulate_cmd import add_play_options, play
from glasses.device.boards import BoardProfile
from glasses.export.bundle import build_bundle
from glasses.models.bundle import open_bundle
from glasses.models.deployment import ASR_MODEL
from glasses.models.store import ModelStore


def register(commands) -> None:
    p = commands.add_parser(
        "deploy", help="a self-contained bundle for an edge board",
        description="Write a bundle for one board: the model files the assistant loads, in "
        "the board's precision, verified against the store as they are taken; the board's "
        "settings; the run-time requirements (numpy, onnxruntime, opencv: no torch); a "
        "README for the board; and manifest.json with the sha256 and size of every file. "
        "PATH is a new folder, or a file ending in .tar.gz.",
        epilog="example: glasses deploy --board rpi5 --out rpi5-bundle.tar.gz",
    )
    p.add_argument("--board", required=True, choices=BoardProfile.names(), help="the board")
    p.add_argument("--out", required=True, type=Path, metavar="PATH",
                   help="a new folder, or NAME.tar.gz")
    add_model_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=_deploy)

    p = commands.add_parser(
        "run", help="run a bundle headless on the board",
        description="Verify a bundle (every file against manifest.json; an archive is "
        "unpacked beside itself first, refusing entries that would land outside it) and run "
        "the assistant from it, headless, with the bundle's board settings: on the built-in "
        "demo or a scenario, on files, or on the camera and the microphone.",
        epilog="examples:\n  glasses run --bundle rpi5-bundle.tar.gz --check\n"
        "  glasses run --bundle rpi5-bundle --scenario demo\n"
        "  glasses run --bundle rpi5-bundle --view 0 --live-mic",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", required=True, type=Path, metavar="PATH",
                   help="a bundle folder or .tar.gz")
    p.add_argument("--check", action="store_true", help="verify the bundle and exit")
    add_play_options(p)
    p.set_defaults(run=_run)


def _deploy(args) -> int:
    board = BoardProfile.by_name(args.board)
    progress(f"glasses: bundle for {board.name} ({board.precision}) -> {args.out}")
    summary = build_bundle(ModelStore(), board, args.out, progress, args.model)
    result(summary, args.json, f"{summary['path']}: {summary['files']} files, "
           f"{summary['bytes'] / 1e6:.0f} MB, precision {summary['precision']}, "
           f"answered by the {summary['model']}")
    return 0


def _run(args) -> int:
    bundle = open_bundle(args.bundle)
    progress(f"glasses: bundle {bundle.root} verified: {bundle.files} files, "
             f"{bundle.bytes / 1e6:.0f} MB, board {bundle.board.name}, {bundle.model}")
    if args.check:
        result({"bundle": str(bundle.root), "board": bundle.board.name, "files": bundle.files,
                "bytes": bundle.bytes, "verified": True}, args.json, "ok")
        return 0
    return play(args, bundle.store, bundle.board, headless=True, asr_model=ASR_MODEL,
                vlm_model=bundle.model)
