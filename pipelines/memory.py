"""The wearer's memory: moments seen and things of their own, in one local SQLite file.

A moment is what was seen at a time (a thing named with confidence, text read, its
colours) or an answered turn (question and answer), with a text embedding of its
description (search by meaning) and an image embedding (the classifier's pooled
features: matching the wearer's things). No pixels are stored. A thing is the wearer's
own ("my cup", "Anna's bike"): its name and exemplar image embeddings.

The file is `$GLASSES_MEMORY` when set, else `memory.db` in the glasses home; mode 0600,
WAL (a session writes while `glasses memory` or the companion page reads and deletes),
`secure_delete` (what is forgotten is overwritten, not left in free pages). Times are
wall-clock seconds since the epoch. Moments older than the retention are dropped.

A database that cannot be used (corrupt, locked, not a database) raises
`MemoryUnavailable` with one line; the file is left as it is, for inspection.
"""

import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glasses.device.errors import GlassesError
from glasses.models.store import default_home

ENV = "GLASSES_MEMORY"
FILE = "memory.db"
RETENTION_S = 24 * 3600  # moments older than this are dropped (`--retention`)
SCHEMA = 1
BUSY_MS = 2000  # wait this long for another writer before calling the file locked

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS moments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    what TEXT NOT NULL DEFAULT '',
    thing TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    colour TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL DEFAULT '',
    answer TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL,
    text_vec BLOB,
    image_vec BLOB
);
CREATE INDEX IF NOT EXISTS moments_t ON moments (t);
CREATE TABLE IF NOT EXISTS things (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    t REAL NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT '',
    vec BLOB NOT NULL
);
"""
WORD_COLUMNS = ("summary", "what", "thing", "text", "question", "answer")  # searched by words
MAX_QUERY_WORDS = 16
# ids are never reused (AUTOINCREMENT): a page deleting moment 106 just as the session
# writes must not delete the next moment, were it given 106 again
_MOMENT_COLUMNS = ("id", "t", "kind", "what", "thing", "text", "colour", "question", "answer",
                   "summary")


class MemoryUnavailable(GlassesError):
    """The memory database cannot be used; the message names the file and why."""

    exit_code = 3


def default_path() -> Path:
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else default_home() / FILE


@dataclass(frozen=True)
class Moment:
    """One remembered moment; `kind` is "seen" (noticed while the camera ran), "read" (new
    text) or "turn" (an answered question)."""

    t: float
    kind: str
    summary: str  # the description the text embedding is of
    what: str = ""  # the thing named, "a tabby cat"
    thing: str = ""  # one of the wearer's things recognised, "my cup"
    text: str = ""  # text read, lines joined by " / "
    colour: str = ""
    question: str = ""
    answer: str = ""
    id: int | None = None
    text_vec: np.ndarray | None = field(default=None, repr=False, compare=False)
    image_vec: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in _MOMENT_COLUMNS}


@dataclass(frozen=True)
class Thing:
    """An exemplar of one of the wearer's things: `name` as they said it ("my cup")."""

    name: str
    kind: str
    vec: np.ndarray = field(repr=False, compare=False)
    t: float = 0.0
    id: int | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "t": self.t, "name": self.name, "kind": self.kind}


@dataclass(frozen=True)
class Found:
    moment: Moment
    score: float  # cosine similarity of the query to the moment's description


def _blob(vec: np.ndarray | None) -> bytes | None:
    return None if vec is None else np.asarray(vec, np.float16).tobytes()


def _vec(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, np.float16).astype(np.float32)


class Memory:
    """The memory file, open; thread-safe (one connection, one lock)."""

    def __init__(self, path: Path | None = None, retention_s: float = RETENTION_S):
        if not retention_s > 0:
            raise MemoryUnavailable(f"retention must be positive, got {retention_s}")
        self.path = Path(path) if path is not None else default_path()
        self.retention_s = retention_s
        self._lock = threading.RLock()
        self._db = self._connect()
        self._index_ids = np.zeros(0, np.int64)  # the first `_n` rows are in use
        self._index = np.zeros((0, 0), np.float32)  # float32: numpy multiplies float16 slowly
        self._n = 0
        self._index_version: int | None = None

    # -- opening -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        where = str(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # created private before SQLite opens it
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(self.path, 0o600)
            db = sqlite3.connect(where, timeout=BUSY_MS / 1000, check_same_thread=False,
                                 isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise MemoryUnavailable(f"memory {where}: cannot open: {e}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA secure_delete=ON")
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            db.executescript(_TABLES)
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
            elif row[0] != str(SCHEMA):
                raise sqlite3.DatabaseError(f"schema {row[0]}, this version reads {SCHEMA}")
        except sqlite3.Error as e:
            db.close()
            why = "locked by another program" if "locked" in str(e) else f"unusable ({e})"
            raise MemoryUnavailable(f"memory {where}: {why}; the file is left as it is"
                                    ) from None
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Memory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self, sql: str, args: Iterable = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, tuple(args))
        except sqlite3.Error as e:
            raise MemoryUnavailable(f"memory {self.path}: {e}") from None

    # -- writing -------------------------------------------------------------------

    def add(self, moment: Moment) -> int:
        """Store a moment; its id."""
        with self._lock:
            return self._add(moment)

    def add_many(self, moments: Iterable[Moment]) -> int:
        """Store moments in one transaction; how many."""
        with self._lock:
            self._run("BEGIN")
            try:
                n = sum(1 for m in moments if self._add(m))
            except BaseException:
                if self._db.in_transaction:
                    self._db.rollback()
                self._index_version = None
                raise
            self._run("COMMIT")
            return n

    def _add(self, moment: Moment) -> int:
        cur = self._run(
            "INSERT INTO moments (t, kind, what, thing, text, colour, question, answer, "
            "summary, text_vec, image_vec) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (moment.t, moment.kind, moment.what, moment.thing, moment.text, moment.colour,
             moment.question, moment.answer, moment.summary, _blob(moment.text_vec),
             _blob(moment.image_vec)))
        if moment.text_vec is not None and self._index_version is not None:
            self._append_index(cur.lastrowid, moment.text_vec)
        return cur.lastrowid

    def add_thing(self, thing: Thing) -> int:
        with self._lock:
            return self._run("INSERT INTO things (t, name, kind, vec) VALUES (?,?,?,?)",
                             (thing.t, thing.name, thing.kind, _blob(thing.vec))).lastrowid

    def forget(self, ids: Iterable[int]) -> int:
        """Delete moments by id; how many were deleted."""
        ids = [int(i) for i in ids]
        with self._lock:
            n = sum(self._run("DELETE FROM moments WHERE id=?", (i,)).rowcount for i in ids)
            self._index_version = None
            return n

    def forget_since(self, t: float) -> int:
        """Delete every moment and thing stored from `t` on (seconds since the epoch)."""
        with self._lock:
            n = self._run("DELETE FROM moments WHERE t>=?", (t,)).rowcount
            n += self._run("DELETE FROM things WHERE t>=?", (t,)).rowcount
            self._index_version = None
            return n

    def forget_thing(self, name: str) -> int:
        with self._lock:
            return self._run("DELETE FROM things WHERE name=?", (name,)).rowcount

    def expire(self, now: float | None = None) -> int:
        """Drop moments older than the retention; how many."""
        cutoff = (time.time() if now is None else now) - self.retention_s
        with self._lock:
            n = self._run("DELETE FROM moments WHERE t<?", (cutoff,)).rowcount
            if n:
                self._index_version = None
            return n

    def wipe(self) -> int:
        """Delete everything, and squeeze the file so nothing of it stays on disk."""
        with self._lock:
            n = self._run("DELETE FROM moments").rowcount + self._run("DELETE FROM things").rowcount
            self._run("VACUUM")
            self._run("PRAGMA wal_checkpoint(TRUNCATE)")
            self._index_version = None
            return n

    # -- reading -------------------------------------------------------------------

    def count(self) -> int:
        with self._lock:
            return self._run("SELECT count(*) FROM moments").fetchone()[0]

    def moments(self, limit: int = 50, since: float | None = None, kind: str | None = None,
                thing: str | None = None, with_text: bool = False) -> list[Moment]:
        """The newest moments first."""
        where, args = ["1"], []
        if since is not None:
            where.append("t>=?")
            args.append(since)
        if kind is not None:
            where.append("kind=?")
            args.append(kind)
        if thing is not None:
            where.append("thing=?")
            args.append(thing)
        if with_text:
            where.append("text!=''")
        sql = (f"SELECT {', '.join(_MOMENT_COLUMNS)}, text_vec, image_vec FROM moments "
               f"WHERE {' AND '.join(where)} ORDER BY t DESC, id DESC LIMIT ?")
        with self._lock:
            rows = self._run(sql, [*args, int(limit)]).fetchall()
        return [self._moment(r) for r in rows]

    def find_words(self, query: str, limit: int = 50) -> list[Moment]:
        """Moments whose text holds every word of `query` (case aside), newest first."""
        where, args = ["1"], []
        for word in query.split()[:MAX_QUERY_WORDS]:
            like = "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"
            where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in WORD_COLUMNS)
                         + ")")
            args += [like] * len(WORD_COLUMNS)
        sql = (f"SELECT {', '.join(_MOMENT_COLUMNS)}, text_vec, image_vec FROM moments "
               f"WHERE {' AND '.join(where)} ORDER BY t DESC, id DESC LIMIT ?")
        with self._lock:
            rows = self._run(sql, [*args, int(limit)]).fetchall()
        return [self._moment(r) for r in rows]

    def get(self, moment_id: int) -> Moment | None:
        with self._lock:
            row = self._run(f"SELECT {', '.join(_MOMENT_COLUMNS)}, text_vec, image_vec "
                            "FROM moments WHERE id=?", (moment_id,)).fetchone()
        return None if row is None else self._moment(row)

    def things(self) -> list[Thing]:
        with self._lock:
            rows = self._run("SELECT id, t, name, kind, vec FROM things ORDER BY t").fetchall()
        return [Thing(name, kind, _vec(vec), t, i) for i, t, name, kind, vec in rows]

    @staticmethod
    def _moment(row: tuple) -> Moment:
        d = dict(zip(_MOMENT_COLUMNS, row[:len(_MOMENT_COLUMNS)], strict=True))
        return Moment(**d, text_vec=_vec(row[-2]), image_vec=_vec(row[-1]))

    def search(self, query_vec: np.ndarray, k: int = 5, min_score: float = -1.0
               ) -> list[Found]:
        """The `k` moments whose descriptions are nearest in meaning to `query_vec` (384,),
        an L2-normalised text embedding; best first."""
        with self._lock:
            self._fresh_index()
            n, ids, index = self._n, self._index_ids, self._index
            if not n:
                return []
            q = np.asarray(query_vec, np.float32).ravel()
            scores = index[:n] @ q
            best = np.argsort(-scores, kind="stable")[:k]
            found = []
            for i in best:
                if scores[i] < min_score:
                    break
                m = self.get(int(ids[i]))
                if m is not None:
                    found.append(Found(m, float(scores[i])))
            return found

    # -- the search index: text embeddings held in memory, reloaded when another
    # connection (the CLI, the companion page) changed the file ---------------------

    @property
    def index_bytes(self) -> int:
        """Memory held by the search index."""
        return self._index[:self._n].nbytes

    def _data_version(self) -> int:
        return self._run("PRAGMA data_version").fetchone()[0]

    def _fresh_index(self) -> None:
        version = self._data_version()
        if self._index_version == version:
            return
        rows = self._run("SELECT id, text_vec FROM moments WHERE text_vec IS NOT NULL "
                         "ORDER BY id").fetchall()
        self._index_ids = np.array([r[0] for r in rows], np.int64)
        self._index = (np.stack([np.frombuffer(r[1], np.float16) for r in rows]).astype(
            np.float32) if rows else np.zeros((0, 0), np.float32))
        self._n = len(rows)
        self._index_version = version

    def _append_index(self, moment_id: int, vec: np.ndarray) -> None:
        row = np.asarray(vec, np.float16).astype(np.float32).ravel()  # as stored
        if self._n and len(row) != self._index.shape[1]:
            self._index_version = None  # another embedder's size: rebuild on next search
            return
        if self._n == len(self._index):  # full: twice the room
            grown = np.zeros((max(64, 2 * self._n), len(row)), np.float32)
            ids = np.zeros(len(grown), np.int64)
            if self._n:
                grown[:self._n] = self._index[:self._n]
                ids[:self._n] = self._index_ids[:self._n]
            self._index, self._index_ids = grown, ids
        self._index[self._n], self._index_ids[self._n] = row, moment_id
        self._n += 1
