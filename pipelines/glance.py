"""Glances: while the camera runs, salient moments are noted without being asked.

Every `GLANCE_S` of capture time the newest frame is looked at by the vision models (off
the camera's path: frames pass on at once, the look runs in the stage's own worker) and
what is new is remembered: text not read in the last `NEW_S`, a thing named with
confidence, one of the wearer's things (at most once a `THING_S` each, so "when did I
last see my cup?" is answered to the minute). A glance is skipped while a question is
being answered: answers come first on two cores. In simulated and offline runs the
camera waits for the worker, so a run is the same each time; in real time a glance the
worker has no time for is skipped.
"""

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np

from glasses.device.clock import NS_PER_S
from glasses.models.intent import words
from glasses.pipelines.frames import VideoFrame
from glasses.pipelines.remembering import Remembering, seen_of
from glasses.pipelines.stage import Stage

log = logging.getLogger(__name__)

GLANCE_S = 2.0  # capture time between glances
NEW_S = 600  # the same text or thing seen again within this is not new
THING_S = 60  # one of the wearer's things is noted at most this often
SAME_TEXT = 0.5  # word overlap (Jaccard) at or above which two readings are the same text

Look = Callable[[np.ndarray], object]  # BGR image -> Facts


def same_text(a: str, b: str) -> bool:
    wa, wb = set(words(a).split()), set(words(b).split())
    return bool(wa | wb) and len(wa & wb) / len(wa | wb) >= SAME_TEXT


class Glance(Stage):
    name = "glance"

    def __init__(self, remembering: Remembering, look: Callable[[], Look | None],
                 busy: Callable[[], bool], wait: bool, every_s: float = GLANCE_S):
        self.remembering, self._look, self._busy, self._wait = remembering, look, busy, wait
        self.every_ns = int(every_s * NS_PER_S)
        self.glances = self.skipped = 0
        self._last_ns: int | None = None
        self._noted_text: list[tuple[str, int]] = []  # (text, t_ns) noted
        self._noted_what: dict[str, int] = {}
        self._noted_thing: dict[str, int] = {}
        self._mailbox: VideoFrame | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._worker: threading.Thread | None = None

    def open(self) -> None:
        self._worker = threading.Thread(target=self._work, name="glance", daemon=True)
        self._worker.start()

    def process(self, item: VideoFrame) -> Iterator[VideoFrame]:
        yield item  # the frame goes on first
        if self._last_ns is not None and item.t_ns - self._last_ns < self.every_ns:
            return
        self._last_ns = item.t_ns
        if self._busy() or self.remembering.broken:
            self.skipped += 1
            return
        with self._cond:
            if self._mailbox is not None and not self._wait:
                self.skipped += 1  # the worker is still on the last one
            while self._wait and self._mailbox is not None and not self._closed:
                self._cond.wait(0.1)
            self._mailbox = item
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(10)

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._mailbox is None and not self._closed:
                    self._cond.wait(0.1)
                frame = self._mailbox
                if frame is None:
                    return
            try:
                self._glance(frame)
            except Exception:  # a glance is never worth the session
                log.debug("glance failed", exc_info=True)
            with self._cond:
                self._mailbox = None
                self._cond.notify_all()

    def _glance(self, frame: VideoFrame) -> None:
        look = self._look()
        if look is None:
            return
        facts = look(frame.image)
        if getattr(facts, "blank", False):
            return
        self.glances += 1
        r, t = self.remembering, frame.t_ns
        centre = getattr(facts, "features", None)
        vec = None
        if r.thing_vec is not None and r.things():  # is one of the wearer's things in view?
            vec = r.thing_vec(frame.image, centre)
        thing, _ = r.match(frame.image, vec) if vec is not None else (None, 0.0)
        seen = seen_of(facts, t, thing or "")
        text, what = seen.text, seen.what
        new_text = bool(text) and not any(same_text(text, old) and t - when < NEW_S * NS_PER_S
                                          for old, when in self._noted_text)
        new_what = bool(what) and t - self._noted_what.get(what, -NEW_S * NS_PER_S) >= \
            NEW_S * NS_PER_S
        new_thing = bool(thing) and t - self._noted_thing.get(thing, -THING_S * NS_PER_S) >= \
            THING_S * NS_PER_S
        if not (new_text or new_what or new_thing):
            return
        if new_text:
            self._noted_text = [*self._noted_text[-31:], (text, t)]
        if what:
            self._noted_what[what] = t
        if thing:
            self._noted_thing[thing] = t
        if vec is None and r.thing_vec is not None:  # kept: a thing enrolled later is found
            vec = r.thing_vec(frame.image, centre)
        r.note(replace(seen, image_vec=vec))
