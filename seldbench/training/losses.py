"""Losses shared by the models.

:func:`adpit_loss` is the core loss for the ``multi_accdoa`` output format (docs/models.md,
"Losses"): auxiliary duplicating permutation-invariant training (ADPIT) with MSE, as in the
DCASE 2023 SELDnet baseline (Shimada et al., "Multi-ACCDOA: localizing and detecting
overlapping sounds from the same class with auxiliary duplicating permutation invariant
training", ICASSP 2022, arXiv:2110.07124; the baseline's ``MSELoss_ADPIT``). Written here from
that description, vectorised over the 13 candidate assignments.

Layouts:

- model output ``(batch, frames, 3 * V * classes)``, track-major
  ``[t0: x(C) y(C) z(C) [d(C)], t1: ..., t2: ...]`` (as :func:`seldbench.metrics.decode.
  multi_accdoa_decode` reads it), ``V = 4`` with distance, else 3;
- target ``(batch, frames, 6, V + 1, classes)`` from :func:`seldbench.data.labels.adpit_targets`
  stacked over the batch: slots ``A0 | B0 B1 | C0 C1 C2``, values ``(activity, x, y, z[,
  distance_m])``.

:func:`pit_loss` is the core loss for the ``track_wise`` output format (docs/models.md,
"Losses"; EINV2): frame-level permutation-invariant training over the ``tracks!`` (3! = 6) track
orders, BCE-with-logits for the classes and MSE for the DOA vectors. Layouts:

- model output ``(batch, frames, tracks * W)``, track-major, ``W = classes + 3 [+ 1]``: per
  track the class logits, x, y, z[, distance_m];
- target ``(batch, frames, tracks, W)`` from :meth:`seldbench.data.labels.TrackTargets.as_array`
  stacked over the batch: class one-hot (all zero for an empty track), x, y, z (0 when
  empty)[, distance_m (0 when empty)].
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
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


def stereo_output_size(num_classes: int, with_distance: bool = True) -> int:
    """Outputs per frame of a ``multi_accdoa_stereo`` model: ``3 tracks x 4 (x, y, distance,
    onscreen logit) x num_classes``."""
    return TRACKS * 4 * int(num_classes)


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


def adpit_candidate_mse(output: Tensor, target: Tensor, values: int) -> Tensor:
    """Per (batch, frame, candidate, class) MSE of a multi-ACCDOA output against the 13 ADPIT
    candidates: ``(batch, frames, 13, classes)``, float32.

    ``output``: ``(batch, frames, 3 * W * classes)`` track-major with ``W >= values`` values per
    track; only the first ``values`` of each track enter the MSE (e.g. x, y, distance of the
    2025 format, whose fourth value is an onscreen logit). ``target``: ``(batch, frames, 6,
    values + 1, classes)`` slots ``(activity, values...)``.
    """
    V = int(values)
    if target.ndim != 5 or target.shape[2] != ADPIT_SLOTS or target.shape[3] != V + 1:
        raise ValueError(f"ADPIT target has shape {tuple(target.shape)}, expected (batch, frames, "
                         f"{ADPIT_SLOTS}, {V + 1}, classes)")
    B, T, _, _, C = target.shape
    W = output.shape[-1] // (TRACKS * C) if output.ndim == 3 else 0
    if output.ndim != 3 or output.shape[:2] != (B, T) or W < V or output.shape[-1] != TRACKS * W * C:
        raise ValueError(f"multi-ACCDOA output has shape {tuple(output.shape)}, expected "
                         f"({B}, {T}, {TRACKS} x {V} x {C} = {TRACKS * V * C})")
    out = output.float().reshape(B, T, 1, TRACKS, W, C)[..., :V, :]
    cand = adpit_candidates(target.to(device=output.device, dtype=torch.float32))
    return (out - cand).square().mean(dim=(3, 4))  # (B, T, 13, C)


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
    per_cand = adpit_candidate_mse(output, target, V)
    loss = per_cand.min(dim=2).values  # (B, T, C)
    return loss.mean() if reduction == "mean" else loss


#: Weight of the onscreen BCE in :func:`stereo_adpit_loss`.
ONSCREEN_WEIGHT = 0.1


def stereo_adpit_loss(output: Tensor, target: Tensor, *, onscreen_weight: float = ONSCREEN_WEIGHT,
                      reduction: str = "mean") -> Tensor:
    """ADPIT loss of the DCASE 2025 ``multi_accdoa_stereo`` output.

    Args:
        output: ``(batch, frames, 3 * 4 * classes)`` track-major ``[t: x(C) y(C) d(C) on(C)]``,
            distance in metres, ``on`` an onscreen logit.
        target: ``(batch, frames, 6, 5, classes)`` slots ``(activity, x, y, distance_m,
            onscreen)`` from :func:`seldbench.data.labels.stereo_adpit_targets`.
        onscreen_weight: weight of the onscreen term.
        reduction: ``"mean"`` or ``"none"`` (``(batch, frames, classes)``).

    Per (batch, frame, class): the ADPIT MSE over (x, y, distance) as :func:`adpit_loss`
    (the candidate with the smallest MSE is chosen), plus ``onscreen_weight`` x the BCE of the
    onscreen logits against that candidate's onscreen flags, averaged over its active tracks
    (0 where none is active).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction '{reduction}' is not 'mean' or 'none'")
    if target.ndim != 5 or target.shape[3] != 5:
        raise ValueError(f"stereo ADPIT target has shape {tuple(target.shape)}, expected (batch, "
                         f"frames, {ADPIT_SLOTS}, 5, classes)")
    per_cand = adpit_candidate_mse(output, target[:, :, :, :4], 3)  # (B, T, 13, C)
    best = per_cand.min(dim=2)
    B, T, _, _, C = target.shape
    tgt = target.to(device=output.device, dtype=torch.float32)
    # candidate flags: activity x onscreen and activity alone, (B, T, 13, 3, 1, C) each
    on_c = adpit_candidates(tgt[:, :, :, [0, 4]])[..., 0, :]
    act_c = adpit_candidates(tgt[:, :, :, [0, 0]])[..., 0, :]
    idx = best.indices[:, :, None, None, :].expand(B, T, 1, TRACKS, C)
    on_t = on_c.gather(2, idx)[:, :, 0].clamp(0, 1)  # (B, T, 3, C)
    act_t = act_c.gather(2, idx)[:, :, 0].clamp(0, 1)
    logit = output.float().reshape(B, T, TRACKS, 4, C)[:, :, :, 3]  # (B, T, 3, C)
    bce = (F.softplus(logit) - logit * on_t) * act_t
    on_loss = bce.sum(dim=2) / act_t.sum(dim=2).clamp(min=1)  # (B, T, C)
    loss = best.values + float(onscreen_weight) * on_loss
    return loss.mean() if reduction == "mean" else loss


#: Weight of the distance MSE (metres squared) in :func:`pit_loss`. DOA errors are bounded
#: (unit vectors), distances are not: at 0.1 a 1-m error on every track (0.1) costs as much as a
#: 0.45 error in every x, y, z (0.5 * 0.2).
PIT_DISTANCE_WEIGHT = 0.1


def track_wise_output_size(num_classes: int, with_distance: bool = False,
                           tracks: int = TRACKS) -> int:
    """Outputs per frame of a track-wise model: ``tracks x (num_classes + 3 [+ 1])``."""
    return int(tracks) * (int(num_classes) + 3 + int(bool(with_distance)))


def pit_order_losses(output: Tensor, target: Tensor, *, with_distance: bool = False,
                     distance_weight: float = PIT_DISTANCE_WEIGHT) -> tuple[Tensor, Tensor]:
    """Per-frame losses of every track order (the candidates :func:`pit_loss` minimises over).

    Returns ``(losses, orders)``: ``losses`` ``(batch, frames, P)`` float32, ``0.5 * SED +
    0.5 * DOA [+ distance_weight * DIST]`` of target order ``p`` (output track ``j`` against
    target track ``orders[p, j]``); ``orders`` ``(P, tracks)`` int64, the ``tracks!`` orders,
    identity first. Shapes and terms as in :func:`pit_loss`.
    """
    if target.ndim != 4:
        raise ValueError(f"track-wise target has shape {tuple(target.shape)}, expected "
                         "(batch, frames, tracks, classes + 3 [+ 1])")
    B, T, K, W = target.shape
    C = W - 3 - int(bool(with_distance))
    if C < 1:
        raise ValueError(f"track-wise target has {W} values per track, too few for classes + "
                         f"{W - C}{' (with distance)' if with_distance else ''}")
    if output.shape != (B, T, K * W):
        raise ValueError(f"track-wise output has shape {tuple(output.shape)}, expected "
                         f"({B}, {T}, {K} tracks x ({C} classes + {W - C}) = {K * W})"
                         f"{' (with distance)' if with_distance else ''}")
    orders = torch.tensor(list(itertools.permutations(range(K))), device=output.device)
    out = output.float().reshape(B, T, 1, K, W)
    tgt = target.to(device=output.device, dtype=torch.float32)[:, :, orders]  # (B, T, P, K, W)
    logits = out[..., :C]
    # BCE with logits, softplus(x) - x y: mean over tracks and classes
    sed = (F.softplus(logits) - logits * tgt[..., :C]).mean(dim=(3, 4))  # (B, T, P)
    doa = (out[..., C:C + 3] - tgt[..., C:C + 3]).square().mean(dim=(3, 4))
    losses = 0.5 * sed + 0.5 * doa
    if with_distance:
        losses = losses + distance_weight * (out[..., C + 3] - tgt[..., C + 3]).square().mean(dim=3)
    return losses, orders


def pit_loss(output: Tensor, target: Tensor, *, with_distance: bool = False,
             distance_weight: float = PIT_DISTANCE_WEIGHT, reduction: str = "mean") -> Tensor:
    """Frame-level permutation-invariant (PIT) loss of a track-wise output (EINV2).

    Args:
        output: ``(batch, frames, tracks * W)`` track-major model output, ``W = classes + 3
            [+ 1]``: per track the class logits, x, y, z[, distance_m].
        target: ``(batch, frames, tracks, W)``: class one-hot (all zero for an empty track),
            x, y, z unit vector (0 when empty)[, distance_m (0 when empty)].
        with_distance: whether the last value of each track is a distance in metres; it cannot
            be told from the widths, so it must be given. The class count is then
            ``W - 3 - with_distance`` and the track count ``target.shape[2]``.
        distance_weight: weight of the distance MSE term (metres squared).
        reduction: ``"mean"`` (a scalar) or ``"none"`` (``(batch, frames)``, e.g. to mask
            padded frames before averaging).

    For each of the ``tracks!`` orders of the target tracks and each (batch, frame): SED = BCE
    with logits averaged over tracks and classes, DOA = squared error averaged over tracks and
    x, y, z (not masked: an empty track's target vector is 0), [DIST = squared error in metres
    averaged over tracks, not masked either]; the frame's loss is the minimum over orders of
    ``0.5 * SED + 0.5 * DOA [+ distance_weight * DIST]`` (without distance: the order with the
    smallest SED + DOA sum); then the mean over batch and frames. Computed in float32.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction '{reduction}' is not 'mean' or 'none'")
    losses, _ = pit_order_losses(output, target, with_distance=with_distance,
                                 distance_weight=distance_weight)
    loss = losses.min(dim=2).values  # (B, T)
    return loss.mean() if reduction == "mean" else loss


__all__ = ["ADPIT_SLOTS", "ONSCREEN_WEIGHT", "PIT_DISTANCE_WEIGHT", "TRACKS", "adpit_candidates",
           "adpit_candidate_mse", "adpit_loss", "multi_accdoa_output_size", "stereo_adpit_loss",
           "stereo_output_size", "pit_loss", "pit_order_losses", "track_wise_output_size"]


def core_loss(output: str, with_distance: bool = False):
    """The core loss of an output format as ``loss(output, target) -> scalar``: ADPIT MSE for
    ``multi_accdoa``, PIT BCE + MSE for ``track_wise`` (distance terms ``with_distance``),
    ADPIT MSE + onscreen BCE for ``multi_accdoa_stereo``."""
    from functools import partial

    from seldbench.errors import SeldbenchError

    if output == "multi_accdoa_stereo":
        return stereo_adpit_loss
    losses = {"multi_accdoa": adpit_loss, "track_wise": pit_loss}
    if output not in losses:
        raise SeldbenchError(f"output '{output}' has no core loss; give the ModelSpec a loss")
    return partial(losses[output], with_distance=bool(with_distance))
