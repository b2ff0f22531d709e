"""Angular distances and the per-(frame, class) assignment shared by every DCASE suite.

The official scorers call scipy's ``linear_sum_assignment`` once per frame and class. Here all
pairs of all groups are costed in one vectorised call; groups with one entry on either side take
the first minimum (scipy's own tie-breaking), and only groups with two or more entries on both
sides - rare in practice - go through scipy.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


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


@dataclass
class Matches:
    """Assigned (reference, prediction) pairs, one row per pair."""

    ref: np.ndarray  # (M,) row index into the reference table
    pred: np.ndarray  # (M,) row index into the prediction table
    cost: np.ndarray  # (M,) angular distance, degrees
    ref_pos: np.ndarray  # (M,) position of the reference entry inside its group (row order)
    key: np.ndarray  # (M,) the group key


def match_groups(ref_key: np.ndarray, pred_key: np.ndarray,
                 cost: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Matches:
    """Minimum-cost assignment inside every group present on both sides.

    ``ref_key``/``pred_key``: ``(N,)`` int group key of each row (e.g. ``frame * C + class``);
    rows of a group keep their file order. ``cost(ref_rows, pred_rows)`` returns the cost of
    each listed pair. Equivalent to scipy's ``linear_sum_assignment`` on each group's
    ``(refs, preds)`` cost matrix, including its first-minimum tie-breaking.
    """
    ro = np.argsort(ref_key, kind="stable")
    po = np.argsort(pred_key, kind="stable")
    ru, rs, rc = np.unique(ref_key[ro], return_index=True, return_counts=True)
    pu, ps, pc = np.unique(pred_key[po], return_index=True, return_counts=True)
    common, ia, ib = np.intersect1d(ru, pu, assume_unique=True, return_indices=True)
    empty = np.zeros(0, np.int64)
    if len(common) == 0:
        return Matches(empty, empty, np.zeros(0), empty, empty)
    g, p, g0, p0 = rc[ia], pc[ib], rs[ia], ps[ib]
    npairs = g * p
    starts = np.cumsum(npairs) - npairs
    grp = np.repeat(np.arange(len(common)), npairs)
    off = np.arange(int(npairs.sum())) - starts[grp]
    i, j = off // p[grp], off % p[grp]  # reference-major, as scipy's cost matrix rows
    rrow, prow = ro[g0[grp] + i], po[p0[grp] + j]
    c = np.asarray(cost(rrow, prow), np.float64)

    single = (g == 1) | (p == 1)
    gmin = np.minimum.reduceat(c, starts)
    cand = np.flatnonzero((c == gmin[grp]) & single[grp])
    first = cand[np.r_[True, grp[cand][1:] != grp[cand][:-1]]] if len(cand) else empty
    chosen = [first]
    for k in np.flatnonzero(~single):
        block = c[starts[k]:starts[k] + npairs[k]].reshape(g[k], p[k])
        r, q = linear_sum_assignment(block)
        chosen.append(starts[k] + r * p[k] + q)
    sel = np.sort(np.concatenate(chosen))
    return Matches(rrow[sel], prow[sel], c[sel], i[sel], common[grp[sel]])
