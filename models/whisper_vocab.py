"""Whisper's vocabulary at run time: token ids to text, and the special tokens.

`vocabulary.txt` holds one GPT-2 byte-level token per line (line number = token id),
special tokens written as `<|name|>`. Decoding maps each character back to its byte.
"""

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's bytes_to_unicode, inverted: printable stand-in character -> byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


class Vocabulary:
    def __init__(self, path: Path):
        self.tokens = Path(path).read_text(encoding="utf-8").split("\n")
        if self.tokens and self.tokens[-1] == "":
            self.tokens.pop()
        self._ids = {t: i for i, t in enumerate(self.tokens) if t.startswith("<|")}
        self.eot = self.special("endoftext")

    def __len__(self) -> int:
        return len(self.tokens)

    def special(self, name: str) -> int:
        """Id of `<|name|>`; KeyError if this vocabulary has none."""
        return self._ids[f"<|{name}|>"]

    def is_special(self, token: int) -> bool:
        return self.tokens[token].startswith("<|") and self.tokens[token].endswith("|>")

    def decode(self, ids: list[int]) -> str:
        """Text of the non-special tokens in `ids`."""
        table = _byte_decoder()
        data = bytearray()
        for i in ids:
            if i < len(self.tokens) and not self.is_special(i):
                data.extend(table[c] for c in self.tokens[i] if c in table)
        return data.decode("utf-8", errors="replace")
