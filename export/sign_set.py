"""A sign-reading evaluation set, made offline: 640x480 BGR PNGs plus `signs.tsv`.

Harder than the look set's signs: multi-word and alphanumeric texts ("ROOM 101",
"SALE 50% OFF", "LEVEL -1"), some on two lines; every kind of board and ink (dark on
light, white on dark, white on red, blue or green, yellow on black, coloured ink on
white...); three Hershey font families at varied thickness; small far signs and big close
ones; letters set wide apart on some, oblique on some; perspective (one side nearer) and
in-plane tilt up to 15 degrees; blur and noise; over a textured wall (plaster, bricks or
tiles). (OpenCV 5 draws its Hershey font constants with one built-in sans face: SIMPLEX
regular, DUPLEX, TRIPLEX and COMPLEX bolder; its 0 is slashed in the regular weight.)

signs.tsv: file, the exact text (two-line signs: the lines joined by one space, in reading
order), and a short description of how the image was made. `--split holdout` draws texts
and board/ink pairs the `dev` split never uses, so a reader tuned on `dev` can be checked
on signs it has not seen. The same seed, split and count give the same files.

    python -m glasses.export.sign_set OUT_DIR [--split dev|holdout] [--seed S] [--count N]
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

TABLE = "signs.tsv"
SIZE = (640, 480)  # width, height of every made image
COUNT = 60  # signs per split by default

# a sign's lines; two-line signs are read top line first
TEXTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "dev": (
        ("ROOM 101",), ("PLATFORM 10",), ("GATE C7",), ("SALE 50% OFF",), ("B8 EXIT",),
        ("LEVEL -1",), ("OPEN 9-5",), ("BUS 15",), ("LIFT OUT OF ORDER",), ("NO SMOKING",),
        ("FIRE EXIT",), ("PUSH TO OPEN",), ("STAFF ONLY",), ("WET FLOOR",),
        ("TICKET OFFICE",), ("ROUTE 66",), ("SEAT 14A",), ("KEEP LEFT",), ("MIND THE GAP",),
        ("CAR PARK",), ("FLOOR 2",), ("DOOR 5",), ("NO ENTRY",), ("EXIT 3",),
        ("LIFT", "OUT OF ORDER"), ("TERMINAL 2", "DEPARTURES"), ("SALE", "50% OFF"),
        ("EMERGENCY", "EXIT ONLY"), ("PLATFORM 10", "LONDON"), ("ROOM 12", "MEETING"),
    ),
    "holdout": (
        ("ROOM 204",), ("PLATFORM 7",), ("GATE A12",), ("HALF PRICE",), ("D4 EXIT",),
        ("LEVEL -2",), ("OPEN 8-6",), ("TRAM 42",), ("ESCALATOR CLOSED",), ("NO CYCLING",),
        ("WAY OUT",), ("PULL TO OPEN",), ("PRIVATE ROAD",), ("SLOW DOWN",),
        ("INFORMATION DESK",), ("BAY 21",), ("ZONE 3",), ("SEAT 9C",), ("KEEP RIGHT",),
        ("LOOK BOTH WAYS",), ("BIKE PARK",), ("LOST PROPERTY",), ("STOP HERE",),
        ("UNIT 7B",), ("OFFICE 305",), ("TOILETS", "OUT OF ORDER"), ("GATE B9", "BOARDING"),
        ("ARRIVALS", "HALL 3"), ("CLEARANCE", "70% OFF"), ("STAIRS", "LEVEL 1"),
    ),
}

# (name, board BGR, ink BGR)
COLOURS: dict[str, tuple[tuple[str, tuple[int, int, int], tuple[int, int, int]], ...]] = {
    "dev": (
        ("black on white", (245, 245, 245), (20, 20, 20)),
        ("white on black", (25, 25, 25), (250, 250, 250)),
        ("white on red", (40, 30, 200), (255, 255, 255)),
        ("white on blue", (160, 70, 20), (255, 255, 255)),
        ("white on green", (60, 140, 20), (255, 255, 255)),
        ("yellow on black", (20, 20, 20), (0, 220, 255)),
        ("red on white", (240, 240, 240), (30, 30, 200)),
        ("dark blue on pale yellow", (180, 240, 250), (110, 40, 10)),
        ("black on yellow", (0, 210, 250), (20, 20, 20)),
    ),
    "holdout": (
        ("navy on light grey", (215, 215, 215), (90, 30, 20)),
        ("white on teal", (120, 110, 10), (255, 255, 255)),
        ("white on purple", (120, 40, 110), (255, 255, 255)),
        ("yellow on dark blue", (90, 30, 10), (40, 230, 250)),
        ("green on white", (245, 245, 245), (40, 120, 20)),
        ("black on orange", (20, 130, 245), (15, 15, 15)),
        ("white on maroon", (30, 20, 120), (250, 250, 250)),
        ("orange on black", (15, 15, 15), (20, 140, 255)),
        ("blue on cream", (200, 235, 245), (170, 70, 20)),
    ),
}

FONTS = (("simplex", cv2.FONT_HERSHEY_SIMPLEX), ("duplex", cv2.FONT_HERSHEY_DUPLEX),
         ("triplex", cv2.FONT_HERSHEY_TRIPLEX), ("complex", cv2.FONT_HERSHEY_COMPLEX))
WALLS = ("plaster", "bricks", "tiles")


@dataclass(frozen=True)
class Sign:
    file: str
    text: str  # what a person reads: lines joined by one space
    description: str


def _wall(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A textured wall: plaster (gradient and grain), bricks or tiles, low contrast."""
    w, h = SIZE
    kind = WALLS[rng.integers(len(WALLS))]
    base = rng.integers(90, 210, 3).astype(np.float32)
    shade = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(0.9, 1.15), w, dtype=np.float32)
    img = base[None, None, :] * shade[None, :, None] * np.ones((h, 1, 1), np.float32)
    if kind == "bricks":
        bh, bw = int(rng.integers(22, 34)), int(rng.integers(60, 90))
        mortar = img * 0.82
        for row, y in enumerate(range(0, h, bh)):
            img[y:y + 2] = mortar[y:y + 2]
            offset = (bw // 2) * (row % 2)
            for x in range(-offset, w, bw):
                if 0 <= x < w:
                    img[y:y + bh, x:x + 2] = mortar[y:y + bh, x:x + 2]
    elif kind == "tiles":
        step = int(rng.integers(40, 70))
        img[::step] *= 0.85
        img[:, ::step] *= 0.85
    grain = cv2.GaussianBlur(rng.normal(0, 6, (h, w)).astype(np.float32), (0, 0), 1.5)
    img += grain[:, :, None] + rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), kind


def _line_width(line: str, font: int, scale: float, thickness: int, tracking: float) -> int:
    if not tracking:
        return cv2.getTextSize(line, font, scale, thickness)[0][0]
    widths = [cv2.getTextSize(c, font, scale, thickness)[0][0] for c in line]
    return int(sum(widths) + tracking * (len(line) - 1))


def _put_line(plate: np.ndarray, line: str, org: tuple[int, int], font: int, scale: float,
              ink, thickness: int, tracking: float) -> None:
    """`line` drawn from `org`; with `tracking`, letter by letter that many pixels apart."""
    if not tracking:
        cv2.putText(plate, line, org, font, scale, ink, thickness, cv2.LINE_AA)
        return
    x, y = org
    for c in line:
        if c != " ":
            cv2.putText(plate, c, (int(x), y), font, scale, ink, thickness, cv2.LINE_AA)
        x += cv2.getTextSize(c, font, scale, thickness)[0][0] + tracking


def _plate(lines: tuple[str, ...], board, ink, font: int, thickness: int, tracking: float,
           slant: float) -> np.ndarray:
    """The sign itself, flat: the lines centred on a board with a margin, at scale 1.5,
    letters `tracking` (a fraction of their height) further apart, leaning by `slant`."""
    scale = 1.5
    th = cv2.getTextSize("H", font, scale, thickness)[0][1]
    track = tracking * th
    widths = [_line_width(line, font, scale, thickness, track) for line in lines]
    tw = max(widths)
    gap = int(th * 0.8)
    margin = int(th * 0.9) + int(abs(slant) * th)
    pw, ph = tw + 2 * margin, th * len(lines) + gap * (len(lines) - 1) + 2 * margin
    plate = np.zeros((ph, pw, 3), np.uint8)
    plate[:] = board
    for i, (line, lw) in enumerate(zip(lines, widths, strict=True)):
        y = margin + th + i * (th + gap)
        _put_line(plate, line, ((pw - lw) // 2, y), font, scale, ink, thickness, track)
    if slant:  # oblique letters: rows shifted right in proportion to their height
        shear = np.float32([[1, -slant, slant * ph / 2], [0, 1, 0]])
        plate = cv2.warpAffine(plate, shear, (pw, ph), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
    return plate


def sign_image(lines: tuple[str, ...], board, ink, font: int, thickness: int,
               text_height: float, yaw: float, roll: float, blur: float, noise: float,
               rng: np.random.Generator, tracking: float = 0.0, slant: float = 0.0
               ) -> tuple[np.ndarray, str]:
    """The plate on a wall: its letters `text_height` pixels tall, one side nearer by `yaw`
    (a fraction of the height), turned by `roll` degrees, then blurred and noised."""
    w, h = SIZE
    img, wall = _wall(rng)
    plate = _plate(lines, board, ink, font, thickness, tracking, slant)
    ph, pw = plate.shape[:2]
    _, th = cv2.getTextSize("H", font, 1.5, thickness)[0]
    k = text_height / th
    k = min(k, 0.92 * w / pw, 0.9 * h / ph)  # the whole sign stays in view
    sw, sh = pw * k, ph * k
    cx = w / 2 + rng.uniform(-1, 1) * max(0.0, (w - sw) / 2 - 20)
    cy = h / 2 + rng.uniform(-1, 1) * max(0.0, (h - sh) / 2 - 20)
    near, far = sh / 2 * (1 + yaw), sh / 2 * (1 - yaw)
    dst = np.float32([[-sw / 2, -far], [sw / 2, -near], [sw / 2, near], [-sw / 2, far]])
    a = np.deg2rad(roll)
    turn = np.float32([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    dst = dst @ turn.T + np.float32([cx, cy])
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    warp = cv2.getPerspectiveTransform(src, dst)
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), warp, SIZE,
                               flags=cv2.INTER_LINEAR)
    seen = cv2.warpPerspective(plate, warp, SIZE, flags=cv2.INTER_AREA
                               if k < 1 else cv2.INTER_LINEAR)
    alpha = mask.astype(np.float32)[:, :, None] / 255
    img = (img * (1 - alpha) + seen * alpha).astype(np.float32)
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    if noise > 0:
        img += rng.normal(0, noise, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), wall


def make_set(out: Path, split: str = "dev", seed: int = 0, count: int = COUNT) -> list[Sign]:
    """Write `count` sign images and signs.tsv into `out`; the rows written."""
    if split not in TEXTS:
        raise ValueError(f"split must be one of {sorted(TEXTS)}, got {split!r}")
    rng = np.random.default_rng([seed, 0 if split == "dev" else 1, 16])
    out.mkdir(parents=True, exist_ok=True)
    texts, colours = TEXTS[split], COLOURS[split]
    text_order = rng.permutation(len(texts))
    rows: list[Sign] = []
    for i in range(count):
        lines = texts[text_order[i % len(texts)]]
        if i % len(texts) == len(texts) - 1:
            text_order = rng.permutation(len(texts))
        name, board, ink = colours[i % len(colours)]
        font_name, font = FONTS[rng.integers(len(FONTS))]
        thickness = int(rng.integers(2, 5))
        distance = ("far", "mid", "near")[i % 3]
        text_height = {"far": rng.uniform(14, 22), "mid": rng.uniform(24, 40),
                       "near": rng.uniform(45, 80)}[distance]
        yaw = float(rng.uniform(-0.25, 0.25))
        roll = float(rng.uniform(-15, 15))
        blur = float(rng.choice([0.0, 0.6, 1.0, 1.4]))
        noise = float(rng.choice([0.0, 4.0, 8.0, 12.0]))
        tracking = float(rng.choice([0.0, 0.0, 0.15, 0.35]))
        slant = float(rng.choice([0.0, 0.0, 0.0, 0.2]))
        img, wall = sign_image(lines, board, ink, font, thickness, text_height, yaw, roll,
                               blur, noise, rng, tracking, slant)
        file = f"sign_{i:03d}.png"
        cv2.imwrite(str(out / file), img)
        description = (f"{name}, {font_name} t{thickness}, {distance} ({text_height:.0f} px "
                       f"letters), {len(lines)} line{'s' * (len(lines) > 1)}, yaw {yaw:+.2f}, "
                       f"roll {roll:+.1f} deg, blur {blur}, noise {noise:g}, {wall}"
                       + (f", spaced {tracking:g}" if tracking else "")
                       + (", oblique" if slant else ""))
        rows.append(Sign(file, " ".join(lines), description))
    (out / TABLE).write_text("".join(f"{r.file}\t{r.text}\t{r.description}\n" for r in rows),
                             encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m glasses.export.sign_set",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--split", choices=sorted(TEXTS), default="dev")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=COUNT, help=f"signs to make ({COUNT})")
    args = ap.parse_args(argv)
    if args.count < 1:
        ap.error("--count must be at least 1")
    rows = make_set(args.out_dir, args.split, args.seed, args.count)
    print(f"{len(rows)} signs in {args.out_dir / TABLE}", file=sys.stderr)


if __name__ == "__main__":
    main()
