"""The memory file: private, searchable, forgetful, and never lost to a bad file."""

import os
import sqlite3
import stat
import time

import numpy as np
import pytest

from glasses.pipelines.memory import ENV, Memory, MemoryUnavailable, Moment, Thing, default_path


def unit(seed: int, dim: int = 384) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def moment(t: float, text: str = "", what: str = "", seed: int = 0) -> Moment:
    return Moment(t, "read" if text else "seen", f"saw {what} {text}", what=what, text=text,
                  text_vec=unit(seed))


def test_file_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "sub" / "memory.db"
    with Memory(path) as m:
        m.add(moment(time.time(), "GATE C7"))
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600
        wal = path.with_name("memory.db-wal")
        assert wal.exists() and stat.S_IMODE(os.stat(wal).st_mode) == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_env_picks_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "elsewhere.db"))
    assert default_path() == tmp_path / "elsewhere.db"
    with Memory() as m:
        assert m.path == tmp_path / "elsewhere.db"


def test_search_by_vector_best_first_and_forgets(tmp_path):
    now = time.time()
    with Memory(tmp_path / "m.db") as m:
        ids = [m.add(moment(now - 60 * i, what=f"thing {i}", seed=i)) for i in range(50)]
        found = m.search(unit(7), k=3)
        assert found[0].moment.id == ids[7] and found[0].score == pytest.approx(1.0, abs=2e-3)
        assert found[0].score >= found[1].score >= found[2].score
        assert m.forget([ids[7]]) == 1
        assert all(f.moment.id != ids[7] for f in m.search(unit(7), k=50))
        assert m.forget_since(now - 60 * 9.5) == 9  # moments 0..9 but 7, forgotten already
        assert m.count() == 40


def test_another_connection_deleting_is_seen_by_search(tmp_path):
    """The companion page or `glasses memory forget` delete while a session runs."""
    now = time.time()
    with Memory(tmp_path / "m.db") as session, Memory(tmp_path / "m.db") as page:
        a = session.add(moment(now, what="a cup", seed=1))
        session.add(moment(now, what="a cat", seed=2))
        assert session.search(unit(1), k=1)[0].moment.id == a  # the index is built
        page.forget([a])
        assert all(f.moment.id != a for f in session.search(unit(1), k=5))
        b = session.add(moment(now, what="a cup again", seed=1))  # appended to the index
        assert session.search(unit(1), k=1)[0].moment.id == b


def test_retention_drops_old_moments(tmp_path):
    now = time.time()
    with Memory(tmp_path / "m.db", retention_s=3600) as m:
        m.add(moment(now - 7200, what="old"))
        m.add(moment(now - 60, what="new"))
        assert m.expire(now) == 1
        assert [x.what for x in m.moments()] == ["new"]
    with pytest.raises(MemoryUnavailable, match="retention"):
        Memory(tmp_path / "m.db", retention_s=0)


def test_wipe_leaves_nothing_readable_in_the_file(tmp_path):
    path = tmp_path / "m.db"
    with Memory(path) as m:
        for i in range(20):
            m.add(moment(time.time(), f"SECRET-DOOR-CODE-{i}", seed=i))
        m.add_thing(Thing("my cup", "cup", unit(3, 1280), time.time()))
        assert m.wipe() == 21
        assert m.count() == 0 and m.things() == []
        m.add(moment(time.time(), "after"))  # still usable
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"SECRET-DOOR-CODE" not in raw and b"my cup" not in raw


def test_a_corrupt_file_is_reported_and_kept(tmp_path):
    path = tmp_path / "m.db"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8000))
    before = path.read_bytes()
    with pytest.raises(MemoryUnavailable) as e:
        Memory(path)
    assert str(path) in str(e.value) and "left as it is" in str(e.value)
    assert "\n" not in str(e.value)
    assert path.read_bytes() == before


def test_a_file_of_another_kind_is_reported(tmp_path):
    path = tmp_path / "m.db"
    path.write_text("not a database at all, just someone's notes\n" * 100)
    before = path.read_bytes()
    with pytest.raises(MemoryUnavailable, match="unusable"):
        Memory(path)
    assert path.read_bytes() == before


def test_a_locked_file_fails_writes_in_one_line_and_loses_nothing(tmp_path):
    path = tmp_path / "m.db"
    with Memory(path) as m:
        kept = m.add(moment(time.time(), "KEPT"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        m = Memory(path)  # reading works in WAL mode while another program writes
        with pytest.raises(MemoryUnavailable, match="locked"):
            m.add(moment(time.time(), "NEW"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [x.id for x in m.moments()] == [kept]
    m.close()


def test_things_round_trip(tmp_path):
    with Memory(tmp_path / "m.db") as m:
        m.add_thing(Thing("my cup", "cup", unit(1, 1280), 10.0))
        m.add_thing(Thing("Anna's bike", "bike", unit(2, 1280), 11.0))
        got = m.things()
        assert [t.name for t in got] == ["my cup", "Anna's bike"]
        assert np.allclose(got[0].vec, unit(1, 1280), atol=1e-3)
        assert m.forget_thing("my cup") == 1
        assert [t.name for t in m.things()] == ["Anna's bike"]


def test_deletes_from_another_connection_racing_a_sessions_writes_lose_nothing_else(tmp_path):
    """The companion page deleting while the session writes: both go through, in any
    order; what was not deleted is all there."""
    import threading

    path = tmp_path / "m.db"
    session, page = Memory(path), Memory(path)
    written: list[int] = []
    deleted: set[int] = set()

    def write():
        for i in range(300):
            written.append(session.add(moment(time.time(), f"TEXT {i}", seed=i)))

    writer = threading.Thread(target=write)
    writer.start()
    seen = 0
    while writer.is_alive() or seen < len(written):  # every 5th moment, as soon as written
        if seen < len(written):
            if seen % 5 == 0 and page.forget([written[seen]]) == 1:
                deleted.add(written[seen])
            seen += 1
    writer.join()
    left = {m.id for m in session.moments(limit=1000)}
    assert len(set(written)) == 300, "an id deleted as the newest is never given again"
    assert left == set(written) - deleted and len(deleted) >= 50
    session.close()
    page.close()
