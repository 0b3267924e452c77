"""Context and memory in scenarios: spoken questions (the bundled voice, heard by Whisper)
about views that change, through `glasses simulate`, each answered right."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from glasses.export.look_set import colour_view, photo_view, sign_view
from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo
from glasses.models.colour import name_colour
from glasses.pipelines.memory import Memory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def views(store, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("memory-views")
    wheel = store.home / "downloads" / SKIMAGE_PHOTOS.wheel
    rng = np.random.default_rng(11)
    coffee, cat = read_photo(wheel, "coffee.png"), read_photo(wheel, "chelsea.png")
    made = {"sign.png": sign_view("GATE C7", rng), "platform.png": sign_view("PLATFORM 9", rng),
            "coffee.png": photo_view(coffee, rng), "coffee2.png": photo_view(coffee, rng),
            "cat.png": photo_view(cat, rng), "wall.png": colour_view((200, 90, 30), "box", rng)}
    made["wall.png"][:] = (190, 100, 40)  # a plain blue wall
    for name, image in made.items():
        cv2.imwrite(str(folder / name), image)
    return folder


def play(views: Path, name: str, items: list[tuple], memory: Path, duration: float,
         extra: tuple[str, ...] = ()) -> dict:
    """Play a scenario of (at, "view", file) and (at, "say", text, [expected words])."""
    lines = [f'name = "{name}"', f"duration_s = {duration}"]
    for item in items:
        if item[1] == "view":
            lines += ["[[view]]", f"at = {item[0]}", f'image = "{item[2]}"']
        else:
            lines += ["[[say]]", f"at = {item[0]}", f"text = {json.dumps(item[2])}",
                      f"expect = {json.dumps(list(item[3]))}"]
    path = views / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "glasses.cli.main", "simulate", "--scenario", str(path),
         "--mode", "simulated", "--headless", "--json", *extra],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "GLASSES_MEMORY": str(memory)})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def answers(data: dict) -> list[str]:
    return [t["answer"] for t in data["scenario"]["turns"]]


def all_passed(data: dict) -> bool:
    s = data["scenario"]
    return s["passed"] == s["graded"] == len(s["turns"])


def test_follow_ups_are_about_what_the_conversation_is_about(views, tmp_path):
    cat = cv2.imread(str(views / "cat.png"))
    cat_colour = name_colour(cat).name.split()[-1]
    data = play(views, "follow-ups", [
        (0, "view", "sign.png"), (1, "say", "Read that sign.", ["gate"]),
        (6, "view", "wall.png"), (7, "say", "What did that sign say?", ["gate", "c7"]),
        (13, "view", "cat.png"), (14, "say", "What am I looking at?", ["cat"]),
        (19, "view", "wall.png"), (20, "say", "What colour was it?", [cat_colour]),
        (26, "say", "Say that again.", [cat_colour]),
        (32, "view", "coffee.png"), (33, "say", "What is this?", ["espresso", "coffee"]),
        (38, "view", "cat.png"), (39, "say", "And that one?", ["cat"]),
    ], tmp_path / "m.db", 45)
    assert all_passed(data), data["scenario"]["turns"]
    assert "blue" not in answers(data)[3].lower()


def test_the_wearers_things(views, tmp_path):
    data = play(views, "my-cup", [
        (0, "view", "coffee.png"), (1, "say", "Remember this is my cup.", ["your cup"]),
        (6, "view", "cat.png"), (7, "say", "Is this my cup?", ["no"]),
        (12, "view", "coffee2.png"), (13, "say", "Is this my cup?", ["yes"]),
        (18, "say", "What am I looking at?", ["your cup"]),
        (24, "view", "cat.png"), (25, "say", "Where is my cup?", ["saw your cup"]),
        (31, "say", "Remember this is Anna.", ["not people"]),
    ], tmp_path / "m.db", 37)
    assert all_passed(data), data["scenario"]["turns"]
    with Memory(tmp_path / "m.db") as m:
        assert [t.name for t in m.things()] == ["my cup"]


def test_another_cup_of_the_same_kind_is_not_yours(store, tmp_path):
    """Views from the few-shot set (`export/things_set.py`): the cup enrolled, another view
    of it, and the same cup recoloured (another cup of the same model)."""
    from glasses.export.things_set import make_set, photo_wheels

    folder = tmp_path / "things"
    make_set(folder, photo_wheels(store, lambda m: None), "dev", only=("cup",))
    data = play(folder, "not-my-cup", [
        (0, "view", "cup_view0.jpg"), (1, "say", "Remember this is my cup.", ["your cup"]),
        (6, "view", "cup_view3.jpg"), (7, "say", "Is this my cup?", ["yes"]),
        (12, "view", "cup_not0_0.jpg"), (13, "say", "Is this my cup?", ["not your cup"]),
    ], tmp_path / "m.db", 19)
    assert all_passed(data), data["scenario"]["turns"]


def test_what_was_seen_is_recalled_with_the_time_and_forgotten_on_request(views, tmp_path):
    memory = tmp_path / "m.db"
    data = play(views, "recall", [
        (0, "view", "platform.png"), (6, "view", "cat.png"), (60, "view", "coffee.png"),
        (66, "view", "cat.png"),
        (130, "say", "What did the platform sign say?", ["platform 9"]),
        (137, "say", "Did I see a coffee cup?", ["yes"]),
        (144, "say", "Did I see a bicycle?", ["don't remember"]),
        (151, "say", "Forget the last five minutes.", ["forgot"]),
        (158, "say", "Did I see a coffee cup?", ["don't remember"]),
    ], memory, 164)
    assert all_passed(data), data["scenario"]["turns"]
    assert "2 minutes ago" in answers(data)[0], answers(data)
    with Memory(memory) as m:
        assert m.count() == 0  # forgotten, and the forget turn itself is not stored


def test_no_memory_remembers_nothing(views, tmp_path):
    memory = tmp_path / "m.db"
    data = play(views, "no-memory", [
        (0, "view", "coffee.png"), (1, "say", "Remember this is my cup.", ["memory is off"]),
    ], memory, 7, ("--no-memory",))
    assert all_passed(data), data["scenario"]["turns"]
    assert not memory.exists()
