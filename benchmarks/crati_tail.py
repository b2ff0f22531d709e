"""CRATI's fine-tuned image-encoder tail: the library's convolutions against the drop-ins of
:mod:`seldbench_plugins.crati.convs`, side by side.

The tail (``model.image.finetune: true, finetune_blocks: n``) is the last ``n`` blocks of
EfficientNet-Lite0 before stage 3, run in eval mode (BN statistics stay pretrained) on the
cached tokens before them: 4 x 8 maps of 80 or 112 channels, one per held video frame (batch 8
of 5-s chunks with ``every: 2`` = 200 frames). Timed: forward + backward of the output's sum
to the weights (the cached input needs no gradient). The reference is the same blocks with
timm's ``nn.Conv2d`` (outputs checked equal first).

    python benchmarks/crati_tail.py                  # CPU, 1 thread
    python benchmarks/crati_tail.py --threads 2 --frames 200 800
"""
from __future__ import annotations

import argparse
import copy
import platform

import torch

from seldbench_plugins.crati.encoders import ImageEncoder
from timing import mean_step_seconds, print_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--frames", type=int, nargs="+", default=[200, 800])
    ap.add_argument("--blocks", type=int, nargs="+", default=[1, 3])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    encoder = ImageEncoder(stage=3)
    rows = []
    for n in args.blocks:
        fast = encoder.tail(n, 64, 128).blocks.eval()
        ref = torch.nn.Sequential(*copy.deepcopy(encoder._blocks()[-n:])).eval()
        channels = ImageEncoder(stage=3, cut=n).channels
        for frames in args.frames:
            x = torch.randn(frames, channels, 4, 8, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                if not torch.allclose(ref(x), fast(x), atol=1e-4):
                    raise SystemExit(f"{n} blocks, {frames} frames: outputs differ")

            def step(net):
                def run():
                    net.zero_grad()
                    net(x).sum().backward()
                return run

            t_ref = mean_step_seconds(step(ref), args.steps)
            t_new = mean_step_seconds(step(fast), args.steps)
            rows.append((n, frames, f"{1000 * t_ref:.0f}", f"{1000 * t_new:.0f}",
                         f"{t_ref / t_new:.2f}x"))
    print(f"{platform.machine()}, torch {torch.__version__}, cpu, {torch.get_num_threads()} "
          f"thread(s); mean of {args.steps} forward+backward calls after one warm-up")
    print_table(("blocks", "frames", "nn.Conv2d ms", "drop-ins ms", "speed-up"), rows)


if __name__ == "__main__":
    main()
