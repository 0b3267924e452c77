"""What a board runs: each model's precision, and the model files the assistant loads.

One place for both, so that `glasses simulate --board`, `glasses profile --board` and a
deploy bundle agree. No fp16 variants are built: an fp16 board carries fp32.
"""

from glasses.device.boards import BoardProfile
from glasses.models import asr, end_of_turn, lm, ocr, people, student, text_embedding, vad, vision
from glasses.models.asr import AsrOptions
from glasses.models.store import ModelStore
from glasses.models.vlm import Teacher, Vlm, VlmOptions

ASR_MODEL = asr.DEFAULT_MODEL


def precisions(board: BoardProfile) -> dict[str, str]:
    """{"asr": ..., "vision": ..., "lm": ...}: the variant of each model the board runs."""
    p = "int8" if board.precision == "int8" else "fp32"
    # Whisper's int8 decoder next to its fp32 encoder: as accurate as fp32 on two speech
    # sets (base: 42.5 and 38.3 WER against 42.9 and 38.5, 120 clips), 0.67x the time and
    # 200 MB less (README, "Memory budget")
    return {"asr": "mixed" if p == "fp32" else p, "vision": p, "lm": p}


def runtime_files(board: BoardProfile, asr_model: str = ASR_MODEL,
                  vlm_model: str = "teacher") -> dict[str, list[str]]:
    """Store entry -> the files of it the assistant loads on `board`."""
    p = precisions(board)
    files = {
        vad.MODEL: [vad.MODEL_FILE],
        end_of_turn.MODEL: [end_of_turn.MODEL_FILE],  # the default endpoint judges turns
        asr.store_name(asr_model): asr.model_files(p["asr"]),
        ocr.MODEL: [ocr.DET_FILE, ocr.REC_FILE, ocr.CLS_FILE],
        people.MODEL: [d.file for d in people.DETECTORS],  # "a person", and faces blurred
    }
    files[text_embedding.MODEL] = [text_embedding.FILES[text_embedding.PRECISION],
                                   text_embedding.VOCAB_FILE,
                                   text_embedding.CONFIG_FILE]  # memory search
    if vlm_model == "student":
        files[student.STORE_NAME] = [student.ENCODER_FILE, student.LM_FILES[p["lm"]],
                                     student.CONFIG_FILE]
    else:
        files[vision.MODEL] = [vision.FILES[p["vision"]], vision.LABELS_FILE]
        files[lm.STORE_NAME] = [lm.PRECISIONS[p["lm"]], lm.CONFIG_FILE]
    return files


def assistant_options(board: BoardProfile, asr_model: str = ASR_MODEL,
                      vlm_model: str = "teacher") -> tuple[AsrOptions, VlmOptions]:
    """The speech and look-and-tell options for `board`'s precisions."""
    p = precisions(board)
    return (AsrOptions(model=asr_model, precision=p["asr"]),
            VlmOptions(model=vlm_model, vision_precision=p["vision"], lm_precision=p["lm"]))


def open_vlm(store: ModelStore, board: BoardProfile, options: VlmOptions) -> Vlm:
    """The answerer `options.model` names: the teacher (the default) or the student."""
    if options.model == "student":
        return student.Student(store, board, options)
    return Teacher(store, board, options)
