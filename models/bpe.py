"""Byte-level BPE (GPT-2 style) in pure Python: text <-> token ids from a vocabulary and
its ranked merges.

Text is split by GPT-2's pre-tokenisation pattern, each piece's UTF-8 bytes are mapped
to printable characters (GPT-2's byte-to-unicode table), then the lowest-ranked merge
is applied repeatedly. Python's `re` has no `\\p{L}`/`\\p{N}`: letters are `[^\\W\\d_]`
and numbers `\\d`, which agrees with the Unicode pattern on English text.
"""

import codecs
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

# 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
PRETOKENIZE = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: every byte to a printable character (spaces become 'Ġ', etc.)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    chars = list(keep)
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, map(chr, chars), strict=True))


class ByteBPE:
    """encode(text) -> ids; decode(ids) -> text. `special` ids (control tokens such as
    <|im_start|>) are never produced by `encode` and are dropped by `decode`."""

    def __init__(self, tokens: Sequence[str], merges: Iterable[str], special: Iterable[int] = ()):
        self.tokens = list(tokens)
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.ranks = {tuple(m.split(" ", 1)): r for r, m in enumerate(merges)}
        self.special = frozenset(special)
        self.byte_char = bytes_to_unicode()
        self.char_byte = {c: b for b, c in self.byte_char.items()}
        self._bpe = lru_cache(maxsize=1 << 14)(self._merge)

    def encode(self, text: str) -> list[int]:
        out = []
        for piece in PRETOKENIZE.findall(text):
            word = "".join(self.byte_char[b] for b in piece.encode("utf-8"))
            out.extend(self._bpe(word))
        return out

    def _merge(self, word: str) -> tuple[int, ...]:
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get(p, 1 << 30), i)
                     for i, p in enumerate(zip(parts, parts[1:], strict=False))]
            rank, _ = min(pairs)
            if rank == 1 << 30:
                break
            first, second = parts[_], parts[_ + 1]
            merged, i = [], 0
            while i < len(parts):  # merge every occurrence of the best pair
                if i < len(parts) - 1 and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return tuple(self.ids[p] for p in parts)

    def token_bytes(self, token: int) -> bytes:
        """The bytes one token stands for; b'' for a special token."""
        if token in self.special:
            return b""
        return bytes(self.char_byte[c] for c in self.tokens[token])

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> "StreamDecoder":
        return StreamDecoder(self)


class StreamDecoder:
    """Token ids in one at a time, text out as soon as its UTF-8 bytes are complete."""

    def __init__(self, bpe: ByteBPE):
        self.bpe = bpe
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        return self._utf8.decode(self.bpe.token_bytes(token))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)
