"""`glasses memory list | search TEXT | forget | wipe`: the wearer's memory, theirs to see."""

import argparse
import re
import time
from datetime import datetime

from glasses.cli.output import progress, result
from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.pipelines.memory import ENV, RETENTION_S, Memory, default_path
from glasses.pipelines.remembering import ago

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """ "10m" -> 600.0; "90s", "2h", "1d", "1h30m"; a bare number is seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        seconds = float(t)
    elif re.fullmatch(r"(?:\d+(?:\.\d+)?[smhd])+", t):
        seconds = sum(float(n) * UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", t))
    else:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90s, 10m, 2h, 1d)")
    if not 0 < seconds < 10 * 365 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be above 0 and under 10 "
                                         "years")
    return seconds


def register(commands) -> None:
    p = commands.add_parser(
        "memory", help="what the glasses remember: list, search, forget, wipe",
        description="The wearer's memory: moments seen (things named, text read, answered "
        f"questions) and their own things, in one local SQLite file (${ENV}, else memory.db "
        "in the glasses home; mode 0600). Nothing of it leaves the device, goes into a bundle "
        "or a log. Safe to use while a session runs.",
        epilog="examples:\n  glasses memory list\n  glasses memory search 'gate sign'\n"
        "  glasses memory forget --last 10m\n  glasses memory wipe --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="memory_command", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="the newest moments and the wearer's things")
    ls.add_argument("--limit", type=int, default=20, help="moments shown (default 20)")
    ls.set_defaults(run=_list)
    se = sub.add_parser("search", help="moments nearest in meaning to TEXT")
    se.add_argument("text", metavar="TEXT")
    se.add_argument("--limit", type=int, default=5, help="moments shown (default 5)")
    se.set_defaults(run=_search)
    fo = sub.add_parser("forget", help="delete moments: the last stretch of time, or by id")
    what = fo.add_mutually_exclusive_group(required=True)
    what.add_argument("--last", type=duration, metavar="DURATION",
                      help="everything stored in the last DURATION (90s, 10m, 2h, 1d)")
    what.add_argument("--id", type=int, nargs="+", metavar="ID", help="moments by id")
    what.add_argument("--thing", metavar="NAME", help="one of the wearer's things, by name")
    fo.set_defaults(run=_forget)
    wi = sub.add_parser("wipe", help="delete everything (asks first, unless --yes)")
    wi.add_argument("--yes", action="store_true", help="do not ask")
    wi.set_defaults(run=_wipe)
    be = sub.add_parser("bench", help="search time against the number of moments stored",
                        description="Store real descriptions, embedded by the real model, "
                        "in a scratch memory file (never the wearer's) up to each size, and "
                        "time searches with real questions; says at what size brute-force "
                        "search passes 50 ms.")
    be.add_argument("--sizes", default="10000,100000", help="comma-separated moment counts")
    be.set_defaults(run=_bench)
    for q in (ls, se, fo, wi, be):
        q.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _open() -> Memory:
    return Memory(default_path(), RETENTION_S)


def _when(t: float, now: float) -> str:
    return f"{datetime.fromtimestamp(t):%Y-%m-%d %H:%M:%S} ({ago(now - t)})"


def _line(m, now: float, score: float | None = None) -> str:
    what = m.answer if m.kind == "turn" else (m.thing or m.what or "")
    said = f'{m.question!r} -> {m.answer!r}' if m.kind == "turn" else what
    text = f' text "{m.text}"' if m.text and m.kind != "turn" else ""
    got = f" [{score:.2f}]" if score is not None else ""
    return f"#{m.id} {_when(m.t, now)} {m.kind}: {said}{text}{got}"


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise BadInput("--limit must be at least 1")
    now = time.time()
    with _open() as memory:
        moments, things, total = memory.moments(args.limit), memory.things(), memory.count()
        path = memory.path
    data = {"path": str(path), "moments_total": total,
            "moments": [m.to_dict() for m in moments], "things": [t.to_dict() for t in things]}
    lines = [f"{path}: {total} moments, {len(things)} things of yours"]
    lines += [_line(m, now) for m in moments]
    lines += [f"thing: {t.name} (remembered {_when(t.t, now)})" for t in things]
    result(data, args.json, "\n".join(lines))
    return 0


def _embedder():
    from glasses.models.store import ModelStore
    from glasses.models.text_embedding import TextEmbedder

    return TextEmbedder(ModelStore(), BoardProfile.laptop())


def _bench(args: argparse.Namespace) -> int:
    from glasses.evaluation.memory_bench import bench
    from glasses.models.store import ModelStore
    from glasses.models.vision import LABELS_FILE, MODEL

    try:
        sizes = tuple(int(x) for x in args.sizes.split(","))
    except ValueError:
        raise BadInput(f"--sizes: {args.sizes!r} is not a list of counts") from None
    if not sizes or min(sizes) < 1 or max(sizes) > 10_000_000:
        raise BadInput("--sizes: counts from 1 to 10,000,000")
    out = bench(_embedder().embed, ModelStore().path(MODEL, LABELS_FILE), sizes,
                progress=progress)
    lines = [f"query embedding: {out['query_embed_median_ms']} ms median"]
    lines += [f"{s['moments']} moments: search {s['search_median_ms']} ms median "
              f"(p90 {s['search_p90_ms']}), index {s['index_mb']} MB, file {s['file_mb']} MB"
              for s in out["sizes"]]
    lines.append(f"brute force stays under 50 ms up to about {out['brute_force_limit_moments']} "
                 "moments")
    result(out, args.json, "\n".join(lines))
    return 0


def _search(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise BadInput("--limit must be at least 1")
    embedder = _embedder()
    now = time.time()
    with _open() as memory:
        found = memory.search(embedder.embed([args.text])[0], args.limit)
    data = {"query": args.text, "results": [{**f.moment.to_dict(), "score": round(f.score, 4)}
                                            for f in found]}
    lines = [_line(f.moment, now, f.score) for f in found] or ["nothing remembered yet"]
    result(data, args.json, "\n".join(lines))
    return 0


def _forget(args: argparse.Namespace) -> int:
    with _open() as memory:
        if args.last is not None:
            n, what = memory.forget_since(time.time() - args.last), f"the last {args.last:g} s"
        elif args.thing is not None:
            n, what = memory.forget_thing(args.thing), args.thing
        else:
            n, what = memory.forget(args.id), "moments " + ", ".join(map(str, args.id))
    result({"forgotten": n}, args.json, f"forgot {what}: {n} deleted")
    return 0


def _wipe(args: argparse.Namespace) -> int:
    path = default_path()
    if not args.yes:
        progress(f"this deletes everything in {path}. Type 'wipe' to go on:")
        try:
            answer = input()
        except EOFError:
            answer = ""
        if answer.strip() != "wipe":
            raise BadInput("not wiped: confirm by typing 'wipe', or pass --yes")
    with _open() as memory:
        n = memory.wipe()
    result({"wiped": n, "path": str(path)}, args.json, f"wiped {path}: {n} deleted")
    return 0
