"""A timer skill: "set a timer for two minutes" -> a countdown card, then "time is up"."""

import re
import threading
import time
from collections.abc import Iterator

from glasses.pipelines.skills import Card, Request, Skill

NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "to": 2, "too": 2, "three": 3, "four": 4,
           "for": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
           "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
           "forty": 40, "forty five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
           "half an": 0.5, "half a": 0.5}
UNITS = {"second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600}
AMOUNT = "|".join(sorted(map(re.escape, NUMBERS), key=len, reverse=True))
DURATION = re.compile(rf"(\d+(?:\.\d+)?|{AMOUNT})[\s-]*(second|sec|minute|min|hour)s?\b")
MAX_S = 24 * 3600


def duration_s(text: str) -> float | None:
    """Seconds asked for: "two minutes" -> 120, "a 3 minute timer" -> 180; None if none."""
    words = " ".join(re.sub(r"[^a-z0-9.]+", " ", text.lower()).split())
    total, found = 0.0, False
    for amount, unit in DURATION.findall(words):
        total += (float(amount) if amount[0].isdigit() else NUMBERS[amount]) * UNITS[unit]
        found = True
    return total if found else None


def spoken(seconds: float, adjective: bool = False) -> str:
    """ "2 minutes", or as an adjective "2-minute"."""
    if seconds >= 60 and seconds % 60 == 0:
        n, unit = int(seconds // 60), "minute"
    else:
        n, unit = round(seconds), "second"
    if adjective:
        return f"{n}-{unit}"
    return f"{n} {unit}" + ("s" if n != 1 else "")


class TimerSkill(Skill):
    name = "timer"
    examples = ("set a timer for two minutes", "timer for 5 minutes", "start a timer",
                "remind me in ten minutes", "count down thirty seconds",
                "set a 10 minute timer", "start a two minute countdown", "timer please",
                "time me for a minute", "wake me in twenty minutes")
    keywords = r"timer|timers|countdown|count down|remind me in"

    def __init__(self) -> None:
        self._timers: list[threading.Timer] = []

    def handle(self, request: Request) -> Iterator[str | Card]:
        seconds = duration_s(request.text)
        if seconds is None or seconds <= 0:
            yield "For how long? Say, for example: set a timer for two minutes."
            return
        seconds = min(seconds, MAX_S)
        what = spoken(seconds)
        yield f"Timer set for {what}."
        yield Card("Timer", what, until_ns=time.monotonic_ns() + int(seconds * 1e9))
        timer = threading.Timer(seconds, self.env.announce,
                                (f"Your {spoken(seconds, True)} timer is done.",
                                 Card("Timer", "Time is up")))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def close(self) -> None:
        for t in self._timers:
            t.cancel()
