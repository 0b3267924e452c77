"""Skills: the router, the built-in skills, plug-ins found through their entry points (the
example timer installed from its own folder), and plug-ins that fail."""

import importlib
import json
import site
import subprocess
import sys
import textwrap

import pytest
from test_cli import ROOT

from glasses.evaluation.routing import SETS, evaluate_routing, read_routing_set, rules_before
from glasses.models.intent import Intent, intent_of
from glasses.models.router import Router
from glasses.pipelines.memory_skills import memory_skills
from glasses.pipelines.skills import builtin_skills, discover, router_for

TIMER = ROOT / "examples" / "timer-skill"


def test_the_router_takes_casual_phrasing_and_recognition_slips():
    for text, skill in [("Watts this?", "identify"), ("Reed the sign for me.", "read"),
                        ("whats the color of that mug", "colour"), ("is it hot", "general"),
                        ("read the colour label", "read"), ("what colour is the sign", "colour"),
                        ("", "general")]:
        assert str(intent_of(text)) == skill, text


def test_keywords_decide_among_the_skills_they_name():
    r = Router({"a": ["what is this"], "b": ["set a timer"]}, "a", {"b": "timer"})
    assert r.route("what is this timer") == "b"
    assert r.route("zzzz qqqq") == "a", "below the least score: the fallback"


def test_the_router_beats_the_rules_it_replaced_on_both_routing_sets():
    from glasses_timer import TimerSkill  # noqa: F401 (installed by the fixture below)

    skills = builtin_skills() + memory_skills() + [TimerSkill()]  # as a session routes
    for name in ("routing.tsv", "routing-holdout.tsv"):
        cases = read_routing_set(SETS / name)
        assert len(cases) >= 70
        result = evaluate_routing(cases, router_for(skills))
        assert result["router"]["accuracy"] >= 0.9, result["router"]["misses"]
        assert result["router"]["accuracy"] > result["rules_before"]["accuracy"] + 0.1
    assert rules_before("What colour is the sign?") == "colour"


@pytest.fixture(scope="module", autouse=True)
def timer_installed():
    """The example skill installed into this environment from its folder (no network)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "-e", str(TIMER)], check=True, timeout=300)
    # this process started before the install: read its .pth files (the editable finder)
    for folder in site.getsitepackages():
        site.addsitedir(folder)
    importlib.invalidate_caches()


def test_the_installed_example_skill_is_found_through_its_entry_point():
    skills, problems = discover()
    assert "timer" in [s.name for s in skills], problems


def test_the_timer_skill_answers_in_a_scenario_and_says_when_it_is_done(store, tmp_path):
    events = tmp_path / "events.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "glasses.cli.main", "simulate", "--headless", "--scenario",
         str(TIMER / "timer.toml"), "--events", str(events), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["scenario"]["passed"] == data["scenario"]["graded"] == 1, data["utterances"]
    (turn,) = data["utterances"]
    assert turn["answer"] == "Timer set for 3 seconds."
    log = [json.loads(line) for line in events.read_text().splitlines()]
    answer = next(e for e in log if e["type"] == "answer")
    assert answer["skill"] == "timer" and answer["card"]["title"] == "Timer"
    done = next(e for e in log if e["type"] == "announcement")
    assert done["text"] == "Your 3-second timer is done." and done["skill"] == "timer"
    assert 2.5 < done["t"] - answer["t"] < 4.5


BROKEN = {
    "on_import": "raise RuntimeError('no such hardware')\n",
    "in_handler": textwrap.dedent("""\
        from glasses.pipelines.skills import Skill

        class Broken(Skill):
            name = "fortune"
            examples = ("tell my fortune", "what is my fortune")
            keywords = "fortune"

            def handle(self, request):
                yield "Your fortune"
                raise ValueError("the crystal ball cracked")
        """),
}


def fake_distribution(folder, module: str, target: str) -> None:
    """A real installed distribution (its metadata on the path) with one skill entry point."""
    (folder / f"{module}.py").write_text(BROKEN[module])
    info = folder / f"glasses_{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: glasses-{module}\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(f"[glasses.skills]\n{module} = {target}\n")


def test_a_skill_that_fails_on_import_or_in_its_handler_is_named_and_skipped(store, tmp_path):
    fake_distribution(tmp_path, "on_import", "on_import:Skill")
    fake_distribution(tmp_path, "in_handler", "in_handler:Broken")
    code = textwrap.dedent("""\
        from glasses import Assistant, AssistantOptions, Mode, events
        from glasses.simulator.session import DEMO_AUDIO, DEMO_VIDEO
        a = Assistant(AssistantOptions(view=str(DEMO_VIDEO), audio=str(DEMO_AUDIO),
                                       mode=Mode.SIMULATED))
        a.subscribe(lambda e: print("NOTICE", e.message), events.Notice)
        a.subscribe(lambda e: print("ANSWER", e.text), events.Answer)
        a.start()
        a.ask("Tell my fortune.")
        a.wait()
        a.stop()
        """)
    env = {"PYTHONPATH": str(tmp_path), "GLASSES_HOME": str(store.home), "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert any("'on_import'" in line and "no such hardware" in line for line in out), out
    assert any("'fortune' failed" in line and "crystal ball" in line for line in out), out
    answers = [line for line in out if line.startswith("ANSWER")]
    assert "ANSWER Your fortune Sorry: the fortune skill failed." in answers, answers
    assert any("espresso" in a for a in answers) and any("EXIT" in a for a in answers)


def test_every_intent_is_a_builtin_skill():
    assert sorted(s.name for s in builtin_skills()) == sorted(i.value for i in Intent)
