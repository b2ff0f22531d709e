"""Scoring speed: the vectorised suites against the per-frame loop reference, side by side.

Both score the same generated set of 78 one-minute files (13 classes, ~25 events per file) from
the same parsed tables; the loop reference is the spec's pseudo-code
(:mod:`seldbench.metrics.reference`), structured like the official scorers. Prints seconds
and the ratio per suite, then the end-to-end time of ``score_folders`` including CSV reading.

    python benchmarks/metrics_speed.py [--files 78] [--repeat 3]
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from seldbench.metrics import reference
from seldbench.metrics.score import score_folders
from seldbench.metrics.simulate import write_random_set
from seldbench.registry import get_registry


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=78)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    C = 13
    with tempfile.TemporaryDirectory() as tmp:
        write_random_set(tmp, args.files, num_classes=C, seed=0)
        refs = sorted((Path(tmp) / "ref").iterdir())
        preds = sorted((Path(tmp) / "pred").iterdir())
        print(f"{args.files} one-minute files, {C} classes; best of {args.repeat}\n")
        print(f"{'suite':<10} {'loop reference':>15} {'compiled, 1 thread':>19} {'speed-up':>9}"
              f" {'N threads':>10} {'speed-up':>9}")
        for suite in ("dcase2023", "dcase2024"):
            sc = get_registry().get_metric_suite(suite).build(C)
            tables = [(sc.read_reference(r), sc.read_prediction(p)) for r, p in zip(refs, preds)]

            def fast():
                return sc.summarise(sc.counts(tables).sum(0))

            def slow():
                total = 0
                for r, p in tables:
                    L = int(r.frame.max())
                    if suite == "dcase2024":
                        total = total + reference.frame_counts(r, p, C, L)
                    else:
                        total = total + reference.segment_counts(r, p, C, math.ceil(L / 10) * 10,
                                                                 "FP_spatial")
                return sc.summarise(total)

            a, b = fast(), slow()
            assert all(np.isclose(a[k], b[k], equal_nan=True) for k in a if k != "classwise"), \
                "vectorised and loop reference disagree"
            t_slow = best_of(slow, args.repeat)
            threads = sc.workers
            sc.workers = 1
            t_one = best_of(fast, args.repeat)
            sc.workers = threads
            t_all = best_of(fast, args.repeat)
            print(f"{suite:<10} {t_slow:>14.3f}s {t_one:>18.4f}s {t_slow / t_one:>8.0f}x"
                  f" {t_all:>9.4f}s {t_slow / t_all:>8.0f}x  ({threads} threads)")
        print()
        for suite in ("dcase2023", "dcase2024"):
            t = best_of(lambda: score_folders(Path(tmp) / "pred", Path(tmp) / "ref", suite), args.repeat)
            tj = best_of(lambda: score_folders(Path(tmp) / "pred", Path(tmp) / "ref", suite,
                                               jackknife=True), args.repeat)
            print(f"{suite}: score_folders incl. CSV reading {t:.3f}s; with jackknife {tj:.3f}s")


if __name__ == "__main__":
    main()
