"""Text reading: PP-OCRv4 detection (DB) and recognition (CTC) on onnxruntime.

The algorithms follow rapidocr / PaddleOCR, reimplemented on numpy and opencv:

    image (H, W, 3) BGR -> downscale to `max_side` -> det input, sides multiples of 32
    -> probability map -> threshold, contours, min-area rectangles, box score, unclip
    -> boxes in reading order -> perspective crops -> (angle classifier: flip 180)
    -> height 48, width by aspect ratio -> CTC greedy decoding -> spaces from the gaps
    -> letters and digits told apart by their words -> lines
    (a poor read, by confidence, is tried again on a contrast-stretched grey and then on
    the inverted image: the best of the reads is kept)

The recognition dictionary is read from the rec model's metadata (`character`); CTC
index 0 is the blank and a space is appended at the end, as PaddleOCR trains it (the
dictionary is read correctly: 6623 characters + blank + space = the model's 6625 classes).
PP-OCRv4's recogniser was trained mostly on Chinese text, where words are not spaced: it
seldom emits the space, on signs least of all (and sometimes inside a widely spaced word).
So the spaces of a line are decided from the image instead: between each two characters
the CTC frames place, the blank gap in the ink (per row, the smallest, so slanted and
diagonal letters measure as they look) is compared with the other gaps nearby (letter
spacing, which perspective changes along the line) and with the letters' height.
"""

import itertools
import math
import re
import time
import unicodedata
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
    det_wider: float = 0.5  # detection again at this share of the size: lines it finds longer

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

    # spaces: a gap is a word break when both hold (tuned on `sign_set --split dev`)
    space_ratio: float = 1.55  # times the median of the nearby gaps (+ 5% of the letter height)
    space_ratio_model: float = 1.3  # the same where the recogniser itself put a space
    space_model_prob: float = 0.9  # (with at least this probability)
    space_height: float = 0.21  # times the letters' height
    space_pair: float = 0.6  # a line of two characters: times the letters' height alone

    # retry: a read whose confidence (per character) is under this is tried again on a
    # contrast-stretched grey, then on the inverted image, and the best read is kept
    retry_below: float = 0.9
    retry_char_below: float = 0.5  # ... and so is one with a character under this


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
        # each class's other case (itself for non-letters): a letter's confidence is that of
        # either case, as a sign's "P" and "p", "O" and "o" look alike to the recogniser
        index = {c: i for i, c in enumerate(self.characters)}
        self._other_case = np.array([index.get(c.swapcase(), i) if len(c) == 1 else i
                                     for i, c in enumerate(self.characters)])
        # its dictionary also holds full-width forms of Latin letters, digits and signs ("Ｐ",
        # "５"), which no sign here means: each class is read as its ASCII character
        self._ascii = np.array([index.get(a, i) if len(a := unicodedata.normalize("NFKC", c)) == 1
                                and a.isascii() else i for i, c in enumerate(self.characters)])

    def read(self, image: np.ndarray) -> Reading:
        """`image` (H, W, 3) BGR, (H, W, 4) BGRA or (H, W) gray, uint8 -> lines in reading order."""
        t0 = time.perf_counter()
        work, scale = _prepare(image, self.options.max_side)
        timings = {"prepare": (time.perf_counter() - t0) * 1e3, "det": 0.0, "cls": 0.0,
                   "rec": 0.0}
        lines, least = self._read_once(work, scale, timings)
        if self._poor(lines, least):  # light on dark, low contrast, small or faint
            t1 = time.perf_counter()
            views = (_stretched_grey(work), 255 - work)
            timings["prepare"] += (time.perf_counter() - t1) * 1e3
            for view in views:
                again, again_least = self._read_once(view, scale, timings)
                if _quality(again) > _quality(lines):
                    lines, least = again, again_least
                if not self._poor(lines, least):
                    break
        return Reading(lines, timings)

    def _poor(self, lines: tuple[TextLine, ...], least: float) -> bool:
        """Whether a read is worth trying again: nothing read, a low mean confidence, or
        one character the recogniser was unsure of."""
        o = self.options
        return _quality(lines) < o.retry_below or least < o.retry_char_below

    def _read_once(self, work: np.ndarray, scale: np.ndarray, timings: dict[str, float]
                   ) -> tuple[tuple[TextLine, ...], float]:
        """The lines read in `work` (prepared), their boxes in input pixels, and the least
        character probability among them (1 for none); adds the stages' times to
        `timings`."""
        tp = time.perf_counter()
        boxes = self._detect(work)
        t1 = time.perf_counter()
        crops = [_crop(work, box) for box in boxes]
        if self._cls is not None and crops:
            crops = self._orient(crops)
        t2 = time.perf_counter()
        texts = self._recognise(crops)
        t3 = time.perf_counter()
        for stage, ms in (("det", t1 - tp), ("cls", t2 - t1), ("rec", t3 - t2)):
            timings[stage] += ms * 1e3
        kept = [(TextLine(text, conf, (box / scale).astype(np.float32)), least)
                for box, (text, conf, least) in zip(boxes, texts, strict=True)
                if text.strip() and conf >= self.options.text_score]
        return tuple(line for line, _ in kept), min((least for _, least in kept), default=1.0)

    # -- detection ---------------------------------------------------------------

    def _detect(self, image: np.ndarray) -> list[np.ndarray]:
        """Text boxes (4, 2) float32 in `image` pixels, in reading order."""
        o = self.options
        h, w = image.shape[:2]
        # down to det_max_side; up only for small images, and never past det_max_side
        ratio = min(o.det_max_side / max(h, w), max(1.0, o.det_min_side / min(h, w)))
        boxes = self._detect_at(image, ratio)
        if boxes and o.det_wider < 1:
            boxes = _extended(boxes, self._detect_at(image, ratio * o.det_wider))
        return _reading_order(boxes)

    def _detect_at(self, image: np.ndarray, ratio: float) -> list[np.ndarray]:
        """Text boxes in `image` pixels, found with the image scaled by `ratio`: the
        `max_lines` largest (which also bounds the work of joining two passes)."""
        o = self.options
        h, w = image.shape[:2]
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
        return boxes

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

    def _recognise(self, crops: list[np.ndarray]) -> list[tuple[str, float, float]]:
        """(text, mean and least character probability) per crop: spaced, lookalikes told
        apart."""
        o = self.options
        results: list[tuple[str, float, float]] = [("", 0.0, 0.0)] * len(crops)
        order = np.argsort([c.shape[1] / c.shape[0] for c in crops])
        for i in range(0, len(order), o.rec_batch):
            idx = order[i:i + o.rec_batch]
            ratio = max([320 / REC_HEIGHT] + [crops[k].shape[1] / crops[k].shape[0] for k in idx])
            width = min(o.rec_max_width, int(REC_HEIGHT * ratio))
            resized = [_resize(crops[k], REC_HEIGHT, width) for k in idx]
            batch = np.stack([_pad(_normalise(r), width) for r in resized])
            probs = self._rec.run(None, {"x": batch})[0]  # (n, width / 8, classes)
            for k, r, p in zip(idx, resized, probs, strict=True):
                chars = self._ctc_chars(p)
                stride = width / p.shape[0]  # input pixels per frame
                text = _spaced(chars, r, stride, o)
                probs_k = [c[1] for c in chars if c[0] != " "] or [0.0]
                results[k] = lookalikes(_cased(text)), float(np.mean(probs_k)), min(probs_k)
        return results

    def _ctc_chars(self, probs: np.ndarray) -> list[tuple[str, float, int, int]]:
        """Greedy CTC over (T, classes): (character, probability, first frame, last frame)
        per run of one class, blanks dropped; a letter's probability is of either case."""
        raw = probs.argmax(axis=1)
        best = self._ascii[raw]
        frames = np.arange(len(best))
        top = probs[frames, raw] + np.where(self._other_case[best] != best,
                                             probs[frames, self._other_case[best]], 0)
        starts = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])
        ends = np.r_[starts[1:], len(best)] - 1
        return [(self.characters[best[a]], float(top[a:b + 1].max()), int(a), int(b))
                for a, b in zip(starts, ends, strict=True) if best[a] != 0]


def _quality(lines: tuple[TextLine, ...]) -> float:
    """Mean confidence per character over the lines read; 0 for none."""
    n = sum(len(line.text.replace(" ", "")) for line in lines)
    if not n:
        return 0.0
    return sum(line.confidence * len(line.text.replace(" ", "")) for line in lines) / n


_BROKEN_CASE = re.compile(r"[a-z][A-Z]")


def _cased(text: str) -> str:
    """A line mostly in capitals ("KEEp LEFT") or whose words switch from small letters to
    capitals inside ("TiCket", "gaP") is put in capitals: the recogniser reads the capitals
    whose small letters look the same (C, O, P, S...) in either case."""
    upper = sum(c.isupper() for c in text)
    if upper > sum(c.islower() for c in text) or _BROKEN_CASE.search(text):
        return text.upper()
    return text


# -- spaces ----------------------------------------------------------------------


def _ink(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The ink of a line crop (h, w, 3) uint8, as a bool mask, and its rows of text
    (first, end): Otsu on the channel of most contrast; ink is what the border is not."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    channel = max((image[:, :, 0], image[:, :, 1], image[:, :, 2], grey),
                  key=lambda c: float(c.std()))
    channel = cv2.GaussianBlur(channel, (3, 3), 0)
    _, mask = cv2.threshold(channel, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = mask > 0
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    if border.mean() > 0.5:
        mask = ~mask
    rows = mask.sum(axis=1)
    text = np.r_[rows > 0.08 * max(rows.max(), 1), False]
    best, start = (0, 0), None  # the tallest block of rows with ink
    for i, t in enumerate(text):
        if t and start is None:
            start = i
        elif not t and start is not None:
            best = max(best, (start, i), key=lambda r: r[1] - r[0])
            start = None
    return mask, best


def _gaps(mask: np.ndarray, xs: list[float]) -> list[int]:
    """Per two neighbouring character centres (columns of `mask`, the text rows), the
    blank gap between their ink: per row the longest blank run, the least over rows."""
    out = []
    for a, b in itertools.pairwise(xs):
        sub = mask[:, int(round(a)):int(round(b))]
        if sub.shape[1] == 0 or sub.shape[0] == 0:
            out.append(0)
            continue
        run = np.zeros(sub.shape[0], np.int32)
        longest = np.zeros_like(run)
        for column in sub.T:
            run = (run + 1) * ~column
            np.maximum(longest, run, out=longest)
        out.append(int(longest.min()))
    return out


def _spaced(chars: list[tuple[str, float, int, int]], image: np.ndarray, stride: float,
            o: OcrOptions) -> str:
    """The characters of a line, with a space where the ink between two is a word gap.

    `image` is the crop as the recogniser saw it (height 48, unpadded), `stride` its
    pixels per CTC frame. A gap is a word gap when it is `space_ratio` times the median
    of the gaps within three of it (`space_ratio_model` where the recogniser put a space
    itself, surely) and `space_height` times the letters' height. The model's own spaces
    are kept as they are only when the ink cannot be measured."""
    letters = [c for c in chars if c[0] != " "]
    model_text = "".join(c[0] for c in chars).strip()
    if len(letters) < 2:
        return model_text
    mask, (r0, r1) = _ink(image)
    height = r1 - r0
    if height < 6:
        return model_text
    said = set()  # pairs (by their left letter) the recogniser put a sure space between
    for i in range(1, len(chars) - 1):
        if chars[i][0] == " " and chars[i][1] >= o.space_model_prob:
            said.add(sum(c[0] != " " for c in chars[:i]) - 1)
    width = image.shape[1]
    xs = [min(width - 1.0, (a + b + 1) / 2 * stride) for _, _, a, b in letters]
    gaps = _gaps(mask[r0:r1], xs)
    out = [letters[0][0]]
    for j, gap in enumerate(gaps):
        if len(gaps) == 1:
            space = gap >= o.space_pair * height
        else:
            near = [g for k, g in enumerate(gaps) if k != j and abs(k - j) <= 3]
            ratio = o.space_ratio_model if j in said else o.space_ratio
            space = (gap >= ratio * (float(np.median(near)) + 0.05 * height)
                     and gap >= o.space_height * height)
        out.append((" " if space else "") + letters[j + 1][0])
    return _signed("".join(out))


_RANGE = re.compile(r"(?<=\d) ?- ?(?=\d)")
_NEGATIVE = re.compile(r"(^|\s)- (?=\d)")


def _signed(text: str) -> str:
    """A hyphen between digits joins them ("9 - 5" -> "9-5"), one before a number is its
    sign ("LEVEL - 1" -> "LEVEL -1"): a digit's side bearing (a tabular "1") widens the gap
    beside the short hyphen past a word gap."""
    return _NEGATIVE.sub(r"\1-", _RANGE.sub("-", text))


# -- text ------------------------------------------------------------------------

AS_LETTER = str.maketrans("015826", "OISBZG")  # digits that look like letters
AS_DIGIT = str.maketrans("OoDIlSBZG", "001115826")  # letters that look like digits
_DIGITS_IN_WORD = re.compile(r"(?<=[A-Za-z])[015826]+(?=[A-Za-z])")
_LETTERS_IN_NUMBER = re.compile(r"(?<=\d)[OoDIlSBZG]+(?=\d)")
_TOKEN = re.compile(r"\S+")


def lookalikes(text: str) -> str:
    """Letters and digits told apart by the rest of their word (a token between spaces),
    PP-OCR's commonest slip on signs ("R00M", "0FF", "1O1").

    - inside a token, a run of lookalike digits between two letters becomes letters
      ("PLATF0RM" -> "PLATFORM", "R00M101" -> "ROOM101"), and a run of lookalike letters
      between two digits becomes digits ("1O1" -> "101");
    - a token whose other characters are all letters, at least two, has its lookalike
      digits made letters ("0FF" -> "OFF", "5ALE" -> "SALE"); one whose other characters
      are digits and % or signs, at least two of them, a digit among them, has its
      lookalike letters made digits ("5O%" -> "50%", "1O1" -> "101").

    Tokens that mix them on purpose survive: "C7", "B8", "14A", "A1" (too little of the
    other class to go by), "2B".
    """
    return _TOKEN.sub(lambda m: _token(m.group()), text)


def _token(token: str) -> str:
    token = _DIGITS_IN_WORD.sub(lambda m: m.group().translate(AS_LETTER), token)
    token = _LETTERS_IN_NUMBER.sub(lambda m: m.group().translate(AS_DIGIT), token)
    core = token.strip(".,:;!?()'\"")
    if len(core) < 2:
        return token
    out = []
    for i, c in enumerate(token):
        rest = token[:i] + token[i + 1:]
        letters = sum(ch.isalpha() for ch in rest)
        digits = sum(ch.isdigit() for ch in rest)
        numeric = digits + sum(ch in "%+-.,/:" for ch in rest)
        if c in "015826" and letters >= 2 and letters == sum(ch.isalnum() for ch in rest):
            c = c.translate(AS_LETTER)
        elif c in "OoDIlSBZG" and digits and numeric >= 2 and numeric == len(rest):
            c = c.translate(AS_DIGIT)
        out.append(c)
    return "".join(out)


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


def _resize(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, w <= width, 3) uint8: `crop` resized to `height`, keeping its aspect ratio
    up to `width` (small crops are enlarged smoothly, bicubic)."""
    h, w = crop.shape[:2]
    resized_w = min(width, math.ceil(height * w / h))
    up = height > h
    return cv2.resize(crop, (resized_w, height),
                      interpolation=cv2.INTER_CUBIC if up else cv2.INTER_LINEAR)


def _pad(x: np.ndarray, width: int) -> np.ndarray:
    """(3, height, w) -> (3, height, width), zeros on the right."""
    out = np.zeros((x.shape[0], x.shape[1], width), np.float32)
    out[:, :, :x.shape[2]] = x
    return out


def _fit(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """(3, height, width) float32: `crop` resized to `height`, keeping its aspect ratio up to
    `width`, normalised, zero-padded on the right."""
    return _pad(_normalise(_resize(crop, height, width)), width)


def _stretched_grey(image: np.ndarray) -> np.ndarray:
    """(H, W, 3): the channel of most contrast, stretched to the full range (1st to 99th
    percentile), as grey: faint or coloured ink stands out from its board."""
    channel = max((image[:, :, 0], image[:, :, 1], image[:, :, 2]), key=lambda c: float(c.std()))
    lo, hi = np.percentile(channel[::4, ::4], (1, 99))
    if hi - lo < 1:
        return image
    lut = np.clip((np.arange(256) - lo) * (255 / (hi - lo)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.LUT(channel, lut), cv2.COLOR_GRAY2BGR)


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


def _extended(boxes: list[np.ndarray], wider: list[np.ndarray]) -> list[np.ndarray]:
    """`boxes`, each replaced by a box of `wider` that holds it and goes on along its line
    (the same height, longer) over text no other box holds: a word or digit after a wide
    gap, which the detector finds when the letters are smaller."""
    out = []
    for i, box in enumerate(boxes):
        bw, bh = _side_lengths(box)
        best = box
        for other in wider:
            ow, oh = _side_lengths(other)
            if (0.7 * bh <= oh <= 1.4 * bh and ow > max(1.1 * bw, _side_lengths(best)[0])
                    and _covered(box, other) >= 0.9
                    and not any(_covered(b, other) >= 0.5 for j, b in enumerate(boxes)
                                if j != i)):
                best = other
        out.append(best)
    return out


def _covered(box: np.ndarray, other: np.ndarray) -> float:
    """The share of `box`'s area inside `other` (both convex quadrilaterals)."""
    area = cv2.contourArea(box.astype(np.float32))
    if area <= 0:
        return 0.0
    inter, _ = cv2.intersectConvexConvex(box.astype(np.float32), other.astype(np.float32))
    return float(inter) / area


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
