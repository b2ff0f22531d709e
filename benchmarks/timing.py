"""Shared by the benchmarks: mean seconds per call after warm-up (synchronised), and the
Markdown table they print."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence


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


def print_table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A Markdown table of already formatted cells (one row per sequence)."""
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
