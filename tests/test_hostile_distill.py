"""Hostile inputs to the distillation recipe: its work folder is the user's to write."""

import os
import pickle
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")  # the recipe is build-time code

from glasses.device.errors import BadInput  # noqa: E402
from glasses.export.distill import load_saved  # noqa: E402
from glasses.export.distill_build import MARKER, claim_work  # noqa: E402


def test_fresh_refuses_a_folder_it_did_not_make_and_leaves_its_files(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.txt").write_text("five years of work")
    with pytest.raises(BadInput, match="not made by glasses distill"):
        claim_work(theirs, fresh=True)
    assert (theirs / "thesis.txt").read_text() == "five years of work"
    assert not (theirs / MARKER).exists()


def test_the_command_refuses_it_too_with_exit_3(tmp_path, store):
    theirs = tmp_path / "home-like"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    env = {**os.environ, "GLASSES_HOME": str(store.home)}
    result = subprocess.run([sys.executable, "-m", "glasses.cli.main", "distill", "--fresh",
                             "--work", str(theirs)], capture_output=True, text=True, env=env)
    assert result.returncode == 3, result.stderr
    assert "not made by glasses distill" in result.stderr
    assert (theirs / "notes.txt").read_text() == "keep me"


def test_fresh_empties_a_folder_the_recipe_made(tmp_path):
    work = tmp_path / "work"
    claim_work(work, fresh=False)
    (work / "checkpoint.pt").write_bytes(b"old")
    claim_work(work, fresh=True)
    assert sorted(p.name for p in work.iterdir()) == [MARKER]


def test_an_empty_or_new_folder_is_claimed(tmp_path):
    (tmp_path / "empty").mkdir()
    claim_work(tmp_path / "empty", fresh=True)
    claim_work(tmp_path / "new" / "deeper", fresh=False)
    assert (tmp_path / "empty" / MARKER).exists()
    assert (tmp_path / "new" / "deeper" / MARKER).exists()


class _Payload:
    """Unpickling this runs code: it touches a file."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


@pytest.mark.parametrize("name", ["checkpoint.pt", "features.pt"])
def test_a_crafted_pickle_in_the_work_folder_runs_no_code(tmp_path, name):
    ran = tmp_path / "pwned"
    crafted = tmp_path / name
    with open(crafted, "wb") as f:
        pickle.dump({"key": _Payload(ran)}, f)
    with pytest.raises(BadInput, match="not a file this recipe wrote"):
        load_saved(crafted)
    assert not ran.exists()


def test_a_truncated_checkpoint_is_refused_in_one_line(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 3, "w": torch.zeros(100)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(BadInput, match="checkpoint.pt"):
        load_saved(path)
