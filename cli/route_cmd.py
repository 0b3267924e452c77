"""`glasses eval route [FILE...]`: routing accuracy of the skills' router and the old rules."""

import argparse
from pathlib import Path

from glasses.cli.asr_cmd import eval_commands
from glasses.cli.output import progress, result
from glasses.evaluation.routing import SETS, evaluate_routing, read_routing_set
from glasses.pipelines.memory_skills import memory_skills
from glasses.pipelines.skills import builtin_skills, discover, router_for


def register(commands) -> None:
    p = eval_commands(commands).add_parser(
        "route", help="which skill each request goes to: the router against the old rules",
        description="Route every request of a routing set (TSV: skill, TAB, request) with "
        "the skills' router (the built-in skills, the memory skills and every installed "
        "plug-in skill) and with the hand-written rules it replaced, and print the accuracy "
        "of each, per skill, and the misses. With no FILE: the two sets shipped in "
        "glasses/evaluation (routing.tsv, on which the example phrasings were tuned, and "
        "routing-holdout.tsv, which was not looked at while writing them). Their timer "
        "requests need the example skill: pip install ./examples/timer-skill.",
        epilog="example: glasses eval route --json",
    )
    p.add_argument("files", type=Path, nargs="*", metavar="FILE", help="routing sets")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=_eval_route)


def _eval_route(args: argparse.Namespace) -> int:
    plugins, problems = discover()
    for line in problems:
        progress(f"glasses: {line}")
    skills = builtin_skills() + memory_skills() + plugins
    router = router_for(skills)
    files = args.files or [SETS / "routing.tsv", SETS / "routing-holdout.tsv"]
    out = {"skills": [s.name for s in skills], "sets": {}}
    lines = [f"skills: {', '.join(out['skills'])}"]
    for path in files:
        r = out["sets"][path.name] = evaluate_routing(read_routing_set(path), router)
        a, b = r["router"], r["rules_before"]
        lines.append(f"{path.name}: {r['cases']} requests; router {a['accuracy']:.1%} "
                     f"({a['right']}, {a['mean_us']:.0f} us each), rules before "
                     f"{b['accuracy']:.1%} ({b['right']})")
        lines += [f"  router missed: {m['text']!r} ({m['expected']} -> {m['got']})"
                  for m in a["misses"]]
    result(out, args.json, "\n".join(lines))
    return 0
