"""The one place that creates onnxruntime sessions, from a board profile."""

from pathlib import Path

import onnxruntime as ort

from device.boards import BoardProfile
from device.errors import StoreError


def available_providers(board: BoardProfile) -> list[str]:
    """The board's execution providers that this onnxruntime has, in preference order.

    CPU is always last, as the fallback.
    """
    have = set(ort.get_available_providers())
    chosen = [p for p in board.providers if p in have and p != "CPUExecutionProvider"]
    return [*chosen, "CPUExecutionProvider"]


def session_options(board: BoardProfile, profile_prefix: str | None = None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
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


def create_session(
    path: Path, board: BoardProfile, profile_prefix: str | None = None
) -> ort.InferenceSession:
    """An inference session for the model file at `path`, configured for `board`.

    `profile_prefix` switches on onnxruntime's per-operator profiler.
    """
    try:
        return ort.InferenceSession(
            str(path),
            sess_options=session_options(board, profile_prefix),
            providers=available_providers(board),
        )
    except Exception as e:  # onnxruntime raises its own exception types
        raise StoreError(f"{path}: onnxruntime cannot load this model: {e}") from None
