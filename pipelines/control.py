"""The control socket: a headless board's or a companion app's way in and out.

A Unix socket (mode 0600: its owner only) speaking JSON lines. A client sends commands,
one object a line, and receives every event of the session as it happens (the event
log's JSON form, `pipelines/events.py`):

    {"cmd": "mute"} | {"cmd": "unmute"} | {"cmd": "camera_off"} | {"cmd": "camera_on"}
    {"cmd": "talk_start"} | {"cmd": "talk_stop"} | {"cmd": "ask", "text": "What is this?"}
    {"cmd": "stop"}

A line that is not JSON, not an object, names no known command, or lacks what the command
needs gets `{"type": "error", "message": ...}` back, to that client alone; the session
goes on. Several clients may be connected; one that disconnects changes nothing else.
"""

import contextlib
import json
import logging
import os
import socket
import stat
import threading
from pathlib import Path

from glasses.device.clock import now_ns
from glasses.device.errors import BadInput, GlassesError
from glasses.pipelines.assistant import Assistant
from glasses.pipelines.events import ControlError, Event, SessionStarted

log = logging.getLogger(__name__)

COMMANDS = ("mute", "unmute", "camera_off", "camera_on", "talk_start", "talk_stop", "ask",
            "stop")
MAX_LINE = 4096  # bytes; a longer command line is refused
MAX_CLIENTS = 8
BACKLOG_EVENTS = 1024  # events waiting for a slow client; past that it is disconnected


class ControlServer:
    """Serves `path` for `assistant` until `close()`; `start_ns` is time 0 of events."""

    def __init__(self, assistant: Assistant, path: Path, start_ns: int):
        self.assistant, self.path, self.start_ns = assistant, Path(path), start_ns
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise BadInput(f"{self.path}: exists and is not a socket; choose another path")
            self.path.unlink()  # a socket left by a session that ended
        if not self.path.parent.is_dir():
            raise BadInput(f"{self.path.parent}: no such folder")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # created 0600: no moment when others could connect
        try:
            self._sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._sock.listen(MAX_CLIENTS)
        self._sock.settimeout(0.2)
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._unsubscribe = assistant.subscribe(self._broadcast)
        self._thread = threading.Thread(target=self._accept, name="control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._unsubscribe()
        self._thread.join(2)
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            c.close()
        self._sock.close()
        if self.path.exists():
            self.path.unlink()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._clients = [c for c in self._clients if c.alive]
                if len(self._clients) >= MAX_CLIENTS:
                    conn.sendall(_line({"type": "error", "message": "too many clients"}))
                    conn.close()
                    continue
                client = _Client(conn, self)
                self._clients.append(client)

    def _broadcast(self, event: Event) -> None:
        if isinstance(event, SessionStarted):
            self.start_ns = event.t_ns
        data = _line(event.to_dict(self.start_ns))
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            c.send(data)

    def handle(self, line: bytes, client: "_Client") -> None:
        """Carry out one command line; a bad one is answered with an error event."""
        try:
            self._command(line)
        except GlassesError as e:  # BadInput, or the assistant refusing (not running)
            client.send(_line(ControlError(now_ns(), str(e)).to_dict(self.start_ns)))

    def _command(self, line: bytes) -> None:
        try:
            msg = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadInput("not a JSON line: send one object a line, "
                           'like {"cmd": "mute"}') from None
        if not isinstance(msg, dict) or not isinstance(msg.get("cmd"), str):
            raise BadInput('a command is an object with "cmd": one of ' + ", ".join(COMMANDS))
        cmd, a = msg["cmd"], self.assistant
        if cmd not in COMMANDS:
            raise BadInput(f"unknown command {cmd[:40]!r}: one of {', '.join(COMMANDS)}")
        if cmd == "ask":
            if not isinstance(msg.get("text"), str):
                raise BadInput('ask needs "text": the question, a string')
            a.ask(msg["text"])
        elif cmd == "stop":
            threading.Thread(target=a.stop, name="control-stop", daemon=True).start()
        else:
            getattr(a, cmd)()


class _Client:
    """One connection: a reader thread for its commands, a writer thread for its events."""

    def __init__(self, conn: socket.socket, server: ControlServer):
        self.conn, self.server = conn, server
        self.alive = True
        self._out: list[bytes] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, name="control-read", daemon=True).start()
        threading.Thread(target=self._write, name="control-write", daemon=True).start()

    def send(self, data: bytes) -> None:
        with self._cond:
            if not self.alive:
                return
            stalled = len(self._out) >= BACKLOG_EVENTS
            if not stalled:
                self._out.append(data)
                self._cond.notify()
        if stalled:  # not reading: let it go (both threads end), keep the session
            self.close()

    def close(self) -> None:
        with self._cond:
            self.alive = False
            self._cond.notify()
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)
        self.conn.close()

    def _read(self) -> None:
        buf = b""
        try:
            while self.alive:
                chunk = self.conn.recv(4096)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        self.server.handle(line, self)
                if len(buf) > MAX_LINE:
                    buf = b""
                    self.server.handle(b"", self)  # answered as not JSON
        except OSError:
            pass
        finally:
            with self._cond:
                self.alive = False
                self._cond.notify()

    def _write(self) -> None:
        while True:
            with self._cond:
                while self.alive and not self._out:
                    self._cond.wait()
                if not self.alive:
                    return
                data, self._out = b"".join(self._out), []
            try:
                self.conn.sendall(data)
            except OSError:
                with self._cond:
                    self.alive = False
                return


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=True) + "\n").encode()
