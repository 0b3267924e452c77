"""What the student learns from: images made offline, questions, and the teacher's answers.

Two splits, each a look-and-tell set (`evaluation/look.py`) so the held-out one
is scored by `glasses eval look` like any other:
- `train`: views of scikit-image photos (cropped, turned, exposed, blurred, noised: see
  `export/look_set.py`), signs seen at an angle, objects in random colours, each with a
  question; identify, colour and general questions (of signs too);
- `heldout`: photos, signs, colours, object words and phrasings the train split never
  uses.

`cases.tsv` holds file, question and the accepted words: the teacher answer's own words
(less the question's and the template's), so passing means agreeing with the teacher.
`answers.tsv` holds file, question, the teacher's answer (the training target) and the
text the teacher read for the question (general ones only: the student reads it too). A
target drops the teacher's gloss ("It looks like an espresso: a small serving of ..."
-> "It looks like an espresso."): the gloss comes from a class description the student
does not carry, and it would learn to invent one.
"""

import colorsys
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from glasses.device.errors import BadInput
from glasses.evaluation.look import CASES
from glasses.export.distill_answers import Answerer
from glasses.export.look_set import SIGN_WORDS, THINGS, colour_view, photo_view, sign_view
from glasses.export.vision_build import read_photo

ANSWERS = "answers.tsv"
PHOTOS = {
    "train": ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "horse.png",
              "motorcycle_left.png", "rocket.jpg", "cell.png", "chessboard_RGB.png",
              "color.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png",
              "logo.png", "microaneurysms.png", "moon.png", "phantom.png", "text.png"),
    "heldout": ("motorcycle_right.png", "clock_motion.png", "coins.png", "brick.png",
                "page.png", "retina.jpg"),
}
IDENTIFY = {"train": ("What am I looking at?", "What is this?", "What's that?",
                      "Can you tell me what this is?", "What do you see?",
                      "What is in front of me?", "What is it?", "What's this thing?",
                      "Do you know what this is?", "What is that object?", "What am I seeing?",
                      "Describe what you see.", "What object is this?",
                      "What is this thing called?", "What do you think this is?",
                      "Look, what's this?", "What have I got here?", "Any idea what this is?",
                      "Name this object.", "What are we looking at?", "What's over there?"),
            "heldout": ("Identify this, please.", "What kind of thing is this?",
                        "Tell me what that is.")}
COLOUR = {"train": ("What colour is this?", "What color is it?", "What colour is the {thing}?",
                    "Which colour is that?", "What color is this {thing}?",
                    "What colour is that {thing}?", "Which colour is this {thing}?",
                    "Tell me what colour this is.", "What colour do you see?",
                    "What's the color here?", "What colour would you call this?",
                    "What colour is my {thing}?", "Say the colour of this {thing}.",
                    "What colour's this?", "Do you know what colour this {thing} is?",
                    "What shade is this?", "Which colour is the {thing} in front of me?",
                    "Can you see what colour it is?", "Name the color of that {thing}."),
          "heldout": ("Tell me the colour of this.", "What's the colour of the {thing}?")}
COLOUR_THINGS = {"train": ("ball", "mug", "box", "car", "shirt", "book", "chair", "door",
                           "phone", "bottle", "lamp", "jacket", "shoe", "umbrella", "pen",
                           "plate", "towel", "sofa", "bike", "backpack", "scarf", "wall"),
                 "heldout": ("cup", "bag", "hat")}
GENERAL = {"train": ("Can I eat this?", "Is this a dog?", "Is there an animal here?",
                     "Is this a vehicle?", "Can I drink this?", "How much does it cost?",
                     "Is it alive?", "Where can I buy one?", "Is it safe to touch?",
                     "Can I wear this?", "Is this a toy?", "Should I pet it?",
                     "Is this a bird?", "Is it heavy?"),
           "heldout": ("Is this a cat?", "Can I ride this?", "Is it food?",
                       "What is it used for?")}
# signs asked about (the look sets' sign words are theirs alone), and what is asked
SIGNS = {"train": ("NO ENTRY", "LIFT", "CAUTION", "TICKETS", "STAIRS", "PLATFORM 2", "SALE",
                   "PARKING", "HOTEL", "KEEP LEFT", "NO SMOKING", "TAXI", "EXIT 7", "WET FLOOR",
                   "OFFICE", "BAKERY", "RESTROOM", "CLOSED TODAY", "ARRIVALS", "NO DOGS"),
         "heldout": ("DEPARTURES", "ELM ROAD", "NO CYCLING", "MUSEUM", "OPEN 24 HOURS")}
SIGN_GENERAL = {"train": ("Can I go in?", "Which street is this?", "Can I park here?",
                          "Where should I go?", "Is it open?", "What should I do here?",
                          "Can I smoke here?", "What is this place?"),
                "heldout": ("Am I allowed in?", "Which way now?", "Where am I?")}
COUNTS = {"train": {"identify": 1000, "signs": 40, "colour": 1200, "general": 100,
                    "sign_general": 120},
          "heldout": {"identify": 40, "signs": 0, "colour": 40, "general": 20,
                      "sign_general": 12}}
TEMPLATE = {"it", "its", "it's", "looks", "look", "like", "a", "an", "the", "is", "are", "maybe",
            "or", "so", "yes", "no", "i", "this", "that", "what", "don't", "think", "says",
            "sign", "one"}
MIN_KEY_CHARS = 3


def target(answer: str) -> str:
    """The teacher's answer less its glosses (": ..." up to the end of the sentence)."""
    return re.sub(r":[^.]*\.", ".", answer).strip()


def key_words(answer: str, question: str) -> list[str]:
    """The answer's words that say something: not the question's, not the template's."""
    def split(text: str) -> list[str]:
        return re.findall(r"[a-z0-9']+", text.lower())

    asked = set(split(question))
    keys = [w for w in split(answer) if w not in TEMPLATE and w not in asked
            and len(w.replace("'", "")) >= MIN_KEY_CHARS]
    return list(dict.fromkeys(keys))


def random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A BGR colour: any hue, mostly saturated, sometimes grey, black or white."""
    if rng.random() < 0.15:
        v = int(rng.choice([rng.integers(10, 40), rng.integers(100, 160),
                            rng.integers(225, 256)]))
        return v, v, v
    h, s, v = rng.random(), rng.uniform(0.35, 1.0), rng.uniform(0.3, 1.0)
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(b * 255), int(g * 255), int(r * 255)


def training_view(view: np.ndarray, other: np.ndarray, rng: np.random.Generator
                  ) -> np.ndarray:
    """`view` zoomed in (a crop of 30-100% of it), and one time in four blended with
    `other`: the same photo is then seen at every confidence of the classifier (and
    shared between two classes), so the student must read the confidence, not
    recognise the photo, to say "It looks like", "Maybe" or "I can't tell"."""
    h, w = view.shape[:2]
    f = rng.uniform(0.3, 1.0)
    ch, cw = int(h * f), int(w * f)
    top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    img = cv2.resize(view[top : top + ch, left : left + cw], (w, h))
    if rng.random() < 0.25:
        a = rng.uniform(0.3, 0.7)
        img = cv2.addWeighted(img, a, other, 1 - a, 0)
    return img


def make_split(out: Path, photos_wheel: Path, answers: Answerer, split: str, seed: int = 0,
               scale: float = 1.0, progress: Callable[[str], None] = lambda m: None) -> int:
    """Images, `cases.tsv` and `answers.tsv` for `split` in `out`; the number of cases.
    The images and questions are made first, then `answers` (`export/distill_answers.py`)
    has the teacher answer them. `scale` multiplies the counts (a quick run)."""
    rng = np.random.default_rng([seed, 7 if split == "train" else 8])
    out.mkdir(parents=True, exist_ok=True)
    photos = {n: read_photo(photos_wheel, n) for n in PHOTOS[split]}
    counts = {k: max(1, round(v * scale)) if v else 0 for k, v in COUNTS[split].items()}
    total = sum(counts.values())
    cases: list[tuple[str, str]] = []

    def pick(pool: tuple[str, ...]) -> str:
        return pool[rng.integers(len(pool))]

    def photo() -> np.ndarray:
        view = photo_view(photos[pick(tuple(photos))], rng)
        return training_view(view, photo_view(photos[pick(tuple(photos))], rng), rng) if (
            split == "train") else view

    def add(kind: str, image: np.ndarray, question: str) -> None:
        name = f"{kind}_{len(cases):05d}.jpg"
        cv2.imwrite(str(out / name), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        cases.append((name, question))

    for _ in range(counts["identify"]):
        add("identify", photo(), pick(IDENTIFY[split]))
    for _ in range(counts["signs"]):
        add("sign", sign_view(pick(SIGN_WORDS["dev"]), rng), pick(IDENTIFY[split]))
    for _ in range(counts["colour"]):
        thing = pick(COLOUR_THINGS[split])
        image = colour_view(random_colour(rng), pick(THINGS), rng)
        add("colour", image, pick(COLOUR[split]).format(thing=thing))
    for i in range(counts["general"]):
        image = photo() if i % 3 else colour_view(random_colour(rng), pick(THINGS), rng)
        add("general", image, pick(GENERAL[split]))
    for _ in range(counts["sign_general"]):  # after the others: they are as they were
        add("general", sign_view(pick(SIGNS[split]), rng), pick(SIGN_GENERAL[split]))
    said = answers(out, cases, lambda n: progress(
        f"  {split}: {n}/{total} cases answered by the teacher"))
    rows = [(f, q, target(a), "|".join(key_words(target(a), q)), text)
            for (f, q), (a, text) in zip(cases, said, strict=True)]
    # an answer with no key word cannot be agreed with; it still teaches
    (out / CASES).write_text("".join(f"{f}\t{q}\t{k}\n" for f, q, _, k, _ in rows if k),
                             "utf-8")
    (out / ANSWERS).write_text("".join(f"{f}\t{q}\t{a}\t{t}\n" for f, q, a, _, t in rows),
                               "utf-8")
    return len(rows)


def read_answers(folder: Path) -> list[tuple[Path, str, str, str]]:
    """(image, question, teacher's answer, text it read) of a split made by `make_split`."""
    rows = []
    for n, line in enumerate((folder / ANSWERS).read_text("utf-8").splitlines(), 1):
        parts = line.split("\t")
        if len(parts) != 4:
            raise BadInput(f"{folder / ANSWERS}: line {n} has {len(parts)} fields, not 4 "
                           "(made by an older glasses distill?); start over: glasses "
                           "distill --fresh")
        file, question, answer, text = parts
        rows.append((folder / file, question, answer, text))
    return rows
