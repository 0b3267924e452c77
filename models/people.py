"""People in view: MediaPipe's face detectors and its person (pose) detector, on onnxruntime.

Three single-shot detectors (SSD anchors, one box per anchor, a score each) from the store
entry `people-detector` (built by `export/people_build.py`):

- `face_short.onnx`: faces near the camera (128 x 128 input; BlazeFace short range);
- `face_full.onnx`: faces up to a few metres away (192 x 192; BlazeFace full range);
- `person.onnx`: people (224 x 224; BlazePose's detector: a person's head box, and two
  keypoints that span the whole body: hips' centre and a point on the body's circle).

Every input is the picture letterboxed into the square, RGB in [-1, 1], NHWC. Boxes come
back in the picture's pixels. Only boxes and scores: no landmarks are kept, no face is
encoded, nobody is recognised. `People.blur` is what every frame written to disk goes
through, and memory keeps only what is computed from a blurred picture.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from glasses.device.boards import BoardProfile
from glasses.models.sessions import create_session
from glasses.models.store import ModelStore

MODEL = "people-detector"


@dataclass(frozen=True)
class Detector:
    """One MediaPipe SSD detector: its file, input side and anchor layout."""

    file: str
    side: int  # input pixels, square
    strides: tuple[int, ...]  # one per SSD layer; layers of equal stride share a grid
    anchors_per_layer: int  # anchors at each grid cell, per layer
    min_score: float  # MediaPipe's own threshold for this model
    sure: float  # from this score one detector alone is believed (`People.count`)


# `sure`: above the highest score a non-person got on the look sets' photos (a cat's face
# 0.61, a motorcycle's lamp 0.61, a rocket 0.75 (full range), 0.69 (person)), below most
# people's (`export/people_set.py`: 0.64-0.94)
FACE_SHORT = Detector("face_short.onnx", 128, (8, 16, 16, 16), 2, 0.5, 0.7)
FACE_FULL = Detector("face_full.onnx", 192, (4,), 1, 0.6, 0.8)
PERSON = Detector("person.onnx", 224, (8, 16, 32, 32, 32), 2, 0.5, 0.75)
DETECTORS = (FACE_SHORT, FACE_FULL, PERSON)

SCORE_CLIP = 100.0  # raw scores are clipped to +-this before the sigmoid (as MediaPipe does)
NMS_OVERLAP = 0.3  # boxes overlapping more than this (IoU) are one detection
MAX_DETECTIONS = 100  # at most this many per detector and picture
BLUR_MARGIN = 0.25  # a face box is grown by this fraction on each side before blurring
BLUR_PASSES = 3  # searches for faces left after blurring, at most (`People.blur`)
BLUR_CELLS = 3  # a blurred face keeps this many average colours across, smoothly joined
TILE_SIDE = 320  # pictures larger than this are searched for far faces in tiles too
# a person is what the view shows when a head is at least this wide, as a fraction of the
# picture's shorter side (about 3 m away on a 640 x 480 camera with a 60 degree view)
PROMINENT = 0.06
SAME_HEAD = 0.75  # boxes whose centres are closer than this x their width are one head
MAX_CHECKED = 6  # heads checked in a close-up at most, nearest first (a crowd stays bounded)


@dataclass(frozen=True)
class Box:
    """A detection in picture pixels: left, top, right, bottom, and its score (0-1)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


def anchors(detector: Detector) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the order the model's outputs use: per group of
    layers with the same stride, row by row, column by column, anchor by anchor."""
    centres = []
    i = 0
    strides = detector.strides
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        cells = -(-detector.side // strides[i])
        per_cell = (j - i) * detector.anchors_per_layer
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells,
                             indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
        i = j
    return np.concatenate(centres).astype(np.float32)


def letterbox(image: np.ndarray, side: int) -> tuple[np.ndarray, float, float, float]:
    """BGR uint8 -> (1, side, side, 3) float32 RGB in [-1, 1], the picture scaled to fit
    and centred on black; and (scale, pad_x, pad_y) to map boxes back."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (nw, nh), interpolation=interp)
    canvas = np.zeros((side, side, 3), np.uint8)
    px, py = (side - nw) // 2, (side - nh) // 2
    canvas[py : py + nh, px : px + nw] = small
    x = canvas[:, :, ::-1].astype(np.float32) / 127.5 - 1.0
    return x[None], scale, float(px), float(py)


def nms(boxes: np.ndarray, scores: np.ndarray, overlap: float = NMS_OVERLAP) -> list[Box]:
    """MediaPipe's weighted non-maximum suppression: each kept box is the score-weighted
    mean of the boxes it suppresses. `boxes` (N, 4) x0 y0 x1 y1."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    kept: list[Box] = []
    alive = np.ones(len(boxes), bool)
    for k in range(len(boxes)):
        if not alive[k] or len(kept) >= MAX_DETECTIONS:
            continue
        ious = iou(boxes[k], boxes)
        group = alive & (ious > overlap)
        group[k] = True
        weights = scores[group][:, None]
        mean = (boxes[group] * weights).sum(0) / weights.sum()
        kept.append(Box(*map(float, mean), float(scores[k])))
        alive &= ~group
    return kept


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


class People:
    """Faces and people in a BGR picture: boxes and scores only."""

    def __init__(self, store: ModelStore, board: BoardProfile):
        self._sessions = {d: create_session(store.path(MODEL, d.file), board) for d in DETECTORS}
        self._anchors = {d: anchors(d) for d in DETECTORS}

    def detect(self, image: np.ndarray, detector: Detector) -> list[Box]:
        """One detector on the whole picture (letterboxed), boxes in picture pixels."""
        h, w = image.shape[:2]
        if min(h, w) < 2:
            return []
        x, scale, px, py = letterbox(image, detector.side)
        session = self._sessions[detector]
        regressors, scores = session.run(None, {session.get_inputs()[0].name: x})
        raw = np.clip(scores.reshape(-1), -SCORE_CLIP, SCORE_CLIP)
        prob = 1.0 / (1.0 + np.exp(-raw.astype(np.float64)))
        hit = prob >= detector.min_score
        if not hit.any():
            return []
        reg = regressors.reshape(len(prob), -1)[hit, :4] / detector.side
        centre = self._anchors[detector][hit] + reg[:, :2]
        half = reg[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * detector.side
        boxes = (boxes - [px, py, px, py]) / scale
        boxes = np.clip(boxes, 0, [w, h, w, h])
        return nms(boxes, prob[hit])

    def faces(self, image: np.ndarray) -> list[Box]:
        """Every face found near or far: both face detectors on the whole picture, and the
        far one on overlapping tiles of a large picture (small faces), merged."""
        found = self.detect(image, FACE_SHORT) + self.detect(image, FACE_FULL)
        h, w = image.shape[:2]
        if max(h, w) > TILE_SIDE:
            side = max(TILE_SIDE, min(h, w) // 2 + 1)
            for y in _starts(h, side):
                for x in _starts(w, side):
                    for b in self.detect(image[y : y + side, x : x + side], FACE_FULL):
                        found.append(Box(b.x0 + x, b.y0 + y, b.x1 + x, b.y1 + y, b.score))
        if not found:
            return []
        boxes = np.array([[b.x0, b.y0, b.x1, b.y1] for b in found], np.float32)
        return nms(boxes, np.array([b.score for b in found], np.float32))

    def people(self, image: np.ndarray) -> list[Box]:
        """People in view (the person detector's head boxes)."""
        return self.detect(image, PERSON)

    def count(self, image: np.ndarray) -> int:
        """How many people the view shows, near enough to be what it shows (`PROMINENT`).

        Heads are found by every detector on the whole picture, a head found twice counted
        once. A head counts when one detector is sure of it (`Detector.sure`), or when in a
        close-up (the picture cropped to twice the head's size) two detectors find it and
        one is sure. A cat's face or a round lamp fools one detector at a time, weakly."""
        side = min(image.shape[:2]) * PROMINENT
        found = [(d, b) for d in DETECTORS for b in self.detect(image, d) if b.x1 - b.x0 >= side]
        found.sort(key=lambda db: -(db[1].x1 - db[1].x0))  # nearest first
        sure = [b for d, b in found if b.score >= d.sure]
        for _, b in found[:MAX_CHECKED]:
            if b not in sure and self._corroborated(image, b):
                sure.append(b)
        return len(same_heads(sure))

    def _corroborated(self, image: np.ndarray, head: Box) -> bool:
        h, w = image.shape[:2]
        cx, cy = (head.x0 + head.x1) / 2, (head.y0 + head.y1) / 2
        half = max(head.x1 - head.x0, head.y1 - head.y0)  # the crop is twice the head
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
        close_up = image[y0:y1, x0:x1]
        best = {d: max((b.score for b in self.detect(close_up, d)), default=0.0)
                for d in DETECTORS}
        return (sum(score > 0 for score in best.values()) >= 2
                and any(score >= d.sure for d, score in best.items()))

    def blur(self, image: np.ndarray) -> np.ndarray:
        """A copy of the BGR picture with every face found blurred beyond recognition.

        The blurred picture is searched again, and anything still taken for a face is
        blurred too (a smooth patch under a hat can still look like a head), up to
        `BLUR_PASSES` searches: a picture without faces costs one."""
        out = image
        for _ in range(BLUR_PASSES):
            faces = self.faces(out)
            if not faces:
                break
            out = blur_boxes(out, faces)
        return out.copy() if out is image else out


def same_heads(boxes: list[Box]) -> list[Box]:
    """One box per head: a box whose centre is within `SAME_HEAD` of a kept, higher-scoring
    box's width from its centre is the same head (the detectors' boxes for one head differ
    in size and place: the person detector's sits lower than a face box)."""
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: -b.score):
        if not any(_distance(b, k) < SAME_HEAD * max(k.x1 - k.x0, b.x1 - b.x0) for k in kept):
            kept.append(b)
    return kept


def _distance(a: Box, b: Box) -> float:
    return float(np.hypot((a.x0 + a.x1 - b.x0 - b.x1) / 2, (a.y0 + a.y1 - b.y0 - b.y1) / 2))


def _starts(length: int, side: int) -> list[int]:
    """Tile origins covering [0, length) with tiles of `side`, overlapping by a third."""
    if length <= side:
        return [0]
    step = max(1, side * 2 // 3)
    starts = list(range(0, length - side, step))
    return [*starts, length - side]


def blur_boxes(image: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """A copy of `image` with each box (grown by `BLUR_MARGIN`) replaced by a smooth
    gradient through `BLUR_CELLS` x `BLUR_CELLS` average colours: no eye, mouth or edge is
    left (pixelation leaves blocks a detector still takes for a face)."""
    out = image.copy()
    h, w = image.shape[:2]
    for b in boxes:
        mx, my = (b.x1 - b.x0) * BLUR_MARGIN, (b.y1 - b.y0) * BLUR_MARGIN
        x0, y0 = max(0, int(b.x0 - mx)), max(0, int(b.y0 - my))
        x1, y1 = min(w, int(np.ceil(b.x1 + mx))), min(h, int(np.ceil(b.y1 + my)))
        if x1 <= x0 or y1 <= y0:
            continue
        small = cv2.resize(out[y0:y1, x0:x1], (BLUR_CELLS, BLUR_CELLS),
                           interpolation=cv2.INTER_AREA)
        out[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0),
                                       interpolation=cv2.INTER_LINEAR)
    return out
