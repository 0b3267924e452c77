"""Text reading: PP-OCRv4 detection (DB) and recognition (CTC) on onnxruntime.

The algorithms follow rapidocr / PaddleOCR, reimplemented on numpy and opencv:

    image (H, W, 3) BGR -> downscale to `max_side` -> det input, sides multiples of 32
    -> probability map -> threshold, contours, min-area rectangles, box score, unclip
    -> boxes in reading order -> perspective crops -> (angle classifier: flip 180)
    -> height 48, width by aspect ratio -> CTC greedy decoding -> lines

The recognition dictionary is read from the rec model's metadata (`character`); CTC
index 0 is the blank and a space is appended at the end, as PaddleOCR trains it.
"""

import math
import re
import time
from dataclasses import dataclass

import cv2
import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput, StoreError
from glasses.models.sessions import create_session
from glasses.models.store import ModelStore

MODEL = "ppocr-v4"
DET_FILE = "det.onnx"
REC_FILE = "rec.onnx"
CLS_FILE = "cls.onnx"

DET_STRIDE = 32  # det input sides are multiples of this
REC_HEIGHT = 48  # rec input height, pixels
CLS_SIZE = (192, 48)  # cls input width, height
MEAN = STD = 0.5  # every model: x = (pixel / 255 - MEAN) / STD


@dataclass(frozen=True)
class OcrOptions:
    # size: bounds time and memory whatever the camera delivers
    max_side: int = 2048  # the image is first downscaled to this longest side (crops come from it)
    det_max_side: int = 960  # detection runs at most at this longest side
    det_min_side: int = 64  # small images are scaled up (or padded) to this shorter side

    # detection (DB post-processing)
    thresh: float = 0.3  # pixel probability that counts as text
    box_thresh: float = 0.5  # mean probability inside a box to keep it
    unclip_ratio: float = 1.6  # boxes grow by area * ratio / perimeter on every side
    min_size: float = 3.0  # boxes with a shorter side (det pixels) are dropped
    max_candidates: int = 1000  # contours considered at most
    max_lines: int = 64  # lines recognised at most (the largest boxes): bounds rec time

    # recognition
    use_cls: bool = True  # turn upside-down lines with the angle classifier
    cls_thresh: float = 0.9  # classifier score needed to flip a line
    rec_batch: int = 6  # crops per rec run (sorted by aspect ratio)
    rec_max_width: int = 1280  # crops wider than this at height 48 are squeezed
    text_score: float = 0.5  # lines with a lower mean character probability are dropped


@dataclass(frozen=True)
class TextLine:
    text: str
    confidence: float  # mean probability of the decoded characters, in [0, 1]
    box: np.ndarray  # (4, 2) float32 (x, y) in input pixels: TL, TR, BR, BL corners


@dataclass(frozen=True)
class Reading:
    """The lines read in one image, in reading order, and the call's stages in ms: prepare
    (shrink and colour conversion), det (detector and box finding), cls (crops and
    angle), rec."""

    lines: tuple[TextLine, ...]
    timings_ms: dict[str, float]


class TextReader:
    """Reads the text in a camera image."""

    def __init__(self, store: ModelStore, board: BoardProfile, options: OcrOptions = OcrOptions()):
        self.options = options
        self._det = create_session(store.path(MODEL, DET_FILE), board)
        self._rec = create_session(store.path(MODEL, REC_FILE), board)
        self._cls = create_session(store.path(MODEL, CLS_FILE), board) if options.use_cls else None
        meta = self._rec.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise StoreError(f"{MODEL}/{REC_FILE}: no `character` dictionary in its metadata")
        self.characters = ["", *meta["character"].splitlines(), " "]  # blank first, space last

    def read(self, image: np.ndarray) -> Reading:
        """`image` (H, W, 3) BGR, (H, W, 4) BGRA or (H, W) gray, uint8 -> lines in reading order."""
        t0 = time.perf_counter()
        work, scale = _prepare(image, self.options.max_side)
        tp = time.perf_counter()
        boxes = self._detect(work)
        t1 = time.perf_counter()
        crops = [_crop(work, box) for box in boxes]
        if self._cls is not None and crops:
            crops = self._orient(crops)
        t2 = time.perf_counter()
        texts = self._recognise(crops)
        t3 = time.perf_counter()
        timings = {"prepare": (tp - t0) * 1e3, "det": (t1 - tp) * 1e3,
                   "cls": (t2 - t1) * 1e3, "rec": (t3 - t2) * 1e3}
        return Reading(tuple(
            TextLine(lookalikes(text), conf, (box / scale).astype(np.float32))
            for box, (text, conf) in zip(boxes, texts, strict=True)
            if text.strip() and conf >= self.options.text_score
        ), timings)

    # -- detection ---------------------------------------------------------------

    def _detect(self, image: np.ndarray) -> list[np.ndarray]:
        """Text boxes (4, 2) float32 in `image` pixels, in reading order."""
        o = self.options
        h, w = image.shape[:2]
        # down to det_max_side; up only for small images, and never past det_max_side
        ratio = min(o.det_max_side / max(h, w), max(1.0, o.det_min_side / min(h, w)))
        dh = max(DET_STRIDE, round(h * ratio / DET_STRIDE) * DET_STRIDE)
        dw = max(DET_STRIDE, round(w * ratio / DET_STRIDE) * DET_STRIDE)
        x = cv2.resize(image, (dw, dh), interpolation=cv2.INTER_LINEAR)
        if min(dh, dw) < o.det_min_side:  # a thin strip: black below or right, as rapidocr
            pad_h, pad_w = max(0, o.det_min_side - dh), max(0, o.det_min_side - dw)
            x = cv2.copyMakeBorder(x, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
        prob = self._det.run(None, {"x": _normalise(x)[None]})[0][0, 0]  # (dh, dw) + padding
        boxes = [np.round(b * np.float32([w / dw, h / dh])) for b in _db_boxes(prob, o)]
        boxes = [np.clip(_order_clockwise(b), 0, [w - 1, h - 1]).astype(np.float32) for b in boxes]
        boxes = [b for b in boxes if min(_side_lengths(b)) > 3]
        if len(boxes) > o.max_lines:
            boxes = sorted(boxes, key=lambda b: -np.prod(_side_lengths(b)))[: o.max_lines]
        return _reading_order(boxes)

    # -- angle -------------------------------------------------------------------

    def _orient(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """The crops, those the classifier finds upside down turned by 180 degrees."""
        out = list(crops)
        n = self.options.rec_batch
        for i in range(0, len(crops), n):
            batch = np.stack([_fit(c, CLS_SIZE[1], CLS_SIZE[0]) for c in crops[i : i + n]])
            probs = self._cls.run(None, {"x": batch})[0]  # (n, 2): 0, 180 degrees
            for j, p in enumerate(probs):
                if p.argmax() == 1 and p[1] > self.options.cls_thresh:
                    out[i + j] = cv2.rotate(crops[i + j], cv2.ROTATE_180)
        return out

    # -- recognition -------------------------------------------------------------

    def _recognise(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """(text, mean character probability) per crop."""
        o = self.options
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        order = np.argsort([c.shape[1] / c.shape[0] for c in crops])
        for i in range(0, len(order), o.rec_batch):
            idx = order[i:i + o.rec_batch]
            ratio = max([320 / REC_HEIGHT] + [crops[k].shape[1] / crops[k].shape[0] for k in idx])
            width = min(o.rec_max_width, int(REC_HEIGHT * ratio))
            batch = np.stack([_fit(crops[k], REC_HEIGHT, width) for k in idx])
            probs = self._rec.run(None, {"x": batch})[0]  # (n, width / 8, classes)
            for k, p in zip(idx, probs, strict=True):
                results[k] = self._ctc_decode(p)
        return results

    def _ctc_decode(self, probs: np.ndarray) -> tuple[str, float]:
        """Greedy CTC over (T, classes): merge repeats, drop blanks."""
        best = probs.argmax(axis=1)
        keep = np.ones(len(best), bool)
        keep[1:] = best[1:] != best[:-1]
        keep &= best != 0
        if not keep.any():
            return "", 0.0
        text = "".join(self.characters[i] for i in best[keep])
        return text, float(probs.max(axis=1)[keep].mean())


# -- text ------------------------------------------------------------------------

AS_LETTER = str.maketrans("0158", "OISB")
AS_DIGIT = str.maketrans("OoIlSB", "001158")
_DIGITS_IN_WORD = re.compile(r"(?<=[A-Za-z])[0158]+(?=[A-Za-z])")
_LETTERS_IN_NUMBER = re.compile(r"(?<=\d)[OoIlSB]+(?=\d)")


def lookalikes(text: str) -> str:
    """Letters and digits told apart by their neighbours: a run of digits that look like
    letters inside a word becomes letters ("PLATF0RM" -> "PLATFORM", "R00M" -> "ROOM"),
    letters that look like digits inside a number become digits ("1O1" -> "101")."""
    text = _DIGITS_IN_WORD.sub(lambda m: m.group().translate(AS_LETTER), text)
    return _LETTERS_IN_NUMBER.sub(lambda m: m.group().translate(AS_DIGIT), text)


# -- image preparation -----------------------------------------------------------


def _prepare(image: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """(H', W', 3) uint8 BGR at most `max_side` long, and its (x, y) scale from the input."""
    if not isinstance(image, np.ndarray):
        raise BadInput(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise BadInput(f"image must be (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    if image.size == 0:
        raise BadInput(f"image is empty: shape {image.shape}")
    if image.dtype != np.uint8:
        raise BadInput(f"image must be uint8, got {image.dtype}")
    if not image.flags.c_contiguous:  # flipped or strided views: opencv wants rows
        image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    scale = np.ones(2, np.float32)
    if max(h, w) > max_side:  # shrink first: colour conversion then touches few pixels
        k = max(h, w) // max_side
        if k >= 2:  # opencv's fast path: whole-number factors (drops < k edge pixels)
            h, w = h - h % k, w - w % k
            image = cv2.resize(image[:h, :w], (w // k, h // k), interpolation=cv2.INTER_AREA)
            scale, h, w = scale / k, h // k, w // k
        if max(h, w) > max_side:
            f = max_side / max(h, w)
            size = (max(1, round(w * f)), max(1, round(h * f)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            scale *= np.float32([size[0] / w, size[1] / h])  # boxes go back by this
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image), scale


def _normalise(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1]."""
    x = image.astype(np.float32) * (1 / (255 * STD)) - MEAN / STD
    return x.transpose(2, 0, 1)


def _fit(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """(3, height, width) float32: `crop` resized to `height`, keeping its aspect ratio up to
    `width`, normalised, zero-padded on the right."""
    h, w = crop.shape[:2]
    resized_w = min(width, math.ceil(height * w / h))
    x = _normalise(cv2.resize(crop, (resized_w, height), interpolation=cv2.INTER_LINEAR))
    out = np.zeros((3, height, width), np.float32)
    out[:, :, :resized_w] = x
    return out


def _crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The quadrilateral `box` (4, 2) warped upright; tall crops are turned to lie flat."""
    width, height = _side_lengths(box)
    width, height = max(1, int(width)), max(1, int(height))
    target = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    m = cv2.getPerspectiveTransform(box.astype(np.float32), target)
    crop = cv2.warpPerspective(image, m, (width, height), borderMode=cv2.BORDER_REPLICATE,
                               flags=cv2.INTER_CUBIC)
    if height / width >= 1.5:
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


# -- DB post-processing ----------------------------------------------------------


def _db_boxes(prob: np.ndarray, o: OcrOptions) -> list[np.ndarray]:
    """Boxes (4, 2) in probability-map pixels from DB's map (H, W) in [0, 1]."""
    h, w = prob.shape
    mask = cv2.dilate((prob > o.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours[: o.max_candidates]:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < o.min_size:
            continue
        if _box_score(prob, cv2.boxPoints(rect)) < o.box_thresh:
            continue
        rect = _unclip(rect, o.unclip_ratio)
        if min(rect[1]) < o.min_size + 2:
            continue
        boxes.append(np.clip(cv2.boxPoints(rect), 0, [w, h]))
    return boxes


def _box_score(prob: np.ndarray, box: np.ndarray) -> float:
    """Mean of `prob` inside the polygon `box` (4, 2)."""
    h, w = prob.shape
    x0, y0 = np.clip(np.floor(box.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(box.max(axis=0)).astype(int), 0, [w - 1, h - 1])
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(box - [x0, y0]).astype(np.int32)], 1)
    return cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0]


def _unclip(rect, ratio: float):
    """The rotated rectangle grown by d = area * ratio / perimeter on every side: what
    offsetting the polygon (pyclipper, round joins) and taking its min-area box gives."""
    (cx, cy), (rw, rh), angle = rect
    d = rw * rh * ratio / max(2 * (rw + rh), 1e-6)
    return (cx, cy), (rw + 2 * d, rh + 2 * d), angle


def _order_clockwise(box: np.ndarray) -> np.ndarray:
    """(4, 2) as top-left, top-right, bottom-right, bottom-left."""
    xs = box[np.argsort(box[:, 0], kind="stable")]
    left, right = xs[:2], xs[2:]
    tl, bl = left[np.argsort(left[:, 1], kind="stable")]
    tr, br = right[np.argsort(right[:, 1], kind="stable")]
    return np.float32([tl, tr, br, bl])


def _side_lengths(box: np.ndarray) -> tuple[float, float]:
    """(width, height) of an ordered box: its longer top/bottom and left/right edges."""
    width = max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3]))
    height = max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))
    return float(width), float(height)


def _reading_order(boxes: list[np.ndarray]) -> list[np.ndarray]:
    """Top to bottom; boxes whose tops are within half a line height, left to right."""
    boxes = sorted(boxes, key=lambda b: (b[0, 1], b[0, 0]))
    for i in range(len(boxes) - 1):
        for j in range(i, -1, -1):
            a, b = boxes[j], boxes[j + 1]
            same_line = abs(b[0, 1] - a[0, 1]) < 0.5 * min(_side_lengths(a)[1], _side_lengths(b)[1])
            if same_line and b[0, 0] < a[0, 0]:
                boxes[j], boxes[j + 1] = b, a
            else:
                break
    return boxes
