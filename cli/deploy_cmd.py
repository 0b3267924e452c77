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
        "settings; the run-time requirements (numpy, onnxruntime, opencv: no torch); "
        "wheels/, the assistant and every package it needs as wheels for the board's "
        "platform (x86_64 or aarch64, CPython 3.11), so the board installs with no network "
        "(pip install --no-index --find-links wheels/ 'glasses[voice]'); a README for the "
        "board; and manifest.json with the sha256 and size of every file. The wheels are "
        "fetched from PyPI and cached in the store's downloads/wheels/ (checked by sha256 "
        "when reused); --no-wheels deploys without network. PATH is a new folder, or a file "
        "ending in .tar.gz.",
        epilog="example: glasses deploy --board rpi5 --out rpi5-bundle.tar.gz "
        "(add --no-wheels to deploy without network)",
    )
    p.add_argument("--board", required=True, choices=BoardProfile.names(), help="the board")
    p.add_argument("--out", required=True, type=Path, metavar="PATH",
                   help="a new folder, or NAME.tar.gz")
    p.add_argument("--no-wheels", action="store_true",
                   help="leave wheels/ out: no network needed to deploy, but the board then "
                   "installs glasses and its packages from PyPI (its README says how)")
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
    p.add_argument("--check", action="store_true",
                   help="verify the bundle, hashing every file, and exit (a run hashes only "
                        "the files changed since they last matched)")
    add_play_options(p)
    p.set_defaults(run=_run)


def _deploy(args) -> int:
    board = BoardProfile.by_name(args.board)
    progress(f"glasses: bundle for {board.name} ({board.precision}) -> {args.out}")
    summary = build_bundle(ModelStore(), board, args.out, progress, args.model,
                           wheels=not args.no_wheels)
    house = summary["wheels"]
    if house is None:
        wheels = "no wheels (--no-wheels: the board installs from PyPI)"
    else:
        wheels = (f"wheels for {house['platform']} {house['bytes'] / 1e6:.0f} MB "
                  f"({len(house['packages'])} files, {house['downloaded']} downloaded, "
                  f"{house['seconds']:.0f} s)")
        for note in house["notes"]:
            progress(f"glasses: note: {note}")
    result(summary, args.json, f"{summary['path']}: {summary['files']} files, "
           f"{summary['bytes'] / 1e6:.0f} MB, precision {summary['precision']}, "
           f"answered by the {summary['model']}; {wheels}")
    return 0


def _run(args) -> int:
    bundle = open_bundle(args.bundle, full=args.check)
    progress(f"glasses: bundle {bundle.root} verified: {bundle.files} files, "
             f"{bundle.bytes / 1e6:.0f} MB, board {bundle.board.name}, {bundle.model}")
    if args.check:
        result({"bundle": str(bundle.root), "board": bundle.board.name, "files": bundle.files,
                "bytes": bundle.bytes, "verified": True}, args.json, "ok")
        return 0
    return play(args, bundle.store, bundle.board, headless=True, asr_model=ASR_MODEL,
                vlm_model=bundle.model)
