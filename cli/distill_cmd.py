"""`glasses distill`: make the look-and-tell student from the teacher."""

import argparse
from pathlib import Path

from glasses.cli.output import progress, result
from glasses.device.errors import BadInput
from glasses.models.store import ModelStore


def register(commands) -> None:
    p = commands.add_parser(
        "distill", help="train the distilled look-and-tell student from the teacher",
        description="Make the student (the teacher's classifier and people count -> visual "
        "tokens -> 8 of SmolLM2's 30 layers with low-rank adapters and a head over the words "
        "answers need) and store it as `look-student`: the teacher answers made-up training "
        "and held-out questions about photos, signs and coloured objects; the projectors, "
        "adapters and head are trained on its answers token by token; what training changed "
        "(the delta) is written to WORK/delta; the student is assembled from it as `glasses "
        "models prepare` does, exported to ONNX (fp32, and int8 for the language model) and "
        "checked against torch. Copy WORK/delta/* to export/student/ to commit it. Progress "
        "goes to stderr; a checkpoint is written every 25 steps, and a run that stops "
        "resumes from it. Needs the export tools (torch). Then compare: glasses eval look "
        "WORK/heldout --model student (agreement with the teacher), and on a look-and-tell "
        "set with --model student and --model teacher.",
        epilog="examples: glasses distill (about 25 minutes on 2 cores, 7 of them training); "
        "glasses distill --ray (the teacher's answers on a Ray started here)",
    )
    p.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    p.add_argument("--batch", type=int, default=8, help="examples per step (default 8)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="scale the number of examples made (default 1: 2340 train, 100 "
                   "held out)")
    p.add_argument("--work", type=Path, metavar="DIR",
                   help="data, cached features and the checkpoint (default $GLASSES_HOME/"
                   "distill)")
    p.add_argument("--fresh", action="store_true",
                   help="start over: delete the work folder's data and checkpoint first (only a "
                   "folder glasses distill made: it holds a .glasses-distill marker)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="have the teacher answer the questions on Ray workers, one per CPU: "
                   "alone, a Ray started on this machine for the run; with an address, a "
                   "running cluster's (each node needs glasses and this model store). The "
                   "data, and so the student, are the same as without it. Needs "
                   "pip install -e '.[ray]'")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=_distill)


def _distill(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.batch < 1 or not 0 < args.scale <= 10:
        raise BadInput("--steps and --batch must be at least 1, --scale in (0, 10]")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise BadInput("glasses distill needs the export tools: pip install -e '.[export]' "
                       "(torch==2.13.0 first)") from None
    from glasses.export.distill import TrainOptions
    from glasses.export.distill_build import build_student, claim_work
    from glasses.export.student import StudentDims

    store = ModelStore()
    work = args.work or store.home / "distill"
    claim_work(work, args.fresh)
    progress(f"glasses: distilling into {store.home} (work in {work})")
    figures = build_student(store, work, TrainOptions(steps=args.steps, batch=args.batch),
                            args.scale, StudentDims(), progress, ray=args.ray)
    figures["heldout"] = str(work / "heldout")
    result(figures, args.json,
           f"look-student stored: {figures['steps']} steps over {figures['examples']} "
           f"examples, loss {figures['first_loss']:.2f} -> {figures['final_loss']:.2f}, "
           f"{figures['train_minutes']:.1f} min; ONNX within {figures['logit_max_abs_diff']:.1e}"
           f" of torch; delta in {figures['delta']}.\nagreement with the teacher: glasses "
           f"eval look {work / 'heldout'} --model student")
    return 0
