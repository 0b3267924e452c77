"""Is this my X: the classifier's features output and the matcher, on made views of photos."""

import json
import sys

import numpy as np
import pytest
from test_cli import glasses

from glasses.device.boards import BoardProfile
from glasses.device.camera import read_image
from glasses.device.errors import BadInput
from glasses.evaluation.things import read_things_set
from glasses.export.things_set import TABLE, make_set, photo_wheels
from glasses.models.things import (
    DEFAULT,
    SAME_THING,
    ThingEmbedding,
    best_match,
    colour_histogram,
    embed_thing,
    similarity,
)
from glasses.models.vision import N_FEATURES, Classifier, preprocess


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr)


@pytest.fixture(scope="module")
def classifiers(store) -> dict[str, Classifier]:
    board = BoardProfile.laptop()
    return {p: Classifier(store, board, p) for p in ("fp32", "int8")}


@pytest.fixture(scope="module")
def cup_set(store, tmp_path_factory):
    """The cup of the dev split: 8 views and 6 views of 3 other cups (recoloured,
    re-patterned, a near colour), as the set maker writes them."""
    folder = tmp_path_factory.mktemp("things")
    make_set(folder, photo_wheels(store, _progress), "dev", only=("cup",))
    return folder


@pytest.fixture(scope="module")
def cup(cup_set) -> dict[str, np.ndarray]:
    return {image.file.stem: read_image(image.file) for image in read_things_set(cup_set)}


def test_features_come_with_the_probabilities_from_one_run(classifiers, cup):
    image = cup["cup_view0"]
    for clf in classifiers.values():
        probs, features = clf.look(image)
        assert probs.shape == (1000,) and probs.dtype == np.float64
        assert features.shape == (N_FEATURES,) and features.dtype == np.float32
        assert np.linalg.norm(features) == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(probs, clf.probabilities(image))  # unchanged behaviour
        assert clf.classify(image, top_k=1)[0].index == int(probs.argmax())
    logits, raw = classifiers["fp32"].run(preprocess(image))
    assert logits.shape == (1, 1000) and raw.shape == (1, N_FEATURES) and (raw >= 0).all()


def test_fp32_features_are_the_same_on_every_run(classifiers, cup):
    x = preprocess(cup["cup_view3"])
    runs = [classifiers["fp32"].run(x)[1] for _ in range(3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_int8_features_point_where_fp32_features_do(classifiers, cup):
    for name in ("cup_view0", "cup_view4", "cup_not0_0"):
        a, b = (classifiers[p].look(cup[name])[1] for p in ("fp32", "int8"))
        assert similarity(a, b) > 0.9, name


def test_the_same_image_is_the_same_thing(classifiers, cup):
    a = embed_thing(classifiers["fp32"], cup["cup_view1"])
    b = embed_thing(classifiers["fp32"], cup["cup_view1"].copy())
    assert a.dtype == np.float32 and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert similarity(a, b) == pytest.approx(1.0, abs=1e-6)


def test_an_enrolled_cups_other_views_match_and_other_cups_do_not(classifiers, cup):
    clf = classifiers["fp32"]
    mine = embed_thing(clf, cup["cup_view0"])
    for name in ("cup_view1", "cup_view2", "cup_view3"):  # wider, tilted, shifted
        assert similarity(mine, embed_thing(clf, cup[name])) >= SAME_THING, name
    for name in ("cup_not0_0", "cup_not0_1", "cup_not2_1"):  # recoloured; a near colour
        assert similarity(mine, embed_thing(clf, cup[name])) < SAME_THING, name


def test_the_colour_histogram_tells_a_recoloured_cup(classifiers, cup):
    """Features alone find the recoloured cup in the same place as close as the cup itself
    elsewhere; the colour of the centre is what separates them."""
    mine, other = cup["cup_view0"], cup["cup_not0_0"]
    assert similarity(colour_histogram(mine), colour_histogram(cup["cup_view1"])) > 0.8
    assert similarity(colour_histogram(mine), colour_histogram(other)) < 0.5
    plain = ThingEmbedding(crops=DEFAULT.crops)
    clf = classifiers["fp32"]
    a = embed_thing(clf, mine, plain)
    assert similarity(a, embed_thing(clf, other, plain)) > similarity(
        embed_thing(clf, mine), embed_thing(clf, other))


def test_look_features_stand_in_for_the_centre_crop(classifiers, cup):
    clf = classifiers["fp32"]
    _, features = clf.look(cup["cup_view2"])
    reused = embed_thing(clf, cup["cup_view2"], centre=features)
    assert similarity(reused, embed_thing(clf, cup["cup_view2"])) == pytest.approx(1, abs=1e-6)


def test_best_match_names_the_thing_or_no_one(classifiers, cup):
    clf = classifiers["fp32"]
    exemplars = {"cup": [embed_thing(clf, cup["cup_view0"])],
                 "wall": [embed_thing(clf, np.full((480, 640, 3), (90, 140, 200), np.uint8))]}
    name, score = best_match(embed_thing(clf, cup["cup_view2"]), exemplars)
    assert name == "cup" and score >= SAME_THING
    name, score = best_match(embed_thing(clf, cup["cup_not0_1"]), exemplars)
    assert name is None and score < SAME_THING
    assert best_match(exemplars["cup"][0], {}) == (None, 0.0)
    assert best_match(exemplars["cup"][0], exemplars, threshold=1.01)[0] is None


def test_bad_vectors_and_embeddings_are_refused():
    with pytest.raises(BadInput):
        similarity(np.ones(3, np.float32), np.ones(4, np.float32))
    with pytest.raises(BadInput):
        similarity(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(BadInput):
        ThingEmbedding(crops=())
    with pytest.raises(BadInput):
        ThingEmbedding(crops=(1.5,))
    with pytest.raises(BadInput):
        preprocess(np.zeros((8, 8, 3), np.uint8), crop=0)


def test_eval_things_runs_on_a_tiny_made_set(store, cup_set, tmp_path):
    out = glasses("eval", "things", str(cup_set), "--json", home=store.home, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["things"] == 1 and data["images"] == 14 and data["shots"] == 1
    assert data["positives"] == 7 and data["distractor_pairs"] == 6
    assert data["threshold"] == SAME_THING and 0 <= data["precision"] <= 1
    assert data["recall"] >= 0.5 and len(data["sweep"]) > 5
    assert data["weights"] == "fp32" and data["embed_median_ms"] > 0

    text = glasses("eval", "things", str(cup_set), "--shots", "2", home=store.home,
                   timeout=300)
    assert text.returncode == 0, text.stderr
    assert "1 things, 14 images, 2 enrolled each" in text.stdout

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / TABLE).write_text("missing.jpg\tcup\tview\n")
    bad = glasses("eval", "things", str(empty), home=store.home)
    assert bad.returncode == 3 and "missing.jpg" in bad.stderr
