"""Sentence embeddings for searching by meaning: all-MiniLM-L6-v2 (ONNX), 384-d.

The store entry `text-embedder` is built by `export/embedder_build.py`. Its graphs take
token ids and an attention mask and return the sentence embedding itself: mean-pooled over
the real tokens (the mask) and L2-normalised inside the graph, so the dot product of two
embeddings is their cosine. The tokenizer is BERT's uncased WordPiece, in plain Python,
read from the entry's `vocab.txt` and `embedder.json`; it gives the ids `transformers`'
BertTokenizer gives for this vocabulary.
"""

import json
import unicodedata
from pathlib import Path

import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput, StoreError
from glasses.models.sessions import create_session
from glasses.models.store import ModelStore

MODEL = "text-embedder"
FILES = {"fp32": "embedder.onnx", "int8": "embedder.int8.onnx"}
# on every board: weight-only int8 is within cosine 0.997 of fp32 (the build checks it),
# memory search's best match was the same for 11 of 12 questions over 376 moments (the
# twelfth a near tie) and it costs 50 MB resident instead of 142
PRECISION = "int8"
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "embedder.json"  # tokenizer settings, dimensions, graph names
DIM = 384  # embedding size
MAX_TOKENS = 128  # per text, [CLS] and [SEP] included; longer texts are truncated
BATCH = 32  # texts per session run
MAX_WORD_CHARS = 100  # a longer word becomes [UNK], as in BERT
MAX_CHARS = MAX_TOKENS * 1024  # of a text, read at most: enough for MAX_TOKENS pieces
CACHE_WORDS = 50_000  # word -> pieces, remembered until this many (then cleared)
# CJK ideographs get spaces around them, each its own word (BERT's blocks)
CJK_BLOCKS = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    """ASCII symbols count too ($, +, ^, `...), as in BERT."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(a <= cp <= b for a, b in CJK_BLOCKS)


def basic_words(text: str, lowercase: bool = True) -> list[str]:
    """BERT's basic tokenisation: drop control characters, whitespace to spaces, CJK
    ideographs apart, accents stripped and lowercased (with `lowercase`), then split on
    whitespace and around every punctuation character."""
    chars = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            chars.append(" ")
        elif _is_cjk(cp):
            chars.append(f" {ch} ")
        else:
            chars.append(ch)
    text = "".join(chars)
    if lowercase:
        text = "".join(c for c in unicodedata.normalize("NFD", text)
                       if unicodedata.category(c) != "Mn")
        # character by character: str.lower() would turn a final capital sigma into "ς"
        text = "".join(c.lower() for c in text) if "Σ" in text else text.lower()
    words = []
    for token in text.split():
        start = 0
        for i, ch in enumerate(token):
            if _is_punctuation(ch):
                if i > start:
                    words.append(token[start:i])
                words.append(ch)
                start = i + 1
        if start < len(token):
            words.append(token[start:])
    return words


class WordPieceTokenizer:
    """Text -> BERT token ids: [CLS] pieces [SEP], at most `max_tokens` in all."""

    def __init__(self, vocab: list[str], lowercase: bool = True, max_tokens: int = MAX_TOKENS,
                 unk: str = "[UNK]", cls: str = "[CLS]", sep: str = "[SEP]",
                 pad: str = "[PAD]"):
        self.ids = {piece: i for i, piece in enumerate(vocab)}
        missing = [t for t in (unk, cls, sep, pad) if t not in self.ids]
        if missing:
            raise StoreError(f"the vocabulary lacks {', '.join(missing)}")
        if max_tokens < 2:
            raise BadInput(f"max_tokens must be at least 2, got {max_tokens}")
        self.lowercase, self.max_tokens = lowercase, max_tokens
        self.unk_id, self.cls_id = self.ids[unk], self.ids[cls]
        self.sep_id, self.pad_id = self.ids[sep], self.ids[pad]
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_files(cls, vocab_path: Path, config: dict) -> "WordPieceTokenizer":
        """`vocab.txt` (one piece a line, the id is the line number) and the settings of
        `embedder.json`."""
        vocab = vocab_path.read_text(encoding="utf-8").split("\n")
        if vocab and vocab[-1] == "":
            vocab.pop()
        special = config.get("special_tokens", {})
        return cls(vocab, bool(config.get("lowercase", True)),
                   int(config.get("max_tokens", MAX_TOKENS)), **special)

    def pieces(self, word: str) -> list[int]:
        """One word -> its WordPiece ids: greedy longest match, later pieces `##`-prefixed;
        [UNK] for the whole word when some part matches nothing."""
        if (hit := self._cache.get(word)) is not None:
            return hit
        out = [self.unk_id] if len(word) > MAX_WORD_CHARS else self._longest_match(word)
        if len(self._cache) >= CACHE_WORDS:
            self._cache.clear()
        self._cache[word] = out
        return out

    def _longest_match(self, word: str) -> list[int]:
        out, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if (found := self.ids.get(piece)) is not None:
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            out.append(found)
            start = end
        return out

    def encode(self, text: str) -> list[int]:
        """text -> [CLS] ids [SEP], truncated to `max_tokens` ids in all."""
        budget = self.max_tokens - 2
        ids: list[int] = []
        for word in basic_words(text[:MAX_CHARS], self.lowercase):
            ids += self.pieces(word)
            if len(ids) >= budget:
                break
        return [self.cls_id, *ids[:budget], self.sep_id]

    def pad(self, encoded: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Id lists -> (ids, attention mask), each int64 (n, longest), padded at the end."""
        longest = max(len(e) for e in encoded)
        ids = np.full((len(encoded), longest), self.pad_id, np.int64)
        mask = np.zeros((len(encoded), longest), np.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = e
            mask[row, : len(e)] = 1
        return ids, mask


class TextEmbedder:
    """Texts -> unit-length 384-d vectors; similar meanings have a high dot product."""

    def __init__(self, store: ModelStore, board: BoardProfile, precision: str = PRECISION):
        """`precision`: "fp32" or "int8"."""
        if precision not in FILES:
            raise BadInput(f"precision must be one of {', '.join(FILES)}, got {precision!r}")
        self.precision = precision
        config = json.loads(store.path(MODEL, CONFIG_FILE).read_text(encoding="utf-8"))
        if config.get("dim") != DIM:
            raise StoreError(f"{MODEL}: embeddings of {config.get('dim')} dimensions, "
                             f"expected {DIM}; run `glasses models prepare`")
        self.tokenizer = WordPieceTokenizer.from_files(store.path(MODEL, VOCAB_FILE), config)
        self._session = create_session(store.path(MODEL, FILES[precision]), board)
        self._inputs = tuple(config.get("inputs", ("input_ids", "attention_mask")))

    def embed(self, texts: list[str]) -> np.ndarray:
        """texts (n,) -> embeddings (n, 384) float32, L2-normalised; (0, 384) for [].

        Texts are run in batches of `BATCH`, grouped by length so little is padding;
        the rows come back in the order of `texts`. Each text is cut at `MAX_TOKENS`.
        """
        if isinstance(texts, str) or not isinstance(texts, list | tuple):
            raise BadInput(f"texts must be a list of strings, got {type(texts).__name__}")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise BadInput(f"texts[{i}] must be a string, got {type(text).__name__}")
        out = np.zeros((len(texts), DIM), np.float32)
        encoded = [self.tokenizer.encode(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            ids, mask = self.tokenizer.pad([encoded[i] for i in rows])
            feed = dict(zip(self._inputs, (ids, mask), strict=True))
            out[rows] = self._session.run(None, feed)[0]
        return out
