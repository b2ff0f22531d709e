"""The DCASE SELD metric suites: 2021 (segment, micro), 2022/2023 (segment, macro) and 2024
(frame, with distance). One implementation, with each year's rules as named parameters.

Each scorer reads CSVs strictly (:mod:`seldbench.metrics.csvio`), turns a batch of files into
additive per-file counters (:mod:`seldbench.metrics.counters`) in one vectorised pass over all
files, frames and classes, and turns summed counters into figures. Parity with the official
scorers is the default; ``no_last_frame_drop`` (off by default) also scores the last annotated
reference frame, which the official 2022-2024 code loses.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from seldbench.errors import SeldbenchError
from seldbench.metrics import counters as K
from seldbench.metrics.csvio import EventTable, concat_polar, polar_to_cartesian, read_dcase_csv
from seldbench.metrics.matching import (angle_polar_terms, angle_unit_terms, match_groups,
                                        polar_terms, unit_terms)

EPS = np.finfo(np.float64).eps
DOA_THRESHOLD_DEG = 20.0
FRAMES_PER_SEGMENT = 10  # 100-ms label frames per 1-s segment
MAX_FRAMES = 10_000_000  # ~11.5 days of 100-ms frames: beyond this a frame index is an error


def _last_frame(ref: EventTable, suite: str) -> int:
    if len(ref) == 0:
        raise SeldbenchError(f"{ref.path}: reference has no events; {suite} takes the evaluated "
                             "length from its last annotated frame")
    last = int(ref.frame.max())
    if last >= MAX_FRAMES:
        line = int(ref.line[int(np.argmax(ref.frame))])
        raise SeldbenchError(f"{ref.path}:{line}: frame {last} is beyond {MAX_FRAMES} "
                             "(more than 11 days of 100-ms frames)")
    return last


class _Batch:
    """Rows of many files on one dense (file, frame, class) grid.

    Frame ``f`` of file ``i`` is grid row ``offset[i] + f``; file ``i`` owns ``n_frames[i]`` grid
    rows. ``ref_count``/``pred_count`` are ``(grid rows, classes)`` entry counts and ``matches``
    the assigned pairs of every (file, frame, class), sorted by grid key (so by frame).
    """

    def __init__(self, pairs: Sequence[tuple[EventTable, EventTable]], n_frames: np.ndarray,
                 num_classes: int, direction: Callable, angle: Callable) -> None:
        C = self.C = num_classes
        self.n_frames = n_frames = np.asarray(n_frames, np.int64)
        self.offset = np.concatenate([[0], np.cumsum(n_frames)[:-1]]).astype(np.int64)
        self.rows = int(n_frames.sum())
        self.file_of_row = np.repeat(np.arange(len(pairs)), n_frames)

        def gather(side: int):
            tabs = [pair[side] for pair in pairs]
            fid = np.repeat(np.arange(len(tabs)), [len(t) for t in tabs])
            frame = np.concatenate([t.frame for t in tabs])
            keep = frame < n_frames[fid]
            key = (self.offset[fid] + frame) * C + np.concatenate([t.cls for t in tabs])
            dist = np.concatenate([t.distance if t.distance is not None else np.zeros(len(t))
                                   for t in tabs])
            return key[keep], concat_polar(tabs)[keep], dist[keep]

        self.rkey, rpolar, self.rdist = gather(0)
        self.pkey, ppolar, self.pdist = gather(1)
        rf, pf = direction(rpolar), direction(ppolar)  # per-row terms, computed once
        size = self.rows * C
        rc = np.bincount(self.rkey, minlength=size)
        pc = np.bincount(self.pkey, minlength=size)
        self.ref_count, self.pred_count = rc.reshape(-1, C), pc.reshape(-1, C)

        self.matches = match_groups(self.rkey, self.pkey, lambda a, b: angle(rf, pf, a, b), size)

    def per_file(self, per_unit: np.ndarray, unit: int = 1) -> np.ndarray:
        """Sum per-unit values ``(grid rows / unit, classes)`` over each file -> ``(files, C)``;
        ``unit`` grid rows make one unit (10 for 1-s segments)."""
        out = np.zeros((len(self.n_frames), self.C))
        has = self.n_frames > 0
        if has.any():  # files own contiguous unit ranges; empty files own none
            out[has] = np.add.reduceat(per_unit, self.offset[has] // unit, axis=0)
        return out

    def per_file_pairs(self, values: np.ndarray) -> np.ndarray:
        """Sum per-match ``values`` into ``(files, classes)``."""
        row = self.matches.key // self.C
        idx = self.file_of_row[row] * self.C + self.matches.key % self.C
        return np.bincount(idx, weights=values, minlength=len(self.n_frames) * self.C) \
            .reshape(-1, self.C)


def _sdi(counts: np.ndarray, file_of_unit: np.ndarray, loc_fp: np.ndarray, loc_fn: np.ndarray) -> None:
    """S, D, I per file from per-unit (block or frame) totals of location FP and FN."""
    n = counts.shape[0]
    for name, v in (("S", np.minimum(loc_fp, loc_fn)), ("D", np.maximum(0, loc_fn - loc_fp)),
                    ("I", np.maximum(0, loc_fp - loc_fn))):
        counts[:, K.IDX[name], 0] = np.bincount(file_of_unit, weights=v, minlength=n)


class SegmentScorer:
    """1-s segment scoring (DCASE 2021 micro; 2022/2023 macro).

    ``fixed_frames``: 2021 evaluates exactly this many frames (600 = 60 s) whatever the files
    hold. Otherwise ``L`` is the last reference frame index and ``ceil(L/10)`` whole segments
    are scored, frames ``0 .. 10*ceil(L/10) - 1`` of both files (so frame ``L`` is lost when
    ``L`` is a multiple of 10).
    """

    def __init__(self, num_classes: int, *, suite: str, average: str, spatial_fp: str,
                 ref_layouts: dict, pred_layouts: dict, fixed_frames: int | None = None,
                 no_last_frame_drop: bool = False) -> None:
        self.num_classes, self.suite, self.average = num_classes, suite, average
        self.spatial_fp = spatial_fp  # the counter a match beyond 20 degrees goes to
        self.ref_layouts, self.pred_layouts = ref_layouts, pred_layouts
        self.fixed_frames, self.no_last_frame_drop = fixed_frames, no_last_frame_drop

    def read_reference(self, path) -> EventTable:
        return read_dcase_csv(path, self.ref_layouts, self.num_classes)

    def read_prediction(self, path) -> EventTable:
        return read_dcase_csv(path, self.pred_layouts, self.num_classes)

    def eval_frames(self, ref: EventTable) -> int:
        """Frames scored in a file: a whole number of 1-s segments."""
        if self.fixed_frames is not None:
            return self.fixed_frames
        L = _last_frame(ref, self.suite) + (1 if self.no_last_frame_drop else 0)
        return math.ceil(L / FRAMES_PER_SEGMENT) * FRAMES_PER_SEGMENT

    def file_counts(self, ref: EventTable, pred: EventTable) -> np.ndarray:
        return self.counts([(ref, pred)])[0]

    def counts(self, pairs: Sequence[tuple[EventTable, EventTable]]) -> np.ndarray:
        """Counters ``(files, counters, classes)`` of (reference, prediction) table pairs."""
        C, S = self.num_classes, FRAMES_PER_SEGMENT
        n_frames = [self.eval_frames(ref) for ref, _ in pairs]
        b = _Batch(pairs, n_frames, C, polar_terms, angle_polar_terms)
        nG = b.ref_count.reshape(-1, S, C).max(1)  # (blocks, C): most entries in one frame
        nP = b.pred_count.reshape(-1, S, C).max(1)
        n_blocks = nG.shape[0]

        # Track = position of the reference entry in its frame's list (official TODO: parity);
        # its angle is the mean over the block's frames in which it was matched.
        m = b.matches
        width = int(m.ref_pos.max()) + 1 if len(m.ref_pos) else 1
        tkey = (m.key // C // S * C + m.key % C) * width + m.ref_pos
        size = n_blocks * C * width
        total = np.bincount(tkey, weights=m.cost, minlength=size).reshape(n_blocks, C, width)
        n = np.bincount(tkey, minlength=size).reshape(n_blocks, C, width)
        seen = n > 0
        avg = np.where(seen, total / np.maximum(n, 1), 0.0)
        n_tracks = seen.sum(-1)
        n_wrong = (seen & (avg > DOA_THRESHOLD_DEG)).sum(-1)
        sum_avg = avg.sum(-1)

        g_on, p_on = nG > 0, nP > 0
        hit = g_on & p_on & (n_tracks > 0)
        no_common = g_on & p_on & (n_tracks == 0)  # never in the same frame: nP are misses
        extra_fp = np.where(hit, np.maximum(nP - nG, 0), 0) + np.where(p_on & ~g_on, nP, 0)
        extra_fn = (np.where(hit, np.maximum(nG - nP, 0), 0) + np.where(g_on & ~p_on, nG, 0)
                    + np.where(no_common, nP, 0))
        wrong = np.where(hit, n_wrong, 0)

        file_of_block = b.file_of_row[::S]
        out = np.zeros((len(pairs), len(K.COUNTERS), C))

        def put(name: str, per_block: np.ndarray) -> None:
            out[:, K.IDX[name]] += b.per_file(per_block, S)

        put("Nref", nG)
        put("TP", np.where(hit, n_tracks - n_wrong, 0))
        put(self.spatial_fp, wrong)
        put("FP", extra_fp)
        put("DE_FP", extra_fp)
        put("FN", extra_fn)
        put("DE_FN", extra_fn)
        put("AngE", np.where(hit, sum_avg, 0))
        put("DE_TP", np.where(hit, n_tracks, 0))
        _sdi(out, file_of_block, (extra_fp + wrong).sum(1), extra_fn.sum(1))
        return out

    def summarise(self, counts: np.ndarray) -> dict:
        TP, FP, FPs, FN = (K.get(counts, n) for n in ("TP", "FP", "FP_spatial", "FN"))
        DE, DE_TP, DE_FN = (K.get(counts, n) for n in ("AngE", "DE_TP", "DE_FN"))
        S, D, I = (counts[K.IDX[n], 0] for n in "SDI")
        ER = (S + D + I) / (K.get(counts, "Nref").sum() + EPS)
        with np.errstate(invalid="ignore", divide="ignore"):
            F_c = TP / (EPS + TP + FPs + 0.5 * (FP + FN))
            LE_c = np.where(DE_TP == 0, 180.0, DE / (DE_TP + EPS))
            LR_c = DE_TP / (EPS + DE_TP + DE_FN)
        SELD_c = (ER + (1 - F_c) + LE_c / 180 + (1 - LR_c)) / 4
        if self.average == "micro":
            F = TP.sum() / (EPS + TP.sum() + FPs.sum() + 0.5 * (FP.sum() + FN.sum()))
            LE = DE.sum() / float(DE_TP.sum() + EPS) if DE_TP.sum() else 180.0
            LR = DE_TP.sum() / (EPS + DE_TP.sum() + DE_FN.sum())
            SELD = float(np.mean([ER, 1 - F, LE / 180, 1 - LR]))
        else:
            F, LE, LR, SELD = F_c.mean(), LE_c.mean(), LR_c.mean(), SELD_c.mean()
        classwise = [{"class": c, "ER": float(ER), "F": float(F_c[c]), "LE": float(LE_c[c]),
                      "LR": float(LR_c[c]), "SELD": float(SELD_c[c])} for c in range(self.num_classes)]
        return {"ER": float(ER), "F": float(F), "LE": float(LE), "LR": float(LR),
                "SELD": float(SELD), "classwise": classwise}


class FrameScorer:
    """100-ms frame scoring with distance (DCASE 2024): frames ``0 .. L-1``, ``L`` the last
    reference frame index. Angles in Cartesian form after the official polar round trip;
    reference distances in cm (divided by 100), predicted distances in metres as given."""

    def __init__(self, num_classes: int, *, dist_threshold_m: float = math.inf,
                 reldist_threshold: float = 1.0, no_last_frame_drop: bool = False) -> None:
        self.num_classes = num_classes
        self.dist_threshold_m, self.reldist_threshold = dist_threshold_m, reldist_threshold
        self.no_last_frame_drop = no_last_frame_drop

    def read_reference(self, path) -> EventTable:
        t = read_dcase_csv(path, {6: "fctaed"}, self.num_classes)
        t.distance = t.distance / 100  # cm -> m
        return t

    def read_prediction(self, path) -> EventTable:
        return read_dcase_csv(path, {6: "fctaed", 7: "fctxyzd"}, self.num_classes)

    def eval_frames(self, ref: EventTable) -> int:
        return _last_frame(ref, "dcase2024") + (1 if self.no_last_frame_drop else 0)

    def file_counts(self, ref: EventTable, pred: EventTable) -> np.ndarray:
        return self.counts([(ref, pred)])[0]

    def counts(self, pairs: Sequence[tuple[EventTable, EventTable]]) -> np.ndarray:
        """Counters ``(files, counters, classes)`` of (reference, prediction) table pairs."""
        C = self.num_classes
        # every file makes the official polar round trip before Cartesian angles
        b = _Batch(pairs, [self.eval_frames(ref) for ref, _ in pairs], C,
                   lambda azel: unit_terms(polar_to_cartesian(azel)), angle_unit_terms)
        m = b.matches
        dist_err = np.abs(b.rdist[m.ref] - b.pdist[m.pred])
        rel_err = dist_err / (b.rdist[m.ref] + EPS)
        bad = (m.cost > DOA_THRESHOLD_DEG) | (dist_err > self.dist_threshold_m) \
            | (rel_err > self.reldist_threshold)
        size = b.rows * C
        n_pairs = np.bincount(m.key, minlength=size).reshape(-1, C)
        n_bad = np.bincount(m.key, weights=bad, minlength=size).reshape(-1, C)
        rn, pn = b.ref_count, b.pred_count
        both = (rn > 0) & (pn > 0)
        fp_extra = np.where(both, np.maximum(pn - rn, 0), pn * (rn == 0))
        fn_extra = np.where(both, np.maximum(rn - pn, 0), rn * (pn == 0))

        out = np.zeros((len(pairs), len(K.COUNTERS), C))
        for name, per_row in (("Nref", rn), ("TP", n_pairs - n_bad), ("FP_spatial", n_bad),
                              ("FP", fp_extra), ("DE_FP", fp_extra), ("FN", fn_extra),
                              ("DE_FN", fn_extra), ("DE_TP", n_pairs)):
            out[:, K.IDX[name]] = b.per_file(per_row)
        for name, v in (("AngE", m.cost), ("DistE", dist_err), ("RelDistE", rel_err)):
            out[:, K.IDX[name]] = b.per_file_pairs(v)
        _sdi(out, b.file_of_row, (fp_extra + n_bad).sum(1), fn_extra.sum(1))
        return out

    def summarise(self, counts: np.ndarray) -> dict:
        TP, FP, FPs, FN = (K.get(counts, n) for n in ("TP", "FP", "FP_spatial", "FN"))
        DE_TP, DE_FN = K.get(counts, "DE_TP"), K.get(counts, "DE_FN")
        S, D, I = (counts[K.IDX[n], 0] for n in "SDI")
        ER = (S + D + I) / (K.get(counts, "Nref").sum() + EPS)
        with np.errstate(invalid="ignore", divide="ignore"):
            F_c = TP / (EPS + TP + FPs + 0.5 * (FP + FN))
            none = DE_TP == 0
            AngE_c, DistE_c, RDE_c = (np.where(none, np.nan, K.get(counts, n) / (DE_TP + EPS))
                                      for n in ("AngE", "DistE", "RelDistE"))
            LR_c = DE_TP / (EPS + DE_TP + DE_FN)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN means are NaN, as upstream
            SELD_c = np.nanmean(np.stack([1 - F_c, AngE_c / 180, RDE_c]), axis=0)
            out = {"ER": float(ER), "F": float(F_c.mean()), "DOAE": float(np.nanmean(AngE_c)),
                   "DistE": float(np.nanmean(DistE_c)), "RDE": float(np.nanmean(RDE_c)),
                   "LR": float(LR_c.mean()), "SELD": float(SELD_c.mean())}
        out["classwise"] = [{"class": c, "ER": float(ER), "F": float(F_c[c]), "DOAE": float(AngE_c[c]),
                             "DistE": float(DistE_c[c]), "RDE": float(RDE_c[c]), "LR": float(LR_c[c]),
                             "SELD": float(SELD_c[c])} for c in range(self.num_classes)]
        return out
