"""The one place that creates onnxruntime sessions, from a board profile.

Telemetry is off: `glasses/__init__.py` sets ORT_DISABLE_TELEMETRY before onnxruntime is
first imported (it is read then), and its telemetry events are disabled here as well.
"""

import itertools
from pathlib import Path

import onnxruntime as ort

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError

START_SUFFIX = ".start"  # beside each profile: when it began, wall-clock ns
_profiles = itertools.count(1)  # numbers the profiles of one process
ort.disable_telemetry_events()


def available_providers(board: BoardProfile) -> list[str]:
    """The board's execution providers that this onnxruntime has, in preference order.

    CPU is always last, as the fallback.
    """
    have = set(ort.get_available_providers())
    chosen = [p for p in board.providers if p in have and p != "CPUExecutionProvider"]
    return [*chosen, "CPUExecutionProvider"]


def session_options(board: BoardProfile, profile_prefix: str | None = None,
                    float_qdq: bool = False) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    if float_qdq:  # see `create_session`
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    opts.intra_op_num_threads = board.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = board.memory_arena
    opts.log_severity_level = 3  # errors only
    # no busy-waiting between runs: several models share the board's few cores (VAD, speech,
    # vision); spinning threads of one session starve the others (OCR: 3-4x slower)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return opts


def create_session(path: Path, board: BoardProfile, float_qdq: bool = False
                   ) -> ort.InferenceSession:
    """An inference session for the model file at `path`, configured for `board`.

    `float_qdq`: a quantised (QDQ) model's pairs are computed in float, as written, instead
    of fused into int8 kernels; for a model quantised with full 8-bit weights elsewhere,
    whose u8 x s8 pair sums saturate on a CPU without VNNI (AVX2 alone) and change its
    outputs there.

    With `board.op_profile_dir`, onnxruntime profiles every operator of this session into
    that folder (written when the session is released), and the wall-clock time its
    profile starts from is written beside it (`<prefix>.start`), to put it on our clock.
    """
    prefix = None
    if board.op_profile_dir:
        prefix = f"{board.op_profile_dir}/{path.parent.name}-{path.stem}-{next(_profiles)}"
    try:
        session = ort.InferenceSession(
            str(path),
            sess_options=session_options(board, prefix, float_qdq),
            providers=available_providers(board),
        )
    except Exception as e:  # onnxruntime raises its own exception types
        raise StoreError(f"{path}: onnxruntime cannot load this model: {e}") from None
    if prefix:
        Path(prefix + START_SUFFIX).write_text(str(session.get_profiling_start_time_ns()))
    return session
