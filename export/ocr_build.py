"""Text reading weights: PP-OCRv4 detection and recognition ONNX models, and the
PP-OCR mobile v2 angle classifier, as the PyPI package rapidocr-onnxruntime carries them.

Only the three model files are taken; rapidocr's code is never installed or imported
(models/ocr.py reimplements its pre- and post-processing on numpy and opencv). The
recognition dictionary (6,623 characters, one a line) is embedded in the rec model's
metadata under `character`, so there is no separate dictionary file.
"""

from glasses.export.prepare import Recipe, _extraction_recipe
from glasses.export.weights import Extraction, Member, WeightPackage
from glasses.models.ocr import CLS_FILE, DET_FILE, MODEL, REC_FILE

RAPIDOCR_ONNXRUNTIME = WeightPackage(
    name="rapidocr-onnxruntime",
    version="1.4.4",
    wheel="rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
    sha256="971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
    licence="Apache-2.0",  # the package and the PaddleOCR models alike
)

PPOCR_V4 = Extraction(
    model=MODEL,
    package=RAPIDOCR_ONNXRUNTIME,
    members=(
        Member(  # DB text detector: x (N, 3, H, W) -> probability map (N, 1, H, W)
            "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
            DET_FILE,
            "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
        ),
        Member(  # SVTR-LCNet CTC recogniser: x (N, 3, 48, W) -> (N, W / 8, 6625) softmax
            "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
            REC_FILE,
            "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
        ),
        Member(  # text angle classifier: x (N, 3, 48, 192) -> (N, 2) for 0 / 180 degrees
            "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
            CLS_FILE,
            "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
        ),
    ),
    description="PP-OCRv4 text detection and recognition (Chinese, English), angle classifier",
)


def ocr_recipe() -> Recipe:
    """The `glasses models prepare` recipe that writes the store entry `ppocr-v4`."""
    return _extraction_recipe(PPOCR_V4)
