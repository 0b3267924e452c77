"""The run-time path (hearing, looking, answering, the simulator) imports no torch."""

import subprocess
import sys

from test_cli import ROOT

FORBIDDEN = ("torch", "whisper", "transformers", "optimum", "ctranslate2")


def test_run_time_path_imports_no_torch(store):
    code = (
        "import sys, numpy as np\n"
        "from glasses.device.boards import BoardProfile\n"
        "from glasses.models.asr import WhisperOnnx\n"
        "from glasses.models.store import ModelStore\n"
        "from glasses.models.vlm import Teacher\n"
        "from glasses.pipelines.asr_stage import AsrStage\n"
        "from glasses.evaluation.look import answer_turn\n"
        "from glasses.simulator.session import run_session\n"
        "store, board = ModelStore(), BoardProfile.laptop()\n"
        "WhisperOnnx(store, board).transcribe(np.zeros(16000, np.float32))\n"
        "image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)\n"
        "vlm = Teacher(store, board)\n"
        "for q in ('What is this?', 'Read it.', 'What colour is it?', 'Is it far?'):\n"
        "    assert answer_turn(vlm, image, q).answer\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env={"GLASSES_HOME": str(store.home), "PATH": ""})
    assert result.returncode == 0, result.stderr
