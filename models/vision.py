"""What is in view: an ImageNet-1k classifier (EfficientNet-Lite0, ONNX) with readable labels,
and, from the same run, the image's pooled features (what `models/things.py` matches on).

The store entry `imagenet-classifier` is built by `export/vision_build.py`.
"""

import json
from dataclasses import dataclass

import cv2
import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput, StoreError
from glasses.models.sessions import create_session
from glasses.models.store import ModelStore

MODEL = "imagenet-classifier"
FILES = {"fp32": "classifier.onnx", "int8": "classifier.int8.onnx"}
LABELS_FILE = "labels.json"
OUTPUTS = ("logits", "features")  # (1, 1000) and (1, N_FEATURES), from one run
N_FEATURES = 1280  # EfficientNet-Lite0's pooled last 1x1 convolution
INPUT_SIZE = 224  # pixels, square
CROP_FRACTION = 224 / 256  # the centred square taken first: 224 / (224 + 32), as TF's
LITE_MEAN = np.full(3, 127.5, np.float32)  # the classifier's input normalisation (RGB, 0-255)
LITE_STD = np.full(3, 127.5, np.float32)
# torchvision's ImageNet normalisation: MobileNetV2, the student's image encoder
TORCHVISION_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
TORCHVISION_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


@dataclass(frozen=True)
class Label:
    name: str  # e.g. "espresso"
    description: str  # one sentence
    confidence: float  # softmax probability, 0-1
    index: int  # ImageNet-1k class index, 0-999


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Grey (H, W) or (H, W, 1), BGR (H, W, 3) or BGRA (H, W, 4) uint8 -> BGR (H, W, 3)."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise BadInput("empty image: nothing to look at")
    if image.dtype != np.uint8:
        raise BadInput(f"image must be uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise BadInput(f"image must be (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")


def preprocess(image: np.ndarray, crop: float = CROP_FRACTION, size: int = INPUT_SIZE,
               mean: np.ndarray = LITE_MEAN, std: np.ndarray = LITE_STD) -> np.ndarray:
    """BGR/grey/BGRA uint8 (H, W[, C]) -> (1, 3, size, size) float32, RGB, normalised by
    `mean` and `std` (RGB, in 0-255; the classifier's by default).

    The centred square of side `crop` (0-1) x the shorter side is cropped first, then
    resized (area averaging), so a huge image costs one resize, not a full-size copy.
    """
    if not 0 < crop <= 1:
        raise BadInput(f"crop must be in (0, 1], got {crop}")
    image = as_bgr(image)
    h, w = image.shape[:2]
    side = max(1, round(min(h, w) * crop))
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top : top + side, left : left + side]
    if side > 4 * size:  # cheap integer pre-shrink keeps INTER_AREA's cost bounded
        step = side // (2 * size)
        crop = crop[::step, ::step]
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    small = cv2.resize(crop, (size, size), interpolation=interp)
    rgb = small[:, :, ::-1].astype(np.float32)
    x = (rgb - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """ImageNet-1k labels for the centre of a picture, and its features."""

    def __init__(self, store: ModelStore, board: BoardProfile, precision: str = "fp32"):
        if precision not in FILES:
            raise BadInput(f"precision must be one of {', '.join(FILES)}, got {precision!r}")
        self.precision = precision
        self._session = create_session(store.path(MODEL, FILES[precision]), board)
        labels = json.loads(store.path(MODEL, LABELS_FILE).read_text(encoding="utf-8"))
        self.labels: list[tuple[str, str]] = [(x["name"], x["description"]) for x in labels]
        self._has_features = OUTPUTS[1] in {o.name for o in self._session.get_outputs()}

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One inference on a preprocessed image (1, 3, 224, 224) float32 (`preprocess`)
        -> logits (1, 1000) float32, features (1, 1280) float32 (not normalised)."""
        if not self._has_features:
            raise StoreError(f"{MODEL} was built without its features output: run "
                             f"`glasses models prepare {MODEL}`")
        logits, features = self._session.run(list(OUTPUTS), {"image": x})
        return logits, features

    def look(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """image uint8 (H, W[, C]) -> class probabilities (1000,) float64 and L2-normalised
        features (1280,) float32, both from one inference on the centre crop."""
        logits, features = self.run(preprocess(image))
        f = features[0]
        return softmax(logits[0].astype(np.float64)), f / max(float(np.linalg.norm(f)), 1e-12)

    def logits(self, image: np.ndarray) -> np.ndarray:
        """image uint8 (H, W[, C]) -> logits (1, 1000) float32"""
        return self._session.run([OUTPUTS[0]], {"image": preprocess(image)})[0]

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """image uint8 (H, W[, C]) -> (1000,) float64 class probabilities"""
        return softmax(self.logits(image)[0].astype(np.float64))

    def top(self, probs: np.ndarray, top_k: int = 5) -> list[Label]:
        """The `top_k` most likely labels of `probs` (1000,), most likely first."""
        if top_k < 1:
            raise BadInput(f"top_k must be at least 1, got {top_k}")
        best = np.argsort(-probs, kind="stable")[:top_k]
        return [Label(*self.labels[i], float(probs[i]), int(i)) for i in best]

    def classify(self, image: np.ndarray, top_k: int = 5) -> list[Label]:
        """The `top_k` most likely labels, most likely first."""
        return self.top(self.probabilities(image), top_k)
