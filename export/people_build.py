"""Build the people detectors: MediaPipe's face and person .tflite files -> ONNX.

The store entry `people-detector` (read by `models/people.py`) holds `face_short.onnx`,
`face_full.onnx` and `person.onnx`, converted by `export/tflite_onnx.py` from the models
the `mediapipe==0.10.21` wheel carries (newer wheels no longer do), and the wheel's
`LICENSE` (Apache-2.0). The wheel's code is never installed.

Before anything is stored, each ONNX graph runs beside the TFLite runtime (pymicro-wakeword's
`libtensorflowlite_c.so`, the one the wake-word build uses) on the same inputs: photos from
scikit-image's wheel (people among them) letterboxed as the run time does, and seeded random
pictures. Regressors and scores must agree within `MAX_DIFFERENCE`, and the detections the
run time's decoding finds must be the same.

Build-time code (`tflite`, `onnx`, the TFLite library). The run time is `models/people.py`.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from glasses.device.errors import StoreError
from glasses.export.weights import MEDIAPIPE, PYMICRO_WAKEWORD
from glasses.models.people import DETECTORS, FACE_FULL, FACE_SHORT, MODEL, PERSON, letterbox
from glasses.models.store import ModelStore

Progress = Callable[[str], None]

EXPORT_VERSION = 1  # bump when the conversion changes what it writes
# of raw regressors (pixels) and score logits; measured 2e-4 (faces), 1.3e-3 (person)
MAX_DIFFERENCE = 5e-3
MODULES = "mediapipe/modules"
MEMBERS = {  # detector -> (member in the wheel, sha256)
    FACE_SHORT: (f"{MODULES}/face_detection/face_detection_short_range.tflite",
                 "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    FACE_FULL: (f"{MODULES}/face_detection/face_detection_full_range_sparse.tflite",
                "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"),
    PERSON: (f"{MODULES}/pose_detection/pose_detection.tflite",
             "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
}
assert set(MEMBERS) == set(DETECTORS)
LICENCE = ("mediapipe-0.10.21.dist-info/LICENSE",
           "8707eef0533987efc5b155d64761eeb6e20793f50b9bd1a68dad1cf4719d0ed8")
CHECK_PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png")
RANDOM_PICTURES = 2


def check_inputs(photos_wheel: Path, side: int) -> list[np.ndarray]:
    """Letterboxed photos and seeded random pictures, (1, side, side, 3) float32."""
    from glasses.export.vision_build import read_photo

    pictures = [read_photo(photos_wheel, name) for name in CHECK_PHOTOS]
    rng = np.random.default_rng(0)
    pictures += [rng.integers(0, 256, (240, 320, 3), np.uint8) for _ in range(RANDOM_PICTURES)]
    return [letterbox(p, side)[0] for p in pictures]


def compare(onnx_path: Path, reference, inputs: list[np.ndarray]) -> dict:
    """Run both graphs on `inputs`; the figures, or StoreError if they disagree."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    worst = 0.0
    hits = []
    for x in inputs:
        got = session.run(None, {name: x})
        ref = reference(x)
        for a, b in zip(got, ref, strict=True):
            if a.shape != b.shape:
                raise StoreError(f"{onnx_path.name}: output shape {a.shape} != TFLite's "
                                 f"{b.shape}")
            worst = max(worst, float(np.abs(a - b).max()))
        hits.append(int((got[1] > 0).sum()))
    figures = {"pictures": len(inputs), "max_difference": round(worst, 6),
               "anchors_over_half": hits}
    if worst > MAX_DIFFERENCE:
        raise StoreError(f"{onnx_path.name}: the ONNX conversion disagrees with TFLite: "
                         f"{figures}")
    return figures


def build_people(store: ModelStore, wheels: list[Path], progress: Progress,
                 provenance: dict) -> dict:
    import onnx

    from glasses.export.tflite_onnx import convert
    from glasses.export.tflite_runtime import TfliteRuntime
    from glasses.export.wake_build import LIBRARY, take

    mediapipe, micro, photos = wheels
    figures = {}
    with store.build_dir() as tmp_name:
        tmp = Path(tmp_name)
        out = tmp / "out"
        out.mkdir()
        take(mediapipe, *LICENCE, out / "LICENSE")
        library = take(micro, *LIBRARY, tmp / "libtensorflowlite_c.so")
        for detector, (member, sha256) in MEMBERS.items():
            tflite = take(mediapipe, member, sha256, tmp / Path(member).name)
            progress(f"converting {Path(member).name} to ONNX")
            converted = convert(tflite, ("image",), ("regressors", "scores"),
                                Path(detector.file).stem)
            shape = converted.inputs["image"]
            if shape != (1, detector.side, detector.side, 3):
                raise StoreError(f"{member}: input {shape}, expected a {detector.side} square")
            onnx_path = out / detector.file
            onnx.save(converted.model, onnx_path)
            reference = TfliteRuntime(library, tflite)
            try:
                figures[detector.file] = compare(onnx_path, reference,
                                                 check_inputs(photos, detector.side))
            finally:
                reference.close()
            progress(f"checked {detector.file} against TFLite: max difference "
                     f"{figures[detector.file]['max_difference']}")
        store.add(MODEL, {f.name: f for f in sorted(out.iterdir())},
                  {**provenance, "validation": figures})
    return figures


def people_recipe():
    from glasses.export.prepare import Recipe
    from glasses.export.vision_build import SKIMAGE_PHOTOS

    return Recipe(MODEL, (MEDIAPIPE, PYMICRO_WAKEWORD, SKIMAGE_PHOTOS), (MODEL,), build_people,
                  "MediaPipe face (short and full range) and person detectors: TFLite "
                  "converted to ONNX, checked against the TFLite runtime",
                  version=EXPORT_VERSION,
                  details=(("tflite_sha256", {d.file: s for d, (_, s) in MEMBERS.items()}),))
