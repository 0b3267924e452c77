"""`glasses memory`: the wearer sees, forgets and wipes, also while a session writes."""

import json
import subprocess
import sys
import time

import pytest

from glasses.cli.memory_cmd import duration
from glasses.pipelines.memory import Memory, Moment


def glasses(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glasses.cli.main", "memory", *args],
                          capture_output=True, text=True, input=stdin, timeout=120)


def fill(memory_file, n: int = 3, age_s: float = 0) -> list[int]:
    with Memory(memory_file) as m:
        return [m.add(Moment(time.time() - age_s - i, "read", f"sign {i}", text=f"GATE {i}"))
                for i in range(n)]


def test_list_shows_moments_newest_first(memory_file):
    fill(memory_file)
    r = glasses("list", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["path"] == str(memory_file) and data["moments_total"] == 3
    assert [m["text"] for m in data["moments"]] == ["GATE 0", "GATE 1", "GATE 2"]
    assert "GATE 0" in glasses("list").stdout


def test_forget_the_last_minutes_keeps_older_moments(memory_file):
    fill(memory_file, 2, age_s=3600)
    fill(memory_file, 3)
    r = glasses("forget", "--last", "10m", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"forgotten": 3}
    with Memory(memory_file) as m:
        assert m.count() == 2


def test_wipe_asks_first_and_works_while_a_session_holds_the_file(memory_file):
    fill(memory_file, 4)
    session = Memory(memory_file)  # a running session's connection
    r = glasses("wipe")
    assert r.returncode == 3 and "not wiped" in r.stderr
    assert session.count() == 4
    r = glasses("wipe", stdin="wipe\n")
    assert r.returncode == 0 and "4 deleted" in r.stdout
    assert session.count() == 0
    session.add(Moment(time.time(), "seen", "after the wipe"))  # the session goes on
    assert session.count() == 1
    session.close()


def test_a_corrupt_file_is_one_line_and_kept(memory_file):
    memory_file.write_bytes(b"garbage" * 1000)
    r = glasses("list")
    assert r.returncode == 3
    assert r.stderr.count("\n") == 1 and str(memory_file) in r.stderr
    assert memory_file.read_bytes() == b"garbage" * 1000


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("2h", 7200),
                                           ("1h30m", 5400), ("45", 45), ("1d", 86400)])
def test_durations(text, seconds):
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["0m", "ten minutes", "-5m", "99999d"])
def test_bad_durations_are_refused(text):
    with pytest.raises(Exception, match="duration"):
        duration(text)
