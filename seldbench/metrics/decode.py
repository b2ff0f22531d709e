"""Decoders from model output to DCASE event rows, vectorised over files, frames and classes.

Both return a :class:`~seldbench.metrics.csvio.EventTable` per file with Cartesian DOAs (and
distance in metres when the output has it), rows ordered by frame, class, then emission order.
"""
from __future__ import annotations

import numpy as np

from seldbench.metrics.csvio import EventTable, make_table
from seldbench.metrics.angles import angle_cartesian_deg

_PAIRS = ((0, 1), (1, 2), (2, 0))  # similar-pair tests, in the baseline's order


def multi_accdoa_decode(output: np.ndarray, num_classes: int, *, with_distance: bool = False,
                        threshold: float = 0.5, unify_deg: float = 15.0) -> list[EventTable]:
    """Multi-ACCDOA output ``(files, frames, 3 * V * classes)`` -> one table per file.

    Layout per frame, track-major: ``[t0: x(C) y(C) z(C) [d(C)], t1: ..., t2: ...]`` with
    ``V = 4`` when ``with_distance``. A track is active for a class when its (x, y, z) norm is
    above ``threshold``. Two active tracks closer than ``unify_deg`` (Cartesian angle) are
    *similar*. With no similar pair every active track is emitted; with exactly one, the third
    track (if active) and then the mean of the similar two; with two or more, the mean of all
    three. Negative distances are clipped to 0.
    """
    out = np.asarray(output, np.float64)
    if out.ndim == 2:
        out = out[None]
    V = 4 if with_distance else 3
    F, T, D = out.shape
    if D != 3 * V * num_classes:
        raise ValueError(f"multi-ACCDOA output has {D} values per frame, expected "
                         f"3 x {V} x {num_classes} = {3 * V * num_classes}")
    y = out.reshape(F, T, 3, V, num_classes).transpose(0, 1, 4, 2, 3)  # (F, T, C, track, V)
    vec = y[..., :3]
    act = np.linalg.norm(vec, axis=-1) > threshold  # (F, T, C, 3)
    flat = vec.reshape(-1, 3, 3)
    sim = np.stack([act[..., a] & act[..., b] &
                    (angle_cartesian_deg(flat[:, a], flat[:, b]).reshape(act.shape[:-1]) < unify_deg)
                    for a, b in _PAIRS], axis=-1)  # (F, T, C, 3)
    nsim = sim.sum(-1)

    # Candidate rows: (mask, value (F,T,C,V), order within the (frame, class), track id)
    cands = []
    for k in range(3):
        cands.append(((nsim == 0) & act[..., k], y[..., k, :], k, k))
    for p, (a, b) in enumerate(_PAIRS):
        odd = 3 - a - b
        one = (nsim == 1) & sim[..., p]
        cands.append((one & act[..., odd], y[..., odd, :], 0, odd))
        cands.append((one, (y[..., a, :] + y[..., b, :]) / 2, 1, min(a, b)))
    cands.append((nsim >= 2, y.sum(axis=-2) / 3, 0, 0))

    f_idx, t_idx, c_idx, order, track, vals = [], [], [], [], [], []
    for mask, value, o, trk in cands:
        f, t, c = np.nonzero(mask)
        f_idx.append(f), t_idx.append(t), c_idx.append(c)
        order.append(np.full(len(f), o)), track.append(np.full(len(f), trk))
        vals.append(value[f, t, c])
    f, t, c, o, trk = (np.concatenate(a) for a in (f_idx, t_idx, c_idx, order, track))
    v = np.concatenate(vals)
    sort = np.lexsort((o, c, t, f))
    f, t, c, trk, v = f[sort], t[sort], c[sort], trk[sort], v[sort]
    tables = []
    for k in range(F):
        sel = f == k
        dist = np.maximum(v[sel, 3], 0) if with_distance else None
        tables.append(make_table(t[sel], c[sel], trk[sel], v[sel, :3], dist))
    return tables


def trackwise_decode(sed_prob: np.ndarray, doa: np.ndarray, *, threshold: float = 0.5,
                     distance: np.ndarray | None = None) -> list[EventTable]:
    """Track-wise output (EINV2 style) -> one table per file.

    ``sed_prob``: ``(files, frames, tracks, classes)`` probabilities; ``doa``:
    ``(files, frames, tracks, 3)``; optional ``distance``: ``(files, frames, tracks)`` metres.
    Each track emits its most probable class when that probability exceeds ``threshold``.
    """
    sed_prob, doa = np.asarray(sed_prob, np.float64), np.asarray(doa, np.float64)
    if sed_prob.ndim == 3:
        sed_prob, doa = sed_prob[None], doa[None]
        distance = None if distance is None else np.asarray(distance)[None]
    cls = sed_prob.argmax(-1)  # (F, T, K)
    active = np.take_along_axis(sed_prob, cls[..., None], -1)[..., 0] > threshold
    tables = []
    for k in range(sed_prob.shape[0]):
        t, trk = np.nonzero(active[k])  # row-major: frame, then track
        order = np.lexsort((trk, cls[k][t, trk], t))
        t, trk = t[order], trk[order]
        dist = None if distance is None else np.maximum(distance[k][t, trk], 0)
        tables.append(make_table(t, cls[k][t, trk], trk, doa[k][t, trk], dist))
    return tables
