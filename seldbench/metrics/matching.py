"""Angular distances and the per-(frame, class) assignment shared by every DCASE suite.

The official scorers call scipy's ``linear_sum_assignment`` once per frame and class. Here all
pairs of all groups are costed in one vectorised call, every group with at most 3 entries per
side is solved by evaluating its 6 (padded) assignments at once, and only larger groups and
(near-)ties between different pairings - where scipy's own choice decides - go through scipy.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

_PERMS = np.array(list(itertools.permutations(range(3))))  # (6, 3)
_TIE = 1e-9  # degrees: totals this close are decided by scipy, as in the official code


def angle_polar_deg(az1, el1, az2, el2) -> np.ndarray:
    """Great-circle angle in degrees between directions given in degrees (exact 0 for equal)."""
    a1, e1, a2, e2 = (np.asarray(v, np.float64) * np.pi / 180.0 for v in (az1, el1, az2, el2))
    d = np.sin(e1) * np.sin(e2) + np.cos(e1) * np.cos(e2) * np.cos(np.abs(a1 - a2))
    return np.arccos(np.clip(d, -1, 1)) * 180 / np.pi


def angle_cartesian_deg(v1: np.ndarray, v2: np.ndarray) -> np.ndarray:
    """Angle in degrees between ``(N, 3)`` vectors, each normalised by ``sqrt(|v|^2 + 1e-10)``
    as the official 2024 code does (so identical unit vectors are ~0.0008 degrees apart)."""
    n1 = np.sqrt(v1[:, 0] ** 2 + v1[:, 1] ** 2 + v1[:, 2] ** 2 + 1e-10)
    n2 = np.sqrt(v2[:, 0] ** 2 + v2[:, 1] ** 2 + v2[:, 2] ** 2 + 1e-10)
    d = (v1[:, 0] / n1) * (v2[:, 0] / n2) + (v1[:, 1] / n1) * (v2[:, 1] / n2) \
        + (v1[:, 2] / n1) * (v2[:, 2] / n2)
    return np.arccos(np.clip(d, -1, 1)) * 180 / np.pi


def polar_terms(azel_deg: np.ndarray) -> np.ndarray:
    """Per-row terms of :func:`angle_polar_deg`: ``(N, 3)`` azimuth (rad), sin and cos of
    elevation, so a pair costs one cosine."""
    az = azel_deg[:, 0] * np.pi / 180.0
    el = azel_deg[:, 1] * np.pi / 180.0
    return np.stack([az, np.sin(el), np.cos(el)], axis=1)


def angle_polar_terms(r: np.ndarray, p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`angle_polar_deg` of rows ``a`` of ``r`` and ``b`` of ``p`` (:func:`polar_terms`),
    with the same floating-point operations."""
    d = r[a, 1] * p[b, 1] + r[a, 2] * p[b, 2] * np.cos(np.abs(r[a, 0] - p[b, 0]))
    return np.arccos(np.clip(d, -1, 1)) * 180 / np.pi


def unit_terms(xyz: np.ndarray) -> np.ndarray:
    """Per-row normalised vectors of :func:`angle_cartesian_deg` (``|v|`` with ``+1e-10``)."""
    n = np.sqrt(xyz[:, 0] ** 2 + xyz[:, 1] ** 2 + xyz[:, 2] ** 2 + 1e-10)
    return xyz / n[:, None]


def angle_unit_terms(r: np.ndarray, p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`angle_cartesian_deg` of rows ``a`` of ``r`` and ``b`` of ``p`` (:func:`unit_terms`)."""
    ra, pb = r[a], p[b]
    d = ra[:, 0] * pb[:, 0] + ra[:, 1] * pb[:, 1] + ra[:, 2] * pb[:, 2]
    return np.arccos(np.clip(d, -1, 1)) * 180 / np.pi


@dataclass
class Matches:
    """Assigned (reference, prediction) pairs, one row per pair, sorted by group key."""

    ref: np.ndarray  # (M,) row index into the reference rows
    pred: np.ndarray  # (M,) row index into the prediction rows
    cost: np.ndarray  # (M,) angular distance, degrees
    ref_pos: np.ndarray  # (M,) position of the reference entry inside its group (row order)
    key: np.ndarray  # (M,) the group key


def match_groups(ref_key: np.ndarray, pred_key: np.ndarray,
                 cost: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 size: int | None = None) -> Matches:
    """Minimum-cost assignment inside every group present on both sides.

    ``ref_key``/``pred_key``: ``(N,)`` non-negative int group key of each row (e.g.
    ``frame * C + class``), below ``size``; rows of a group keep their order.
    ``cost(ref_rows, pred_rows)`` returns the cost of each listed pair. The result equals
    scipy's ``linear_sum_assignment`` on each group's ``(refs, preds)`` cost matrix.
    """
    empty = np.zeros(0, np.int64)
    if len(ref_key) == 0 or len(pred_key) == 0:
        return Matches(empty, empty, np.zeros(0), empty, empty)
    if size is None:
        size = int(max(ref_key.max(), pred_key.max())) + 1
    ro = np.argsort(ref_key, kind="stable")
    po = np.argsort(pred_key, kind="stable")
    rc = np.bincount(ref_key, minlength=size)
    pc = np.bincount(pred_key, minlength=size)
    common = np.flatnonzero((rc > 0) & (pc > 0))
    if len(common) == 0:
        return Matches(empty, empty, np.zeros(0), empty, empty)
    g, p = rc[common], pc[common]
    g0 = (np.cumsum(rc) - rc)[common]
    p0 = (np.cumsum(pc) - pc)[common]
    npairs = g * p
    starts = np.cumsum(npairs) - npairs
    grp = np.repeat(np.arange(len(common)), npairs)
    off = np.arange(int(npairs.sum())) - starts[grp]
    i, j = off // p[grp], off % p[grp]  # reference-major, like scipy's cost-matrix rows
    rrow, prow = ro[g0[grp] + i], po[p0[grp] + j]
    c = np.asarray(cost(rrow, prow), np.float64)

    one = (g == 1) & (p == 1)  # the common case: the only pair is the match
    chosen = [starts[one]]
    small = ~one & (g <= 3) & (p <= 3)
    sg = np.flatnonzero(small)
    hard = list(np.flatnonzero(~one & ~small))
    if len(sg):
        # Pad each small group's matrix to 3x3 with zero-cost dummies; the best of the 6
        # permutations, restricted to real cells, is the rectangular optimum.
        slot = np.full(len(common), -1)
        slot[sg] = np.arange(len(sg))
        in_small = small[grp]
        M = np.zeros((len(sg), 3, 3))
        real = np.zeros((len(sg), 3, 3), bool)
        k = slot[grp[in_small]]
        M[k, i[in_small], j[in_small]] = c[in_small]
        real[k, i[in_small], j[in_small]] = True
        rows3 = np.arange(3)
        used = real[:, rows3, _PERMS]  # (groups, 6, 3): the real cells each permutation uses
        totals = M[:, rows3, _PERMS].sum(-1)  # (groups, 6)
        # a valid pairing matches min(refs, preds) real pairs, never a real row to a dummy
        totals[used.sum(-1) < np.minimum(g[sg], p[sg])[:, None]] = np.inf
        best = totals.argmin(1)
        # real cells as a bit mask per permutation, to spot ties between distinct pairings
        bits = (used * (1 << (3 * rows3 + _PERMS))).sum(-1)  # (groups, 6)
        near = totals <= totals[np.arange(len(sg)), best][:, None] + _TIE
        tie = (near & (bits != bits[np.arange(len(sg)), best][:, None])).any(1)
        hard += list(sg[tie])
        ok = ~tie
        perm = _PERMS[best[ok]]  # (n, 3)
        use = used[np.flatnonzero(ok), best[ok]]  # (n, 3)
        gi = np.repeat(sg[ok], 3)[use.ravel()]
        ri = np.tile(rows3, ok.sum())[use.ravel()]
        pj = perm.ravel()[use.ravel()]
        chosen.append(starts[gi] + ri * p[gi] + pj)
    for kk in hard:
        block = c[starts[kk]:starts[kk] + npairs[kk]].reshape(g[kk], p[kk])
        r, q = linear_sum_assignment(block)
        chosen.append(starts[kk] + r * p[kk] + q)
    sel = np.sort(np.concatenate(chosen)) if chosen else empty
    return Matches(rrow[sel], prow[sel], c[sel], i[sel], common[grp[sel]])
