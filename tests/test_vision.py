"""The ImageNet classifier (EfficientNet-Lite0, ONNX fp32 and int8) on scikit-image's photos."""

import sys
import time

import numpy as np
import pytest

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.export.prepare import fetch_wheel
from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo
from glasses.models.store import ModelStore
from glasses.models.vision import Classifier, preprocess

CUP = {"espresso", "coffee mug", "tea cup", "cup"}
CAT = {"tabby cat", "a cat having a striped coat", "Persian cat", "Siamese cat", "Egyptian Mau"}
ROCKET = {"missile", "space shuttle", "projectile", "rocket"}


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr)


@pytest.fixture(scope="module")
def vision_store(store) -> ModelStore:
    """The real store, prepared with `imagenet-classifier` (by the session fixture)."""
    return store


@pytest.fixture(scope="module")
def photos(vision_store) -> dict[str, np.ndarray]:
    wheel = fetch_wheel(SKIMAGE_PHOTOS, vision_store.home / "downloads", _progress, "photos")
    return {n: read_photo(wheel, n) for n in
            ("coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")}


@pytest.fixture(scope="module")
def classifiers(vision_store) -> dict[str, Classifier]:
    board = BoardProfile.laptop()
    return {p: Classifier(vision_store, board, p) for p in ("fp32", "int8")}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize(("photo", "accepted"), [("coffee.png", CUP), ("chelsea.png", CAT),
                                                 ("rocket.jpg", ROCKET)])
def test_top5_names_what_is_in_the_photo(classifiers, photos, precision, photo, accepted):
    labels = classifiers[precision].classify(photos[photo])
    assert len(labels) == 5
    assert {x.name for x in labels} & accepted, [x.name for x in labels]
    confidences = [x.confidence for x in labels]
    assert confidences == sorted(confidences, reverse=True)
    assert 0 < sum(confidences) <= 1 + 1e-6


def test_fp32_and_int8_agree(classifiers, photos):
    for name in ("coffee.png", "chelsea.png", "motorcycle_left.png"):
        top = {p: c.classify(photos[name], top_k=1)[0].name for p, c in classifiers.items()}
        assert top["fp32"] == top["int8"], (name, top)
    # where fp32 itself hesitates (rocket: drilling rig 0.25, space shuttle 0.21, ...),
    # int8's first pick is still among fp32's five
    fp32 = {x.name for x in classifiers["fp32"].classify(photos["rocket.jpg"])}
    assert classifiers["int8"].classify(photos["rocket.jpg"], top_k=1)[0].name in fp32


# softmax of the top class, from efficientnet-lite-pytorch 0.1.0's own EfficientNet (run
# once, by hand; export/efficientnet_lite.py's definition gave the same logits to the last
# bit). Small mistakes in the definition keep the classes but not these: PyTorch-style
# symmetric padding gives 0.941 and 0.341 (Egyptian Mau), batch-norm eps 1e-5 0.949, 0.492.
REFERENCE_TOP = {"coffee.png": (967, 0.9568), "chelsea.png": (282, 0.3897)}


@pytest.mark.parametrize("photo", list(REFERENCE_TOP))
def test_fp32_gives_the_reference_implementations_probabilities(classifiers, photos, photo):
    index, p = REFERENCE_TOP[photo]
    best = classifiers["fp32"].classify(photos[photo], top_k=1)[0]
    assert best.index == index and abs(best.confidence - p) < 2e-3, best


def test_labels_have_names_and_descriptions(classifiers, photos):
    clf = classifiers["fp32"]
    assert len(clf.labels) == 1000
    assert all(name.strip() and description.strip() for name, description in clf.labels)
    best = clf.classify(photos["coffee.png"], top_k=1)[0]
    assert best.name == "espresso" and "coffee" in best.description.lower()
    assert best.confidence > 0.5


def test_grey_and_bgra_images_are_accepted(classifiers, photos):
    coffee = photos["coffee.png"]
    grey = coffee.mean(axis=2).astype(np.uint8)
    bgra = np.dstack([coffee, np.full(coffee.shape[:2], 255, np.uint8)])
    clf = classifiers["fp32"]
    assert clf.classify(bgra, top_k=1)[0].name == clf.classify(coffee, top_k=1)[0].name
    assert len(clf.classify(grey)) == 5
    assert len(clf.classify(grey[:, :, None], top_k=3)) == 3


def test_huge_image_is_classified_in_bounded_time(classifiers):
    huge = np.full((6000, 8000, 3), (40, 90, 200), np.uint8)
    t0 = time.perf_counter()
    labels = classifiers["fp32"].classify(huge)
    assert len(labels) == 5
    assert time.perf_counter() - t0 < 2.0


def test_preprocess_shape_and_tiny_images():
    assert preprocess(np.zeros((1, 1, 3), np.uint8)).shape == (1, 3, 224, 224)
    x = preprocess(np.zeros((480, 640, 3), np.uint8))
    assert x.dtype == np.float32 and x.flags.c_contiguous


@pytest.mark.parametrize("image", [
    np.zeros((0, 0, 3), np.uint8),
    np.zeros((10, 0), np.uint8),
    np.zeros((32, 32, 3), np.float32),
    np.zeros((32, 32, 5), np.uint8),
    np.zeros((2, 32, 32, 3), np.uint8),
    None,
])
def test_bad_images_are_refused(classifiers, image):
    with pytest.raises(BadInput):
        classifiers["fp32"].classify(image)


def test_bad_arguments_are_refused(vision_store, classifiers, photos):
    with pytest.raises(BadInput):
        classifiers["fp32"].classify(photos["coffee.png"], top_k=0)
    with pytest.raises(BadInput):
        Classifier(vision_store, BoardProfile.laptop(), "fp16")
