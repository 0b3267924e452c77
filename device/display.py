"""A model of a glasses display and a renderer for the card it shows.

The display is additive (waveguide, microLED, birdbath): black emits no light and is
transparent, so cards are drawn as light text on black. `render` draws a card at the
display's native resolution; `compose` simulates what the wearer sees over a camera view.
"""

import math
import os
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from glasses.device.errors import BadInput

FONT = cv2.FONT_HERSHEY_SIMPLEX
ELLIPSIS = "..."  # Hershey fonts are ASCII only
CAMERA_HFOV_DEG = 70.0  # assumed horizontal field of view of the camera view in `compose`

# Text sizes as cap height over display height, and the smallest legible cap height.
STATUS_CAP = 0.045
TITLE_CAP = 0.06
BODY_CAP = 0.085
MIN_CAP_PX = 9
LINE_PITCH = 1.55  # line spacing over cap height (room for descenders)
MARGIN = 0.04  # outer margin over display height

# Colours (BGR) on a colour display; monochrome displays use only their luminance.
STATUS_BGR = (230, 200, 120)
TITLE_BGR = (90, 220, 255)
BODY_BGR = (255, 255, 255)

_ASCII = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u00b0": " deg",
    }
)


@dataclass(frozen=True)
class DisplayModel:
    """What a glasses display can show."""

    # Identity
    name: str
    # Resolution in pixels (per eye for a binocular display)
    width: int
    height: int
    # Colour: bits per channel (8, 4, 1...); a monochrome display shows green only
    colour_depth: int
    monochrome: bool
    # Optics: diagonal field of view in degrees; one image for both eyes or one eye
    fov_deg: float
    binocular: bool
    # Content: the most words a card body shows before it is cut with an ellipsis
    max_card_words: int = 12

    @classmethod
    def monocular_640x400(cls) -> "DisplayModel":
        """A typical waveguide HUD in the right eye: 640x400, 8-bit colour, 30 deg."""
        return cls("monocular-640x400", 640, 400, 8, False, 30.0, False)

    @classmethod
    def green_microled_640x480(cls, colour_depth: int = 4) -> "DisplayModel":
        """A monochrome green microLED: 640x480, 4-bit (or 1-bit) green, 30 deg, one eye."""
        if colour_depth not in (1, 4):
            raise BadInput(f"green microLED colour depth {colour_depth}: must be 1 or 4 bits")
        suffix = "" if colour_depth == 4 else f"-{colour_depth}bit"
        return cls(f"green-microled-640x480{suffix}", 640, 480, colour_depth, True, 30.0, False)

    @classmethod
    def binocular_1920x1080(cls) -> "DisplayModel":
        """Birdbath-style glasses: 1920x1080 per eye, 8-bit colour, 46 deg, both eyes."""
        return cls("binocular-1920x1080", 1920, 1080, 8, False, 46.0, True)

    @classmethod
    def names(cls) -> list[str]:
        """Names accepted by `by_name`."""
        return list(_builders())

    @classmethod
    def by_name(cls, name: str) -> "DisplayModel":
        """The display called `name` (case and '_' vs '-' ignored), else BadInput."""
        key = name.strip().lower().replace("_", "-")
        builders = _builders()
        if key not in builders:
            raise BadInput(f"display {name!r}: unknown; known displays: {', '.join(builders)}")
        return builders[key]()


def _builders() -> dict[str, Callable[[], DisplayModel]]:
    return {
        "monocular-640x400": DisplayModel.monocular_640x400,
        "green-microled-640x480": DisplayModel.green_microled_640x480,
        "green-microled-640x480-1bit": lambda: DisplayModel.green_microled_640x480(1),
        "binocular-1920x1080": DisplayModel.binocular_1920x1080,
    }


@dataclass(frozen=True)
class Card:
    """What the display shows: a small status line, a title and a large body."""

    title: str = ""
    body: str = ""
    status: str = ""  # e.g. "listening", "thinking", "answering", or an error message


@dataclass(frozen=True)
class _Font:
    scale: float
    thickness: int
    cap: int  # cap height in pixels
    pitch: int  # line pitch in pixels


@dataclass(frozen=True)
class _Layout:
    margin: int
    status: _Font
    title: _Font
    body: _Font
    body_top: int  # first pixel row of the body area
    max_lines: int  # body lines that fit


def _font(height: int, cap_frac: float) -> _Font:
    """A Hershey font whose cap height is `cap_frac` of the display height."""
    cap = max(MIN_CAP_PX, round(height * cap_frac))
    unit = cv2.getTextSize("H", FONT, 1.0, 1)[0][1]
    scale = cap / unit
    return _Font(scale, max(1, round(cap / 13)), cap, round(cap * LINE_PITCH))


def _layout(display: DisplayModel, card: Card) -> _Layout:
    margin = max(2, round(display.height * MARGIN))
    status = _font(display.height, STATUS_CAP)
    title = _font(display.height, TITLE_CAP)
    body = _font(display.height, BODY_CAP)
    top = margin + status.pitch
    if _ascii(card.title).strip():
        top += title.pitch
    top += round(body.cap * 0.4)  # a gap between the header and the body
    max_lines = max(1, (display.height - margin - top) // body.pitch)
    return _Layout(margin, status, title, body, top, max_lines)


def _ascii(text: str) -> str:
    """Text the Hershey fonts can draw: common punctuation mapped, accents dropped."""
    text = unicodedata.normalize("NFKD", text.translate(_ASCII))
    return "".join(c if c.isprintable() else " " for c in text.encode("ascii", "ignore").decode())


def _width(text: str, font: _Font) -> int:
    return cv2.getTextSize(text, FONT, font.scale, font.thickness)[0][0]


def _clip_line(text: str, font: _Font, width: int) -> str:
    """One line of `text` that fits `width` pixels, cut with an ellipsis if needed."""
    text = " ".join(text.split())
    if _width(text, font) <= width:
        return text
    while text and _width(text + ELLIPSIS, font) > width:
        text = text[:-1]
    return text.rstrip() + ELLIPSIS


def _split_long(word: str, font: _Font, width: int) -> list[str]:
    """Pieces of a word too wide for a line, each fitting `width`."""
    pieces: list[str] = []
    while word:
        n = len(word)
        while n > 1 and _width(word[:n], font) > width:
            n -= 1
        pieces.append(word[:n])
        word = word[n:]
    return pieces


def _wrap(words: list[str], font: _Font, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in words:
        for piece in _split_long(word, font, width):
            trial = f"{line} {piece}" if line else piece
            if _width(trial, font) <= width:
                line = trial
            else:
                lines.append(line)
                line = piece
    if line:
        lines.append(line)
    return lines


def layout_card(display: DisplayModel, card: Card) -> list[str]:
    """The body lines `render` draws: word-wrapped to the display's width.

    At most `max_card_words` words and as many lines as fit below the status and title;
    a cut body ends with "...".
    """
    lay = _layout(display, card)
    width = display.width - 2 * lay.margin
    words = _ascii(card.body).split()
    cut = len(words) > display.max_card_words
    words = words[: max(0, display.max_card_words)]
    lines = _wrap(words, lay.body, width)
    if len(lines) > lay.max_lines:
        lines, cut = lines[: lay.max_lines], True
    if cut and lines:
        last = lines[-1].rstrip(",.;:!?-")
        while last and _width(last + ELLIPSIS, lay.body) > width:
            last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
            last = last.rstrip(",.;:!?-")
        lines[-1] = last + ELLIPSIS
    return lines


def _colour(display: DisplayModel, bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    """A drawing colour: as is on a colour display, its luminance in green on monochrome."""
    if not display.monochrome:
        return bgr
    b, g, r = bgr
    return (0, max(96, round(0.114 * b + 0.587 * g + 0.299 * r)), 0)


def quantise(image: np.ndarray, colour_depth: int) -> np.ndarray:
    """Round uint8 values to `colour_depth` bits per channel, rescaled back to 0..255."""
    if colour_depth >= 8:
        return image
    levels = (1 << max(1, colour_depth)) - 1
    lut = np.round(np.round(np.arange(256) * levels / 255.0) * 255.0 / levels)
    return lut.astype(np.uint8)[image]


def render(display: DisplayModel, card: Card) -> np.ndarray:
    """The card as the display shows it: (height, width, 3) uint8 BGR, black background.

    A small status line at the top, the title (one line) below it, and the body large,
    wrapped by `layout_card`. Colours are quantised to the display's depth; monochrome
    displays light the green channel only.
    """
    image = np.zeros((display.height, display.width, 3), np.uint8)
    lay = _layout(display, card)
    width = display.width - 2 * lay.margin
    line_type = cv2.LINE_AA if display.colour_depth >= 4 else cv2.LINE_8

    def put(text: str, font: _Font, top: int, bgr: tuple[int, int, int]) -> None:
        baseline_y = top + font.cap
        cv2.putText(
            image,
            text,
            (lay.margin, baseline_y),
            FONT,
            font.scale,
            _colour(display, bgr),
            font.thickness,
            line_type,
        )

    y = lay.margin
    status = _ascii(card.status).strip()
    if status:
        put(_clip_line(status, lay.status, width), lay.status, y, STATUS_BGR)
    title = _ascii(card.title).strip()
    if title:
        put(_clip_line(title, lay.title, width), lay.title, y + lay.status.pitch, TITLE_BGR)
    for i, line in enumerate(layout_card(display, card)):
        put(line, lay.body, lay.body_top + i * lay.body.pitch, BODY_BGR)

    image = quantise(image, display.colour_depth)
    if display.monochrome:
        image[:, :, 0] = 0
        image[:, :, 2] = 0
    return image


def hud_rect(view_size: tuple[int, int], display: DisplayModel) -> tuple[int, int, int, int]:
    """Where `compose` puts the HUD in a view of `view_size` (width, height): (x, y, w, h).

    The HUD's horizontal field of view, from its diagonal and aspect, is mapped onto a
    rectilinear camera of CAMERA_HFOV_DEG. It is centred horizontally; a monocular HUD
    sits a little above centre (by 5% of the view height), where such HUDs are usually
    placed; a binocular one is centred. The HUD may be partly outside a small view.
    """
    view_w, view_h = view_size
    diag = math.hypot(display.width, display.height)
    half_diag = math.radians(min(display.fov_deg, 170.0)) / 2
    hud_half_h = math.atan(math.tan(half_diag) * display.width / diag)
    frac = math.tan(hud_half_h) / math.tan(math.radians(CAMERA_HFOV_DEG) / 2)
    w = max(1, round(view_w * frac))
    h = max(1, round(w * display.height / display.width))
    x = (view_w - w) // 2
    centre_y = view_h / 2 - (0 if display.binocular else 0.05 * view_h)
    y = round(centre_y - h / 2)
    return x, y, w, h


def compose(view: np.ndarray, hud: np.ndarray, display: DisplayModel) -> np.ndarray:
    """What the wearer sees: `hud` added (light adds to light) over a copy of `view`.

    `view` (H, W, 3) uint8 BGR of any size; `hud` (height, width, 3) uint8 from `render`.
    The HUD is scaled and placed by `hud_rect`; black HUD pixels leave the view as is.
    Returns a new (H, W, 3) uint8 image.
    """
    if view.ndim != 3 or view.shape[2] != 3 or view.dtype != np.uint8:
        raise ValueError(f"view must be (H, W, 3) uint8, got {view.shape} {view.dtype}")
    if hud.ndim != 3 or hud.shape[2] != 3 or hud.dtype != np.uint8:
        raise ValueError(f"hud must be (H, W, 3) uint8, got {hud.shape} {hud.dtype}")
    out = view.copy()
    view_h, view_w = view.shape[:2]
    x, y, w, h = hud_rect((view_w, view_h), display)
    shrink = w * h < hud.shape[0] * hud.shape[1]
    scaled = cv2.resize(hud, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    # Clip the HUD rectangle to the view.
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(view_w, x + w), min(view_h, y + h)
    if x0 >= x1 or y0 >= y1:
        return out
    patch = scaled[y0 - y : y1 - y, x0 - x : x1 - x]
    out[y0:y1, x0:x1] = cv2.add(out[y0:y1, x0:x1], patch)
    return out


def screen_available() -> tuple[bool, str]:
    """Whether a window can be opened here, and a one-line note. Never raises."""
    try:
        if sys.platform == "darwin" or sys.platform.startswith("win"):
            return True, f"{sys.platform}: windows can be opened"
        for var in ("WAYLAND_DISPLAY", "DISPLAY"):
            value = os.environ.get(var, "")
            if value:
                return True, f"{var}={value}: windows can be opened"
        return False, "no DISPLAY or WAYLAND_DISPLAY set"
    except Exception as exc:  # advisory only
        return False, f"cannot tell whether a screen is available ({exc})"
