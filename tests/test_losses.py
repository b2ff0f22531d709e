"""ADPIT MSE loss (seldbench.training.losses) against a brute-force reference."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from seldbench.data.labels import adpit_targets
from seldbench.metrics.csvio import make_table
from seldbench.training.losses import adpit_loss, multi_accdoa_output_size

C, T, B = 4, 8, 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_table(rng: np.random.Generator, frames: int, classes: int):
    """Each (frame, class) holds 0, 1, 2 or 3 events (sources 0..k-1), random directions."""
    rows = []
    for f in range(frames):
        for c in range(classes):
            for s in range(rng.choice(4, p=[0.4, 0.2, 0.2, 0.2])):
                rows.append((f, c, s, rng.uniform(-180, 180), rng.uniform(-90, 90),
                             rng.uniform(20, 500)))
    a = np.array(rows, np.float64).reshape(-1, 6)
    return make_table(a[:, 0], a[:, 1], a[:, 2], a[:, 3:5], a[:, 5], layout="fctaed")


def batch_targets(seed: int, with_distance: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([adpit_targets(random_table(rng, T, C), T, C, with_distance=with_distance)
                     for _ in range(B)])  # (B, T, 6, V + 1, C)


def candidates(slots: list[np.ndarray]) -> list[np.ndarray]:
    """The 13 ADPIT candidates for one (batch, frame, class), built independently of the
    library: ``slots`` are the 6 slot targets (activity x values); each candidate is a
    (3 tracks, V) array plus the canonical targets of the two other groups."""
    a0, b0, b1, c0, c1, c2 = slots
    group_a = [[a0, a0, a0]]
    group_b = [list(p) for p in itertools.product((b0, b1), repeat=3)
               if any(x is b0 for x in p) and any(x is b1 for x in p)]
    group_c = [list(p) for p in itertools.permutations((c0, c1, c2))]
    assert len(group_b) == 6 and len(group_c) == 6
    canon = {"A": np.stack([a0, a0, a0]), "B": np.stack([b0, b0, b1]),
             "C": np.stack([c0, c1, c2])}
    out = []
    for name, group in (("A", group_a), ("B", group_b), ("C", group_c)):
        pad = sum(v for k, v in canon.items() if k != name)
        out += [np.stack(cand) + pad for cand in group]
    return out


def brute_force(output: np.ndarray, target: np.ndarray, V: int) -> float:
    total, n = 0.0, 0
    for b, t, c in itertools.product(range(B), range(T), range(C)):
        slots = [target[b, t, s, 0, c] * target[b, t, s, 1:, c] for s in range(6)]
        out = np.array([[output[b, t, k * V * C + v * C + c] for v in range(V)]
                        for k in range(3)])  # track-major x(C) y(C) z(C) [d(C)]
        total += min(float(np.mean((out - cand) ** 2)) for cand in candidates(slots))
        n += 1
    return total / n


@pytest.mark.parametrize("with_distance", [False, True])
def test_adpit_loss_equals_brute_force(with_distance):
    V = 4 if with_distance else 3
    target = batch_targets(1 + with_distance, with_distance)
    counts = target[:, :, :, 0].sum(axis=2)  # events per (b, t, c): every case occurs
    assert {0, 1, 2, 3} <= set(np.unique(counts).tolist())
    output = np.random.default_rng(5).normal(0, 0.7, (B, T, multi_accdoa_output_size(C, with_distance)))
    got = adpit_loss(torch.tensor(output, dtype=torch.float32), torch.tensor(target),
                     with_distance=with_distance)
    assert got.shape == ()
    assert float(got) == pytest.approx(brute_force(output, target, V), rel=1e-5)


@pytest.mark.parametrize("with_distance", [False, True])
def test_adpit_loss_zero_at_best_assignment(with_distance):
    V = 4 if with_distance else 3
    target = batch_targets(3, with_distance)
    rng = np.random.default_rng(0)
    out = np.zeros((B, T, 3, V, C), np.float32)
    for b, t, c in itertools.product(range(B), range(T), range(C)):
        slots = [target[b, t, s, 0, c] * target[b, t, s, 1:, c] for s in range(6)]
        n = int(target[b, t, :, 0, c].sum())
        if n == 1:
            tracks = [slots[0]] * 3
        elif n == 2:  # any order that uses both B slots
            tracks = [slots[1], slots[2], slots[int(rng.integers(1, 3))]]
            rng.shuffle(tracks)
        elif n == 3:
            tracks = [slots[i] for i in rng.permutation([3, 4, 5])]
        else:
            continue
        out[b, t, :, :, c] = np.stack(tracks)
    output = torch.tensor(out.reshape(B, T, -1), requires_grad=True)
    loss = adpit_loss(output, torch.tensor(target), with_distance=with_distance)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-12)
    perturbed = adpit_loss(output + 0.1, torch.tensor(target), with_distance=with_distance)
    assert float(perturbed.detach()) > 0
    perturbed.backward()
    assert torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0


def test_reduction_none_and_shape_errors():
    target = torch.tensor(batch_targets(4, False))
    output = torch.randn(B, T, 3 * 3 * C)
    per = adpit_loss(output, target, reduction="none")
    assert per.shape == (B, T, C)
    assert float(per.mean()) == pytest.approx(float(adpit_loss(output, target)), rel=1e-6)
    with pytest.raises(ValueError, match=r"expected \(3, 8, 3 x 3 x 4 = 36\)"):
        adpit_loss(torch.randn(B, T, 3 * 4 * C), target)
    with pytest.raises(ValueError, match="with distance"):
        adpit_loss(torch.randn(B, T, 3 * 4 * C), target, with_distance=True)


def test_output_size():
    assert multi_accdoa_output_size(13) == 117
    assert multi_accdoa_output_size(13, with_distance=True) == 156
