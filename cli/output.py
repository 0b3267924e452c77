"""How commands speak: progress and logs on stderr, results on stdout, JSON on request."""

import json
import sys
from typing import Any


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def result(data: dict[str, Any], as_json: bool, text: str) -> None:
    """Print `text` for people, or `data` as one JSON object when `as_json`."""
    if as_json:
        print(json.dumps(data, default=str))
    else:
        print(text)
