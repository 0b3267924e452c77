"""The student's parts in torch: image encoder + projector, the compact language model
(kept layers, low-rank adapters, an answer head), and the batched forward used to train
it; and its export to the graphs `models/student.py` runs.

The student sees with the teacher's eyes: the teacher's classifier (EfficientNet-Lite0),
and the facts its people detector and colour reader find (`models.student.image_facts`);
what it distils is the answering. Visual tokens (see `models/student.py`): for each of the
`n_labels` likeliest classes of the classifier's ImageNet head, the first `label_tokens`
token embeddings of its name (a fixed table, padded with zeros) - the language model reads
a class name as it reads text, so naming generalises to classes no training image showed -
the first `colour_tokens` of the colour reader's colour name (read so, the student copies
the teacher's colour instead of learning the reader's hue boundaries), then `n_visual`
tokens projected (an MLP) from the pooled features, `n_confidence` tokens projected from
how sure the classifier is: the top confidences and their logarithms, each kind's summed
probability (dog, cat, ...; a fixed matrix over the classes), and the people count; and
`n_colour` tokens from `grid` x `grid` colour grids of the whole input and of its centre,
and the colour reader's object colour. The confidences and kind probabilities
are also given as thermometer codes (a steep step at every `1 / LEVELS`), and colours as
hue, saturation, value and lightness codes (`colour_codes`), so that an answer that flips
at a confidence or a hue is one step of the input away.

The language model is small where it costs: `layers` of SmolLM2's 30 (evenly spaced,
copied from the teacher's), low-rank adapters on their projections, and an output head
over an answer vocabulary (`answer_vocab`: ~10k of 49k tokens) instead of the whole tied
embedding. Only the projectors and the adapters train (the head too with `train_head`);
the classifier, the token embeddings and the kept layers' weights stay frozen. A copy
gate (`CompactLM.head`) adds to each given name's next token a bonus the hidden state
decides, so a class no training photo showed is named by copying.

What it took (held-out agreement with the teacher, the 30-layer student of stop 7, with
MobileNetV2 as its eyes): 4 tokens from the pooled features let the student recognise the
19 training photos instead of reading the confidence (61-63%), so `n_visual` is 0 by
default (66%); confidence and colour sharing 4 tokens, the colours' variation drowned the
confidence (58-61%, whatever the codes); tokens of their own and the counterfactual
examples of `export/distill.py`: 88%. The 8-layer student with Lite0's eyes (stop 31):
72% without the copy gate (identify 25 of 47: an unseen class was named as a training
photo's); the gate on every token of a name at every step: 96%, but names repeated
("a bubble bubble"), only 64 of 98 answers word for word; the gate on the next token
alone: 94% (identify 45 of 47), 74 of 98 word for word. With signs asked about (the text
read in the prompt, said by a slot token; 1000 steps instead of 800, which at 800 lost 6
colour answers): 92-93 of those 98 again, and 8 of 12 sign questions.

This is build-time code (torch).
"""

import copy
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glasses.export.lm_onnx import OPSET, Llama, _rotate_half
from glasses.export.whisper_onnx import GraphSpec

ENCODER_GRAPH = GraphSpec("encoder.onnx", ("image", "facts"), ("visual", "labels"), {})
LM_GRAPH = GraphSpec(
    "lm.onnx",
    ("visual", "tokens", "labels", "past_k", "past_v"),
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
    n_confidence: int = 2  # tokens projected from the confidence measurements
    n_colour: int = 2  # tokens projected from the colour measurements
    colour_tokens: int = 4  # name tokens of the colour reader's colour; 0: none
    measure_hidden: int = 512  # their MLPs' width
    grid: int = 4  # colour grid side
    lora_rank: int = 16  # adapters on the kept layers' `lora_on` projections; 0: none
    lora_alpha: float = 32.0
    lora_on: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down")
    layers: int = 8  # language-model layers kept (`kept_layers`)
    train_head: bool = False  # train the answer head (else the tied embedding's columns)
    common_tokens: int = 8192  # the answer vocabulary: the tokenizer's first (most frequent
    # merges) plus every token of the training answers and class names; 0: the whole one

    @property
    def visual_tokens(self) -> int:
        return (self.n_labels * self.label_tokens + self.colour_tokens + self.n_visual
                + self.n_confidence + self.n_colour)

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


def add_lora(lm: Llama, dims: StudentDims) -> list[nn.Parameter]:
    """Freeze `lm` but a compact model's copy gate, wrap its `dims.lora_on` projections
    with adapters; the parameters that train at the adapters' rate: the adapters' and a
    compact model's answer head."""
    for p in lm.parameters():
        p.requires_grad_(False)
    if isinstance(lm, CompactLM):
        lm.copy.requires_grad_(True)
    params = []
    if isinstance(lm, CompactLM) and dims.train_head:
        lm.head_t.requires_grad_(True)
        params.append(lm.head_t)
    if dims.lora_rank <= 0:
        return params
    for block in lm.blocks:
        for name in dims.lora_on:
            wrapped = LoraLinear(getattr(block, name), dims.lora_rank, dims.lora_alpha)
            setattr(block, name, wrapped)
            params += [wrapped.a, wrapped.b]
    return params


def merge_lora(lm: Llama) -> Llama:
    for block in lm.blocks:
        for name, layer in list(block.named_children()):
            if isinstance(layer, LoraLinear):
                setattr(block, name, layer.merged())
    return lm


def kept_layers(n_layer: int, keep: int) -> list[int]:
    """`keep` layer indices of `n_layer`, evenly spaced, the first and the last among them.
    (The first `keep - 1` and the last instead: held-out agreement 53% against 73%.)"""
    if not 1 <= keep <= n_layer:
        raise ValueError(f"cannot keep {keep} of {n_layer} layers")
    if keep == 1:
        return [n_layer - 1]
    return sorted({round(i * (n_layer - 1) / (keep - 1)) for i in range(keep)})


def answer_vocab(name_ids: list[list[int]], answer_ids: list[list[int]], n_vocab: int,
                 common: int, always: list[int]) -> list[int]:
    """The token ids the student may say: the `common` first ones (byte-level BPE gives
    frequent merges low ids), the class names' and the training answers' tokens, and
    `always` (the stop ids); all of them when `common` is 0."""
    if common <= 0:
        return list(range(n_vocab))
    kept = set(range(min(common, n_vocab))) | set(always)
    for ids in (*name_ids, *answer_ids):
        kept.update(ids)
    return sorted(kept)


class CompactLM(Llama):
    """A student's language model: `layers` of a base Llama (copies: adapters added to
    them leave the base as it was), its token embeddings to read with, and a head over
    `vocab` alone to answer with (started from the tied embedding's columns, then trained),
    with a copy gate: given the ids of the classes whose names are visual tokens (`labels`,
    likeliest first), each name's next token (see `head`) gets a bonus the hidden state
    decides (one linear gate per rank, started at 0), so naming a class no training photo
    showed is copying a name, not recalling it. `project` gives full-vocabulary logits,
    -1e9 outside `vocab`, so the graph's interface stays the base model's; `head` gives the
    compact ones training scores."""

    def __init__(self, base: Llama, layers: list[int], vocab: list[int],
                 name_ids: list[list[int]], n_labels: int):
        nn.Module.__init__(self)
        self.dims = replace(base.dims, n_layer=len(layers))
        self.embed_t = base.embed_t
        self.blocks = nn.ModuleList(copy.deepcopy(base.blocks[i]) for i in layers)
        self.norm = base.norm
        self.register_buffer("inv_freq", base.inv_freq, persistent=False)
        self.register_buffer("vocab", torch.tensor(vocab, dtype=torch.long))
        index = torch.full((base.dims.n_vocab,), -1, dtype=torch.long)
        index[self.vocab] = torch.arange(len(vocab))
        self.register_buffer("index", index)  # full id -> head row, -1 outside the vocabulary
        self.head_t = nn.Parameter(base.embed_t.detach()[:, self.vocab].clone())
        longest = max(len(ids) for ids in name_ids)
        rows = torch.full((len(name_ids), longest), len(vocab), dtype=torch.long)
        for c, ids in enumerate(name_ids):  # head rows; len(vocab) for none (padding too)
            found = index[torch.tensor(ids, dtype=torch.long)]
            rows[c, : len(ids)] = torch.where(found >= 0, found, len(vocab))
        self.register_buffer("name_rows", rows)  # (classes, name tokens)
        self.copy = nn.Linear(self.dims.d_model, n_labels)
        nn.init.zeros_(self.copy.weight)
        nn.init.zeros_(self.copy.bias)

    def head(self, h: Tensor, labels: Tensor, prev: Tensor) -> Tensor:
        """h (N, d) normed, labels (N, n_labels) class ids, prev (N,) the token each
        position read -> logits over `vocab`. A name's bonus goes to its next token: the
        first, or the one after `prev` when `prev` is in the name, none after its last
        (so a name is copied once, in order)."""
        rows = self.name_rows[labels]  # (N, n_labels, name tokens)
        pad = torch.full_like(rows[..., :1], len(self.vocab))
        after = torch.cat([rows[..., 1:], pad], dim=-1)  # each name token's successor
        within = rows == self.index[prev][:, None, None]
        nxt = torch.where(within.any(-1), after.gather(-1, within.int().argmax(-1, True))[..., 0],
                          rows[..., 0])  # (N, n_labels)
        names = torch.zeros(*rows.shape[:2], len(self.vocab) + 1).scatter(2, nxt[..., None], 1.0)
        bonus = (self.copy(h)[..., None] * names[..., :-1]).sum(1)
        return h @ self.head_t + bonus

    def project(self, h: Tensor, labels: Tensor, prev: Tensor) -> Tensor:
        full = torch.full((h.shape[0], self.dims.n_vocab), -1e9)
        return full.scatter(1, self.vocab[None].expand(h.shape[0], -1),
                            self.head(h, labels, prev))

    def head_targets(self, ids: Tensor) -> Tensor:
        rows = self.index[ids]
        if bool((rows < 0).any()):
            missing = sorted(set(ids[rows < 0].tolist()))[:5]
            raise ValueError(f"answer tokens outside the student's vocabulary: {missing}")
        return rows


def compact_lm(base: Llama, dims: StudentDims, vocab: list[int],
               name_ids: list[list[int]]) -> CompactLM:
    return CompactLM(base, kept_layers(base.dims.n_layer, dims.layers), vocab, name_ids,
                     dims.n_labels)


class Projector(nn.Module):
    """(features (B, n_features) | confidence (B, n_confidence) | colour (B, n_colour)) ->
    (B, n_visual + n_confidence + n_colour tokens, d_model): one MLP per group, so that what
    an answer depends on reaches the language model in tokens of its own (with one MLP for
    both, the colours' variation drowned the confidence's and the student never learnt when
    the teacher is sure). With n_visual = 0 the features are not used."""

    def __init__(self, n_features: int, n_confidence: int, n_colour: int, dims: StudentDims,
                 d_model: int, scale: float):
        super().__init__()
        self.dims, self.d_model, self.n_features = dims, d_model, n_features
        self.split = (n_features, n_confidence, n_colour)
        self.n_in = sum(self.split)  # its input width
        if dims.n_visual:
            self.norm = nn.LayerNorm(n_features)
            self.seen = _mlp(n_features, dims.hidden, dims.n_visual * d_model, scale)
        self.confidence = _mlp(n_confidence, dims.measure_hidden,
                               dims.n_confidence * d_model, scale)
        self.colour = _mlp(n_colour, dims.measure_hidden, dims.n_colour * d_model, scale)

    def forward(self, h: Tensor) -> Tensor:
        f, confidence, colour = h.split(self.split, dim=1)
        tokens = [self.confidence(confidence).view(-1, self.dims.n_confidence, self.d_model),
                  self.colour(colour).view(-1, self.dims.n_colour, self.d_model)]
        if self.dims.n_visual:
            tokens.insert(0, self.seen(self.norm(f)).view(-1, self.dims.n_visual, self.d_model))
        return torch.cat(tokens, dim=1)


def _mlp(n_in: int, width: int, n_out: int, scale: float) -> nn.Sequential:
    """Linear, GELU, Linear; the output about as large as the language model's token
    embeddings (`scale`) at the start."""
    out = nn.Linear(width, n_out)
    nn.init.normal_(out.weight, std=scale / width ** 0.5)
    nn.init.zeros_(out.bias)
    return nn.Sequential(nn.Linear(n_in, width), nn.GELU(), out)


LEVELS = 20  # thermometer steps over 0-1
STEEPNESS = 0.005  # their width
HUE_BINS = 24  # hue codes: bumps 15 degrees apart
HUE_SHARPNESS = 16.0  # von Mises concentration: bumps about 14 degrees wide
COLOUR_CODES = HUE_BINS + 3 * (LEVELS - 1) + 3  # per centre cell


def thermometer(x: Tensor) -> Tensor:
    """(B, n) values in 0-1 -> (B, n * (LEVELS - 1)): a soft step at every 1 / LEVELS."""
    steps = torch.arange(1, LEVELS, dtype=x.dtype) / LEVELS
    return torch.sigmoid((x[..., None] - steps) / STEEPNESS).flatten(1)


def colour_codes(rgb: Tensor) -> Tensor:
    """(B, 3, cells) sRGB in 0-1 -> (B, cells * COLOUR_CODES): per cell, hue bumps weighted
    by chroma, thermometers of value, saturation and lightness, and value, saturation and
    chroma themselves."""
    r, g, b = rgb.unbind(1)
    value, low = rgb.amax(1), rgb.amin(1)
    chroma = value - low
    saturation = chroma / value.clamp_min(1e-3)
    lightness = 0.2126 * r + 0.7152 * g + 0.0722 * b
    a, o = r - 0.5 * (g + b), 0.8660254 * (g - b)  # opponent axes; hue is their angle
    size = torch.sqrt(a * a + o * o).clamp_min(1e-4)
    angles = torch.arange(HUE_BINS, dtype=rgb.dtype) * (2 * torch.pi / HUE_BINS)
    cos = (a / size)[..., None] * torch.cos(angles) + (o / size)[..., None] * torch.sin(angles)
    hues = torch.exp(HUE_SHARPNESS * (cos - 1)) * chroma[..., None]
    levels = [thermometer(v).view(*v.shape, LEVELS - 1) for v in (value, saturation, lightness)]
    codes = torch.cat([hues, *levels, value[..., None], saturation[..., None],
                       chroma[..., None]], dim=-1)
    return codes.flatten(1)


PEOPLE_CODES = 7  # how many people the detector counts, one-hot: 0, 1, ..., 5, more


def people_codes(people: Tensor) -> Tensor:
    """(B, 1) people counted -> (B, PEOPLE_CODES) one-hot, the last code for "more"."""
    count = people.clamp(0, PEOPLE_CODES - 1)
    return (count == torch.arange(PEOPLE_CODES, dtype=people.dtype)).to(people.dtype)


def confidence_width(dims: StudentDims, n_kinds: int) -> int:
    """How many measurements say how sure the classifier and the people detector are: top
    confidences, their logs, the kinds' probabilities, thermometers of the confidences and
    kinds, and the people count."""
    return (2 * dims.n_labels + n_kinds + (dims.n_labels + n_kinds) * (LEVELS - 1)
            + PEOPLE_CODES)


def colour_width(dims: StudentDims) -> int:
    """How many measurements say the colours: two RGB grids, the centre cells' codes and
    the codes of the colour reader's object colour."""
    cells = dims.grid * dims.grid
    return 2 * 3 * cells + (cells + 1) * COLOUR_CODES


class ImageEncoder(nn.Module):
    """image (B, 3, 224, 224) normalised, facts (B, 5) what the teacher's own readers find
    (`models.student.image_facts`: the people count, the object's colour and its name) ->
    visual (B, visual_tokens, d_model)."""

    def __init__(self, backbone: nn.Module, label_embeds: Tensor, colour_embeds: Tensor,
                 kinds: Tensor, projector: Projector, dims: StudentDims, mean: np.ndarray,
                 std: np.ndarray):
        super().__init__()
        self.backbone, self.projector, self.dims = backbone, projector, dims
        self.register_buffer("label_embeds", label_embeds)  # (classes, label_tokens, d)
        self.register_buffer("colour_embeds", colour_embeds)  # (names, colour_tokens, d)
        self.register_buffer("kinds", kinds)  # (classes, n_kinds): 1 where a class is a kind
        # the backbone's input normalisation (RGB, 0-255), to recover the colours
        self.register_buffer("mean", torch.tensor(mean / 255).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std / 255).view(1, 3, 1, 1))

    @property
    def n_in(self) -> int:
        """`frozen_part`'s output width: the projector's input and the colour name's index."""
        return self.projector.n_in + 1

    @property
    def confidence_columns(self) -> slice:
        """Where the confidence measurements lie in `frozen_part`'s output."""
        n_features, n_confidence, _ = self.projector.split
        return slice(n_features, n_features + n_confidence)

    @property
    def colour_columns(self) -> slice:
        """Where the colour measurements lie in `frozen_part`'s output (they end it, the
        colour name's index last)."""
        return slice(self.confidence_columns.stop, self.n_in)

    def frozen_part(self, image: Tensor, facts: Tensor) -> tuple[Tensor, Tensor]:
        """What the frozen encoder gives: (the projector's input (B, n_in): pooled features,
        confidence measurements (the people count's among them), colour measurements, then
        the colour name's index in `COLOUR_NAMES`; top class ids)."""
        logits, f = self.backbone(image)
        probs = F.softmax(logits, dim=-1)
        top_p, top_i = probs.topk(self.dims.n_labels, dim=-1)
        side = image.shape[-1]
        centre = image[:, :, side // 4 : side - side // 4, side // 4 : side - side // 4]
        grids = [F.adaptive_avg_pool2d(x, self.dims.grid).flatten(1) for x in (image, centre)]
        kinds = probs @ self.kinds
        confidence = [top_p, torch.log(top_p.clamp_min(1e-4)), kinds, thermometer(top_p),
                      thermometer(kinds), people_codes(facts[:, :1])]
        rgb = (grids[1].view(-1, 3, self.dims.grid ** 2) * self.std.flatten(1)[..., None]
               + self.mean.flatten(1)[..., None]).clamp(0, 1)
        read = colour_codes(facts[:, 1:4, None])  # the colour reader's object colour
        return (torch.cat([f, *confidence, *grids, colour_codes(rgb), read, facts[:, 4:5]],
                          dim=1), top_i)

    def tokens(self, h: Tensor, top_i: Tensor) -> Tensor:
        names = self.label_embeds[top_i].flatten(1, 2)  # (B, n_labels * label_tokens, d)
        colour = self.colour_embeds[h[:, -1].round().long()]  # (B, colour_tokens, d)
        return torch.cat([names, colour, self.projector(h[:, :-1])], dim=1)

    def forward(self, image: Tensor, facts: Tensor) -> tuple[Tensor, Tensor]:
        """(visual (B, visual_tokens, d), labels (B, n_labels): the named classes' ids)."""
        h, top_i = self.frozen_part(image, facts)
        return self.tokens(h, top_i), top_i


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
    """The exported language model: visual (1, m, d) before tokens (1, n), with a cache;
    labels (1, n_labels): the classes the visual tokens name (`CompactLM`'s copy gate)."""

    def __init__(self, lm: CompactLM):
        super().__init__()
        self.lm = lm

    def forward(self, visual: Tensor, tokens: Tensor, labels: Tensor, past_k: Tensor,
                past_v: Tensor):
        x = torch.cat([visual[0], self.lm.embed(tokens[0])], dim=0)
        h, new_k, new_v = self.lm.last_hidden(x, past_k, past_v)
        return self.lm.project(h, labels, tokens[0, -1:]), new_k, new_v


def export_student(encoder: ImageEncoder, lm: CompactLM, folder: Path) -> tuple[Path, Path]:
    """Write `encoder.onnx` and `lm.onnx` (fp32, adapters merged) into `folder`."""
    encoder = encoder.float().eval()
    visual_lm = VisualLM(merge_lora(lm).float().eval())
    d = lm.dims
    g = torch.Generator().manual_seed(0)
    cache = torch.randn(d.n_layer, d.n_kv_head, 3, d.head_dim, generator=g)
    dummy = (torch.randn(1, 2, d.d_model, generator=g),
             torch.randint(0, d.n_vocab, (1, 2), generator=g),
             torch.randint(0, len(lm.name_rows), (1, encoder.dims.n_labels), generator=g),
             cache, cache.clone())
    paths = folder / ENCODER_GRAPH.file, folder / LM_GRAPH.file
    with torch.no_grad():
        torch.onnx.export(encoder, (torch.randn(1, 3, 224, 224, generator=g),
                                    torch.full((1, 5), 0.5)), str(paths[0]),
                          input_names=list(ENCODER_GRAPH.inputs),
                          output_names=list(ENCODER_GRAPH.outputs), opset_version=OPSET,
                          dynamo=False)
        torch.onnx.export(visual_lm, dummy, str(paths[1]), input_names=list(LM_GRAPH.inputs),
                          output_names=list(LM_GRAPH.outputs),
                          dynamic_axes=LM_GRAPH.dynamic_axes, opset_version=OPSET,
                          dynamo=False, do_constant_folding=True)
    return paths
