"""The answer model: SmolLM2-135M-Instruct on onnxruntime alone, greedy, streamed.

One ONNX graph (see `export/lm_onnx.py`): tokens (1, n), past_k/past_v (n_layer,
n_kv_head, P, head_dim) -> logits (1, n_vocab) of the last token, the grown cache. The
prompt goes through in one call (prefill), then one token per call. The tokenizer is our
own byte-level BPE (`models/bpe.py`) over the vocabulary and merges in `lm.json`.
"""

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.models.bpe import ByteBPE
from glasses.models.decoding import greedy
from glasses.models.sessions import create_session
from glasses.models.store import ModelStore
from glasses.models.streams import TimedStream

STORE_NAME = "smollm2-135m"
PRECISIONS = {"fp32": "lm.onnx", "int8": "lm.int8.onnx"}
CONFIG_FILE = "lm.json"  # dimensions, chat template, tokenizer
MAX_USER_TOKENS = 256  # the user text is cut to this many tokens (prefill cost grows with it)
MAX_SYSTEM_TOKENS = 128
MAX_CACHED_PREFIXES = 4  # distinct system + example prefixes whose KV cache is kept


class AnswerModel:
    """Short answers to a system + user prompt, streamed as text pieces."""

    def __init__(self, store: ModelStore, board: BoardProfile, precision: str = "fp32",
                 max_user_tokens: int = MAX_USER_TOKENS):
        config, weights = self.check(store, precision)
        self.config = json.loads(config.read_text())
        tok = self.config["tokenizer"]
        self.bpe = ByteBPE(tok["tokens"], tok["merges"], tok["special"])
        self.session = create_session(weights, board)
        self.max_user_tokens = max_user_tokens
        self.stop_ids = frozenset(self.config["chat"]["stop_ids"])
        d = self.config["dims"]
        self._empty = np.zeros((d["n_layer"], d["n_kv_head"], 0, d["head_dim"]), np.float32)
        self._run_options = ort.RunOptions()
        self._prefixes: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    @staticmethod
    def check(store: ModelStore, precision: str) -> tuple[Path, Path]:
        """The verified config and weights; BadInput or StoreError (naming the file) unless
        the model can load: for a model loaded only when a request needs it, at start rather
        than at that request."""
        if precision not in PRECISIONS:
            raise BadInput(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
        return store.path(STORE_NAME, CONFIG_FILE), store.path(STORE_NAME, PRECISIONS[precision])

    # -- prompt ------------------------------------------------------------------

    @staticmethod
    def prompt_ids_for(bpe: ByteBPE, config: dict, system: str, user: str,
                       max_user_tokens: int = MAX_USER_TOKENS,
                       examples: Sequence[tuple[str, str]] = ()) -> tuple[list[int], int]:
        """ChatML ids and the length of their fixed prefix.

        <|im_start|>system\\n...<|im_end|>\\n, then each example as a user and an
        assistant turn (the prefix: the same for every question), then
        <|im_start|>user\\n...<|im_end|>\\n<|im_start|>assistant\\n. The system and user
        texts are cut to their budgets."""
        chat = config["chat"]
        start, end, newline = chat["im_start_id"], chat["im_end_id"], bpe.encode("\n")

        def turn(role: str, text: str, budget: int | None = None) -> list[int]:
            body = bpe.encode(text)[:budget]  # cut by tokens: the role line is encoded alone
            return [start, *bpe.encode(f"{role}\n"), *body, end, *newline]

        prefix = turn("system", system or chat["default_system"], MAX_SYSTEM_TOKENS)
        for question, answer in examples:
            prefix += turn("user", question) + turn("assistant", answer)
        rest = turn("user", user, max_user_tokens) + [start, *bpe.encode("assistant\n")]
        return prefix + rest, len(prefix)

    def prompt_ids(self, system: str, user: str,
                   examples: Sequence[tuple[str, str]] = ()) -> tuple[list[int], int]:
        return self.prompt_ids_for(self.bpe, self.config, system, user, self.max_user_tokens,
                                   examples)

    # -- decoding ----------------------------------------------------------------

    def cancel(self) -> None:
        """Make a generation running in another thread end now (it raises)."""
        self._run_options.terminate = True

    def _prefix_cache(self, prefix: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The KV cache after `prefix`, computed once per distinct prefix."""
        key = tuple(prefix)
        if key not in self._prefixes:
            if len(self._prefixes) >= MAX_CACHED_PREFIXES:
                self._prefixes.pop(next(iter(self._prefixes)))
            feed = {"tokens": np.array([prefix], np.int64), "past_k": self._empty,
                    "past_v": self._empty}
            _, k, v = self.session.run(None, feed)
            self._prefixes[key] = (k, v)
        return self._prefixes[key]

    def tokens(self, prompt: list[int], max_tokens: int, prefix_len: int = 0
               ) -> TimedStream[int]:
        """Greedy token ids after `prompt`, up to `max_tokens`, ending before a stop token.

        The KV cache of `prompt[:prefix_len]` is kept between calls, so only the rest is
        prefilled. The stream's `timings_ms`: prefill (the prompt's call), first_token (call
        start to the first id), per_token (mean of the later steps), total, token counts."""
        return TimedStream(lambda out: self._tokens(out, prompt, max_tokens, prefix_len))

    def _tokens(self, out: TimedStream[int], prompt: list[int], max_tokens: int,
                prefix_len: int) -> Iterator[int]:
        self._run_options.terminate = False
        past_k, past_v = self._prefix_cache(prompt[:prefix_len]) if prefix_len else (
            self._empty, self._empty)
        feed = {"tokens": np.array([prompt[prefix_len:]], np.int64), "past_k": past_k,
                "past_v": past_v}
        out.timings_ms.update(prompt_tokens=len(prompt), cached_tokens=prefix_len)
        yield from greedy(self.session, feed, ("past_k", "past_v"), max_tokens, self.stop_ids,
                          self._run_options, timings=out.timings_ms)

    def generate_ids(self, prompt: list[int], max_tokens: int) -> list[int]:
        return list(self.tokens(prompt, max_tokens))

    def stream(self, system: str, user: str, max_tokens: int = 32,
               examples: Sequence[tuple[str, str]] = ()) -> TimedStream[str]:
        """Text pieces of the greedy answer as they are decoded (empty pieces skipped);
        the stream's `timings_ms` as for `tokens`.

        `examples`: (question, answer) turns shown before the user's; with the system
        text they are a prefix whose KV cache is computed once and reused."""
        return TimedStream(lambda out: self._text(out, system, user, max_tokens, examples))

    def _text(self, out: TimedStream[str], system: str, user: str, max_tokens: int,
              examples: Sequence[tuple[str, str]]) -> Iterator[str]:
        decoder = self.bpe.stream_decoder()
        ids, prefix_len = self.prompt_ids(system, user, examples)
        tokens = self.tokens(ids, max_tokens, prefix_len)
        out.timings_ms = tokens.timings_ms
        for token in tokens:
            if piece := decoder.push(token):
                yield piece
        if tail := decoder.flush():
            yield tail

    def answer(self, system: str, user: str, max_tokens: int = 32,
               examples: Sequence[tuple[str, str]] = ()) -> str:
        return "".join(self.stream(system, user, max_tokens, examples)).strip()
