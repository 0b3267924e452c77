"""A backbone built outside the store by `export/classifier_compare.py` (here MobileNetV2,
the classifier before EfficientNet-Lite0) exports to an ONNX graph that matches PyTorch,
names scikit-image's photos, and answers as the store's classifier does on the clear ones."""

import json

import numpy as np
import pytest

from glasses.export.backbone import N_FEATURES, OUTPUTS
from glasses.export.classifier_compare import build_backbone, session, wheels_for
from glasses.export.mobilenet_v2 import MOBILENET_V2
from glasses.export.vision_build import read_photo
from glasses.models.answers import kind_of
from glasses.models.vision import FILES, MODEL, preprocess

CUPS = {967: "espresso", 968: "tea cup", 504: "coffee mug"}  # ImageNet-1k indices


@pytest.mark.slow
@pytest.mark.models
def test_mobilenet_v2_built_outside_the_store_matches_pytorch_and_names_photos(tmp_path,
                                                                               store):
    figures = build_backbone(MOBILENET_V2, tmp_path, store, lambda msg: None, int8=False)
    assert figures["params"] == 3_504_872  # torchvision's mobilenet_v2
    assert figures["logit_max_abs_diff"] < 1e-3
    assert figures["feature_max_abs_diff"] < 1e-3
    onnx_path = tmp_path / "mobilenetv2.onnx"
    assert figures["onnx"] == str(onnx_path) and onnx_path.exists()
    assert not (tmp_path / "mobilenetv2.int8.onnx").exists()
    assert not any(p.is_relative_to(tmp_path) for p in store.home.rglob("*"))

    sess = session(onnx_path)
    ours = session(store.path(MODEL, FILES["fp32"]))
    assert [o.name for o in sess.get_outputs()] == list(OUTPUTS)
    _, photos = wheels_for(MOBILENET_V2, store, lambda msg: None)
    labels = json.loads(store.path(MODEL, "labels.json").read_text())
    top = {}
    for name in ("coffee.png", "chelsea.png"):
        image = read_photo(photos, name)
        logits, features = sess.run(list(OUTPUTS), {"image": MOBILENET_V2.prep(image)})
        assert logits.shape == (1, 1000) and features.shape == (1, N_FEATURES)
        assert np.isfinite(features).all() and (features >= 0).all()  # pooled ReLU6
        top[name] = int(logits[0].argmax())
        # the store's EfficientNet-Lite0, fed as models/vision.py feeds it
        store_top = int(ours.run([OUTPUTS[0]], {"image": preprocess(image)})[0][0].argmax())
        for got in (top[name], store_top):
            if name == "coffee.png":
                assert got in CUPS, labels[got]
            else:
                assert kind_of(got) == "cat", labels[got]
    # the class order is ImageNet-1k's, as the store's labels: the photos' top-1 of the
    # validation (coffee, chelsea) are what build_backbone checked the ONNX graph against
    assert figures["top1"][:2] == [top["coffee.png"], top["chelsea.png"]]
