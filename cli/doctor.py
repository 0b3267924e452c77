"""`glasses doctor`: what this machine offers, and whether the model store is ready."""

import argparse
import os
import platform
import sys

import onnxruntime as ort

from glasses.cli.output import result
from glasses.device.boards import BoardProfile
from glasses.device.camera import list_cameras
from glasses.device.display import screen_available
from glasses.device.errors import StoreError
from glasses.device.microphone import list_microphones
from glasses.device.voice import speech_out_report
from glasses.models.sessions import available_providers
from glasses.models.store import ModelStore


def register(commands) -> None:
    p = commands.add_parser(
        "doctor",
        help="what this machine offers: cameras, microphones, display, providers, model store",
        description="Report cameras, microphones, screen, onnxruntime execution providers and "
        "the model store. Exits 4 when the store is not prepared or a model file is damaged.",
    )
    p.add_argument("--board", default="laptop", choices=BoardProfile.names(),
                   help="board profile whose providers to check (default laptop)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def _store_report(store: ModelStore) -> dict:
    try:
        entries = store.entries()
    except StoreError as e:
        return {"home": str(store.home), "ready": False, "models": {}, "note": str(e)}
    models = {name: store.verify(name) for name in entries}
    ready = bool(entries) and not any(models.values())
    if not entries:
        note = "not prepared: run `glasses models prepare`"
    elif ready:
        note = f"{len(entries)} model(s), all verified"
    else:
        note = "damaged: " + "; ".join(p for ps in models.values() for p in ps)
    return {
        "home": str(store.home),
        "ready": ready,
        "models": {name: (p or "ok") for name, p in models.items()},
        "note": note,
    }


def run(args: argparse.Namespace) -> int:
    board = BoardProfile.by_name(args.board)
    cameras, camera_note = list_cameras()
    mics, mic_note = list_microphones()
    screen, screen_note = screen_available()
    voice, voice_note = speech_out_report()
    store = _store_report(ModelStore())
    report = {
        "machine": {
            "system": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "cameras": {"found": cameras, "note": camera_note},
        "microphones": {"found": mics, "note": mic_note},
        "screen": {"available": screen, "note": screen_note},
        "speech_out": {"available": voice, "note": voice_note},
        "onnxruntime": {
            "version": ort.__version__,
            "providers": ort.get_available_providers(),
            "board": board.name,
            "board_uses": available_providers(board),
        },
        "store": store,
    }
    text = "\n".join([
        f"machine      {report['machine']['system']}, Python {report['machine']['python']}, "
        f"{report['machine']['cpus']} CPUs",
        f"cameras      {len(cameras)}: {', '.join(cameras) or camera_note}",
        f"microphones  {len(mics)}: {', '.join(mics) or mic_note}",
        f"screen       {'yes' if screen else 'no'}: {screen_note}",
        f"speech out   {'yes' if voice else 'no'}: {voice_note}",
        f"onnxruntime  {ort.__version__}; providers {', '.join(ort.get_available_providers())};"
        f" board {board.name} uses {', '.join(available_providers(board))}",
        f"model store  {store['home']}: {store['note']}",
    ])
    result(report, args.json, text)
    if not store["ready"]:
        print(f"glasses: error: model store {store['home']} {store['note']}", file=sys.stderr)
        return 4
    return 0
