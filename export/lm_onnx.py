"""A Llama-architecture language model (SmolLM2) in plain torch, exported to one ONNX graph.

The graph `lm.onnx`:
    tokens (1, n) int64, past_k, past_v (n_layer, n_kv_head, P, head_dim) float32
    -> logits (1, n_vocab) of the last position only,
       new_k, new_v (n_layer, n_kv_head, P + n, head_dim)

Positions P..P+n-1 are derived in the graph from the cache length (RoPE), and a causal
mask is applied when n > 1 (prefill). Only the last position is projected onto the
vocabulary: that projection is the largest single MatMul of a step.

Cost note: the cache goes in and comes out stacked, so every step copies the whole
cache once (30 layers x 3 heads x P x 64 x 4 bytes x 2 = 46 KB per cached token, e.g.
12 MB at P = 256). At our prompt lengths that is small beside the weights each step
reads (~540 MB fp32); a later version can bind preallocated buffers instead.

This is build-time code (torch). The run time is `models/lm.py`.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glasses.export.whisper_onnx import GraphSpec

OPSET = 17
GRAPH = GraphSpec(
    "lm.onnx",
    ("tokens", "past_k", "past_v"),
    ("logits", "new_k", "new_v"),
    {"tokens": {1: "n"}, "past_k": {2: "past"}, "past_v": {2: "past"},
     "new_k": {2: "total"}, "new_v": {2: "total"}},
)


@dataclass(frozen=True)
class LlamaDims:
    n_layer: int = 30
    d_model: int = 576
    n_head: int = 9
    n_kv_head: int = 3  # grouped-query attention: n_head / n_kv_head query heads share one
    d_ff: int = 1536
    n_vocab: int = 49152
    rope_theta: float = 100000.0
    eps: float = 1e-5  # RMSNorm

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    def __init__(self, d: LlamaDims):
        super().__init__()
        hd = d.head_dim
        self.attn_norm = RMSNorm(d.d_model, d.eps)
        self.q = nn.Linear(d.d_model, d.n_head * hd, bias=False)
        self.k = nn.Linear(d.d_model, d.n_kv_head * hd, bias=False)
        self.v = nn.Linear(d.d_model, d.n_kv_head * hd, bias=False)
        self.o = nn.Linear(d.n_head * hd, d.d_model, bias=False)
        self.ffn_norm = RMSNorm(d.d_model, d.eps)
        self.gate = nn.Linear(d.d_model, d.d_ff, bias=False)
        self.up = nn.Linear(d.d_model, d.d_ff, bias=False)
        self.down = nn.Linear(d.d_ff, d.d_model, bias=False)


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Llama(nn.Module):
    """SmolLM2 with an explicit KV cache; the embedding is stored transposed, (d, vocab),
    and used both to look tokens up and (tied) to project onto the vocabulary, so the
    graph holds it once and int8 quantisation can shrink the projection."""

    def __init__(self, dims: LlamaDims):
        super().__init__()
        self.dims = dims
        self.embed_t = nn.Parameter(torch.zeros(dims.d_model, dims.n_vocab))
        self.blocks = nn.ModuleList(Block(dims) for _ in range(dims.n_layer))
        self.norm = RMSNorm(dims.d_model, dims.eps)
        hd = dims.head_dim
        inv_freq = 1.0 / dims.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, tokens: Tensor, past_k: Tensor, past_v: Tensor):
        """tokens (1, n); past_k/v (n_layer, n_kv, P, hd) -> logits (1, vocab), new_k/v."""
        return self.forward_embeds(self.embed(tokens[0]), past_k, past_v)

    def embed(self, tokens: Tensor) -> Tensor:
        """tokens (n,) -> their embeddings (n, d_model)."""
        return self.embed_t.index_select(1, tokens).t()

    def forward_embeds(self, x: Tensor, past_k: Tensor, past_v: Tensor):
        """x (n, d_model): input embeddings (tokens' or others', e.g. visual tokens)."""
        h, new_k, new_v = self.last_hidden(x, past_k, past_v)
        return self.project(h), new_k, new_v

    def last_hidden(self, x: Tensor, past_k: Tensor, past_v: Tensor):
        """x (n, d_model) -> the last position's normed hidden state (1, d), new_k/v."""
        d = self.dims
        hd, group = d.head_dim, d.n_head // d.n_kv_head
        past, n = past_k.shape[2], x.shape[0]
        pos = torch.arange(n, dtype=torch.float32) + past
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)  # (n, hd)
        cos, sin = emb.cos(), emb.sin()
        col = torch.arange(n + past)
        row = torch.arange(n) + past
        mask = torch.where(col[None, :] > row[:, None], float("-inf"), 0.0)  # (n, P + n)
        new_k, new_v = [], []
        for i, b in enumerate(self.blocks):
            h = b.attn_norm(x)
            q = b.q(h).view(n, d.n_head, hd).transpose(0, 1)  # (n_head, n, hd)
            k = b.k(h).view(n, d.n_kv_head, hd).transpose(0, 1)  # (n_kv, n, hd)
            v = b.v(h).view(n, d.n_kv_head, hd).transpose(0, 1)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            k = torch.cat([past_k[i], k], dim=1)  # (n_kv, P + n, hd)
            v = torch.cat([past_v[i], v], dim=1)
            new_k.append(k)
            new_v.append(v)
            q = q.reshape(d.n_kv_head, group * n, hd) * hd ** -0.5
            w = (q @ k.transpose(1, 2)).view(d.n_kv_head, group, n, -1) + mask
            w = F.softmax(w, dim=-1).view(d.n_kv_head, group * n, -1)
            a = (w @ v).view(d.n_head, n, hd).transpose(0, 1).reshape(n, d.d_model)
            x = x + b.o(a)
            h = b.ffn_norm(x)
            x = x + b.down(F.silu(b.gate(h)) * b.up(h))
        return self.norm(x[-1:]), torch.stack(new_k), torch.stack(new_v)

    def project(self, h: Tensor) -> Tensor:
        """Normed hidden states (n, d) -> logits over the vocabulary (n, n_vocab)."""
        return h @ self.embed_t

    def empty_cache(self) -> Tensor:
        d = self.dims
        return torch.zeros(d.n_layer, d.n_kv_head, 0, d.head_dim)


def dummy_inputs(dims: LlamaDims, past: int = 3, n: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    cache = torch.randn(dims.n_layer, dims.n_kv_head, past, dims.head_dim, generator=g)
    tokens = torch.randint(0, dims.n_vocab, (1, n), generator=g)
    return tokens, cache, cache.clone()


def export_lm(model: Llama, folder: Path) -> Path:
    """Write `lm.onnx` (fp32) for `model` into `folder`."""
    model = model.float().eval()
    path = folder / GRAPH.file
    with torch.no_grad():
        torch.onnx.export(
            model, dummy_inputs(model.dims), str(path), input_names=list(GRAPH.inputs),
            output_names=list(GRAPH.outputs), dynamic_axes=GRAPH.dynamic_axes,
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )
    return path


def quantize_int8(src: Path, dst: Path, block: int = 32) -> Path:
    """Int8 weights for every MatMul with a constant weight, one symmetric scale per
    `block` input rows of each output column (MatMulNBits; activations stay float32).

    Dynamic int8 (per-channel weights, per-tensor uint8 activations, as for Whisper) breaks
    this model: SmolLM2's hidden states carry a few huge channels, and one activation scale
    per tensor wipes out the rest (last logits off by ~45, greedy text garbage; ~15 even
    with every down projection left in fp32). Weight-only int8 with accuracy_level 4
    (activations quantised per block of 32 inside the kernel) stays within ~1.4 and runs
    a decode step ~2.5x faster than fp32; level 0 (float compute) was 13x slower here."""
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    logger = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = logger.level
    logger.setLevel(logging.ERROR)  # it logs every MatMul it skips
    try:
        config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, bits=8,
                                              accuracy_level=4)  # int8 compute kernels
        quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), algo_config=config)
        quantizer.process()
        onnx.save(quantizer.model.model, str(dst))
    finally:
        logger.setLevel(level)
    return dst


def gather_int8(path: Path) -> int:
    """Store each float table that only Gathers read (columns, axis 1: a token embedding
    whose projection is not tied to it) as int8 with one symmetric scale per column, read
    and dequantised column by column: a quarter of the bytes (the student's 113 MB input
    embedding -> 28 MB). Rewrites `path` in place; returns the tables converted."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    converted = 0
    for table, nodes in users.items():
        tensor = inits.get(table)
        if tensor is None or tensor.data_type != onnx.TensorProto.FLOAT or len(tensor.dims) != 2:
            continue
        axes = {next((a.i for a in n.attribute if a.name == "axis"), 0) for n in nodes}
        if {n.op_type for n in nodes} != {"Gather"} or axes != {1} or any(
                n.input[0] != table for n in nodes):
            continue
        w = numpy_helper.to_array(tensor)
        scale = (np.abs(w).max(axis=0) / 127).clip(min=1e-12).astype(np.float32)
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        graph.initializer.remove(tensor)
        graph.initializer.extend([numpy_helper.from_array(q, f"{table}_int8"),
                                  numpy_helper.from_array(scale, f"{table}_scale"),
                                  numpy_helper.from_array(np.zeros_like(scale, np.int8),
                                                          f"{table}_zero")])
        for node in nodes:
            ids, out = node.input[1], node.output[0]
            i = list(graph.node).index(node)
            graph.node.remove(node)
            graph.node.insert(i, helper.make_node(
                "DequantizeLinear", [f"{out}_q", f"{out}_s", f"{out}_z"], [out], axis=1))
            for name, src in ((f"{out}_z", f"{table}_zero"), (f"{out}_s", f"{table}_scale")):
                graph.node.insert(i, helper.make_node("Gather", [src, ids], [name], axis=0))
            graph.node.insert(i, helper.make_node("Gather", [f"{table}_int8", ids],
                                                  [f"{out}_q"], axis=1))
        converted += 1
    if converted:
        onnx.save(model, str(path))
    return converted
