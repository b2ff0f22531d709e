"""Slow, obviously-correct per-frame loop scorers: the rules of docs/metrics.md, loop by loop.

They exist to check the vectorised suites (tests compare both on random input) and as the
baseline of ``benchmarks/metrics_speed.py``. They share only the CSV tables with the fast code:
grouping, matching and counting are written out here loop by loop, with one scipy
``linear_sum_assignment`` call per frame and class, as the official scorers do.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment

from seldbench.metrics import counters as K

EPS = np.finfo(np.float64).eps


def _polar_angle(a, b):
    az1, el1, az2, el2 = a[0] * math.pi / 180, a[1] * math.pi / 180, b[0] * math.pi / 180, b[1] * math.pi / 180
    d = math.sin(el1) * math.sin(el2) + math.cos(el1) * math.cos(el2) * math.cos(abs(az1 - az2))
    return math.acos(min(1.0, max(-1.0, d))) * 180 / math.pi


def _cart_angle(a, b):
    n1 = math.sqrt(a[0] ** 2 + a[1] ** 2 + a[2] ** 2 + 1e-10)
    n2 = math.sqrt(b[0] ** 2 + b[1] ** 2 + b[2] ** 2 + 1e-10)
    d = (a[0] / n1) * (b[0] / n2) + (a[1] / n1) * (b[1] / n2) + (a[2] / n1) * (b[2] / n2)
    return math.acos(min(1.0, max(-1.0, d))) * 180 / math.pi


def _by_frame_class(frames, classes, values, n_frames):
    """{frame: {class: [value, ...]}} in row order, frames < n_frames only."""
    out: dict = {}
    for f, c, v in zip(frames.tolist(), classes.tolist(), values):
        if f < n_frames:
            out.setdefault(f, {}).setdefault(c, []).append(v)
    return out


def _assign(ref_list, pred_list, angle):
    cost = np.array([[angle(r, p) for p in pred_list] for r in ref_list])
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c), float(cost[r, c])) for r, c in zip(rows, cols)]


def segment_counts(ref, pred, num_classes: int, n_frames: int, spatial_fp: str) -> np.ndarray:
    """Counters of one file for the 1-s segment rules (2021/2022/2023), frames < n_frames."""
    counts = K.zeros(num_classes)
    row = {name: counts[K.IDX[name]] for name in K.COUNTERS}
    gt = _by_frame_class(ref.frame, ref.cls, [tuple(v) for v in ref.polar()], n_frames)
    pr = _by_frame_class(pred.frame, pred.cls, [tuple(v) for v in pred.polar()], n_frames)
    S = D = I = 0
    for block in range(n_frames // 10):
        loc_fp = loc_fn = 0
        frames = range(block * 10, block * 10 + 10)
        for c in range(num_classes):
            g_frames = [f for f in frames if c in gt.get(f, {})]
            p_frames = [f for f in frames if c in pr.get(f, {})]
            nG = max((len(gt[f][c]) for f in g_frames), default=None)
            nP = max((len(pr[f][c]) for f in p_frames), default=None)
            if nG is not None:
                row["Nref"][c] += nG
            if nG is not None and nP is not None:
                dists: dict[int, list[float]] = {}
                for f in g_frames:
                    if f in p_frames:
                        for i, _, d in _assign(gt[f][c], pr[f][c], _polar_angle):
                            dists.setdefault(i, []).append(d)
                if not dists:
                    row["FN"][c] += nP
                    row["DE_FN"][c] += nP
                    loc_fn += nP
                    continue
                for i, ds in dists.items():
                    avg = sum(ds) / len(ds)
                    row["AngE"][c] += avg
                    row["DE_TP"][c] += 1
                    if avg <= 20:
                        row["TP"][c] += 1
                    else:
                        row[spatial_fp][c] += 1
                        loc_fp += 1
                if nP > nG:
                    row["FP"][c] += nP - nG
                    row["DE_FP"][c] += nP - nG
                    loc_fp += nP - nG
                elif nP < nG:
                    row["FN"][c] += nG - nP
                    row["DE_FN"][c] += nG - nP
                    loc_fn += nG - nP
            elif nG is not None:
                row["FN"][c] += nG
                row["DE_FN"][c] += nG
                loc_fn += nG
            elif nP is not None:
                row["FP"][c] += nP
                row["DE_FP"][c] += nP
                loc_fp += nP
        S += min(loc_fp, loc_fn)
        D += max(0, loc_fn - loc_fp)
        I += max(0, loc_fp - loc_fn)
    counts[K.IDX["S"], 0], counts[K.IDX["D"], 0], counts[K.IDX["I"], 0] = S, D, I
    return counts


def _frame_class(row: dict, c: int, R: list, P: list, cost, dist_threshold: float,
                 reldist_threshold: float, onscreen: bool = False) -> tuple[int, int]:
    """Counters of class ``c`` in one frame (2024/2025 frame rules) into ``row``; ``R``/``P``:
    ``(direction, distance[, onscreen flag])`` entries, ``cost(a, b)`` the matching cost of two
    directions in degrees. Returns the frame's (false positives, false negatives) of ``c``."""
    row["Nref"][c] += len(R)
    if R and P:
        pairs = _assign([r[0] for r in R], [p[0] for p in P], cost)
        bad = bad_on = 0
        for i, j, ang in pairs:
            de = abs(R[i][1] - P[j][1])
            rel = de / (R[i][1] + EPS)
            fail = (ang > 20) or (de > dist_threshold) or (rel > reldist_threshold)
            bad += fail
            row["AngE"][c] += ang
            row["DistE"][c] += de
            row["RelDistE"][c] += rel
            if onscreen:
                same = R[i][2] == P[j][2]
                bad_on += fail or not same
                row["OnscreenCorrect"][c] += same
        k = len(pairs)
        row["TP"][c] += k - bad
        row["FP_spatial"][c] += bad
        if onscreen:
            row["TP_onscreen"][c] += k - bad_on
            row["FP_spatial_onscreen"][c] += bad_on
        row["DE_TP"][c] += k
        fp, fn = max(0, len(P) - len(R)), max(0, len(R) - len(P))
        row["FP"][c] += fp
        row["DE_FP"][c] += fp
        row["FN"][c] += fn
        row["DE_FN"][c] += fn
        return fp + bad, fn
    if R:
        row["FN"][c] += len(R)
        row["DE_FN"][c] += len(R)
        return 0, len(R)
    if P:
        row["FP"][c] += len(P)
        row["DE_FP"][c] += len(P)
    return len(P), 0


def frame_counts(ref, pred, num_classes: int, n_frames: int,
                 dist_threshold_m: float = math.inf, reldist_threshold: float = 1.0) -> np.ndarray:
    """Counters of one file for the 100-ms frame rules (2024), frames < n_frames.
    ``ref``/``pred`` distances in metres; directions compared in Cartesian form."""

    def unit(azel):
        az, el = azel[0] * math.pi / 180.0, azel[1] * math.pi / 180.0
        return (math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el))

    counts = K.zeros(num_classes)
    row = {name: counts[K.IDX[name]] for name in K.COUNTERS}
    gt = _by_frame_class(ref.frame, ref.cls, [(unit(v), d) for v, d in zip(ref.polar(), ref.distance)], n_frames)
    pr = _by_frame_class(pred.frame, pred.cls, [(unit(v), d) for v, d in zip(pred.polar(), pred.distance)], n_frames)
    S = D = I = 0
    for f in range(n_frames):
        loc_fp = loc_fn = 0
        for c in range(num_classes):
            fp, fn = _frame_class(row, c, gt.get(f, {}).get(c, []), pr.get(f, {}).get(c, []),
                                  _cart_angle, dist_threshold_m, reldist_threshold)
            loc_fp += fp
            loc_fn += fn
        S += min(loc_fp, loc_fn)
        D += max(0, loc_fn - loc_fp)
        I += max(0, loc_fp - loc_fn)
    counts[K.IDX["S"], 0], counts[K.IDX["D"], 0], counts[K.IDX["I"], 0] = S, D, I
    return counts


def _organise(table, n_frames: int, max_tracks: int = 10) -> dict:
    """{frame: {class: {track: (azimuth, distance, onscreen)}}} for frames < n_frames, tracks
    placed as the 2025 loader does: the source id if below ``max_tracks`` and free, else the
    lowest free track, else track 0 (overwritten). Dict order is insertion order."""
    out: dict = {}
    for f, c, s, az, d, on in zip(table.frame.tolist(), table.cls.tolist(), table.track.tolist(),
                                  table.coords[:, 0].tolist(), table.distance.tolist(),
                                  table.onscreen.tolist()):
        if f >= n_frames:
            continue
        tracks = out.setdefault(f, {}).setdefault(c, {})
        if s not in tracks and s < max_tracks:
            t = s
        else:
            free = [k for k in range(max_tracks) if k not in tracks]
            t = free[0] if free else 0
        tracks[t] = (az, d, on)
    return out


def stereo_frame_counts(ref, pred, num_classes: int, n_frames: int,
                        dist_threshold_cm: float = math.inf,
                        reldist_threshold: float = 1.0) -> np.ndarray:
    """Counters of one file for the 2025 stereo frame rules, frames < n_frames: ``fctado``
    tables (distances in cm), Hungarian on the folded azimuth difference, onscreen counted."""
    from seldbench.metrics.angles import fold_azimuth

    def folded(a):
        return float(fold_azimuth(np.array([a]))[0])

    counts = K.zeros(num_classes)
    row = {name: counts[K.IDX[name]] for name in K.COUNTERS}
    gt, pr = _organise(ref, n_frames), _organise(pred, n_frames)
    for f in range(n_frames):
        for c in range(num_classes):
            R, P = ([(folded(az), d, on) for az, d, on in side.get(f, {}).get(c, {}).values()]
                    for side in (gt, pr))
            _frame_class(row, c, R, P, lambda a, b: abs(a - b), dist_threshold_cm,
                         reldist_threshold, onscreen=True)
    return counts
