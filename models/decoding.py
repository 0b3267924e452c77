"""The one greedy decoding loop with a KV cache: Whisper's decoder, the language model and
the student's all run through `greedy`.

Each of their graphs takes `tokens` (1, n) int64 and the past keys and values under two
names, and returns (logits (1, vocab), keys, values); only the names, the stop tokens and
what is masked differ.
"""

import time
from collections.abc import Callable, Collection, Iterator

import numpy as np
import onnxruntime as ort

Mask = Callable[[np.ndarray, int], None]  # (logits (vocab,), step) -> None, in place


def greedy(session: ort.InferenceSession, feed: dict[str, np.ndarray], kv: tuple[str, str],
           max_tokens: int, stop: Collection[int], run_options: ort.RunOptions | None = None,
           mask: Mask | None = None, first_step: int = 0,
           after_first: dict[str, np.ndarray] | None = None,
           timings: dict[str, float] | None = None) -> Iterator[int]:
    """Greedy token ids: `feed` holds the prompt's `tokens` and the past `kv` (names of the
    keys and values, input and output alike); decoding stops before a `stop` id or after
    `max_tokens - first_step` steps. `mask` sets logits to -inf before each choice (step
    numbers start at `first_step`); `after_first` replaces inputs after the first step (an
    input only the prompt has). `timings`, if given, gets prefill_ms (the prompt's call),
    first_token_ms, per_token_ms (mean of the later steps), total_ms and new_tokens."""
    t0 = time.perf_counter()
    steps: list[float] = []
    timings = {} if timings is None else timings
    timings["new_tokens"] = 0
    for i, step in enumerate(range(first_step, max_tokens)):
        t = time.perf_counter()
        logits, feed[kv[0]], feed[kv[1]] = session.run(None, feed, run_options)
        logits = logits[0]
        if mask is not None:
            mask(logits, step)
        token = int(np.argmax(logits))
        now = time.perf_counter()
        if i == 0:
            timings["prefill_ms"] = timings["first_token_ms"] = (now - t0) * 1e3
        else:
            steps.append(now - t)
        timings["per_token_ms"] = float(np.mean(steps) * 1e3) if steps else 0.0
        timings["total_ms"] = (now - t0) * 1e3
        if token in stop:
            return
        timings["new_tokens"] = i + 1
        yield token
        feed["tokens"] = np.array([[token]], np.int64)
        if i == 0 and after_first:
            feed.update(after_first)
