"""Export an openai-whisper model to two ONNX graphs for on-device decoding.

- encoder: mel (1, n_mels, T) -> the cross-attention keys and values of every decoder
  layer, per head, over T/2 positions. T is dynamic, so a
  short question is encoded over its own length instead of a 30 s window, and the
  cross-attention keys and values are computed here, once per utterance.
- decoder: tokens (1, n), self_k/self_v (n_layer, 1, P, d) the KV cache of the P tokens
  before, cross_k/cross_v -> logits (1, n_vocab) of the last token, and the grown cache.
  Only the last token's logits are computed: the projection onto the vocabulary is most
  of a decoding step's work.

This is build-time code (torch). The run time is `models/asr.py`.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OPSET = 17


def _heads(x: Tensor, n_head: int) -> Tensor:
    """(1, n, d) -> (1, n_head, n, d / n_head)"""
    return x.view(x.shape[0], x.shape[1], n_head, -1).permute(0, 2, 1, 3)


def _attend(q: Tensor, k: Tensor, v: Tensor, n_head: int, mask: Tensor | None) -> Tensor:
    """Scaled dot-product attention as whisper computes it; (1, n, d) in and out."""
    q, k, v = _heads(q, n_head), _heads(k, n_head), _heads(v, n_head)
    scale = q.shape[-1] ** -0.25
    w = (q * scale) @ (k * scale).transpose(-1, -2)
    if mask is not None:
        w = w + mask
    out = F.softmax(w, dim=-1) @ v
    return out.permute(0, 2, 1, 3).flatten(start_dim=2)


class Encoder(nn.Module):
    """mel (1, n_mels, T) -> cross_k_i (n_head, d_head, T/2) for each decoder layer i, then
    cross_v_i (n_head, T/2, d_head): per layer (a decoder step then slices nothing),
    per head, pre-scaled and (for keys) pre-transposed."""

    def __init__(self, whisper):
        super().__init__()
        self.enc, self.dec = whisper.encoder, whisper.decoder
        self.n_head = whisper.dims.n_audio_head
        self.n_text_head = whisper.dims.n_text_head

    def forward(self, mel: Tensor) -> tuple[Tensor, ...]:
        x = F.gelu(self.enc.conv1(mel))
        x = F.gelu(self.enc.conv2(x)).permute(0, 2, 1)
        x = x + self.enc.positional_embedding[: x.shape[1]]
        for block in self.enc.blocks:
            h = block.attn_ln(x)
            x = x + block.attn.out(
                _attend(block.attn.query(h), block.attn.key(h), block.attn.value(h),
                        self.n_head, None))
            x = x + block.mlp(block.mlp_ln(x))
        x = self.enc.ln_post(x)
        n_head = self.n_text_head
        scale = (x.shape[-1] // n_head) ** -0.25
        ks = [_heads(b.cross_attn.key(x) * scale, n_head)[0].transpose(-1, -2)
              for b in self.dec.blocks]
        vs = [_heads(b.cross_attn.value(x), n_head)[0] for b in self.dec.blocks]
        return (*ks, *vs)


class Decoder(nn.Module):
    """tokens (1, n), cache (n_layer, 1, P, d) x2, then each layer's cross_k_i, then each
    cross_v_i as the encoder gives them -> logits (1, n_vocab) of the last token, new
    cache (n_layer, 1, P + n, d) x2"""

    def __init__(self, whisper):
        super().__init__()
        self.dec = whisper.decoder
        self.n_head = whisper.dims.n_text_head
        # the token embedding, transposed (d, n_vocab), one table for both its uses: the
        # input tokens are its columns, the logits its product (stored twice, it took 106
        # of base's 302 MB); int8 then quantises it once (`gather_quantized`)
        self.table = nn.Parameter(whisper.decoder.token_embedding.weight.detach().T
                                  .contiguous(), requires_grad=False)

    def forward(self, tokens, self_k, self_v, *cross):
        n_layer = len(self.dec.blocks)
        cross_k, cross_v = cross[:n_layer], cross[n_layer:]
        past, n = self_k.shape[2], tokens.shape[1]
        embedded = self.table.index_select(1, tokens[0]).T.unsqueeze(0)  # (1, n, d)
        x = embedded + self.dec.positional_embedding[past : past + n]
        col = torch.arange(past + n)
        row = torch.arange(n) + past
        mask = torch.where(col[None, :] > row[:, None], float("-inf"), 0.0)
        new_k, new_v = [], []
        for i, block in enumerate(self.dec.blocks):
            h = block.attn_ln(x)
            k = torch.cat([self_k[i], block.attn.key(h)], dim=1)
            v = torch.cat([self_v[i], block.attn.value(h)], dim=1)
            new_k.append(k)
            new_v.append(v)
            x = x + block.attn.out(_attend(block.attn.query(h), k, v, self.n_head, mask))
            h = block.cross_attn_ln(x)
            q = _heads(block.cross_attn.query(h), self.n_head)
            w = F.softmax((q * q.shape[-1] ** -0.25) @ cross_k[i], dim=-1)
            out = (w @ cross_v[i]).permute(0, 2, 1, 3).flatten(start_dim=2)
            x = x + block.cross_attn.out(out)
            x = x + block.mlp(block.mlp_ln(x))
        x = self.dec.ln(x[:, -1])
        logits = x @ self.table
        return logits, torch.stack(new_k), torch.stack(new_v)


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph: its names and dynamic axes."""

    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]


def cross_names(n_layer: int) -> tuple[str, ...]:
    return (*(f"cross_k_{i}" for i in range(n_layer)), *(f"cross_v_{i}" for i in range(n_layer)))


def graph_specs(n_layer: int) -> tuple[GraphSpec, GraphSpec]:
    cross = cross_names(n_layer)
    cross_axes = {name: {2 if name.startswith("cross_k") else 1: "positions"} for name in cross}
    encoder = GraphSpec("encoder.onnx", ("mel",), cross, {"mel": {2: "frames"}, **cross_axes})
    decoder = GraphSpec(
        "decoder.onnx",
        ("tokens", "self_k", "self_v", *cross),
        ("logits", "new_self_k", "new_self_v"),
        {
            "tokens": {1: "n"}, "self_k": {2: "past"}, "self_v": {2: "past"},
            "new_self_k": {2: "total"}, "new_self_v": {2: "total"}, **cross_axes,
        },
    )
    return encoder, decoder


def dummy_inputs(whisper, frames: int = 200, past: int = 3, n: int = 2):
    d = whisper.dims
    mel = torch.randn(1, d.n_mels, frames)
    cache = torch.randn(d.n_text_layer, 1, past, d.n_text_state)
    head = d.n_text_state // d.n_text_head
    cross_k = [torch.randn(d.n_text_head, head, frames // 2) for _ in range(d.n_text_layer)]
    cross_v = [torch.randn(d.n_text_head, frames // 2, head) for _ in range(d.n_text_layer)]
    tokens = torch.randint(0, d.n_vocab, (1, n))
    return (mel,), (tokens, cache, cache.clone(), *cross_k, *cross_v)


def export_graphs(whisper, folder: Path) -> dict[str, Path]:
    """Write encoder.onnx and decoder.onnx for `whisper` (fp32) into `folder`."""
    whisper = whisper.float().eval()
    enc_args, dec_args = dummy_inputs(whisper)
    encoder, decoder = graph_specs(whisper.dims.n_text_layer)
    out = {}
    for spec, module, args in ((encoder, Encoder(whisper), enc_args),
                               (decoder, Decoder(whisper), dec_args)):
        path = folder / spec.file
        with torch.no_grad():
            torch.onnx.export(
                module, args, str(path), input_names=list(spec.inputs),
                output_names=list(spec.outputs), dynamic_axes=spec.dynamic_axes,
                opset_version=OPSET, dynamo=False, do_constant_folding=True,
            )
        out[spec.file] = path
    return out


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 weights for MatMul, one scale per output channel (per tensor cost
    tiny.en 4-6 points of word error rate; per channel none measurable); a table that a
    Gather reads too is then read from its int8 copy (`gather_quantized`)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()  # the quantiser advises pre-processing on the root logger
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm"])
    finally:
        root.setLevel(level)
    gather_quantized(dst)
    return dst


def gather_quantized(path: Path) -> int:
    """Where a Gather reads columns (axis 1) of a float table that the quantiser also
    stored as int8 with one scale per column, read the int8 columns and dequantise them
    with their own scales, and drop the float table: the decoder's embedding then costs a
    quarter. Rewrites `path` in place; returns the tables dropped."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    dropped = 0
    for node in list(graph.node):
        table = node.input[0] if node.op_type == "Gather" else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        q, scale, zero = (f"{table}_quantized", f"{table}_scale", f"{table}_zero_point")
        if table not in inits or axis != 1 or not all(n in inits for n in (q, scale, zero)):
            continue
        if len(inits[scale].dims) != 1:  # one scale for the whole table: not per column
            continue
        ids, out = node.input[1], node.output[0]
        i = list(graph.node).index(node)
        graph.node.remove(node)
        graph.node.insert(i, helper.make_node(
            "DequantizeLinear", [f"{out}_q", f"{out}_s", f"{out}_z"], [out], axis=1))
        for name, src in ((f"{out}_z", zero), (f"{out}_s", scale)):
            graph.node.insert(i, helper.make_node("Gather", [src, ids], [name], axis=0))
        graph.node.insert(i, helper.make_node("Gather", [q, ids], [f"{out}_q"], axis=1))
        if not any(table in n.input for n in graph.node):
            graph.initializer.remove(inits.pop(table))
            dropped += 1
    if dropped:
        onnx.save(model, str(path))
    return dropped
