"""CRATI's contrastive positives: packed row equality against the plain broadcast, side by side.

Two frames are positives when their keys (active classes x azimuth sectors, ``(N, K)`` bool)
are equal. The reference compares every pair of rows element by element, an ``(N, N, K)``
boolean tensor; :func:`seldbench_plugins.crati.loss.same_keys` packs each row into 62-bit
integers first. Both give the same ``(N, N)`` matrix (checked here on every size). Keys are
drawn like the training set's: a few hundred distinct rows, most frames sharing one.

    python benchmarks/crati_positives.py                  # CPU, 1 thread
    python benchmarks/crati_positives.py --device cuda
"""
from __future__ import annotations

import argparse
import platform

import torch

from seldbench_plugins.crati.loss import same_keys
from timing import mean_step_seconds, print_table


def broadcast(keys: torch.Tensor) -> torch.Tensor:
    return (keys[:, None, :] == keys[None, :, :]).all(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    g = torch.Generator().manual_seed(0)
    rows = []
    # 13 classes x 8 sectors (crati-einv2-cpu), or classes only; 400 frames = batch 8 x 50
    for n, k in ((400, 104), (512, 104), (400, 13), (2048, 104)):
        distinct = torch.rand(min(n, 300), k, generator=g) < 0.05
        keys = distinct[torch.randint(0, len(distinct), (n,), generator=g)].to(dev)
        if not torch.equal(same_keys(keys), broadcast(keys)):
            raise SystemExit(f"N={n}, K={k}: packed positives differ from the reference")
        ref = mean_step_seconds(lambda: broadcast(keys), args.steps, sync=sync)
        new = mean_step_seconds(lambda: same_keys(keys), args.steps, sync=sync)
        rows.append((n, k, f"{1000 * ref:.2f}", f"{1000 * new:.3f}", f"{ref / new:.0f}x"))
    print(f"{platform.machine()}, torch {torch.__version__}, {args.device}, "
          f"{torch.get_num_threads()} thread(s); mean of {args.steps} calls after one warm-up")
    print_table(("frames N", "keys K", "broadcast ms", "packed ms", "speed-up"), rows)


if __name__ == "__main__":
    main()
