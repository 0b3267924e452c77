"""`glasses companion`: the memory page alone, served on this machine until Ctrl-C."""

import argparse
import sys
import time

from glasses.cli.output import progress, result
from glasses.device.boards import BoardProfile
from glasses.models.store import ModelStore
from glasses.pipelines.companion import Companion, CompanionOptions
from glasses.pipelines.memory import ENV


def register(commands) -> None:
    p = commands.add_parser(
        "companion", help="a local web page to see, search and delete what the glasses remember",
        description="Serve the companion page on 127.0.0.1 (never another address) at a "
        "random port, with a random token in its address: open the printed address in a "
        "browser on this machine. It lists the moments remembered and the wearer's things "
        f"(${ENV}, else memory.db in the glasses home), searches them by words and by meaning, "
        "and deletes them; a request without the token is refused. Safe while a session "
        "runs. To see a session's display live too, use `glasses simulate --companion` (or "
        "`glasses run --bundle P --companion`). Ctrl-C stops it.",
        epilog="examples:\n  glasses companion\n  glasses companion --port 8765 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0,
                   help="the port on 127.0.0.1 (default: a free one chosen at random)")
    p.add_argument("--json", action="store_true",
                   help='print {"url": ..., "port": ...} on stdout, then serve')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    options = CompanionOptions(port=args.port, live=False)
    with Companion(options, ModelStore(), BoardProfile.laptop()) as companion:
        progress(f"companion page: {companion.url}")
        progress("served on this machine only; Ctrl-C stops it")
        if args.json:
            result({"url": companion.url, "port": companion.port}, True, "")
            sys.stdout.flush()  # a program reading the address gets it now
        while True:  # until Ctrl-C or SIGTERM, which unwind through `with`
            time.sleep(1)
