"""Is this my X? One vector per view of a thing, compared by cosine similarity.

"Remember this is my cup" keeps the vector of what is in the centre of view as an
exemplar; "is this my cup?" compares the vector of the new view with the cup's exemplars.
A vector is the classifier's pooled features (`Classifier.run`, from the same inference as
the class probabilities) averaged over one or more centred squares of the frame, with a
hue-saturation histogram of the centre appended at a small weight (`ThingEmbedding`),
L2-normalised: the similarity of two vectors is their dot product.

Run-time code: numpy and OpenCV. The figures behind `DEFAULT` and `SAME_THING` come from
`glasses eval things` over sets made by `export/things_set.py`.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from glasses.device.errors import BadInput
from glasses.models.vision import CROP_FRACTION, LITE_MEAN, Classifier, as_bgr, preprocess

WHOLE = 0.0  # as a crop: the whole frame, padded to a square with the mean colour
HUE_BINS, SAT_BINS, GREY_BINS = 12, 3, 4  # chromatic pixels by hue x saturation; grey by value
CHROMA = 40  # saturation and value (0-255) from which a pixel has a usable hue
HIST_SIDE = 64  # pixels: the colour region is shrunk to this square first


@dataclass(frozen=True)
class ThingEmbedding:
    """How a view becomes a vector."""

    # centred squares whose features are averaged, each as a fraction of the frame's
    # shorter side (0.875, CROP_FRACTION: the classifier's own crop; WHOLE: the whole frame)
    crops: tuple[float, ...] = (CROP_FRACTION,)
    # the colour histogram's weight against the features (0: features alone)
    colour_weight: float = 0.0
    # the centred square the histogram is taken over, fraction of the shorter side
    colour_region: float = 0.35

    def __post_init__(self):
        if not self.crops or any(not (c == WHOLE or 0 < c <= 1) for c in self.crops):
            raise BadInput(f"crops must be fractions in (0, 1] or WHOLE, got {self.crops}")
        if self.colour_weight < 0 or not 0 < self.colour_region <= 1:
            raise BadInput("colour_weight must be >= 0 and colour_region in (0, 1]")


# Chosen on the dev split of `export/things_set.py` (7 things, 8 views each, 23 same-kind
# distractors, 2 views each) among about fifty crop and colour combinations (1 and 2
# enrolled views, fp32 and int8; ten are `glasses eval things DIR --variants`): the
# classifier's own centre crop and two tighter ones (half and a third of the shorter side:
# a thing seen smaller, elsewhere, keeps more of its features), averaged, with the colour of
# the central third at weight 0.5 (fewer recoloured twins pass). Re-run with EfficientNet-
# Lite0's features it is still the best of the ten: best F1 0.85, against 0.72 for the centre
# crop's features alone (MobileNetV2's: 0.86 and 0.76). Three classifier runs a view (one
# can be `look`'s, see embed_thing).
DEFAULT = ThingEmbedding(crops=(CROP_FRACTION, 0.5, 0.35), colour_weight=0.5, colour_region=0.35)
# Two views are of the same thing from this similarity on. Chosen with DEFAULT on the dev
# split, 1 enrolled view per thing (fp32, EfficientNet-Lite0): the highest F1 of a 0.01
# sweep, precision 0.81 and recall 0.90 over 665 (image, thing) pairs (49 should match), 22%
# of the same-kind distractors accepted; the same threshold was best with 2 enrolled views
# and with int8.
# The holdout split's figures are in the README.
SAME_THING = 0.65


def whole_frame(image: np.ndarray) -> np.ndarray:
    """The frame padded to a square with the classifier's mean colour, BGR uint8."""
    image = as_bgr(image)
    h, w = image.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    fill = tuple(int(round(v)) for v in LITE_MEAN[::-1])  # LITE_MEAN is RGB, the image BGR
    return cv2.copyMakeBorder(image, top, side - h - top, left, side - w - left,
                              cv2.BORDER_CONSTANT, value=fill)


def colour_histogram(image: np.ndarray, region: float = 0.5) -> np.ndarray:
    """Hue x saturation of the chromatic pixels and value of the grey ones in the centred
    square of side `region` x the shorter side: (HUE_BINS * SAT_BINS + GREY_BINS,) float32,
    square-rooted shares, L2-normalised (brightness moves few pixels between bins)."""
    image = as_bgr(image)
    h, w = image.shape[:2]
    side = max(1, round(min(h, w) * region))
    top, left = (h - side) // 2, (w - side) // 2
    small = cv2.resize(image[top : top + side, left : left + side], (HIST_SIDE, HIST_SIDE),
                       interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    chromatic = (sat >= CHROMA) & (val >= CHROMA)
    hue_bin = hue * HUE_BINS // 180
    sat_bin = np.minimum((sat - CHROMA) * SAT_BINS // (256 - CHROMA), SAT_BINS - 1)
    grey_bin = HUE_BINS * SAT_BINS + val * GREY_BINS // 256
    bins = np.where(chromatic, hue_bin * SAT_BINS + np.maximum(sat_bin, 0), grey_bin)
    counts = np.bincount(bins, minlength=HUE_BINS * SAT_BINS + GREY_BINS).astype(np.float32)
    hist = np.sqrt(counts / counts.sum())
    return hist / np.linalg.norm(hist)


def features_of(classifier: Classifier, image: np.ndarray, crop: float) -> np.ndarray:
    """The classifier's features (1280,) float32, L2-normalised, of one centred square."""
    x = preprocess(whole_frame(image), 1.0) if crop == WHOLE else preprocess(image, crop)
    f = classifier.run(x)[1][0]
    return f / max(float(np.linalg.norm(f)), 1e-12)


def combine(features: list[np.ndarray], hist: np.ndarray | None, colour_weight: float
            ) -> np.ndarray:
    """Averaged features (each (1280,), normalised), with `hist` appended at
    `colour_weight`: one L2-normalised float32 vector."""
    f = np.mean(features, axis=0)
    f = f / max(float(np.linalg.norm(f)), 1e-12)
    if hist is not None and colour_weight > 0:
        f = np.concatenate([f, colour_weight * hist])
    return (f / np.linalg.norm(f)).astype(np.float32)


def embed_thing(classifier: Classifier, image: np.ndarray,
                embedding: ThingEmbedding = DEFAULT, centre: np.ndarray | None = None
                ) -> np.ndarray:
    """The vector of what is in the centre of `image` (uint8 (H, W[, C])): (1280,) or, with
    colour, (1280 + 40,) float32, L2-normalised. One classifier run per crop; `centre`, the
    features `Classifier.look` gave for this image, stands in for the 0.875 crop's run."""
    image = as_bgr(image)
    features = [centre if c == CROP_FRACTION and centre is not None
                else features_of(classifier, image, c) for c in embedding.crops]
    hist = (colour_histogram(image, embedding.colour_region)
            if embedding.colour_weight > 0 else None)
    return combine(features, hist, embedding.colour_weight)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors from `embed_thing` (both L2-normalised): -1 to 1."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape:
        raise BadInput(f"vectors must be 1-D of one length, got {a.shape} and {b.shape}")
    return float(np.clip(np.dot(a.astype(np.float64), b.astype(np.float64)), -1.0, 1.0))


def best_match(vec: np.ndarray, exemplars: dict[str, list[np.ndarray]],
               threshold: float = SAME_THING) -> tuple[str | None, float]:
    """The name whose most similar exemplar is the most similar to `vec`, and that
    similarity; the name is None when that is below `threshold` (or nothing is known)."""
    best_name, best = None, 0.0
    for name, vectors in exemplars.items():
        for v in vectors:
            s = similarity(vec, v)
            if best_name is None or s > best:
                best_name, best = name, s
    if best_name is None or best < threshold:
        return None, best
    return best_name, best
