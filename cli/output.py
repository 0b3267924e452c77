"""How commands speak: progress and logs on stderr, results on stdout, JSON on request."""

import json
import sys
from typing import Any


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def result(data: dict[str, Any], as_json: bool, text: str) -> None:
    """Print `text` for people, or `data` as one JSON object when `as_json`. Text that is
    not valid Unicode (a file name's undecodable bytes) is printed with U+FFFD in their
    place: no lone surrogates in the JSON."""
    if as_json:
        print(json.dumps(_valid(data), default=str))
    else:
        print(_valid(text))


def _valid(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_valid(k): _valid(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_valid(v) for v in value]
    return value
