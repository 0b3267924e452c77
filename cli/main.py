"""`glasses`: the command line, a thin face over the packages.

Exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input file, 4 model store,
5 device failure, 130 interrupted, 143 terminated (SIGTERM).
"""

import argparse
import logging
import signal
import sys

from glasses.cli import (
    asr_cmd,
    bench_cmd,
    companion_cmd,
    deploy_cmd,
    distill_cmd,
    doctor,
    look_cmd,
    memory_cmd,
    models_cmd,
    profile_cmd,
    route_cmd,
    simulate_cmd,
    soak_cmd,
    turns_cmd,
    wake_cmd,
)
from glasses.device.errors import GlassesError
from glasses.device.memory import one_heap_arena

EPILOG = """exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input file,
4 model store (missing, unprepared, tampered), 5 device failure, 130 interrupted,
143 terminated (SIGTERM)"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glasses",
        description="An on-device assistant for AR glasses: look, ask, read the answer.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (doctor, models_cmd, simulate_cmd, asr_cmd, look_cmd, profile_cmd,
                   deploy_cmd, distill_cmd, route_cmd, memory_cmd, soak_cmd, companion_cmd,
                   turns_cmd, wake_cmd, bench_cmd):
        module.register(commands)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM: unwinds like Ctrl-C (temporary files removed, recordings finalised)."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    one_heap_arena()  # before any thread starts (device/memory.py)
    signal.signal(signal.SIGTERM, _terminate)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="glasses: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.run(args) or 0
    except GlassesError as e:
        print(f"glasses: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated) or isinstance(e.__context__, Terminated)
        print(f"glasses: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except Exception as e:
        if args.debug:
            raise
        print(f"glasses: internal error: {type(e).__name__}: {e} (rerun with --debug)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
