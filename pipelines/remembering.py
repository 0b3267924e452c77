"""A session's memory: what is noted while the camera runs, and what skills ask of it.

`Remembering` wraps the memory file (`pipelines/memory.py`) for one session: a writer
thread embeds and stores moments off the answer path (a bounded queue: a moment that
finds it full is dropped and counted, never the session held up), the session's clock
maps capture stamps to wall-clock times (in a simulated run, media time from when it
started), and the wearer's things are matched by their exemplar embeddings.

A memory that fails (corrupt or locked file, a full disk) is reported once as a notice;
the session goes on, and what was already stored is left as it is.
"""

import contextlib
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from glasses.device.clock import NS_PER_S, now_ns
from glasses.models import answers
from glasses.pipelines.memory import Found, Memory, MemoryUnavailable, Moment, Thing

log = logging.getLogger(__name__)

QUEUE = 64  # moments waiting to be stored, at most
EXPIRE_EVERY_S = 60  # how often old moments are dropped while a session runs
NICE = 10  # the writer thread's scheduling niceness: answers come first

Embed = Callable[[list[str]], np.ndarray]  # texts -> (n, D) L2-normalised
# BGR image (and the classifier's features of it, if at hand) -> (D,) L2-normalised
ThingVec = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
Match = Callable[[np.ndarray, dict[str, list[np.ndarray]]], tuple[str | None, float]]


@dataclass(frozen=True)
class Seen:
    """What one look at the view found, to be remembered."""

    t_ns: int
    what: str = ""  # the thing named with confidence
    text: str = ""  # lines read, joined by " / "
    colour: str = ""
    thing: str = ""  # the wearer's thing recognised
    image_vec: np.ndarray | None = None


def named(facts) -> str:
    """The thing `facts` name with confidence, "a tabby cat, a cat"; "" when unsure."""
    if not getattr(facts, "labels", None) or not facts.sure():
        return ""
    top = facts.labels[0]
    kind, name = answers.kind_of(top.index), answers.noun(top.name)
    if top.confidence < answers.SURE:
        return f"a {kind}"  # sure of the kind only
    return name + (f", a {kind}" if kind and kind not in name else "")


def seen_of(facts, t_ns: int, thing: str = "", image_vec: np.ndarray | None = None) -> Seen:
    """What `facts` (a `models.vlm.Facts`, or None) found, as a moment to note."""
    colour = getattr(getattr(facts, "colour", None), "name", "")
    return Seen(t_ns, named(facts), " / ".join(getattr(facts, "text", None) or ()), colour,
                thing, image_vec)


def yours(name: str) -> str:
    """The wearer's words turned to the assistant's: "my cup" -> "your cup"."""
    return re.sub(r"^my\b", "your", name)


def ago(seconds: float) -> str:
    """ "just now", "about a minute ago", "about 12 minutes ago", "about 3 hours ago"."""
    s = max(0.0, seconds)
    if s < 45:
        return "just now"
    minutes = round(s / 60)
    if minutes < 60:
        return "about a minute ago" if minutes == 1 else f"about {minutes} minutes ago"
    hours = round(s / 3600)
    return "about an hour ago" if hours == 1 else f"about {hours} hours ago"


def describe(seen: Seen) -> str:
    """The sentence a moment's text embedding is of."""
    parts = [f"saw {seen.what}" if seen.what else ""]
    if seen.thing:
        parts.append(f"saw {seen.thing}")
    if seen.text:
        parts.append(f'a sign or text reading "{seen.text}"')
    if seen.colour:
        parts.append(seen.colour)
    return ", ".join(p for p in parts if p) or "a view"


class Remembering:
    def __init__(self, memory: Memory, embed: Embed, thing_vec: ThingVec | None = None,
                 match: Match | None = None, notice: Callable[[str], None] = lambda m: None):
        self.memory, self.embed, self.thing_vec, self._match = memory, embed, thing_vec, match
        self._notice = notice
        self.start_ns, self.wall0 = now_ns(), time.time()
        self.broken: str | None = None  # why memory stopped working, if it did
        self.dropped = 0  # moments not stored because the queue was full
        self.stored = 0
        self._jobs: queue.Queue = queue.Queue(QUEUE)
        self._things: dict[str, list[np.ndarray]] | None = None
        self._lock = threading.Lock()
        self._last_expire = 0.0
        self._thread = threading.Thread(target=self._write_loop, name="memory-writer",
                                        daemon=True)
        self._thread.start()

    # -- the clock -----------------------------------------------------------------

    def set_origin(self, start_ns: int, wall: float | None = None) -> None:
        """Capture stamp `start_ns` is wall-clock `wall` (the session's start)."""
        self.start_ns, self.wall0 = start_ns, time.time() if wall is None else wall

    def wall(self, t_ns: int) -> float:
        """Seconds since the epoch of a capture stamp."""
        return self.wall0 + (t_ns - self.start_ns) / NS_PER_S

    # -- writing, off the answer path ----------------------------------------------

    def note(self, seen: Seen, question: str = "", answer: str = "") -> None:
        """Queue a moment (an answered turn when `question` is given) to be stored."""
        if self.broken:
            return
        try:
            self._jobs.put_nowait((seen, question, answer))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                self._notice("memory is behind: a moment was not stored")

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued moment is stored; True if it was in time."""
        done = threading.Event()
        try:
            self._jobs.put(done, timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def close(self) -> None:
        self.flush()
        self._jobs.put(None)
        self._thread.join(5)
        self.memory.close()

    def _write_loop(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # not permitted, or not Linux
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        while (job := self._jobs.get()) is not None:
            if isinstance(job, threading.Event):
                job.set()
                continue
            try:
                self._store(*job)
            except MemoryUnavailable as e:
                self._fail(str(e))
            except Exception as e:  # an embedding model failing: say so, keep the session
                log.debug("storing a moment", exc_info=True)
                self._fail(f"memory failed: {type(e).__name__}: {e}")

    def _store(self, seen: Seen, question: str, answer: str) -> None:
        if self.broken:
            return
        summary = describe(seen)
        if question:
            summary = f"asked {question} answered {answer}. {summary}"
        vec = self.embed([summary])[0]
        t = self.wall(seen.t_ns)
        self.memory.add(Moment(t, "turn" if question else ("read" if seen.text else "seen"),
                               summary, seen.what, seen.thing, seen.text, seen.colour, question,
                               answer, text_vec=vec, image_vec=seen.image_vec))
        self.stored += 1
        if t - self._last_expire > EXPIRE_EVERY_S:
            self._last_expire = t
            self.memory.expire(t)

    def _fail(self, why: str) -> None:
        if "full" in why or "locked" in why:  # may clear: drop this moment, keep trying
            self._notice(f"{why}: a moment was not stored")
            return
        if not self.broken:
            self.broken = why
            self._notice(f"{why}; the session goes on without memory")

    # -- the wearer's things -------------------------------------------------------

    def things(self) -> dict[str, list[np.ndarray]]:
        with self._lock:
            if self._things is None:
                self._things = {}
                for t in self.memory.things():
                    self._things.setdefault(t.name, []).append(t.vec)
            return self._things

    def match(self, image: np.ndarray | None, vec: np.ndarray | None = None
              ) -> tuple[str | None, float]:
        """Which of the wearer's things `image` shows (None below the threshold)."""
        if self._match is None or self.broken or (image is None and vec is None):
            return None, 0.0
        things = self.things()
        if not things:
            return None, 0.0
        return self._match(self.thing_vec(image, None) if vec is None else vec, things)

    def last_seen_like(self, name: str, limit: int = 2000) -> Moment | None:
        """The newest of the last `limit` moments whose image looks like the thing `name`
        (for moments noted before it was enrolled, or not recognised at the time)."""
        exemplars = self.things().get(name)
        if not exemplars or self._match is None:
            return None
        for m in self.memory.moments(limit=limit):
            if m.image_vec is not None and len(m.image_vec) == len(exemplars[0]) and \
                    self._match(m.image_vec, {name: exemplars})[0] == name:
                return m
        return None

    def remember_thing(self, name: str, kind: str, image: np.ndarray, t_ns: int) -> None:
        vec = self.thing_vec(image, None)
        self.memory.add_thing(Thing(name, kind, vec, self.wall(t_ns)))
        with self._lock:
            self._things = None
        self.note(Seen(t_ns, thing=name, image_vec=vec))

    # -- what skills ask -----------------------------------------------------------

    def search(self, text: str, k: int = 5, min_score: float = -1.0) -> list[Found]:
        self.flush(2.0)  # what was just seen is searched too
        return self.memory.search(self.embed([text])[0], k, min_score)

    def forget_since(self, t_ns: int) -> int:
        self.flush(2.0)
        n = self.memory.forget_since(self.wall(t_ns))
        with self._lock:
            self._things = None
        return n

    def forget_thing(self, name: str) -> int:
        n = self.memory.forget_thing(name)
        with self._lock:
            self._things = None
        return n

    def wipe(self) -> int:
        self.flush(2.0)
        n = self.memory.wipe()
        with self._lock:
            self._things = None
        return n
