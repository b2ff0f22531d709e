"""The cost of ``train.augment`` against the training step it precedes, side by side.

Each augmentation runs on a batch of 8 five-second FOA chunks (``(8, 7, 250, 64)`` features,
ADPIT targets of 13 classes); the reference is one CRNN training step (forward, ADPIT loss,
backward, Adam) on the same batch, timed in the same run. The ratio is what the augmentation
adds to a step.

    python benchmarks/augment_cost.py                  # CPU, 1 thread
"""
from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from seldbench.training.augment import build_augmenter
from seldbench.training.plan import assemble, make_loss, plan_run
from timing import mean_step_seconds, print_table

RECIPES = {
    "channel_swap": [{"name": "channel_swap"}],
    "spec_mask": [{"name": "spec_mask"}],
    "mixup": [{"name": "mixup", "p": 1.0}],
    "all three": [{"name": "channel_swap"}, {"name": "spec_mask"}, {"name": "mixup"}],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    plan = plan_run("crnn", "synth-mini")
    built = assemble(plan, "cpu")
    model, loss = built.model, make_loss(plan, built)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(8, 7, 250, 64)
    y = torch.zeros(8, 50, 6, 4, 13)
    y[:, :, 0, 0, 3] = 1.0
    y[:, :, 0, 1, 3] = 1.0

    def step() -> None:
        out = model(x)
        value = loss(out, y)
        opt.zero_grad()
        value.backward()
        opt.step()

    rng = np.random.default_rng(0)
    mean, std = rng.standard_normal((7, 64)), rng.uniform(0.5, 2.0, (7, 64))
    rows = []
    for name, entries in RECIPES.items():
        aug = build_augmenter(entries, feature="foa_logmel_iv", mean=mean, std=std,
                              output="multi_accdoa", num_classes=13, has_side_inputs=False,
                              seed=0)
        t_aug = mean_step_seconds(lambda: aug(x, y, {}), args.steps)
        t_step = mean_step_seconds(step, args.steps)
        rows.append([name, f"{t_aug * 1e3:.1f}", f"{t_step * 1e3:.1f}", f"{t_aug / t_step:.3f}"])
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s)")
    print_table(["augment", "augment ms", "CRNN step ms", "ratio"], rows)


if __name__ == "__main__":
    main()
