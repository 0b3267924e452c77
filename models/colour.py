"""What colour is it: the dominant colour of the thing in the centre of view, in plain words.

No model: the central region is split into `CLUSTERS` colour clusters (k-means in Lab),
the cluster that holds the centre is taken as the object, and its median colour is named
from its hue (HSV) and lightness (Lab L, HSV value and saturation), e.g. "dark blue".
Deterministic: fixed seed, fixed iteration criteria.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from glasses.device.errors import BadInput
from glasses.models.vision import as_bgr

CENTRE_FRACTION = 0.4  # the default region: the middle 40% of width and height
MAX_SIDE = 96  # the region is shrunk to at most this many pixels a side before clustering
CLUSTERS = 3  # object, background, and one spare (shadow, highlight, print)
CENTRE_SIGMA = 0.15  # centre weighting, as a fraction of the region's side
SEED = 7  # OpenCV's RNG seed for k-means++ initialisation
CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
ATTEMPTS = 3

# achromatic: Lab chroma below this is a grey (black ... white)
GREY_CHROMA = 12.0
GREYS = ((22, "black"), (42, "dark grey"), (68, "grey"), (85, "light grey"), (101, "white"))
# chromatic: HSV hue (degrees) upper bounds -> base name
HUES = ((15, "red"), (40, "orange"), (70, "yellow"), (160, "green"), (190, "teal/turquoise"),
        (255, "blue"), (300, "purple"), (345, "pink"), (360, "red"))
# every name `colour_name` gives (the student reads the reader's colour as one of these)
COLOUR_NAMES = ("black", "dark grey", "grey", "light grey", "white", "red", "dark red", "pink",
                "light pink", "orange", "brown", "dark brown", "beige", "yellow", "light yellow",
                "olive", "green", "dark green", "light green", "teal/turquoise",
                "light teal/turquoise", "blue", "dark blue", "light blue", "purple",
                "light purple")
DARK_VALUE = 0.55  # HSV value below which a colour is "dark"
LIGHT_VALUE, LIGHT_SATURATION = 0.8, 0.55  # bright and pale: "light"


@dataclass(frozen=True)
class ColourReading:
    name: str  # e.g. "dark blue", "light grey", "teal/turquoise"
    rgb: tuple[int, int, int]  # the object's median colour, 0-255
    share: float  # fraction of the region the object's colour cluster covers, 0-1


def colour_name(rgb: tuple[int, int, int]) -> str:
    """A plain name for one sRGB colour (0-255 per channel)."""
    pixel = np.array([[rgb[::-1]]], np.uint8)  # as BGR
    lab = cv2.cvtColor(pixel.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)[0, 0]
    lightness, chroma = float(lab[0]), float(np.hypot(lab[1], lab[2]))
    if chroma < GREY_CHROMA:
        return next(name for top, name in GREYS if lightness < top)
    r, g, b = (c / 255 for c in rgb)
    value, low = max(r, g, b), min(r, g, b)
    saturation = (value - low) / value if value else 0.0
    hue = _hue_degrees(r, g, b, value, low)
    base = next(name for top, name in HUES if hue < top)
    dark = value < DARK_VALUE
    light = value >= LIGHT_VALUE and saturation < LIGHT_SATURATION
    if base == "orange" and (dark or lightness < 55):
        return "dark brown" if lightness < 25 else "brown"
    if base == "orange" and light:
        return "beige"
    if base == "yellow" and dark:
        return "olive"
    if base == "red" and light:
        return "pink"
    if base == "pink" and lightness < 45:
        base = "purple"
    if base == "pink" and (light or dark):
        return "light pink" if light else "purple"
    if dark:  # purple and teal are dark by nature
        return base if base in ("purple", "teal/turquoise") else f"dark {base}"
    if light and (base != "yellow" or saturation < 0.3):
        return f"light {base}"
    return base


def _hue_degrees(r: float, g: float, b: float, value: float, low: float) -> float:
    span = value - low
    if span == 0:
        return 0.0
    if value == r:
        hue = ((g - b) / span) % 6
    elif value == g:
        hue = (b - r) / span + 2
    else:
        hue = (r - g) / span + 4
    return hue * 60.0


def centre_region(shape: tuple[int, ...], fraction: float = CENTRE_FRACTION):
    """(x, y, w, h) of the centred box covering `fraction` of each side."""
    h, w = shape[:2]
    bw, bh = max(1, round(w * fraction)), max(1, round(h * fraction))
    return (w - bw) // 2, (h - bh) // 2, bw, bh


def name_colour(image: np.ndarray,
                region: tuple[int, int, int, int] | None = None) -> ColourReading:
    """The dominant colour of the object at the centre of `region` (x, y, w, h in pixels;
    default: the middle 40% of the image). image: BGR uint8 (H, W, 3); grey and BGRA too."""
    image = as_bgr(image)
    x, y, w, h = region if region is not None else centre_region(image.shape)
    x0, y0 = max(0, int(x)), max(0, int(y))
    x1, y1 = min(image.shape[1], int(x + w)), min(image.shape[0], int(y + h))
    if x1 <= x0 or y1 <= y0:
        raise BadInput(f"colour region {region} lies outside the {image.shape[1]}x"
                       f"{image.shape[0]} image")
    crop = image[y0:y1, x0:x1]
    if max(crop.shape[:2]) > 4 * MAX_SIDE:  # a cheap integer pre-shrink for huge frames
        step = max(crop.shape[:2]) // (2 * MAX_SIDE)
        crop = crop[::step, ::step]
    scale = MAX_SIDE / max(crop.shape[:2])
    if scale < 1:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    pixels = crop.reshape(-1, 3)
    lab = cv2.cvtColor(crop.astype(np.float32) / 255, cv2.COLOR_BGR2Lab).reshape(-1, 3)
    labels = _clusters(lab)
    weights = _centre_weights(crop.shape[:2]).ravel()
    score = np.bincount(labels, weights=weights, minlength=CLUSTERS)
    best = int(np.argmax(score))
    chosen = pixels[labels == best]
    b, g, r = (int(v) for v in np.median(chosen, axis=0).round())
    rgb = (r, g, b)
    return ColourReading(colour_name(rgb), rgb, round(len(chosen) / len(pixels), 3))


def _clusters(lab: np.ndarray) -> np.ndarray:
    """Cluster index (n,) of each Lab pixel (n, 3); fewer clusters when colours are few."""
    k = min(CLUSTERS, len(np.unique(lab.round(), axis=0)))
    if k <= 1:
        return np.zeros(len(lab), np.int32)
    cv2.setRNGSeed(SEED)
    _, labels, _ = cv2.kmeans(lab, k, None, CRITERIA, ATTEMPTS, cv2.KMEANS_PP_CENTERS)
    return labels.ravel()


def _centre_weights(shape: tuple[int, int]) -> np.ndarray:
    """Gaussian weights (h, w), highest at the centre, sigma a fraction of each side."""
    h, w = shape
    ys = (np.arange(h) - (h - 1) / 2) / (CENTRE_SIGMA * h)
    xs = (np.arange(w) - (w - 1) / 2) / (CENTRE_SIGMA * w)
    return np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
