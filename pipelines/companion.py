"""The companion page: the display mirrored live, and the wearer's memory to list, search
and forget, on a web page served to this machine alone.

`http.server` on 127.0.0.1 only (never another address), a random port unless one is
given. Every request must carry the token made at start (`?token=` in the URL, or the
`X-Glasses-Token` header) and a Host header naming 127.0.0.1:PORT or localhost:PORT (a
page elsewhere that rebinds its name to this machine is refused); anything else gets 403
and no data. The page is one file, `companion_page.html`: its script and style inline,
locked by a Content-Security-Policy that lets it fetch nothing but this server. Nothing of
memory, and no request, is logged.

    GET    /?token=T                  the page
    GET    /events?token=T            Server-Sent Events: the session's events as JSON
    GET    /api/memory?q=&limit=      {"moments": [...], "things": [...], "total", ...}
    DELETE /api/memory/ID             forget one moment (POST /api/memory/ID/forget too)
    DELETE /api/things/NAME           forget one of the wearer's things (and POST .../forget)

`on_event`, subscribed to an Assistant, feeds the stream: it only queues (each page has
its own bounded queue; a page that falls behind is dropped and reconnects), so it never
holds up a pipeline thread. The companion opens its own connection to the memory file:
WAL lets it read and delete while the session writes.
"""

import contextlib
import http.server
import json
import logging
import queue
import secrets
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.clock import now_ns
from glasses.device.errors import BadInput, GlassesError
from glasses.models.store import ModelStore
from glasses.pipelines.events import Event, SessionStarted
from glasses.pipelines.memory import Memory

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # the only address ever bound
TOKEN_HEADER = "X-Glasses-Token"
PAGE = "companion_page.html"
MAX_STREAMS = 8  # pages following the events at once
STREAM_QUEUE = 256  # events waiting for one page; past that the page is dropped
BACKLOG = 64  # the latest events, replayed to a page that connects mid-session
KEEPALIVE_S = 15.0  # a comment line this often on a quiet stream
SOCKET_TIMEOUT_S = 30.0  # a client that neither reads nor writes this long is let go
LIST_LIMIT = 50  # moments listed when no limit is asked for
MAX_LIMIT = 500
MAX_QUERY_CHARS = 200
MIN_SCORE = 0.3  # cosine below which a moment is not "near in meaning" to the query

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class CompanionOptions:
    port: int = 0  # 0: a free port chosen by the system
    live: bool = True  # mirrors a session's display; False: memory alone (`glasses companion`)
    memory: bool = True  # list memory; False: memory is off in this session
    memory_path: Path | None = None  # None: $GLASSES_MEMORY, else memory.db in the glasses home


class Companion:
    """The page, served from construction until `close()`; `url` opens it."""

    def __init__(self, options: CompanionOptions = CompanionOptions(),
                 store: ModelStore | None = None, board: BoardProfile | None = None):
        """`store` and `board`: where the text embedder for search by meaning comes from
        (loaded at the first search); without a store, search is by words alone."""
        if not 0 <= options.port <= 65535:
            raise BadInput(f"port must be from 0 to 65535, got {options.port}")
        self.options = options
        self.token = secrets.token_urlsafe(16)
        self._store, self._board = store, board or BoardProfile.laptop()
        self._embed: Embed | None = None
        self._embed_note: str | None = None  # set once the embedder was tried
        self._embed_lock = threading.Lock()
        self.memory = Memory(options.memory_path) if options.memory else None
        self._streams: set[_Stream] = set()
        self._backlog: deque[str] = deque(maxlen=BACKLOG)
        self._lock = threading.Lock()
        self._start_ns = now_ns()  # until the session says when it started
        try:
            self._server = _Server((HOST, options.port), _Handler)
        except OSError as e:
            if self.memory is not None:
                self.memory.close()
            raise BadInput(f"companion page: cannot serve on {HOST}:{options.port}: "
                           f"{e.strerror or e}") from None
        self._server.companion = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,),
                                        name="companion", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/?token={self.token}"

    def close(self) -> None:
        with self._lock:
            streams, self._streams = self._streams, set()
        for s in streams:
            s.end()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)
        if self.memory is not None:
            self.memory.close()

    def __enter__(self) -> "Companion":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the live session ----------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Queue an assistant's event for every page following; never blocks."""
        if isinstance(event, SessionStarted):
            self._start_ns = event.t_ns
        data = json.dumps(event.to_dict(self._start_ns), default=str)
        with self._lock:  # in one order for every page, whichever thread published
            self._backlog.append(data)
            behind = [s for s in self._streams if not s.put(data)]
            self._streams.difference_update(behind)

    def _follow(self) -> "_Stream | None":
        """A new stream with the backlog in it, or None when there are too many."""
        with self._lock:
            if len(self._streams) >= MAX_STREAMS:
                return None
            s = _Stream()
            for data in self._backlog:
                s.put(data)
            self._streams.add(s)
            return s

    def _unfollow(self, s: "_Stream") -> None:
        with self._lock:
            self._streams.discard(s)

    # -- memory --------------------------------------------------------------------

    def listing(self, query: str = "", limit: int = LIST_LIMIT) -> dict:
        """The page's memory view: the newest moments, or those matching `query` (by words,
        then by meaning when the text embedder is in the store), and the wearer's things."""
        if self.memory is None:
            return {"memory": False, "moments": [], "things": [], "total": 0, "query": query,
                    "search": None, "note": "memory is off in this session"}
        query = " ".join(query.split())[:MAX_QUERY_CHARS]
        note, search = "", None
        if query:
            moments, search, note = self._find(query, limit)
        else:
            moments = [m.to_dict() for m in self.memory.moments(limit)]
        things: dict[str, dict] = {}
        for t in self.memory.things():
            d = things.setdefault(t.name, {"name": t.name, "kind": t.kind, "exemplars": 0,
                                           "t": t.t})
            d["exemplars"] += 1
            d["t"] = max(d["t"], t.t)
        return {"memory": True, "moments": moments, "things": list(things.values()),
                "total": self.memory.count(), "query": query, "search": search, "note": note}

    def _find(self, query: str, limit: int) -> tuple[list[dict], str, str]:
        """Moments containing every word of `query`, newest first, then those nearest in
        meaning; (moments, "words" or "meaning", a note on how it searched)."""
        found = [m.to_dict() for m in self.memory.find_words(query, limit)]
        embed, note = self._embedder()
        if embed is None:
            return found, "words", note
        seen = {m["id"] for m in found}
        for f in self.memory.search(embed([query])[0], limit, MIN_SCORE):
            if len(found) >= limit:
                break
            if f.moment.id not in seen:
                found.append({**f.moment.to_dict(), "score": round(f.score, 3)})
        return found, "meaning", note

    def _embedder(self) -> tuple[Embed | None, str]:
        with self._embed_lock:
            if self._embed_note is None:
                self._embed_note = ""
                if self._store is None:
                    self._embed_note = "searching by words only"
                else:
                    try:
                        from glasses.models.text_embedding import TextEmbedder

                        self._embed = TextEmbedder(self._store, self._board).embed
                    except (GlassesError, ImportError) as e:
                        self._embed_note = (f"searching by words only: no text embedder "
                                            f"({str(e).splitlines()[0]})")
            return self._embed, self._embed_note

    def forget(self, moment_id: int) -> int:
        return 0 if self.memory is None else self.memory.forget([moment_id])

    def forget_thing(self, name: str) -> int:
        return 0 if self.memory is None else self.memory.forget_thing(name)


class _Stream:
    """One page's queue of events (JSON text); `None` ends it."""

    def __init__(self) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue(STREAM_QUEUE)
        self.dropped = False

    def put(self, data: str) -> bool:
        """False (and the stream ends) when the page has fallen too far behind."""
        try:
            self.queue.put_nowait(data)
            return True
        except queue.Full:
            self.end()
            return False

    def end(self) -> None:
        self.dropped = True
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    companion: Companion


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = SOCKET_TIMEOUT_S
    server_version = "glasses-companion"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:
        """Nothing is logged: a request line holds the token and what was searched."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    # -- checks and routes ---------------------------------------------------------

    def _allowed(self, method: str, url: urllib.parse.SplitResult) -> bool:
        c = self.server.companion
        hosts = (f"{HOST}:{c.port}", f"localhost:{c.port}")
        if self.headers.get("Host", "").lower() not in hosts:
            return False
        origin = self.headers.get("Origin")
        if method != "GET" and origin is not None and origin not in [f"http://{h}"
                                                                      for h in hosts]:
            return False
        given = self.headers.get(TOKEN_HEADER)
        if given is None:
            given = next(iter(urllib.parse.parse_qs(url.query).get("token", [])), "")
        return secrets.compare_digest(given.encode("utf-8", "replace"), c.token.encode())

    def _handle(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        if not self._allowed(method, url):
            self._send(403, b"forbidden\n", "text/plain; charset=utf-8")
            return
        params = urllib.parse.parse_qs(url.query)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")] or [""]
        c = self.server.companion
        try:
            match method, parts:
                case "GET", [""]:
                    self._page()
                case "GET", ["events"]:
                    self._events()
                case "GET", ["api", "memory"]:
                    limit = _limit(params.get("limit", [str(LIST_LIMIT)])[0])
                    self._json(200, c.listing(params.get("q", [""])[0], limit))
                case ("DELETE", ["api", "memory", ident]) | (
                        "POST", ["api", "memory", ident, "forget"]):
                    if not ident.isdigit():
                        raise BadInput(f"not a moment id: {ident!r}")
                    n = c.forget(int(ident))
                    self._json(200 if n else 404, {"forgotten": n} if n else
                               {"error": f"no moment {ident}"})
                case ("DELETE", ["api", "things", name]) | (
                        "POST", ["api", "things", name, "forget"]):
                    n = c.forget_thing(name)
                    self._json(200 if n else 404, {"forgotten": n} if n else
                               {"error": "no such thing"})
                case _:
                    self._json(404, {"error": "not found"})
        except BadInput as e:
            self._json(400, {"error": str(e)})
        except GlassesError as e:  # the memory file locked, corrupt, or gone
            self._json(503, {"error": str(e)})
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the page went away
        except Exception as e:  # said without its message: it could quote the memory
            log.warning("companion page: %s answering a %s", type(e).__name__, method)
            with contextlib.suppress(OSError):
                self._json(500, {"error": f"internal error ({type(e).__name__})"})

    def _page(self) -> None:
        nonce = secrets.token_urlsafe(12)
        html = resources.files("glasses.pipelines").joinpath(PAGE).read_text("utf-8")
        c = self.server.companion
        html = (html.replace("{{nonce}}", nonce)
                .replace("{{live}}", "true" if c.options.live else "false"))
        csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
               "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")
        self._send(200, html.encode(), "text/html; charset=utf-8",
                   {"Content-Security-Policy": csp})

    def _events(self) -> None:
        c = self.server.companion
        stream = c._follow()
        if stream is None:
            self._json(503, {"error": "too many pages following the session"})
            return
        try:
            self.send_response(200)
            self._headers("text/event-stream; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"retry: 2000\n\n")
            self.wfile.flush()
            while not stream.dropped:
                try:
                    data = stream.queue.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
                    continue
                if data is None:
                    break
                self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()
        finally:
            c._unfollow(stream)

    # -- responses -----------------------------------------------------------------

    def _headers(self, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the token stays in the URL bar
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        for k, v in (extra or {}).items():
            self.send_header(k, v)

    def _send(self, code: int, body: bytes, content_type: str,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self._headers(content_type, extra)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, data: dict) -> None:
        self._send(code, json.dumps(data).encode(), "application/json; charset=utf-8")


def _limit(text: str) -> int:
    try:
        limit = int(text)
    except ValueError:
        raise BadInput(f"limit must be a whole number, got {text[:20]!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"limit must be from 1 to {MAX_LIMIT}, got {limit}")
    return limit
