"""Losses shared by the models.

:func:`adpit_loss` is the core loss for the ``multi_accdoa`` output format (spec/models.md
section 1): auxiliary duplicating permutation-invariant training (ADPIT) with MSE, as in the
DCASE 2023 SELDnet baseline (Shimada et al., "Multi-ACCDOA: localizing and detecting
overlapping sounds from the same class with auxiliary duplicating permutation invariant
training", ICASSP 2022, arXiv:2110.07124; the baseline's ``MSELoss_ADPIT``). Written here from
the spec, vectorised over the 13 candidate assignments.

Layouts:

- model output ``(batch, frames, 3 * V * classes)``, track-major
  ``[t0: x(C) y(C) z(C) [d(C)], t1: ..., t2: ...]`` (as :func:`seldbench.metrics.decode.
  multi_accdoa_decode` reads it), ``V = 4`` with distance, else 3;
- target ``(batch, frames, 6, V + 1, classes)`` from :func:`seldbench.data.labels.adpit_targets`
  stacked over the batch: slots ``A0 | B0 B1 | C0 C1 C2``, values ``(activity, x, y, z[,
  distance_m])``.
"""
from __future__ import annotations

import torch
from torch import Tensor

#: Number of ADPIT slots (A0, B0, B1, C0, C1, C2) in a target.
ADPIT_SLOTS = 6
#: Output tracks of a multi-ACCDOA model.
TRACKS = 3

# The 13 candidate assignments of slots to the 3 output tracks (slot indices): A0A0A0; the six
# B orders B0B0B1, B0B1B0, B0B1B1, B1B0B0, B1B0B1, B1B1B0; the six orders of C0C1C2.
_CANDIDATES = (
    (0, 0, 0),
    (1, 1, 2), (1, 2, 1), (1, 2, 2), (2, 1, 1), (2, 1, 2), (2, 2, 1),
    (3, 4, 5), (3, 5, 4), (4, 3, 5), (4, 5, 3), (5, 3, 4), (5, 4, 3),
)
# Group of each candidate: 0 = A (one event of the class), 1 = B (two), 2 = C (three).
_GROUP = (0,) + (1,) * 6 + (2,) * 6
# The canonical candidate of each group (A0A0A0, B0B0B1, C0C1C2), used to add the other
# groups' targets to a candidate ("padding", so an inactive group does not pull to zero).
_CANONICAL = (0, 1, 7)


def multi_accdoa_output_size(num_classes: int, with_distance: bool = False) -> int:
    """Outputs per frame of a multi-ACCDOA model: ``3 tracks x (3 or 4) x num_classes``."""
    return TRACKS * (4 if with_distance else 3) * int(num_classes)


def adpit_candidates(target: Tensor) -> Tensor:
    """The 13 candidate track targets of an ADPIT target.

    ``target``: ``(batch, frames, 6, V + 1, classes)``. Returns ``(batch, frames, 13, 3, V,
    classes)``: for candidate ``k`` and track ``j``, the slot target activity x (x, y, z[, d])
    of the slot the candidate puts on track ``j``, plus the canonical targets of the two other
    groups (A0A0A0, B0B0B1, C0C1C2), as in the official ``MSELoss_ADPIT``.
    """
    slots = target[:, :, :, :1] * target[:, :, :, 1:]  # (B, T, 6, V, C)
    idx = torch.tensor(_CANDIDATES, device=target.device)
    cand = slots[:, :, idx]  # (B, T, 13, 3, V, C)
    a, b, c = (cand[:, :, k] for k in _CANONICAL)  # (B, T, 3, V, C) each
    pad = torch.stack((b + c, a + c, a + b), dim=2)  # (B, T, 3 groups, 3, V, C)
    return cand + pad[:, :, list(_GROUP)]


def adpit_loss(output: Tensor, target: Tensor, *, with_distance: bool = False,
               reduction: str = "mean") -> Tensor:
    """ADPIT MSE loss of a multi-ACCDOA output.

    Args:
        output: ``(batch, frames, 3 * V * classes)`` track-major model output, ``V = 4`` with
            distance (metres) else 3.
        target: ``(batch, frames, 6, V + 1, classes)`` ADPIT slots ``(activity, x, y, z[,
            distance_m])`` from :func:`seldbench.data.labels.adpit_targets`.
        with_distance: whether output and target carry distance.
        reduction: ``"mean"`` (a scalar) or ``"none"`` (``(batch, frames, classes)``, e.g. to
            mask padded frames before averaging).

    Per (batch, frame, class): the MSE over 3 tracks x V values against each of the 13
    candidate assignments (:func:`adpit_candidates`), the minimum over candidates; then the
    mean over batch, frames and classes. Computed in float32.
    """
    V = 4 if with_distance else 3
    if target.ndim != 5 or target.shape[2] != ADPIT_SLOTS or target.shape[3] != V + 1:
        raise ValueError(f"ADPIT target has shape {tuple(target.shape)}, expected (batch, frames, "
                         f"{ADPIT_SLOTS}, {V + 1}, classes)"
                         f"{' (with distance)' if with_distance else ''}")
    B, T, _, _, C = target.shape
    if output.shape != (B, T, TRACKS * V * C):
        raise ValueError(f"multi-ACCDOA output has shape {tuple(output.shape)}, expected "
                         f"({B}, {T}, {TRACKS} x {V} x {C} = {TRACKS * V * C})")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction '{reduction}' is not 'mean' or 'none'")
    out = output.float().reshape(B, T, 1, TRACKS, V, C)
    cand = adpit_candidates(target.to(device=output.device, dtype=torch.float32))
    per_cand = (out - cand).square().mean(dim=(3, 4))  # (B, T, 13, C)
    loss = per_cand.min(dim=2).values  # (B, T, C)
    return loss.mean() if reduction == "mean" else loss


__all__ = ["ADPIT_SLOTS", "TRACKS", "multi_accdoa_output_size", "adpit_candidates", "adpit_loss"]
