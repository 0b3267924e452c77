"""A few-shot "is this my X?" set, made offline: images plus `things.tsv`.

Thirteen things the wearer owns ("my cup", "my bike"), each cut from a photo carried by a
pinned wheel (scikit-image's data folder; scikit-learn's china.jpg and flower.jpg, CC BY
2.0, see their README.txt), by a box drawn by hand on the photo. Each thing has 8 views:
four in place (the photo around it, cropped wider or tighter, shifted, turned, seen at an
angle, lit brighter, darker, warmer or cooler, blurred, noised), three moved (cut out and
put on another background: a tinted brick, grass or gravel texture or a plain wall, at
another size and angle), and an eighth: for the motorbike and the box, the same thing in
`motorcycle_right.png`, a real second camera position; else a close-up in place.

Distractors are other things of the same kind, two views each (one in place, one moved):
- real ones where a photo has them: other coins of `coins.png`, other cardboard boxes on
  the shelf of `motorcycle_left.png`;
- the same thing recoloured (its hue turned by 90-270 degrees; grey things tinted), and
  the same thing re-patterned (stripes, checks or dots over it, colour kept); where no
  real one exists, a third: a near colour (hue turned by 20-35 degrees and a faint
  pattern). These have exactly the thing's shape, so they are harder than most real
  second cups for the shape-minded features, and the fairest we can make from one photo:
  two mass-made mugs of one model differ by colour and print alone.
The region changed is the thing's own outline (OpenCV's GrabCut in its box, seeded) or,
for round or boxy things, the ellipse or rectangle of its box. The astronaut's face is
blurred out of her photo before any of its things (helmet, patch) is cut from it.

`things.tsv`: file, thing, role (`view` or `distractor`), how it was made. The views of a
thing are listed in order: an evaluation enrols the first one or two. The `dev` and
`holdout` splits hold different things. The same seed and split give the same files.

    python -m glasses.export.things_set OUT_DIR [--split dev|holdout] [--seed S]
"""

import argparse
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from glasses.device.errors import StoreError
from glasses.export.look_set import SIZE, _background, _degrade
from glasses.export.prepare import fetch_wheel
from glasses.export.vision_build import SKIMAGE_PHOTOS
from glasses.export.weights import WeightPackage
from glasses.models.store import ModelStore

TABLE = "things.tsv"
SKLEARN_PHOTOS = WeightPackage(  # china.jpg and flower.jpg (Flickr, CC BY 2.0)
    name="scikit-learn",
    version="1.7.2",
    wheel="scikit_learn-1.7.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    sha256="89877e19a80c7b11a2891a27c21c4894fb18e2c2e077815bcade10d34287b20d",
    licence="BSD-3-Clause (photos: CC BY 2.0, see sklearn/datasets/images/README.txt)",
    platform="manylinux_2_17_x86_64",
    python="3.11",
)
FOLDERS = {"skimage": "skimage/data", "sklearn": "sklearn/datasets/images"}
FACE = (145, 10, 170, 165)  # the astronaut's, in astronaut.png: never shown unblurred
BACKDROPS = ("brick.png", "grass.png", "gravel.png")  # scikit-image textures, grey
Box = tuple[int, int, int, int]  # x, y, width, height in the photo's pixels


@dataclass(frozen=True)
class Thing:
    name: str  # what the wearer calls it: "cup"
    source: str  # a key of FOLDERS
    photo: str
    box: Box
    split: str  # "dev" or "holdout"
    mask: str = "grabcut"  # its outline: "grabcut", "ellipse" or "rect" of the box
    margin: float = 2.2  # the widest context an in-place view shows, x the box
    others: tuple[Box, ...] = ()  # real things of the same kind in the same photo
    second: str | None = None  # the same scene from another camera position
    hide: Box | None = None  # a face in the photo, blurred beyond recognition first


THINGS = (
    Thing("cup", "skimage", "coffee.png", (90, 10, 440, 380), "dev", margin=1.4),
    Thing("cat", "skimage", "chelsea.png", (40, 0, 380, 300), "dev", "ellipse", margin=1.3),
    Thing("flower", "sklearn", "flower.jpg", (170, 50, 280, 330), "dev", margin=1.6),
    Thing("coin", "skimage", "coins.png", (128, 25, 55, 55), "dev", "ellipse", margin=2.5,
          others=((18, 28, 58, 58), (186, 25, 58, 58), (75, 228, 62, 62))),
    Thing("helmet", "skimage", "astronaut.png", (275, 340, 237, 172), "dev", "ellipse",
          margin=1.3, hide=FACE),
    Thing("tripod", "skimage", "camera.png", (225, 290, 185, 222), "dev", margin=1.4),
    Thing("pagoda", "sklearn", "china.jpg", (0, 30, 330, 397), "dev", margin=1.3),
    Thing("motorbike", "skimage", "motorcycle_left.png", (90, 100, 600, 360), "holdout",
          margin=1.3, second="motorcycle_right.png"),
    Thing("rocket", "skimage", "rocket.jpg", (285, 120, 80, 300), "holdout", margin=1.5),
    Thing("box", "skimage", "motorcycle_left.png", (612, 183, 75, 95), "holdout", "rect",
          margin=2.5, others=((527, 28, 78, 72), (590, 64, 50, 37)),
          second="motorcycle_right.png"),
    Thing("patch", "skimage", "astronaut.png", (130, 342, 80, 80), "holdout", "ellipse",
          margin=2.0, hide=FACE),
    Thing("sticker", "skimage", "logo.png", (30, 70, 440, 360), "holdout", "ellipse",
          margin=1.3),
    Thing("horse", "skimage", "horse.png", (20, 5, 360, 320), "holdout", margin=1.3),
)
SPLITS = ("dev", "holdout")


def read_member(wheel: Path, member: str) -> np.ndarray:
    """An image inside a wheel, BGR uint8 (H, W, 3)."""
    with zipfile.ZipFile(wheel) as zf:
        data = np.frombuffer(zf.read(member), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise StoreError(f"{wheel}: cannot decode {member}")
    return image


def hidden(photo: np.ndarray, box: Box) -> np.ndarray:
    """`photo` with `box` blurred beyond recognition (a face: people are never matched)."""
    x, y, bw, bh = box
    out = photo.copy()
    region = out[y : y + bh, x : x + bw]
    out[y : y + bh, x : x + bw] = cv2.GaussianBlur(region, (0, 0), max(bw, bh) / 8)
    return out


def outline(photo: np.ndarray, box: Box, kind: str) -> np.ndarray:
    """The thing's mask in the whole photo, float32 (H, W) in 0-1, edges feathered."""
    h, w = photo.shape[:2]
    x, y, bw, bh = box
    mask = np.zeros((h, w), np.uint8)
    if kind == "grabcut":
        cv2.setRNGSeed(0)  # GrabCut's colour models start from OpenCV's generator
        labels = np.zeros((h, w), np.uint8)
        rect = (max(x, 1), max(y, 1), min(bw, w - x - 2), min(bh, h - y - 2))
        cv2.grabCut(photo, labels, rect, np.zeros((1, 65)), np.zeros((1, 65)), 5,
                    cv2.GC_INIT_WITH_RECT)
        mask = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    elif kind == "ellipse":
        cv2.ellipse(mask, (x + bw // 2, y + bh // 2), (bw // 2, bh // 2), 0, 0, 360, 1, -1)
    else:
        mask[y : y + bh, x : x + bw] = 1
    soft = max(1.0, min(bw, bh) / 60)
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), soft)


def recolour(photo: np.ndarray, mask: np.ndarray, turn: float) -> np.ndarray:
    """The masked region's hue turned by `turn` degrees; its grey or dark parts (which have
    no hue to turn) are tinted with that hue and lifted instead."""
    hsv = cv2.cvtColor(photo, cv2.COLOR_BGR2HSV).astype(np.float32)
    turned = hsv.copy()
    turned[..., 0] = (hsv[..., 0] + turn / 2) % 180
    tinted = hsv.copy()
    tinted[..., 0] = (turn / 2) % 180
    tinted[..., 1] = np.maximum(hsv[..., 1], 150)
    tinted[..., 2] = 60 + 0.75 * hsv[..., 2]
    grey = np.clip(np.maximum(70 - hsv[..., 1], 70 - hsv[..., 2]) / 40, 0, 1)[..., None]
    changed = grey * tinted + (1 - grey) * turned
    changed = cv2.cvtColor(np.clip(changed, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    return _blend(changed, photo, mask)


def repattern(photo: np.ndarray, mask: np.ndarray, box: Box, rng: np.random.Generator,
              contrast: float) -> np.ndarray:
    """Stripes, checks or dots printed over the masked region, colours kept."""
    h, w = photo.shape[:2]
    period = max(6.0, min(box[2], box[3]) / rng.uniform(4, 8))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = (xx * np.cos(angle) + yy * np.sin(angle)) / period
    v = (-xx * np.sin(angle) + yy * np.cos(angle)) / period
    kind = rng.integers(3)
    if kind == 0:
        pattern = np.sin(2 * np.pi * u)
    elif kind == 1:
        pattern = np.sign(np.sin(np.pi * u) * np.sin(np.pi * v))
    else:
        pattern = np.where((u % 1 - 0.5) ** 2 + (v % 1 - 0.5) ** 2 < 0.08, -1.0, 0.3)
    shade = (1 + contrast * pattern)[..., None]
    changed = np.clip(photo * shade + 80 * contrast * pattern[..., None], 0, 255)
    return _blend(changed, photo, mask)


def _blend(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None]
    return np.clip(a * m + b * (1 - m), 0, 255).astype(np.uint8)


def _quad(cx: float, cy: float, half_w: float, half_h: float, rng: np.random.Generator,
          turn: float, tilt: float) -> np.ndarray:
    """Four corners (4, 2) of a rectangle turned by `turn` degrees, one side shrunk by
    `tilt` (a surface seen at an angle)."""
    corners = np.float32([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [half_w, half_h]
    side = rng.integers(4)  # which edge is the far one
    far = [(0, 1), (1, 2), (2, 3), (3, 0)][side]
    centre = corners.mean(0)
    for i in far:
        corners[i] = centre + (corners[i] - centre) * (1 - tilt)
    a = np.deg2rad(turn)
    rot = np.float32([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (corners @ rot.T + [cx, cy]).astype(np.float32)


def _light(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Exposure, gamma, white balance and a shading gradient; strength 0-1."""
    x = img.astype(np.float32) / 255
    x = x ** rng.uniform(1 - 0.25 * strength, 1 + 0.3 * strength)
    x = x * rng.uniform(1 - 0.35 * strength, 1 + 0.3 * strength)
    x = x * (1 + rng.uniform(-0.1, 0.1, 3) * strength)  # warmer or cooler light
    ramp = np.linspace(1, 1 - rng.uniform(0, 0.3) * strength, x.shape[1], dtype=np.float32)
    x = x * (ramp[None, :, None] if rng.random() < 0.5 else ramp[None, ::-1, None])
    return np.clip(x * 255, 0, 255).astype(np.uint8)


def in_place(photo: np.ndarray, box: Box, rng: np.random.Generator, context: float,
             strength: float) -> np.ndarray:
    """A 640x480 view of the photo centred near the thing, showing about `context` x its
    box, kept inside the photo (moved or shrunk to fit: no mirrored edges)."""
    x, y, bw, bh = box
    w, h = SIZE
    half_h = max(bh, bw * h / w) * context / 2
    cx = x + bw / 2 + rng.uniform(-0.08, 0.08) * bw * strength
    cy = y + bh / 2 + rng.uniform(-0.08, 0.08) * bh * strength
    src = _quad(cx, cy, half_h * w / h, half_h, rng, rng.uniform(-10, 10) * strength,
                rng.uniform(0, 0.25) * strength)
    size = np.array(photo.shape[1::-1], np.float32)
    span = src.max(0) - src.min(0)
    if (span > size).any():  # wider or taller than the photo: shrink about its centre
        centre = src.mean(0)
        src = centre + (src - centre) * float((size / span).min()) * 0.999
    src = src + np.maximum(0, -src.min(0)) - np.maximum(0, src.max(0) - size)
    dst = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    view = cv2.warpPerspective(photo, cv2.getPerspectiveTransform(src.astype(np.float32), dst),
                               SIZE, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return _finish(view, rng, strength)


def moved(photo: np.ndarray, mask: np.ndarray, box: Box, backdrop: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """The thing cut out along `mask` and put on `backdrop` (640x480) at another size."""
    x, y, bw, bh = box
    w, h = SIZE
    pad = int(max(bw, bh) * 0.1)
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(photo.shape[1], x + bw + pad), min(photo.shape[0], y + bh + pad)
    patch, alpha = photo[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    ph, pw = patch.shape[:2]
    scale = h * rng.uniform(0.45, 0.8) / max(ph, pw)
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    dst = _quad(w / 2 + rng.uniform(-25, 25), h / 2 + rng.uniform(-20, 20), pw * scale / 2,
                ph * scale / 2, rng, rng.uniform(-15, 15), rng.uniform(0, 0.2))
    warp = cv2.getPerspectiveTransform(src, dst)
    seen = cv2.warpPerspective(patch, warp, SIZE, flags=cv2.INTER_AREA)
    a = cv2.warpPerspective(alpha, warp, SIZE, flags=cv2.INTER_LINEAR)
    return _finish(_blend(seen, backdrop, a), rng, 1.0)


def _finish(view: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    view = _light(view, rng, strength)
    return _degrade(view, rng, rng.choice([0, 0.8, 1.5]) * strength,
                    rng.choice([0, 4, 8]) * strength)


def backdrop(textures: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A new place: a tinted brick, grass or gravel texture, or a plain wall (640x480)."""
    if rng.random() < 0.3:
        return _background(rng)
    tex = textures[rng.integers(len(textures))]
    img = cv2.resize(tex, SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    tint = rng.uniform(0.6, 1.2, 3)
    return np.clip(img * tint, 0, 255).astype(np.uint8)


def _second_box(thing: Thing, photo: np.ndarray, other: np.ndarray) -> Box:
    """Where the thing's box is in the other camera's photo (template matching)."""
    x, y, bw, bh = thing.box
    scores = cv2.matchTemplate(other, photo[y : y + bh, x : x + bw], cv2.TM_CCOEFF_NORMED)
    _, _, _, (bx, by) = cv2.minMaxLoc(scores)
    return bx, by, bw, bh


def make_set(out: Path, wheels: dict[str, Path], split: str = "dev", seed: int = 0,
             only: tuple[str, ...] | None = None) -> list[tuple[str, str, str, str]]:
    """Write the images and `things.tsv` into `out`; the (file, thing, role, how) rows.
    `wheels`: a key of FOLDERS -> its wheel; `only`: these things of the split alone (a
    thing's images are the same with or without the others)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    out.mkdir(parents=True, exist_ok=True)
    textures = [read_member(wheels["skimage"], f"{FOLDERS['skimage']}/{n}") for n in BACKDROPS]
    rows: list[tuple[str, str, str, str]] = []

    def save(name: str, img: np.ndarray, thing: str, role: str, how: str) -> None:
        cv2.imwrite(str(out / name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        rows.append((name, thing, role, how))

    for index, thing in enumerate(THINGS):
        if thing.split != split or (only is not None and thing.name not in only):
            continue
        rng = np.random.default_rng([seed, index])
        photo = read_member(wheels[thing.source], f"{FOLDERS[thing.source]}/{thing.photo}")
        if thing.hide:
            photo = hidden(photo, thing.hide)
        mask = outline(photo, thing.box, thing.mask)
        lo, hi = 1.05, thing.margin
        views = [
            ("in place, mild", in_place(photo, thing.box, rng, (lo + hi) / 2, 0.3)),
            ("in place, wider, other light", in_place(photo, thing.box, rng, hi, 0.8)),
            ("in place, turned and tilted", in_place(photo, thing.box, rng,
                                                     rng.uniform(lo, hi), 1.0)),
            ("in place, shifted", in_place(photo, thing.box, rng, rng.uniform(lo, hi), 0.8)),
            *[("moved", moved(photo, mask, thing.box, backdrop(textures, rng), rng))
              for _ in range(3)],
        ]
        if thing.second:
            other = read_member(wheels[thing.source], f"{FOLDERS[thing.source]}/{thing.second}")
            views.append((f"from {thing.second}", in_place(
                other, _second_box(thing, photo, other), rng, (lo + hi) / 2, 0.6)))
        else:
            views.append(("in place, close-up", in_place(photo, thing.box, rng, lo, 0.6)))
        for k, (how, img) in enumerate(views):
            save(f"{thing.name}_view{k}.jpg", img, thing.name, "view", how)

        fakes: list[tuple[str, np.ndarray, Box, np.ndarray]] = []
        for box in thing.others:
            fakes.append((f"another {thing.name} in {thing.photo}", photo, box,
                          outline(photo, box, thing.mask)))
        turn = rng.uniform(90, 270)
        fakes.append((f"recoloured {turn:.0f} deg", recolour(photo, mask, turn), thing.box,
                      mask))
        fakes.append(("re-patterned", repattern(photo, mask, thing.box, rng, 0.35),
                      thing.box, mask))
        if not thing.others:
            near = rng.choice([-1, 1]) * rng.uniform(20, 35)
            faint = repattern(recolour(photo, mask, near), mask, thing.box, rng, 0.12)
            fakes.append((f"near colour {near:.0f} deg, faint pattern", faint, thing.box, mask))
        for j, (how, source, box, m) in enumerate(fakes):
            save(f"{thing.name}_not{j}_0.jpg", in_place(source, box, rng,
                                                        rng.uniform(lo, hi), 0.7),
                 thing.name, "distractor", f"{how}, in place")
            save(f"{thing.name}_not{j}_1.jpg", moved(source, m, box, backdrop(textures, rng),
                                                     rng),
                 thing.name, "distractor", f"{how}, moved")
    (out / TABLE).write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def photo_wheels(store: ModelStore, progress) -> dict[str, Path]:
    """The pinned photo-carrying wheels, fetched once into the store's downloads."""
    folder = store.home / "downloads"
    return {"skimage": fetch_wheel(SKIMAGE_PHOTOS, folder, progress, "photos"),
            "sklearn": fetch_wheel(SKLEARN_PHOTOS, folder, progress, "photos")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m glasses.export.things_set",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--split", choices=SPLITS, default="dev")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    say = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    rows = make_set(args.out_dir, photo_wheels(ModelStore(), say), args.split, args.seed)
    things = len({r[1] for r in rows})
    say(f"{len(rows)} images of {things} things in {args.out_dir / TABLE}")


if __name__ == "__main__":
    main()
