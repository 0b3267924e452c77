"""`glasses distill`: teach the student (`models/student.py`) the teacher's answers.

The recipe, for any teacher behind the `Vlm` interface and any student made of an image
backbone (`export/backbone.py`: the teacher's own classifier, so that both see the same
classes) and a Llama-architecture language model:
1. data: `export/distill_data.py` makes the train and held-out splits, answered by the
   teacher (kept in the work folder; made once);
2. the frozen part of the image encoder runs once per training image (its outputs are
   cached), so training steps cost the projector, the adapters and the language model;
3. training: the loss is the cross-entropy of the student's next-token distribution against
   the teacher's answer, token by token - the KL divergence from the teacher's distribution,
   which is one-hot: its answers are worded, or greedy. Some examples are changed where the
   teacher's answer does not depend on the change (`Counterfactuals`). AdamW, cosine
   learning rate, a checkpoint every `checkpoint_every` steps; a run that stops resumes
   from its checkpoint;
4. export: encoder and language model to ONNX, the language model also as weight-only
   int8; the fp32 graphs are checked against torch before anything is stored.

This is build-time code (torch).
"""

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from glasses.device.camera import read_image
from glasses.device.errors import BadInput, StoreError
from glasses.export.backbone import N_FEATURES, Backbone
from glasses.export.distill_data import read_answers
from glasses.export.lm_onnx import Llama, LlamaDims
from glasses.export.student import (
    CompactLM,
    ImageEncoder,
    Projector,
    StudentDims,
    add_lora,
    answer_vocab,
    colour_width,
    compact_lm,
    confidence_width,
    export_student,
    hidden_states,
    label_table,
)
from glasses.models.answers import KINDS, noun
from glasses.models.bpe import ByteBPE
from glasses.models.colour import COLOUR_NAMES
from glasses.models.intent import Intent, intent_of
from glasses.models.student import (
    CONFIG_FILE,
    ENCODER_FILE,
    LM_FILES,
    TEXT_SLOT,
    answer_ids,
    prompt_ids,
)

Progress = Callable[[str], None]
CHECKPOINT = "checkpoint.pt"
FEATURES = "features.pt"
LOGIT_TOLERANCE = 1e-2  # max abs difference of the fp32 ONNX student's logits from torch



@dataclass(frozen=True)
class TrainOptions:
    steps: int = 1000
    batch: int = 8
    lr: float = 1e-3  # projector
    lora_lr: float = 5e-4
    warmup: int = 20
    checkpoint_every: int = 25
    seed: int = 0
    swap_names: float = 0.5  # share of identify examples given other names (`Counterfactuals`)


@dataclass
class StudentParts:
    """An untrained student: its frozen backbone and language model, and the tokenizer."""

    eyes: Backbone  # the teacher's classifier: its input size, crop and normalisation
    backbone: torch.nn.Module  # image -> (logits, pooled features), eyes' network
    lm: Llama
    lm_config: dict  # as the teacher's lm.json: dims, tokenizer, chat
    class_names: list[str]
    dims: StudentDims
    facts: Callable[[np.ndarray], np.ndarray]  # BGR image -> (1, 5) `image_facts`

    @cached_property
    def bpe(self) -> ByteBPE:
        """The tokenizer (made once: ~75 ms, and renamed answers need it every step)."""
        tok = self.lm_config["tokenizer"]
        return ByteBPE(tok["tokens"], tok["merges"], tok["special"])

    @cached_property
    def slot(self) -> int:
        """The answer token that stands for the text read (`models.student.TEXT_SLOT`)."""
        return self.lm_config["tokenizer"]["tokens"].index(TEXT_SLOT)

    def name_ids(self) -> list[list[int]]:
        """Each class's name tokens as the visual tokens give them (`label_tokens` kept)."""
        return [self.bpe.encode(" " + n)[: self.dims.label_tokens] for n in self.class_names]

    def encoder(self, seed: int) -> ImageEncoder:
        torch.manual_seed(seed)
        bpe = self.bpe
        table = label_table(self.lm, self.name_ids(), self.dims.label_tokens)
        scale = float(table[table.abs().sum(-1) > 0].norm(dim=-1).mean())  # token size
        kinds = kind_matrix(len(self.class_names))
        projector = Projector(N_FEATURES, confidence_width(self.dims, kinds.shape[1]),
                              colour_width(self.dims), self.dims, self.lm.dims.d_model, scale)
        colours = label_table(self.lm, [bpe.encode(" " + n) for n in COLOUR_NAMES],
                              self.dims.colour_tokens)
        return ImageEncoder(self.backbone.eval(), table, colours, kinds, projector, self.dims,
                            self.eyes.mean, self.eyes.std)

    def student_lm(self, rows: list) -> CompactLM:
        """The kept layers of the language model, with a head over what answers need."""
        bpe, chat = self.bpe, self.lm_config["chat"]
        names = [bpe.encode(" " + noun(n)) for n in self.class_names]
        names += [bpe.encode(noun(n).capitalize()) for n in self.class_names]
        said = [answer_ids(bpe, answer, text, self.slot) for _, _, answer, text in rows]
        vocab = answer_vocab(names, said, self.lm.dims.n_vocab, self.dims.common_tokens,
                             [chat["im_end_id"], *chat["stop_ids"], self.slot])
        return compact_lm(self.lm, self.dims, vocab, self.name_ids())


def load_saved(path: Path) -> dict:
    """A features cache or checkpoint this recipe wrote: tensors, numbers, strings, lists
    and dicts only. The work folder is the user's to write, so nothing in it is unpickled
    as code (`weights_only=True`): a file with anything else is refused."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch's UnpicklingError, a truncated file, not a torch file
        raise BadInput(f"{path}: not a file this recipe wrote ({type(e).__name__}); "
                           "delete it or pass --fresh") from None
    if not isinstance(saved, dict):
        raise BadInput(f"{path}: not a file this recipe wrote; delete it or pass --fresh")
    return saved


def kind_matrix(n_classes: int) -> torch.Tensor:
    """(classes, kinds): which ImageNet classes make up each kind the teacher names."""
    matrix = torch.zeros(n_classes, len(KINDS))
    for k, (_, ranges) in enumerate(KINDS):
        for a, b in ranges:
            matrix[a:b, k] = 1.0
    return matrix


def _inputs(parts: StudentParts, paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's inputs for image files: (images (B, 3, 224, 224), facts (B, 4))."""
    images = [read_image(p) for p in paths]
    return (torch.cat([torch.from_numpy(parts.eyes.prep(im)) for im in images]),
            torch.cat([torch.from_numpy(parts.facts(im)) for im in images]))


def cached_features(parts: StudentParts, encoder: ImageEncoder, rows: list, work: Path,
                    progress: Progress) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen encoder's outputs for every training image, computed once."""
    path = work / FEATURES
    image_dims = {k: v for k, v in encoder.dims.to_dict().items() if k in ("n_labels", "grid")}
    key = {"files": [str(r[0].name) for r in rows], "dims": image_dims,
           "inputs": encoder.n_in, "eyes": parts.eyes.name}
    if path.exists():
        saved = load_saved(path)
        if saved.get("key") == key and _same_encoder(parts, encoder, rows[0][0],
                                                     saved["h"][0]):
            return saved["h"], saved["top"]
    hs, tops = [], []
    with torch.no_grad():
        for i in range(0, len(rows), 32):
            h, top = encoder.frozen_part(*_inputs(parts, [r[0] for r in rows[i : i + 32]]))
            hs.append(h)
            tops.append(top)
            progress(f"  image features: {min(i + 32, len(rows))}/{len(rows)}")
    h, top = torch.cat(hs), torch.cat(tops)
    tmp = path.with_suffix(".tmp")
    torch.save({"key": key, "h": h, "top": top}, tmp)
    tmp.replace(path)
    return h, top


class Counterfactuals:
    """Training examples changed where the teacher's answer does not depend on the change.

    With 19 training photos, whatever tells the photos apart is a shortcut to the teacher's
    answer for that photo; these examples take away the shortcuts the answer does not depend
    on. The teacher's identify answers depend on the classes and confidences alone, its
    colour answers on the colours alone:
    - identify: the colour measurements come from another training example; with
      probability `swap_names` the classes become other classes of no kind, in the visual
      tokens and in the answer alike, so naming is learnt as copying (a kind's name is
      worded into the answer: classes of a kind keep their names);
    - colour: the classes and confidence measurements come from another example;
    - general answers draw on everything and are left as they are."""

    def __init__(self, encoder: ImageEncoder, class_names: list[str], rows: list,
                 top: torch.Tensor, swap_names: float):
        self.encoder, self.names, self.rows = encoder, class_names, rows
        self.swap_names = swap_names
        self.intents = [intent_of(question) for _, question, *_ in rows]
        self.plain = [c for c, row in enumerate(encoder.kinds) if not row.any()]
        plain = set(self.plain)
        self.renamable = [all(int(c) in plain for c in t) for t in top]

    def batch(self, idx: list[int], h: torch.Tensor, top: torch.Tensor, rng: random.Random
              ) -> tuple[torch.Tensor, torch.Tensor, dict[int, str]]:
        """(measurements, class ids, changed answers by batch position) of examples `idx`."""
        hb, tops, changed = h[idx].clone(), top[idx].clone(), {}
        colour, confidence = self.encoder.colour_columns, self.encoder.confidence_columns
        for j, i in enumerate(idx):
            other = rng.randrange(len(h))
            if self.intents[i] is Intent.IDENTIFY:
                hb[j, colour] = h[other, colour]
                if self.renamable[i] and rng.random() < self.swap_names:
                    tops[j], changed[j] = self.rename(top[i], self.rows[i][2], rng)
            elif self.intents[i] is Intent.COLOUR:
                hb[j, confidence], tops[j] = h[other, confidence], top[other]
        return hb, tops, changed

    def rename(self, top: torch.Tensor, answer: str,
               rng: random.Random) -> tuple[torch.Tensor, str]:
        """Other classes of no kind for `top`, and `answer` naming them instead."""
        new = [rng.choice(self.plain) for _ in top]
        for i, old in enumerate(top.tolist()):  # in order: "Maybe a missile or a missile."
            answer = answer.replace(noun(self.names[old]), f"\0{i}\0", 1)
        for i, c in enumerate(new):
            answer = answer.replace(f"\0{i}\0", noun(self.names[c]))
        return torch.tensor(new, dtype=top.dtype), answer


def _same_encoder(parts: StudentParts, encoder: ImageEncoder, image: Path,
                  saved: torch.Tensor) -> bool:
    """Whether the encoder still computes what was cached (its code may have changed)."""
    with torch.no_grad():
        h, _ = encoder.frozen_part(*_inputs(parts, [image]))
    return h.shape[1] == saved.shape[0] and bool(torch.allclose(h[0], saved, atol=1e-4))


def sequences(parts: StudentParts, rows: list) -> list[tuple[list[int], int]]:
    """Per example: (ids after the visual tokens, with the answer; how many are answer)."""
    bpe, chat = parts.bpe, parts.lm_config["chat"]
    out = []
    for _, question, answer, text in rows:
        _, after = prompt_ids(bpe, chat, question, text)
        said = answer_ids(bpe, answer, text, parts.slot) + [chat["im_end_id"]]
        out.append((after + said, len(said)))
    return out


def batch_loss(lm: CompactLM, encoder: ImageEncoder, before: torch.Tensor,
               h: torch.Tensor, top: torch.Tensor,
               seqs: list[tuple[list[int], int]]) -> torch.Tensor:
    """Mean cross-entropy over the answer tokens of one batch."""
    visual = encoder.tokens(h, top)  # (B, m, d)
    n_before, m = len(before), visual.shape[1]
    longest = max(len(s) for s, _ in seqs)
    ids = torch.zeros(len(seqs), longest, dtype=torch.long)
    for i, (s, _) in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    x = torch.cat([lm.embed(before)[None].expand(len(seqs), -1, -1), visual,
                   lm.embed(ids.flatten()).view(len(seqs), longest, -1)], dim=1)
    hidden = hidden_states(lm, x)
    picks, targets, labels, prev = [], [], [], []
    for i, (s, n_answer) in enumerate(seqs):
        start = n_before + m + len(s) - n_answer  # position of the first answer token
        picks.append(hidden[i, start - 1 : start - 1 + n_answer])
        targets.append(ids[i, len(s) - n_answer : len(s)])
        labels.append(top[i].expand(n_answer, -1))
        prev.append(ids[i, len(s) - n_answer - 1 : len(s) - 1])
    logits = lm.head(torch.cat(picks), torch.cat(labels), torch.cat(prev))
    return F.cross_entropy(logits, lm.head_targets(torch.cat(targets)))


def train(parts: StudentParts, train_dir: Path, work: Path, options: TrainOptions,
          progress: Progress) -> tuple[ImageEncoder, CompactLM, dict]:
    """Train (or resume training) the student on `train_dir`; (encoder, language model,
    figures)."""
    rows = read_answers(train_dir)
    if not rows:
        raise BadInput(f"{train_dir}: no training examples")
    encoder = parts.encoder(options.seed)
    lm = parts.student_lm(rows)
    lora = add_lora(lm, parts.dims)
    trained = [*lora, *lm.copy.parameters()]  # what trains in the language model
    h, top = cached_features(parts, encoder, rows, work, progress)
    seqs = sequences(parts, rows)
    counterfactuals = Counterfactuals(encoder, parts.class_names, rows, top, options.swap_names)
    bpe, chat = parts.bpe, parts.lm_config["chat"]
    before = torch.tensor(prompt_ids(bpe, chat, "")[0])
    groups = [{"params": [*encoder.projector.parameters(), *lm.copy.parameters()],
               "lr": options.lr}]
    groups += [{"params": lora, "lr": options.lora_lr}] if lora else []
    optimiser = torch.optim.AdamW(groups, weight_decay=0.01)
    base_lrs = [g["lr"] for g in optimiser.param_groups]
    setup = {"options": asdict(options), "dims": parts.dims.to_dict(), "examples": len(rows),
             "inputs": encoder.projector.n_in, "vocab": len(lm.vocab)}
    state = {"step": 0, "losses": [], "seconds": 0.0}
    checkpoint = work / CHECKPOINT
    if checkpoint.exists():
        saved = load_saved(checkpoint)
        if saved["setup"] != setup:
            raise BadInput(f"{checkpoint} is from other settings ({saved['setup']}); "
                               "delete it or pass --fresh")
        encoder.projector.load_state_dict(saved["projector"])
        for p, v in zip(trained, saved["lm"], strict=True):
            p.data.copy_(v)
        optimiser.load_state_dict(saved["optimiser"])
        state = saved["state"]
        progress(f"  resuming at step {state['step']}/{options.steps}")
    order = random.Random(options.seed)
    batches = _batches(len(rows), options, order)
    t0 = time.perf_counter() - state["seconds"]
    for step in range(state["step"], options.steps):
        frac = step / max(1, options.steps)
        warm = min(1.0, (step + 1) / max(1, options.warmup))
        for g, lr in zip(optimiser.param_groups, base_lrs, strict=True):
            g["lr"] = lr * warm * 0.5 * (1 + math.cos(math.pi * frac))
        idx = batches[step]
        rng = random.Random(options.seed * 1_000_003 + step)  # the same on a resume
        hb, tops, changed = counterfactuals.batch(idx, h, top, rng)
        batch_seqs = [seqs[i] for i in idx]
        for j, answer in changed.items():
            batch_seqs[j] = sequences(parts, [(None, rows[idx[j]][1], answer, "")])[0]
        loss = batch_loss(lm, encoder, before, hb, tops, batch_seqs)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        state["losses"].append(loss.item())
        state["step"] = step + 1
        state["seconds"] = time.perf_counter() - t0
        done = step + 1
        if done % options.checkpoint_every == 0 or done == options.steps:
            _save(checkpoint, setup, encoder, trained, optimiser, state)
        if done % 5 == 0 or done == options.steps:
            rate = state["seconds"] / done
            recent = np.mean(state["losses"][-25:])
            progress(f"  step {done}/{options.steps}  loss {recent:.3f}  "
                     f"{state['seconds'] / 60:.1f} min, ~{rate * (options.steps - done) / 60:.1f}"
                     " min left")
    k = max(1, min(25, len(state["losses"]) // 4))  # steps averaged at each end
    figures = {"steps": state["step"], "examples": len(rows),
               "first_loss": round(float(np.mean(state["losses"][:k])), 4),
               "final_loss": round(float(np.mean(state["losses"][-k:])), 4),
               "train_minutes": round(state["seconds"] / 60, 1), "layers": lm.dims.n_layer,
               "vocab": len(lm.vocab)}
    return encoder, lm, figures


def _batches(n: int, options: TrainOptions, order: random.Random) -> list[list[int]]:
    """Every step's example indices: shuffled epochs, the same on every resume."""
    out, pool = [], []
    while len(out) < options.steps:
        if len(pool) < options.batch:
            pool += order.sample(range(n), n)
        out.append(pool[: options.batch])
        pool = pool[options.batch :]
    return out


def _save(path: Path, setup: dict, encoder: ImageEncoder, trained: list, optimiser,
          state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"setup": setup, "projector": encoder.projector.state_dict(),
                "lm": [p.detach().clone() for p in trained],
                "optimiser": optimiser.state_dict(), "state": state}, tmp)
    tmp.replace(path)


def export(parts: StudentParts, encoder: ImageEncoder, lm: CompactLM, folder: Path,
           progress: Progress) -> tuple[dict, dict]:
    """ONNX graphs, the int8 language model and `student.json` in `folder`; (the checks,
    the exact fp32 graphs' outputs on a made-up input, to record or compare: the first
    visual values and the 8 likeliest tokens). The fp32 language model, once checked
    against torch, reads its input embedding as int8 too (`gather_int8`: 113 MB -> 28 MB),
    checked to give the same three likeliest tokens."""
    from glasses.export.lm_onnx import gather_int8, quantize_int8

    progress("  exporting the student to ONNX")
    _, lm_path = export_student(encoder, lm, folder)
    gather_int8(quantize_int8(lm_path, folder / LM_FILES["int8"]))
    eyes = parts.eyes
    config = {**{k: parts.lm_config[k] for k in ("tokenizer", "chat")},
              "image": {"size": eyes.size, "crop": eyes.crop, "mean": eyes.mean.tolist(),
                        "std": eyes.std.tolist()},
              "dims": {**parts.lm_config["dims"], "n_layer": lm.dims.n_layer},
              "visual": parts.dims.to_dict(), "visual_tokens": parts.dims.visual_tokens}
    (folder / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False))
    visual, logits = torch_outputs(parts, encoder, lm)
    got_visual, got = onnx_outputs(parts, folder, lm.dims)
    diffs = {"visual_max_abs_diff": float(np.abs(got_visual - visual).max()),
             "logit_max_abs_diff": float(np.abs(got - logits).max())}
    if max(diffs.values()) > LOGIT_TOLERANCE:
        raise StoreError(f"the ONNX student differs from torch ({diffs}); not stored")
    top = np.argsort(-got[0])[:8]
    outputs = {"visual_first": got_visual[0, :, :4].round(5).tolist(),
               "top_tokens": top.tolist(), "top_logits": got[0, top].round(5).tolist()}
    gather_int8(lm_path)
    _, read_int8 = onnx_outputs(parts, folder, lm.dims)
    diffs["embedding_int8_logit_max_abs_diff"] = float(np.abs(read_int8 - got).max())
    if np.argsort(-read_int8[0])[:3].tolist() != top[:3].tolist():
        raise StoreError("the student's fp32 language model, reading its embedding as int8, "
                         f"changes its likeliest tokens ({diffs}); not stored")
    return diffs, outputs


def _made_up(parts: StudentParts) -> tuple[torch.Tensor, torch.Tensor, list, list]:
    """A made-up image and facts, and a question's prompt ids before and after the image."""
    g = torch.Generator().manual_seed(1)
    image, facts = torch.randn(1, 3, 224, 224, generator=g), torch.tensor([[1, .2, .4, .6, 7]])
    return (image, facts, *prompt_ids(parts.bpe, parts.lm_config["chat"], "What is this?"))


def torch_outputs(parts: StudentParts, encoder: ImageEncoder, lm: CompactLM
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(visual tokens, next-token logits) of the torch student on the made-up input."""
    image, facts, before, after = _made_up(parts)
    d = lm.dims
    empty = torch.zeros(d.n_layer, d.n_kv_head, 0, d.head_dim)
    with torch.no_grad():
        visual, labels = encoder(image, facts)
        x = torch.cat([lm.embed(torch.tensor(before)), visual[0],
                       lm.embed(torch.tensor(after))])
        h, _, _ = lm.last_hidden(x, empty, empty)
        logits = lm.project(h, labels, torch.tensor(after[-1:]))
    return visual.numpy(), logits.numpy()


def onnx_outputs(parts: StudentParts, folder: Path, d: LlamaDims
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(visual tokens, next-token logits) of the ONNX graphs in `folder` (the fp32 language
    model) on the made-up input, the prompt before the image run first as at run time."""
    import onnxruntime as ort

    image, facts, before, after = _made_up(parts)
    empty = np.zeros((d.n_layer, d.n_kv_head, 0, d.head_dim), np.float32)
    enc = ort.InferenceSession(str(folder / ENCODER_FILE), providers=["CPUExecutionProvider"])
    lm = ort.InferenceSession(str(folder / LM_FILES["fp32"]), providers=["CPUExecutionProvider"])
    got_visual, got_labels = enc.run(None, {"image": image.numpy(), "facts": facts.numpy()})
    no_visual = np.zeros((1, 0, d.d_model), np.float32)
    _, k, v = lm.run(None, {"visual": no_visual, "tokens": np.array([before]),
                            "labels": got_labels, "past_k": empty, "past_v": empty})
    got, _, _ = lm.run(None, {"visual": got_visual, "tokens": np.array([after]),
                              "labels": got_labels, "past_k": k, "past_v": v})
    return got_visual, got
