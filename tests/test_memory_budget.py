"""A board's memory budget: the language model is loaded when a question needs it, answers,
and is let go while the process is over budget; without a budget it stays."""

from dataclasses import replace

import numpy as np
import pytest

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.device.memory import MemoryBudget, peak_rss_mb, rss_mb
from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo
from glasses.models.lm import STORE_NAME, AnswerModel
from glasses.models.vlm import Teacher

GENERAL = "Is this something I could drink?"


def test_an_idle_model_is_let_go_only_while_over_budget():
    loose, tight = MemoryBudget(None), MemoryBudget(rss_mb() + 100)
    for budget in (loose, tight):
        big = budget.on_demand("200 MB of weights", lambda: np.ones(50_000_000, np.float32))
        with big.use() as weights:
            assert weights.nbytes == 200_000_000 and big.in_use
            assert budget.settle() == [], "a model in use is never let go"
        del weights  # the budget's is then the only reference
        assert big.loaded and big.loads == 1
        if budget is loose:
            assert budget.settle() == [] and big.loaded
        else:
            before = rss_mb()
            assert budget.settle() == ["200 MB of weights"] and not big.loaded
            assert rss_mb() < before - 150, "the memory went back to the system"
            with big.use():
                assert big.loads == 2 and big.last_load_ms > 0
    assert peak_rss_mb() >= rss_mb()


def test_a_failed_load_leaves_the_model_unloaded():
    budget = MemoryBudget(1)
    broken = budget.on_demand("broken", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError), broken.use():
        pass
    assert not broken.loaded and not broken.in_use and budget.settle() == []


@pytest.mark.parametrize("budget_mb", [1, None])
def test_the_language_model_is_loaded_for_a_general_question(store, budget_mb):
    board = replace(BoardProfile.laptop(), memory_budget_mb=budget_mb)
    teacher = Teacher(store, board)
    teacher.warm_up()
    assert teacher.lm.loaded == (budget_mb is None), "with a budget, warm-up does not load it"
    image = read_photo(store.home / "downloads" / SKIMAGE_PHOTOS.wheel, "coffee.png")
    for turn in range(2):
        stream = teacher.stream(image, GENERAL)
        assert "".join(stream).strip()
        assert "lm" in stream.stages_ms
        loaded_for_it = budget_mb is not None  # let go after each, since always over 1 MB
        assert ("lm_load" in stream.stages_ms) == loaded_for_it, (turn, stream.stages_ms)
        assert teacher.lm.loaded == (budget_mb is None)
    assert teacher.lm.loads == (2 if budget_mb else 1)


def test_a_missing_language_model_is_named_at_start_not_at_the_first_question(store, tmp_path):
    from glasses.models.store import MANIFEST, ModelStore

    (tmp_path / MANIFEST).write_bytes(store.manifest_path.read_bytes())  # no model files
    with pytest.raises(StoreError, match=f"{STORE_NAME}/lm.json: missing"):
        AnswerModel.check(ModelStore(tmp_path), "int8")


ARENAS = """
import ctypes, sys, threading
import numpy as np
from glasses.device.memory import one_heap_arena
if sys.argv[1] == "one":
    assert one_heap_arena()
def work():
    kept = [np.ones(200, np.float32) for _ in range(20000)]  # small blocks: malloc's arenas
    del kept
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()
"""


@pytest.mark.parametrize("mode", ["one", "default"])
def test_one_heap_arena_keeps_all_threads_on_one_heap(mode):
    """glibc's malloc_stats lists one arena per heap; threads each get one by default."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", ARENAS, mode], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    arenas = done.stderr.count("Arena ")
    assert arenas == 1 if mode == "one" else arenas > 1, done.stderr
