"""The student's parts in torch: image encoder + projector, low-rank adapters, and the
batched forward used to train it; and its export to the graphs `models/student.py` runs.

Visual tokens (see `models/student.py`): for each of the `n_labels` likeliest classes of
the image encoder's ImageNet head, the first `label_tokens` token embeddings of its name
(a fixed table, padded with zeros) - the language model reads a class name as it reads
text, so naming generalises to classes no training image showed - then `n_visual`
tokens projected (an MLP) from the pooled features, and `n_measure` tokens projected from
measurements: the top confidences and their logarithms, each kind's summed probability
(dog, cat, ...; a fixed matrix over the classes), and `grid` x `grid` colour grids of the
whole input and of its centre. Only the projectors and the adapters train; MobileNetV2
and SmolLM2 stay frozen.

`n_visual` is 0 by default: with 4 feature tokens the student learnt to recognise the 19
training photos instead of reading the confidence (train loss 0.05, held-out agreement
61-63%); without them, 66%.

This is build-time code (torch).
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from export.lm_onnx import OPSET, Llama, _rotate_half
from export.whisper_onnx import GraphSpec

ENCODER_GRAPH = GraphSpec("encoder.onnx", ("image",), ("visual",), {})
LM_GRAPH = GraphSpec(
    "lm.onnx",
    ("visual", "tokens", "past_k", "past_v"),
    ("logits", "new_k", "new_v"),
    {"visual": {1: "m"}, "tokens": {1: "n"}, "past_k": {2: "past"}, "past_v": {2: "past"},
     "new_k": {2: "total"}, "new_v": {2: "total"}},
)


@dataclass(frozen=True)
class StudentDims:
    n_labels: int = 2  # likeliest classes whose names become visual tokens
    label_tokens: int = 4  # name tokens kept per class
    n_visual: int = 0  # tokens projected from the pooled features (see `Projector`)
    hidden: int = 1024  # their MLP's width
    n_measure: int = 4  # tokens projected from the measurements
    measure_hidden: int = 512  # their MLP's width
    grid: int = 4  # colour grid side
    lora_rank: int = 8  # adapters on every attention q and v projection; 0: none
    lora_alpha: float = 16.0

    @property
    def visual_tokens(self) -> int:
        return self.n_labels * self.label_tokens + self.n_visual + self.n_measure

    def to_dict(self) -> dict:
        return asdict(self)


class LoraLinear(nn.Module):
    """A frozen Linear plus a trained low-rank update B @ A (B starts at zero)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.a = nn.Parameter(torch.randn(rank, base.in_features) / base.in_features ** 0.5)
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + (x @ self.a.t() @ self.b.t()) * self.scale

    def merged(self) -> nn.Linear:
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=False)
        out.weight.data = self.base.weight.data + self.scale * (self.b @ self.a).data
        return out


def add_lora(lm: Llama, rank: int, alpha: float) -> list[nn.Parameter]:
    """Freeze `lm`, wrap its q and v projections with adapters; the adapters' parameters."""
    for p in lm.parameters():
        p.requires_grad_(False)
    params = []
    if rank <= 0:
        return params
    for block in lm.blocks:
        for name in ("q", "v"):
            wrapped = LoraLinear(getattr(block, name), rank, alpha)
            setattr(block, name, wrapped)
            params += [wrapped.a, wrapped.b]
    return params


def merge_lora(lm: Llama) -> Llama:
    for block in lm.blocks:
        for name in ("q", "v"):
            if isinstance(layer := getattr(block, name), LoraLinear):
                setattr(block, name, layer.merged())
    return lm


class Projector(nn.Module):
    """(features (B, n_features) | measurements (B, n_measures)) -> (B, n_visual +
    n_measure, d_model). Two MLPs: the measurements are few and must not drown in the
    features' normalisation. With n_visual = 0 the features are not used."""

    def __init__(self, n_features: int, n_measures: int, dims: StudentDims, d_model: int,
                 scale: float):
        super().__init__()
        self.dims, self.d_model, self.n_features = dims, d_model, n_features
        if dims.n_visual:
            self.norm = nn.LayerNorm(n_features)
            self.up = nn.Linear(n_features, dims.hidden)
            self.out = nn.Linear(dims.hidden, dims.n_visual * d_model)
            _init_out(self.out, dims.hidden, scale)
        self.measure_up = nn.Linear(n_measures, dims.measure_hidden)
        self.measure_out = nn.Linear(dims.measure_hidden, dims.n_measure * d_model)
        _init_out(self.measure_out, dims.measure_hidden, scale)

    def forward(self, h: Tensor) -> Tensor:
        f, m = h[:, : self.n_features], h[:, self.n_features :]
        measured = self.measure_out(F.gelu(self.measure_up(m)))
        tokens = [measured.view(-1, self.dims.n_measure, self.d_model)]
        if self.dims.n_visual:
            seen = self.out(F.gelu(self.up(self.norm(f))))
            tokens.insert(0, seen.view(-1, self.dims.n_visual, self.d_model))
        return torch.cat(tokens, dim=1)


def _init_out(layer: nn.Linear, width: int, scale: float) -> None:
    """Output tokens about as large as the language model's token embeddings."""
    nn.init.normal_(layer.weight, std=scale / width ** 0.5)
    nn.init.zeros_(layer.bias)


def measures_in(dims: StudentDims, n_kinds: int) -> int:
    return 2 * dims.n_labels + n_kinds + 2 * 3 * dims.grid * dims.grid


class ImageEncoder(nn.Module):
    """image (B, 3, 224, 224) normalised -> visual (B, visual_tokens, d_model)."""

    def __init__(self, backbone: nn.Module, label_embeds: Tensor, kinds: Tensor,
                 projector: Projector, dims: StudentDims):
        super().__init__()
        self.backbone, self.projector, self.dims = backbone, projector, dims
        self.register_buffer("label_embeds", label_embeds)  # (classes, label_tokens, d)
        self.register_buffer("kinds", kinds)  # (classes, n_kinds): 1 where a class is a kind

    def frozen_part(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """What the frozen encoder gives: (projector input (B, n_in), top class ids)."""
        f = self.backbone.features(image).mean((2, 3))
        probs = F.softmax(self.backbone.classifier(f), dim=-1)
        top_p, top_i = probs.topk(self.dims.n_labels, dim=-1)
        side = image.shape[-1]
        centre = image[:, :, side // 4 : side - side // 4, side // 4 : side - side // 4]
        grids = [F.adaptive_avg_pool2d(x, self.dims.grid).flatten(1) for x in (image, centre)]
        confidence = [top_p, torch.log(top_p.clamp_min(1e-4))]
        return torch.cat([f, *confidence, probs @ self.kinds, *grids], dim=1), top_i

    def tokens(self, h: Tensor, top_i: Tensor) -> Tensor:
        names = self.label_embeds[top_i].flatten(1, 2)  # (B, n_labels * label_tokens, d)
        return torch.cat([names, self.projector(h)], dim=1)

    def forward(self, image: Tensor) -> Tensor:
        return self.tokens(*self.frozen_part(image))


def label_table(lm: Llama, name_ids: list[list[int]], label_tokens: int) -> Tensor:
    """(classes, label_tokens, d): each class name's first token embeddings, zero-padded."""
    table = torch.zeros(len(name_ids), label_tokens, lm.dims.d_model)
    with torch.no_grad():
        for c, ids in enumerate(name_ids):
            ids = ids[:label_tokens]
            table[c, : len(ids)] = lm.embed(torch.tensor(ids))
    return table


def hidden_states(lm: Llama, x: Tensor) -> Tensor:
    """The final normed hidden states (B, T, d) of embeddings x (B, T, d), causal, from
    position 0 (right padding needs no mask: padding comes after what is scored)."""
    d = lm.dims
    hd, group = d.head_dim, d.n_head // d.n_kv_head
    b_size, t = x.shape[:2]
    pos = torch.arange(t, dtype=torch.float32)
    freqs = pos[:, None] * lm.inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    for b in lm.blocks:
        h = b.attn_norm(x)
        q = b.q(h).view(b_size, t, d.n_head, hd).transpose(1, 2)
        k = b.k(h).view(b_size, t, d.n_kv_head, hd).transpose(1, 2)
        v = b.v(h).view(b_size, t, d.n_kv_head, hd).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + b.o(a.transpose(1, 2).reshape(b_size, t, d.d_model))
        h = b.ffn_norm(x)
        x = x + b.down(F.silu(b.gate(h)) * b.up(h))
    return lm.norm(x)


class VisualLM(nn.Module):
    """The exported language model: visual (1, m, d) before tokens (1, n), with a cache."""

    def __init__(self, lm: Llama):
        super().__init__()
        self.lm = lm

    def forward(self, visual: Tensor, tokens: Tensor, past_k: Tensor, past_v: Tensor):
        x = torch.cat([visual[0], self.lm.embed(tokens[0])], dim=0)
        return self.lm.forward_embeds(x, past_k, past_v)


def export_student(encoder: ImageEncoder, lm: Llama, folder: Path) -> tuple[Path, Path]:
    """Write `encoder.onnx` and `lm.onnx` (fp32, adapters merged) into `folder`."""
    encoder = encoder.float().eval()
    visual_lm = VisualLM(merge_lora(lm).float().eval())
    d = lm.dims
    g = torch.Generator().manual_seed(0)
    cache = torch.randn(d.n_layer, d.n_kv_head, 3, d.head_dim, generator=g)
    dummy = (torch.randn(1, 2, d.d_model, generator=g),
             torch.randint(0, d.n_vocab, (1, 2), generator=g), cache, cache.clone())
    paths = folder / ENCODER_GRAPH.file, folder / LM_GRAPH.file
    with torch.no_grad():
        torch.onnx.export(encoder, (torch.randn(1, 3, 224, 224, generator=g),), str(paths[0]),
                          input_names=list(ENCODER_GRAPH.inputs),
                          output_names=list(ENCODER_GRAPH.outputs), opset_version=OPSET,
                          dynamo=False)
        torch.onnx.export(visual_lm, dummy, str(paths[1]), input_names=list(LM_GRAPH.inputs),
                          output_names=list(LM_GRAPH.outputs),
                          dynamic_axes=LM_GRAPH.dynamic_axes, opset_version=OPSET,
                          dynamo=False, do_constant_folding=True)
    return paths
