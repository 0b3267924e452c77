"""One import namespace: the installed distribution exposes `glasses` and nothing else."""

import subprocess
import sys

FOLDERS = ("device", "models", "pipelines", "simulator", "export", "cli", "evaluation")


def test_only_glasses_is_importable_outside_the_repository(tmp_path):
    code = ("import importlib.util, glasses, glasses.models.store, glasses.evaluation.routing\n"
            f"print([n for n in {FOLDERS!r} if importlib.util.find_spec(n)])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_public_api_is_importable_from_the_package():
    from glasses import DEMO_AUDIO, DEMO_VIDEO, Assistant, AssistantOptions, Mode, events

    assert DEMO_VIDEO.is_file() and DEMO_AUDIO.is_file()
    assert callable(Assistant) and AssistantOptions(view="0").audio is None
    assert Mode.SIMULATED.value == "simulated" and events.Answer.kind == "answer"
