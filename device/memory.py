"""This process's memory, and models that are resident only while a board's budget allows.

A board profile may set `memory_budget_mb`: the resident memory the assistant should stay
under between requests. Models every turn needs (speech, vision, OCR) are loaded at start;
a model few requests need (the language model of general answers) is `OnDemand`: loaded
when a request first needs it and let go after the request while the process is over
budget, least recently used first. Without a budget an on-demand model is loaded at
warm-up and kept, as before.
"""

import ctypes
import ctypes.util
import gc
import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def _status(field: str) -> float:
    """A /proc/self/status field in MB (0 where the system has none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB -> MB
    except OSError:
        pass
    return 0.0


def rss_mb() -> float:
    """This process's resident memory now, MB (VmRSS)."""
    return _status("VmRSS")


def peak_rss_mb() -> float:
    """The most this process has held resident, MB (VmHWM)."""
    return _status("VmHWM")


def _libc_function(name: str) -> Callable[..., int] | None:
    """A glibc allocator function, or None where the C library is not glibc."""
    lib = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(lib), name) if lib else None
    except (OSError, AttributeError):
        return None


_malloc_trim, _mallopt = _libc_function("malloc_trim"), _libc_function("mallopt")
M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def one_heap_arena() -> bool:
    """Have every thread allocate from one heap arena. glibc gives each thread that
    allocates its own arena (up to 8 per core), and each keeps the peak of what its thread
    once held: `glasses profile demo --runs 3` peaked at 1061 MB on the laptop profile and
    865 MB on rpi5 with them, 730 and 599 MB with one, no slower (README, "Memory
    budget"). Call it before the threads start (it binds arenas made after); honours
    MALLOC_ARENA_MAX where the user set it. False where the C library is not glibc."""
    if _mallopt is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(_mallopt(M_ARENA_MAX, 1))


def give_back_freed() -> None:
    """Return freed heap to the system (glibc keeps it otherwise: a released 800 MB model
    left 500 MB resident here until this ran)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


class MemoryBudget:
    """The on-demand models of one process and the budget they are let go under."""

    def __init__(self, limit_mb: float | None):
        self.limit_mb = limit_mb
        self._models: list[OnDemand] = []
        self._lock = threading.Lock()

    def on_demand(self, name: str, load: Callable[[], T]) -> "OnDemand[T]":
        model = OnDemand(name, load, self)
        with self._lock:
            self._models.append(model)
        return model

    def over(self) -> bool:
        return self.limit_mb is not None and rss_mb() > self.limit_mb

    def settle(self) -> list[str]:
        """After a request: while over budget, let go of loaded models not in use, least
        recently used first. Returns the names let go."""
        released = []
        with self._lock:
            idle = sorted((m for m in self._models if m.loaded and not m.in_use),
                          key=lambda m: m.last_used)
        for model in idle:
            if not self.over():
                break
            model.release()
            released.append(model.name)
        return released


class OnDemand(Generic[T]):
    """A model loaded at its first use (`use`), let go by its budget (`MemoryBudget.settle`).

    `loads` counts the loads and `last_load_ms` times the latest: what a request paid for
    finding the model unloaded."""

    def __init__(self, name: str, load: Callable[[], T], budget: MemoryBudget):
        self.name = name
        self._load = load
        self._budget = budget
        self._model: T | None = None
        self._lock = threading.Lock()
        self._users = 0
        self.loads = 0
        self.last_load_ms = 0.0
        self.last_used = 0.0

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def in_use(self) -> bool:
        return self._users > 0

    @property
    def model(self) -> T | None:
        """The model if it is loaded (None otherwise): loads nothing."""
        return self._model

    def use(self) -> "_Use[T]":
        """`with od.use() as model:` loads it if needed; it is not let go while in use."""
        return _Use(self)

    def _acquire(self) -> T:
        with self._lock:
            self._users += 1
            if self._model is None:
                t0 = time.perf_counter()
                try:
                    self._model = self._load()
                except BaseException:
                    self._users -= 1
                    raise
                self.loads += 1
                self.last_load_ms = (time.perf_counter() - t0) * 1e3
            self.last_used = time.monotonic()
            return self._model

    def _done(self) -> None:
        with self._lock:
            self._users -= 1

    def release(self) -> None:
        with self._lock:
            if self._users or self._model is None:
                return
            self._model = None
        gc.collect()  # a session in a reference cycle would outlive the line above
        give_back_freed()


class _Use(Generic[T]):
    def __init__(self, od: OnDemand[T]):
        self._od = od

    def __enter__(self) -> T:
        return self._od._acquire()

    def __exit__(self, *exc) -> None:
        self._od._done()
