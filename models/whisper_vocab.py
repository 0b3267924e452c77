"""Whisper's vocabulary at run time: token ids to text, and the special tokens.

`vocabulary.txt` holds one GPT-2 byte-level token per line (line number = token id),
special tokens written as `<|name|>`. Decoding maps each character back to its byte.
"""

from functools import lru_cache
from pathlib import Path

from glasses.models.bpe import bytes_to_unicode

ENDS = (".", "?", "!")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's bytes_to_unicode, inverted: printable stand-in character -> byte."""
    return {c: b for b, c in bytes_to_unicode().items()}


class Vocabulary:
    def __init__(self, path: Path):
        self.tokens = Path(path).read_text(encoding="utf-8").split("\n")
        if self.tokens and self.tokens[-1] == "":
            self.tokens.pop()
        self._ids = {t: i for i, t in enumerate(self.tokens) if t.startswith("<|")}
        self.eot = self.special("endoftext")
        # the tokens that end a sentence: ".", "?", "!", with or without a space before
        self.sentence_ends = [i for i, t in enumerate(self.tokens[: self.eot])
                              if t.removeprefix("\u0120") in ENDS]  # U+0120: the space

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
