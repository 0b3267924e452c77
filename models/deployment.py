"""What a board runs: each model's precision, and the model files the assistant loads.

One place for both, so that `glasses simulate --board`, `glasses profile --board` and a
deploy bundle agree. No fp16 variants are built: an fp16 board carries fp32.
"""

from device.boards import BoardProfile
from models import asr, lm, ocr, vad, vision
from models.asr import AsrOptions
from models.vlm import VlmOptions

ASR_MODEL = asr.DEFAULT_MODEL


def precisions(board: BoardProfile) -> dict[str, str]:
    """{"asr": ..., "vision": ..., "lm": ...}: the variant of each model the board runs."""
    p = "int8" if board.precision == "int8" else "fp32"
    return {"asr": p, "vision": p, "lm": p}


def runtime_files(board: BoardProfile, asr_model: str = ASR_MODEL) -> dict[str, list[str]]:
    """Store entry -> the files of it the assistant loads on `board`."""
    p = precisions(board)
    enc, dec = asr.PRECISIONS[p["asr"]]
    return {
        vad.MODEL: [vad.MODEL_FILE],
        asr.store_name(asr_model): [f"encoder{enc}.onnx", f"decoder{dec}.onnx",
                                    *asr.SUPPORT_FILES],
        vision.MODEL: [vision.FILES[p["vision"]], vision.LABELS_FILE],
        ocr.MODEL: [ocr.DET_FILE, ocr.REC_FILE, ocr.CLS_FILE],
        lm.STORE_NAME: [lm.PRECISIONS[p["lm"]], lm.CONFIG_FILE],
    }


def assistant_options(board: BoardProfile, asr_model: str = ASR_MODEL
                      ) -> tuple[AsrOptions, VlmOptions]:
    """The speech and look-and-tell options for `board`'s precisions."""
    p = precisions(board)
    return (AsrOptions(model=asr_model, precision=p["asr"]),
            VlmOptions(vision_precision=p["vision"], lm_precision=p["lm"]))
