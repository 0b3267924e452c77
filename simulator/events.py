"""The session's event log: the assistant's events as JSON lines, times in seconds since the
session started."""

import json
import threading
from pathlib import Path
from typing import IO, Any

from glasses.device.clock import NS_PER_S, now_ns
from glasses.pipelines.events import Event, SessionStarted


class EventLog:
    """Collects events in memory and, if given a path, appends them to a JSONL file."""

    def __init__(self, path: Path | None = None, start_ns: int | None = None):
        self.start_ns = start_ns if start_ns is not None else now_ns()  # time 0 of `t`
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._file: IO[str] | None = open(path, "w") if path else None  # noqa: SIM115 closed by close()

    def seconds(self, t_ns: int) -> float:
        return round((t_ns - self.start_ns) / NS_PER_S, 4)

    def add_event(self, event: Event) -> None:
        """Write one of the assistant's typed events; `session_start` sets time 0."""
        if isinstance(event, SessionStarted):
            self.start_ns = event.t_ns
        self._write(event.to_dict(self.start_ns))

    def _write(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)
            if self._file:
                self._file.write(json.dumps(event) + "\n")
                self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
