"""Naming the colour of the thing in the centre of view: synthetic scenes and one photo."""

import cv2
import numpy as np
import pytest

from glasses.device.errors import BadInput
from glasses.models.colour import COLOUR_NAMES, ColourReading, colour_name, name_colour

H, W = 480, 640


def scene(background_bgr, object_bgr, shape: str = "square", size: int = 220,
          seed: int = 0) -> np.ndarray:
    """A (480, 640, 3) BGR picture: one object in the middle of a plain background, with
    soft shading and sensor noise (seeded)."""
    img = np.empty((H, W, 3), np.uint8)
    img[:] = background_bgr
    cx, cy, r = W // 2, H // 2, size // 2
    if shape == "mug":  # a body, a rim, a handle
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), object_bgr, -1)
        cv2.ellipse(img, (cx, cy - r), (r, r // 5), 0, 0, 360, object_bgr, -1)
        cv2.ellipse(img, (cx + r, cy), (r // 2, r // 2), 0, -90, 90, object_bgr, r // 6)
    elif shape == "circle":
        cv2.circle(img, (cx, cy), r, object_bgr, -1)
    else:
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), object_bgr, -1)
    shade = np.linspace(0.92, 1.05, W, dtype=np.float32)[None, :, None]  # light from the right
    noise = np.random.default_rng(seed).normal(0, 4, img.shape).astype(np.float32)
    return np.clip(img * shade + noise, 0, 255).astype(np.uint8)


WHITE, BLACK, GREY, DARK_GREY = (245, 245, 245), (10, 10, 10), (128, 128, 128), (60, 60, 60)
CASES = [  # (background BGR, object BGR, shape, words the name must contain or equal)
    (WHITE, (30, 30, 200), "mug", "red"),
    (GREY, (110, 20, 10), "square", "blue"),
    (WHITE, (40, 160, 30), "circle", "green"),
    (DARK_GREY, (20, 220, 250), "square", "yellow"),
    (WHITE, BLACK, "square", "black"),
    (BLACK, WHITE, "circle", "white"),
    ((160, 60, 20), (0, 140, 255), "circle", "orange"),
    (WHITE, (128, 0, 128), "square", "purple"),
    (WHITE, (190, 170, 255), "mug", "pink"),
    (WHITE, (170, 160, 20), "circle", "teal/turquoise"),
    (WHITE, (20, 65, 130), "mug", "brown"),
    (BLACK, (200, 200, 200), "square", "light grey"),
    ((30, 30, 200), (200, 60, 0), "circle", "blue"),  # a blue ball in front of a red wall
]


@pytest.mark.parametrize(("background", "colour", "shape", "expected"), CASES)
def test_names_the_object_in_the_centre(background, colour, shape, expected):
    reading = name_colour(scene(background, colour, shape))
    assert expected in reading.name, reading
    assert 0 < reading.share <= 1


def test_dark_blue_is_called_dark_blue():
    reading = name_colour(scene(GREY, (100, 10, 0)))
    assert reading.name == "dark blue", reading
    assert reading.rgb[2] > reading.rgb[0] and reading.share > 0.5


def test_small_object_wins_over_a_large_background():
    # the object covers about a fifth of the central box; the wall fills the rest
    reading = name_colour(scene((40, 160, 30), (30, 30, 200), "circle", size=110))
    assert reading.name == "red", reading
    assert reading.share < 0.5


def test_region_selects_what_is_read():
    img = scene(WHITE, (30, 30, 200))
    assert name_colour(img, region=(10, 10, 80, 60)).name == "white"
    assert name_colour(img, region=(300, 220, 40, 40)).name == "red"


def test_is_deterministic():
    img = scene(WHITE, (30, 160, 200), "mug", seed=3)
    assert len({name_colour(img) for _ in range(5)}) == 1


def test_grey_and_bgra_inputs():
    grey = np.full((100, 100), 128, np.uint8)
    assert name_colour(grey).name == "grey"
    bgra = np.dstack([scene(WHITE, (30, 30, 200)), np.full((H, W), 255, np.uint8)])
    assert name_colour(bgra).name == "red"
    assert name_colour(np.full((1, 1, 3), 250, np.uint8)) == ColourReading("white",
                                                                            (250, 250, 250), 1.0)


@pytest.mark.parametrize(("rgb", "name"), [
    ((255, 0, 0), "red"), ((0, 0, 128), "dark blue"), ((173, 216, 230), "light blue"),
    ((139, 69, 19), "brown"), ((255, 165, 0), "orange"), ((255, 255, 0), "yellow"),
    ((128, 128, 128), "grey"), ((0, 128, 128), "teal/turquoise"), ((255, 192, 203), "pink"),
])
def test_colour_names(rgb, name):
    assert colour_name(rgb) == name


def test_every_colour_name_is_listed():
    """The student reads the reader's colour by its index in COLOUR_NAMES: every colour of
    the RGB cube (in steps of 5) gets a listed name, and every listed name is given."""
    steps = range(0, 256, 5)
    given = {colour_name((r, g, b)) for r in steps for g in steps for b in steps}
    assert given == set(COLOUR_NAMES)


@pytest.mark.parametrize(("image", "region"), [
    (np.zeros((0, 0, 3), np.uint8), None),
    (np.zeros((10, 10, 3), np.float64), None),
    (np.zeros((10, 10, 3), np.uint8), (20, 20, 5, 5)),
    (np.zeros((10, 10, 3), np.uint8), (2, 2, 0, 5)),
])
def test_bad_inputs_are_refused(image, region):
    with pytest.raises(BadInput):
        name_colour(image, region)


def test_real_photo_the_red_espresso_cup():
    """scikit-image's coffee.png: a red-brown cup and saucer on a wooden table."""
    from glasses.export.prepare import fetch_wheel
    from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo
    from glasses.models.store import ModelStore

    wheel = fetch_wheel(SKIMAGE_PHOTOS, ModelStore().home / "downloads", print, "photos")
    coffee = read_photo(wheel, "coffee.png")  # (400, 600, 3)
    assert "red" in name_colour(coffee).name  # the centre: the cup's side
    assert "red" in name_colour(coffee, region=(90, 250, 60, 50)).name  # the saucer
    assert name_colour(coffee, region=(225, 110, 90, 60)).name in ("orange", "brown")  # crema
