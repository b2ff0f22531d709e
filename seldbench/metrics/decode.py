"""Decoders from model output to DCASE event rows, vectorised over files, frames and classes.

Each returns a :class:`~seldbench.metrics.csvio.EventTable` per file, rows ordered by frame,
class, then emission order: Cartesian DOAs (and distance in metres when the output has it), or
for the 2025 stereo layout azimuth, distance in cm and the onscreen flag (``fctado``).
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
    V = 4 if with_distance else 3
    y = _tracks(output, num_classes, V)
    f, t, c, trk, _, v = _multi_accdoa_rows(y, threshold, unify_deg)
    tables = []
    for k in range(y.shape[0]):
        sel = f == k
        dist = np.maximum(v[sel, 3], 0) if with_distance else None
        tables.append(make_table(t[sel], c[sel], trk[sel], v[sel, :3], dist))
    return tables


def _tracks(output: np.ndarray, num_classes: int, V: int) -> np.ndarray:
    """Multi-ACCDOA output ``(files, frames, 3 * V * C)`` (or one file's ``(frames, ...)``),
    track-major, as ``(files, frames, C, track, V)``."""
    out = np.asarray(output, np.float64)
    if out.ndim == 2:
        out = out[None]
    F, T, D = out.shape
    if D != 3 * V * num_classes:
        raise ValueError(f"multi-ACCDOA output has {D} values per frame, expected "
                         f"3 x {V} x {num_classes} = {3 * V * num_classes}")
    return out.reshape(F, T, 3, V, num_classes).transpose(0, 1, 4, 2, 3)


def _multi_accdoa_rows(y: np.ndarray, threshold: float, unify_deg: float):
    """The unification rule on ``y`` ``(files, frames, C, track, V)`` whose first three values
    are a track's (x, y, z). Returns the emitted rows sorted by file, frame, class and emission
    order: ``(file, frame, class, track, pick, values (rows, V))``, ``track`` the id written
    (the lower of a merged pair) and ``pick`` the track whose per-track extras a row takes (a
    merged pair's first track in the baseline's pair order, track 0 for all three)."""
    vec = y[..., :3]
    act = np.linalg.norm(vec, axis=-1) > threshold  # (F, T, C, 3)
    flat = vec.reshape(-1, 3, 3)
    sim = np.stack([act[..., a] & act[..., b] &
                    (angle_cartesian_deg(flat[:, a], flat[:, b]).reshape(act.shape[:-1]) < unify_deg)
                    for a, b in _PAIRS], axis=-1)  # (F, T, C, 3)
    nsim = sim.sum(-1)

    # Candidate rows: (mask, value (F,T,C,V), order within the (frame, class), track id, pick)
    cands = []
    for k in range(3):
        cands.append(((nsim == 0) & act[..., k], y[..., k, :], k, k, k))
    for p, (a, b) in enumerate(_PAIRS):
        odd = 3 - a - b
        one = (nsim == 1) & sim[..., p]
        cands.append((one & act[..., odd], y[..., odd, :], 0, odd, odd))
        cands.append((one, (y[..., a, :] + y[..., b, :]) / 2, 1, min(a, b), a))
    cands.append((nsim >= 2, y.sum(axis=-2) / 3, 0, 0, 0))

    f_idx, t_idx, c_idx, order, track, pick, vals = [], [], [], [], [], [], []
    for mask, value, o, trk, src in cands:
        f, t, c = np.nonzero(mask)
        f_idx.append(f), t_idx.append(t), c_idx.append(c)
        order.append(np.full(len(f), o)), track.append(np.full(len(f), trk))
        pick.append(np.full(len(f), src))
        vals.append(value[f, t, c])
    f, t, c, o, trk, src = (np.concatenate(a) for a in (f_idx, t_idx, c_idx, order, track, pick))
    v = np.concatenate(vals)
    sort = np.lexsort((o, c, t, f))
    return f[sort], t[sort], c[sort], trk[sort], src[sort], v[sort]


def stereo_multi_accdoa_decode(output: np.ndarray, num_classes: int, *,
                               with_onscreen: bool = True, threshold: float = 0.5,
                               unify_deg: float = 15.0,
                               onscreen_threshold: float = 0.0) -> list[EventTable]:
    """DCASE 2025 multi-ACCDOA output ``(files, frames, 3 * V * classes)`` -> one ``fctado``
    table per file (the CSVs of the ``dcase2025`` suite).

    Layout per frame, track-major as the 2025 baseline: ``[t0: x(C) y(C) d(C) [on(C)], t1: ...,
    t2: ...]``, ``V = 4`` with an onscreen output, else 3; distances in metres. A track is
    active when ``sqrt(x^2 + y^2) > threshold``; negative distances are 0; similar tracks
    (closer than ``unify_deg``) merge as in :func:`multi_accdoa_decode` (vectors and distances
    averaged), a merged row taking the onscreen output of its pair's first track in the order
    (0, 1), (1, 2), (2, 0), or track 0's when all three merge. Rows: source 0 (the baseline's
    dummy id), azimuth ``atan2(y, x)`` in degrees, distance in cm, onscreen 1 where the output
    is above ``onscreen_threshold`` (0 for a logit; 0.5 for a sigmoid probability), 0 without
    an onscreen output. (The baseline writes ``int()`` of its sigmoid, so nearly always 0.)
    """
    V = 4 if with_onscreen else 3
    y = _tracks(output, num_classes, V)
    xy = y[..., :2]
    dist = np.maximum(y[..., 2:3], 0)  # clipped per track before any merge, as the baseline
    y4 = np.concatenate([xy, np.zeros_like(dist), dist], axis=-1)  # (x, y, 0, d)
    f, t, c, _, src, v = _multi_accdoa_rows(y4, threshold, unify_deg)
    on = (y[f, t, c, src, 3] > onscreen_threshold).astype(np.int64) if with_onscreen \
        else np.zeros(len(f), np.int64)
    az = np.arctan2(v[:, 1], v[:, 0]) * 180 / np.pi
    tables = []
    for k in range(y.shape[0]):
        sel = f == k
        tables.append(make_table(t[sel], c[sel], np.zeros(sel.sum(), np.int64), az[sel, None],
                                 v[sel, 3] * 100, onscreen=on[sel]))
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
