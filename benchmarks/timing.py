"""Timing shared by the benchmarks: mean seconds per call after warm-up, synchronised."""
from __future__ import annotations

import time
from collections.abc import Callable


def mean_step_seconds(step: Callable[[], None], steps: int, warmup: int = 1,
                      sync: Callable[[], None] | None = None) -> float:
    """Run ``step`` ``warmup`` times, then time ``steps`` calls; ``sync`` (e.g.
    ``torch.cuda.synchronize``) is called before each clock read so GPU work is counted."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - t0) / steps
