"""The student's trained part, its delta: committed to the repository (`export/student/`),
so that `glasses models prepare` assembles the student without training.

- `delta.npz`: what training changed, float16 (integers for the vocabulary): the
  projectors' weights, the low-rank adapters of the kept layers, the answer head and the
  answer vocabulary (`export/student.py`). Everything else is derived from the pinned base
  weights: the kept layers themselves, the token embeddings, the class-name tokens and the
  classifier. Read with numpy, never unpickled.
- `delta.json`: its provenance: the sha256 of `delta.npz`, the base weight packages
  (name, version, sha256), the student's dimensions, the recipe's options and data scale,
  its training figures, and the outputs the assembled fp32 graphs gave on a fixed input
  (`reference_outputs`), which every assembly must reproduce.

`glasses distill` writes both (into its work folder; copied here to commit them).
This is build-time code (torch).
"""

import json
from pathlib import Path

import numpy as np
import torch

from glasses.device.errors import StoreError
from glasses.export.lm_onnx import Llama
from glasses.export.student import (
    CompactLM,
    ImageEncoder,
    LoraLinear,
    StudentDims,
    add_lora,
    compact_lm,
)
from glasses.export.student_recipe import RECORD_FILE
from glasses.export.weights import WeightPackage
from glasses.models.store import sha256_file

WEIGHTS_FILE = "delta.npz"
OUTPUT_TOLERANCE = 1e-2  # max abs difference of an assembly's outputs from the recorded


def trained_arrays(encoder: ImageEncoder, lm: CompactLM) -> dict[str, np.ndarray]:
    """What training changed, by name: projector.*, copy.*, lora.<layer>.<projection>.a|b,
    head, vocab."""
    out = {f"projector.{k}": v for k, v in encoder.projector.state_dict().items()}
    out |= {f"copy.{k}": v for k, v in lm.copy.state_dict().items()}
    for i, block in enumerate(lm.blocks):
        for name, layer in block.named_children():
            if isinstance(layer, LoraLinear):
                out[f"lora.{i}.{name}.a"], out[f"lora.{i}.{name}.b"] = layer.a, layer.b
    if lm.head_t.requires_grad:  # trained; else rebuilt from the base weights
        out["head"] = lm.head_t
    arrays = {k: v.detach().numpy().astype(np.float16) for k, v in out.items()}
    arrays["vocab"] = lm.vocab.numpy().astype(np.int32)
    return arrays


def write_delta(folder: Path, encoder: ImageEncoder, lm: CompactLM, record: dict) -> Path:
    """`delta.npz` and `delta.json` (with `record`, and the npz's sha256) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    tmp = folder / f".{WEIGHTS_FILE}.tmp"
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **trained_arrays(encoder, lm))
    tmp.replace(weights)
    record_delta(folder, {**record, "sha256": sha256_file(weights)})
    return folder


def record_delta(folder: Path, record: dict) -> None:
    tmp = folder / f".{RECORD_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    tmp.replace(folder / RECORD_FILE)


def read_delta(folder: Path, packages: tuple[WeightPackage, ...]
               ) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, record) of the delta in `folder`, refused in one line naming the file when
    its hash does not match its record or it was trained on other base weights."""
    weights, record_path = folder / WEIGHTS_FILE, folder / RECORD_FILE
    for path in (weights, record_path):
        if not path.is_file():
            raise StoreError(f"{path}: the student's delta is missing (glasses distill "
                             "makes it)")
    try:
        record = json.loads(record_path.read_text())
        wanted = record["sha256"]
    except (ValueError, KeyError, TypeError):
        raise StoreError(f"{record_path}: not a delta record (no sha256)") from None
    if sha256_file(weights) != wanted:
        raise StoreError(f"{weights}: sha256 differs from the one in {RECORD_FILE}; "
                         "refusing the changed delta")
    pinned = base_record(packages)
    if record.get("base") != pinned:
        raise StoreError(f"{record_path}: trained on other base weights "
                         f"({record.get('base')}) than the pinned ones ({pinned})")
    try:
        with np.load(weights, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise StoreError(f"{weights}: unreadable ({e})") from None
    return arrays, record


def base_record(packages: tuple[WeightPackage, ...]) -> dict:
    return {p.name: {"version": p.version, "sha256": p.sha256} for p in packages}


def record_dims(record: dict) -> StudentDims:
    """The student's dimensions as a delta record holds them."""
    dims = dict(record["dims"])
    dims["lora_on"] = tuple(dims["lora_on"])
    return StudentDims(**dims)


def apply_delta(encoder: ImageEncoder, base: Llama, dims: StudentDims,
                arrays: dict[str, np.ndarray], name_ids: list[list[int]]) -> CompactLM:
    """Load the delta into an untrained encoder; the compact model of `base` it trained
    (`name_ids`: each class's name tokens, as the visual tokens give them)."""
    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(arrays[name].astype(np.float32))

    def load(module: torch.nn.Module, prefix: str) -> None:
        missing = sorted({prefix + k for k in module.state_dict()} - arrays.keys())
        if missing:
            raise ValueError(f"no {', '.join(missing[:3])}")
        module.load_state_dict({k[len(prefix):]: tensor(k) for k in arrays
                                if k.startswith(prefix)}, strict=True)

    if "vocab" not in arrays:
        raise ValueError("no vocab")
    lm = compact_lm(base, dims, arrays["vocab"].tolist(), name_ids)
    add_lora(lm, dims)
    load(encoder.projector, "projector.")
    load(lm.copy, "copy.")
    with torch.no_grad():
        if "head" in arrays:
            lm.head_t.copy_(tensor("head"))
        for i, block in enumerate(lm.blocks):
            for name, layer in block.named_children():
                if isinstance(layer, LoraLinear):
                    layer.a.copy_(tensor(f"lora.{i}.{name}.a"))
                    layer.b.copy_(tensor(f"lora.{i}.{name}.b"))
    return lm
