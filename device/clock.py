"""The one clock: monotonic nanoseconds, the time base of every frame stamp."""

import os
import time

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


def now_ns() -> int:
    """Monotonic time in nanoseconds; frames are stamped with it at capture."""
    return time.monotonic_ns()


def sleep_until(t_ns: int, stop=None) -> bool:
    """Sleep until monotonic time `t_ns`; wake early and return False if `stop` is set.

    `stop` is an optional `threading.Event`. Returns True when the time was reached.
    """
    while True:
        left = t_ns - now_ns()
        if left <= 0:
            return True
        if stop is None:
            time.sleep(left / NS_PER_S)
            return True
        if stop.wait(min(left / NS_PER_S, 0.1)):
            return False


def process_age_s() -> float | None:
    """Seconds since this process was started (the command typed), to 10 ms; None where
    /proc is missing. The kernel's count includes the interpreter's own start."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return round(uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, ValueError, IndexError):
        return None
