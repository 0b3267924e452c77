"""EfficientNet-Lite0, defined in `export/classifier_compare.py` and loaded from its carried
weights, exports to an ONNX graph that matches PyTorch and names scikit-image's photos."""

import json

import numpy as np
import pytest

from glasses.export.classifier_compare import (
    LITE0,
    N_FEATURES,
    build_lite,
    lite_preprocess,
    session,
    wheels_for,
)
from glasses.export.vision_build import OUTPUTS, read_photo
from glasses.models.answers import kind_of

CUPS = {967: "espresso", 968: "tea cup", 504: "coffee mug"}  # ImageNet-1k indices
# softmax of the top class, from efficientnet-lite-pytorch 0.1.0's own EfficientNet (run
# once, by hand; the definition here gave the same logits to the last bit). The classes
# alone survive small mistakes: PyTorch-style symmetric padding gives 0.941 and 0.341
# (Egyptian Mau), batch-norm eps 1e-5 0.949 and 0.492.
REFERENCE_TOP = {"coffee.png": (967, 0.9568), "chelsea.png": (282, 0.3897)}


@pytest.mark.slow
@pytest.mark.models
def test_efficientnet_lite0_onnx_matches_pytorch_and_names_photos(tmp_path, store):
    figures = build_lite(LITE0, tmp_path, store, lambda msg: None, int8=False)
    assert figures["params"] == 4_652_008
    assert figures["logit_max_abs_diff"] < 1e-3
    assert figures["feature_max_abs_diff"] < 1e-3
    onnx_path = tmp_path / "efficientnet-lite0.onnx"
    assert figures["onnx"] == str(onnx_path) and onnx_path.exists()
    assert not (tmp_path / "efficientnet-lite0.int8.onnx").exists()

    sess = session(onnx_path)
    assert [o.name for o in sess.get_outputs()] == list(OUTPUTS)
    _, photos = wheels_for(LITE0, store, lambda msg: None)
    prep = lite_preprocess(LITE0)
    labels = json.loads(store.path("imagenet-classifier", "labels.json").read_text())
    top = {}
    for name in ("coffee.png", "chelsea.png"):
        logits, features = sess.run(list(OUTPUTS), {"image": prep(read_photo(photos, name))})
        assert logits.shape == (1, 1000) and features.shape == (1, N_FEATURES)
        assert np.isfinite(features).all() and (features >= 0).all()  # pooled ReLU6
        top[name] = int(logits[0].argmax())
        probs = np.exp(logits[0] - logits[0].max())
        probs /= probs.sum()
        index, p = REFERENCE_TOP[name]
        assert top[name] == index and abs(float(probs[index]) - p) < 2e-3, (name, probs.max())
    assert top["coffee.png"] in CUPS, labels[top["coffee.png"]]
    assert kind_of(top["chelsea.png"]) == "cat", labels[top["chelsea.png"]]
    # the class order is ImageNet-1k's, as the store's labels: the photos' top-1 of the
    # validation (coffee, chelsea) are what build_lite checked the ONNX graph against
    assert figures["top1"][:2] == [top["coffee.png"], top["chelsea.png"]]
