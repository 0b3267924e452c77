"""Routing accuracy: which skill each request of a routing set goes to, per router.

A routing set is a TSV, no header: the skill a request is for, then the request (casual,
indirect, with typical speech-recognition slips). Two routers are measured on it: the
skills' router (`models/router.py`: example phrasings and keywords) and, as the reference
it replaced, the hand-written rules the assistant used before (kept here, and only here,
to be measured against: they know no plug-in skill, so such requests count as misses).
`glasses eval route` prints both.
"""

import re
import time
from dataclasses import dataclass
from pathlib import Path

from glasses.device.errors import BadInput
from glasses.models.intent import COLOUR_WORDS, READ_WORDS, words
from glasses.models.router import Router

SETS = Path(__file__).parent  # routing.tsv (tuned on) and routing-holdout.tsv (not)

# the rules of models/intent.py before the router (identify phrases; else general)
IDENTIFY_PHRASES = (
    r"what (am i|are we|is he|is she|im|i am) (looking at|seeing|watching|holding)",
    r"what (is|s) (this|that|it|there|here|in front of me|ahead|on the table)",
    r"what (do|can) (you|i) see",
    r"what (kind|sort|type) of",
    r"what (thing|object|animal|bird|dog|cat|plant|food|vehicle)",
    r"what are (these|those|they)",
    r"whats (this|that|it|there|here|in front)",
    r"\b(identify|describe|recogni[sz]e|name)\b",
    r"\bwhat is (the|this|that) (thing|object)",
    r"\bwho is (this|that)",
    r"\bwhat (this|that|it) (is|are)\b",
)


def rules_before(question: str) -> str:
    text = words(question)
    if re.search(rf"\b({COLOUR_WORDS})\b", text):
        return "colour"
    if re.search(rf"\b({READ_WORDS})\b", text):
        return "read"
    if any(re.search(p, text) for p in IDENTIFY_PHRASES):
        return "identify"
    return "general"


@dataclass(frozen=True)
class RoutingCase:
    skill: str
    text: str


def read_routing_set(path: Path) -> list[RoutingCase]:
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    cases = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise BadInput(f"{path}:{n}: expected 'skill<TAB>request'")
        cases.append(RoutingCase(parts[0].strip(), parts[1].strip()))
    if not cases:
        raise BadInput(f"{path}: no routing cases")
    return cases


def evaluate_routing(cases: list[RoutingCase], router: Router) -> dict:
    """Accuracy of the router and of the rules before it; per-skill recall; the misses."""
    out = {"cases": len(cases)}
    for name, route in (("router", router.route), ("rules_before", rules_before)):
        t0 = time.perf_counter()
        got = [route(c.text) for c in cases]
        us = (time.perf_counter() - t0) / len(cases) * 1e6
        right = [g == c.skill for g, c in zip(got, cases, strict=True)]
        per_skill = {}
        for skill in sorted({c.skill for c in cases}):
            mine = [r for r, c in zip(right, cases, strict=True) if c.skill == skill]
            per_skill[skill] = round(sum(mine) / len(mine), 3)
        out[name] = {"accuracy": round(sum(right) / len(cases), 3), "right": sum(right),
                     "mean_us": round(us, 1), "per_skill": per_skill,
                     "misses": [{"text": c.text, "expected": c.skill, "got": g}
                                for g, c, r in zip(got, cases, right, strict=True) if not r]}
    return out
