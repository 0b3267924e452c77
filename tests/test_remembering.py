"""A session's memory under faults: a full disk, a locked file, a wipe from outside. The
session goes on, and nothing already stored is lost."""

import sqlite3
import time

import pytest

from glasses.device.boards import BoardProfile
from glasses.device.clock import NS_PER_S, now_ns
from glasses.models.text_embedding import TextEmbedder
from glasses.pipelines.memory import Memory
from glasses.pipelines.remembering import Remembering, Seen, ago


@pytest.fixture(scope="module")
def embed(store):
    return TextEmbedder(store, BoardProfile.laptop()).embed


def session(embed, path, notices: list[str]) -> Remembering:
    return Remembering(Memory(path), embed, notice=notices.append)


def test_moments_are_stored_with_wall_times_and_found_by_meaning(embed, memory_file):
    notices: list[str] = []
    r = session(embed, memory_file, notices)
    start = now_ns()
    r.set_origin(start, wall=1_000_000.0)
    r.note(Seen(start + 60 * NS_PER_S, what="an espresso, a cup", colour="dark brown"))
    r.note(Seen(start + 120 * NS_PER_S, text="GATE C7"))
    r.note(Seen(start + 180 * NS_PER_S, what="a tabby cat, a cat"))
    assert r.flush()
    found = r.search("did I see a coffee cup", k=1)
    assert found[0].moment.what == "an espresso, a cup"
    assert found[0].moment.t == pytest.approx(1_000_060.0)
    assert r.search("what did the gate sign say", k=1)[0].moment.text == "GATE C7"
    assert notices == [] and r.stored == 3
    r.close()


def test_a_full_disk_drops_the_moment_says_so_and_keeps_the_rest(embed, memory_file):
    notices: list[str] = []
    r = session(embed, memory_file, notices)
    r.note(Seen(now_ns(), text="KEPT"))
    assert r.flush()
    pages = r.memory._db.execute("PRAGMA page_count").fetchone()[0]
    r.memory._db.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own "disk is full"
    for i in range(40):
        r.note(Seen(now_ns(), text=f"LONG TEXT {i} " + "x" * 3000))
    assert r.flush()
    assert any("full" in n for n in notices), notices
    assert r.broken is None  # a full disk may clear: memory stays on
    r.memory._db.execute("PRAGMA max_page_count=1073741823")
    r.note(Seen(now_ns(), text="AFTER"))
    assert r.flush()
    texts = [m.text for m in r.memory.moments(limit=100)]
    assert "KEPT" in texts and "AFTER" in texts
    r.close()


def test_a_locked_file_drops_the_moment_and_recovers(embed, memory_file):
    notices: list[str] = []
    r = session(embed, memory_file, notices)
    other = sqlite3.connect(memory_file, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    r.note(Seen(now_ns(), text="WHILE LOCKED"))
    assert r.flush(timeout_s=10)
    other.execute("ROLLBACK")
    other.close()
    assert any("locked" in n for n in notices), notices
    r.note(Seen(now_ns(), text="AFTER"))
    assert r.flush()
    assert [m.text for m in r.memory.moments()] == ["AFTER"]
    r.close()


def test_a_wipe_from_outside_while_the_session_runs(embed, memory_file):
    r = session(embed, memory_file, [])
    r.note(Seen(now_ns(), text="BEFORE THE WIPE"))
    assert r.flush() and r.search("before the wipe", k=1)
    with Memory(memory_file) as outside:
        outside.wipe()
    assert r.search("before the wipe", k=5) == []
    r.note(Seen(now_ns(), text="AFTER THE WIPE"))
    assert r.flush()
    assert [f.moment.text for f in r.search("after the wipe", k=5)] == ["AFTER THE WIPE"]
    r.close()


def test_ago_in_words():
    assert ago(10) == "just now" and ago(60) == "about a minute ago"
    assert ago(12 * 60 + 10) == "about 12 minutes ago" and ago(3 * 3600) == "about 3 hours ago"
    assert ago(time.time() - time.time() - 5) == "just now"


def test_a_corrupt_memory_file_leaves_the_session_answering_without_memory(store, memory_file):
    from glasses import Assistant, AssistantOptions, Mode, events
    from glasses.simulator.session import DEMO_AUDIO, DEMO_VIDEO

    memory_file.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    before = memory_file.read_bytes()
    a = Assistant(AssistantOptions(view=str(DEMO_VIDEO), audio=str(DEMO_AUDIO),
                                   mode=Mode.SIMULATED), store)
    notices, answers = [], []
    a.subscribe(lambda e: notices.append(e.message), events.Notice)
    a.subscribe(lambda e: answers.append(e.text), events.Answer)
    a.run()
    assert any(str(memory_file) in n and "without memory" in n for n in notices), notices
    assert len(answers) == 2 and "espresso" in answers[0]
    assert memory_file.read_bytes() == before


def test_seen_by_meaning_the_right_moment_above_the_threshold_the_others_below(embed):
    from glasses.pipelines.memory_skills import SEEN_MIN
    from glasses.pipelines.remembering import describe

    moments = {"espresso": Seen(0, "an espresso", colour="dark brown"),
               "cat": Seen(0, "a tabby cat, a cat", colour="brown"),
               "bike": Seen(0, "a mountain bike, a bicycle", colour="red"),
               "bus": Seen(0, "a school bus", colour="yellow"),
               "sign": Seen(0, text="PHARMACY", colour="green"),
               "dog": Seen(0, "a golden retriever, a dog", colour="orange"),
               "laptop": Seen(0, "a laptop, a computer", colour="grey"),
               "pizza": Seen(0, "a pizza", colour="orange")}
    queries = {"coffee cup": "espresso", "kitten": "cat", "bicycle": "bike", "bus": "bus",
               "pharmacy": "sign", "puppy": "dog", "computer": "laptop",
               "something to eat": "pizza", "cup of coffee": "espresso", "cat": "cat"}
    names = list(moments)
    vecs = embed([describe(moments[n]) for n in names])
    for query, right in queries.items():
        scores = dict(zip(names, vecs @ embed([f"saw {query}"])[0], strict=True))
        assert max(scores, key=scores.get) == right, (query, scores)
        assert scores[right] >= SEEN_MIN, (query, scores)
        assert all(v < SEEN_MIN for n, v in scores.items() if n != right), (query, scores)
