"""The DCASE SELD metric suites: 2021 (segment, micro), 2022/2023 (segment, macro) and 2024
(frame, with distance). One implementation, with each year's rules as named parameters.

Each scorer reads CSVs strictly (:mod:`seldbench.metrics.csvio`), turns one file into additive
counters (:mod:`seldbench.metrics.counters`) and turns summed counters into figures. Parity with
the official scorers is the default; the ``no_last_frame_drop`` option (off by default) also
scores the last annotated reference frame, which the official code loses.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from seldbench.errors import SeldbenchError
from seldbench.metrics import counters as K
from seldbench.metrics.csvio import EventTable, cartesian_to_polar, polar_to_cartesian, read_dcase_csv
from seldbench.metrics.matching import angle_cartesian_deg, angle_polar_deg, match_groups

EPS = np.finfo(np.float64).eps
DOA_THRESHOLD_DEG = 20.0
FRAMES_PER_SEGMENT = 10  # 100-ms label frames per 1-s segment


def _eval_length(ref: EventTable, suite: str, no_last_frame_drop: bool) -> int:
    """Number of frames ``L`` from the reference: frames ``0 .. L-1`` exist for the suite."""
    if len(ref) == 0:
        raise SeldbenchError(f"{ref.path}: reference has no events; {suite} takes the evaluated "
                             "length from its last annotated frame")
    last = int(ref.frame.max())
    return last + 1 if no_last_frame_drop else last


class SegmentScorer:
    """1-s segment scoring (DCASE 2021 micro; 2022/2023 macro).

    ``fixed_frames``: 2021 evaluates exactly this many frames (600 = 60 s) whatever the files
    hold; otherwise the length is the last reference frame index ``L`` and ``ceil(L/10)``
    segments are scored (frames ``0 .. 10*ceil(L/10) - 1`` of both files).
    """

    def __init__(self, num_classes: int, *, suite: str, average: str, spatial_fp: str,
                 ref_layouts: dict, pred_layouts: dict, fixed_frames: int | None = None,
                 no_last_frame_drop: bool = False) -> None:
        self.num_classes, self.suite, self.average = num_classes, suite, average
        self.spatial_fp = spatial_fp  # counter that a match beyond 20 degrees goes to
        self.ref_layouts, self.pred_layouts = ref_layouts, pred_layouts
        self.fixed_frames, self.no_last_frame_drop = fixed_frames, no_last_frame_drop

    def read_reference(self, path) -> EventTable:
        return read_dcase_csv(path, self.ref_layouts, self.num_classes)

    def read_prediction(self, path) -> EventTable:
        return read_dcase_csv(path, self.pred_layouts, self.num_classes)

    def file_counts(self, ref: EventTable, pred: EventTable) -> np.ndarray:
        C = self.num_classes
        counts = K.zeros(C)
        if self.fixed_frames is not None:
            n_frames = self.fixed_frames
        else:
            L = _eval_length(ref, self.suite, self.no_last_frame_drop)
            n_frames = math.ceil(L / FRAMES_PER_SEGMENT) * FRAMES_PER_SEGMENT
        r, p = ref.frame < n_frames, pred.frame < n_frames
        rf, rc, rdoa = ref.frame[r], ref.cls[r], ref.polar()[r]
        pf, pc, pdoa = pred.frame[p], pred.cls[p], pred.polar()[p]

        # Matching inside each (frame, class); the track identity of a match is the position
        # of the reference entry in its frame's list (official TODO, kept for parity).
        m = match_groups(rf * C + rc, pf * C + pc,
                         lambda a, b: angle_polar_deg(rdoa[a, 0], rdoa[a, 1], pdoa[b, 0], pdoa[b, 1]))

        def block_max(frame, cls):
            # largest number of entries of a class in any one frame of each block
            fk, n = np.unique(frame * C + cls, return_counts=True)
            bk = (fk // C) // FRAMES_PER_SEGMENT * C + fk % C
            ub, inv = np.unique(bk, return_inverse=True)
            out = np.zeros(len(ub))
            np.maximum.at(out, inv, n)
            return ub, out

        gk, ng = block_max(rf, rc)
        pk, npd = block_max(pf, pc)
        U = np.union1d(gk, pk)
        nG, nP = np.zeros(len(U)), np.zeros(len(U))
        nG[np.searchsorted(U, gk)] = ng
        nP[np.searchsorted(U, pk)] = npd

        # average matched angle per (block, class, reference position) = one track
        mb = (m.key // C) // FRAMES_PER_SEGMENT * C + m.key % C
        width = int(m.ref_pos.max()) + 1 if len(m.ref_pos) else 1
        tk, tinv = np.unique(mb * width + m.ref_pos, return_inverse=True)
        avg = np.bincount(tinv, weights=m.cost) / np.bincount(tinv)
        tu = np.searchsorted(U, tk // width)
        n_tracks = np.bincount(tu, minlength=len(U))
        n_wrong = np.bincount(tu, weights=avg > DOA_THRESHOLD_DEG, minlength=len(U))
        sum_avg = np.bincount(tu, weights=avg, minlength=len(U))

        cls, block = U % C, U // C
        g_on, p_on = nG > 0, nP > 0
        both = g_on & p_on
        matched = n_tracks > 0
        no_common = both & ~matched  # class in both, never in the same frame: nP misses
        hit = both & matched
        extra_fp = np.where(hit, np.maximum(nP - nG, 0), 0) + np.where(p_on & ~g_on, nP, 0)
        extra_fn = np.where(hit, np.maximum(nG - nP, 0), 0) + np.where(g_on & ~p_on, nG, 0) \
            + np.where(no_common, nP, 0)
        wrong = np.where(hit, n_wrong, 0)
        K.add_per_class(counts, "Nref", cls, nG)
        K.add_per_class(counts, "TP", cls, np.where(hit, n_tracks - n_wrong, 0))
        K.add_per_class(counts, self.spatial_fp, cls, wrong)
        K.add_per_class(counts, "FP", cls, extra_fp)
        K.add_per_class(counts, "DE_FP", cls, extra_fp)
        K.add_per_class(counts, "FN", cls, extra_fn)
        K.add_per_class(counts, "DE_FN", cls, extra_fn)
        K.add_per_class(counts, "AngE", cls, np.where(hit, sum_avg, 0))
        K.add_per_class(counts, "DE_TP", cls, np.where(hit, n_tracks, 0))
        K.add_sdi(counts, block, extra_fp + wrong, extra_fn)
        return counts

    def summarise(self, counts: np.ndarray) -> dict:
        TP, FP, FPs, FN = (K.get(counts, n) for n in ("TP", "FP", "FP_spatial", "FN"))
        DE, DE_TP, DE_FN = (K.get(counts, n) for n in ("AngE", "DE_TP", "DE_FN"))
        S, D, I = (counts[K.IDX[n], 0] for n in "SDI")
        Nref = K.get(counts, "Nref")
        ER = (S + D + I) / (Nref.sum() + EPS)
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

    def file_counts(self, ref: EventTable, pred: EventTable) -> np.ndarray:
        C = self.num_classes
        counts = K.zeros(C)
        L = _eval_length(ref, "dcase2024", self.no_last_frame_drop)
        r, p = ref.frame < L, pred.frame < L
        rv = polar_to_cartesian(ref.coords[r])
        pv = polar_to_cartesian(pred.polar()[p])  # Cartesian files make the polar round trip
        rd, pd = ref.distance[r], pred.distance[p]
        rk, pk = ref.frame[r] * C + ref.cls[r], pred.frame[p] * C + pred.cls[p]
        m = match_groups(rk, pk, lambda a, b: angle_cartesian_deg(rv[a], pv[b]))
        dist_err = np.abs(rd[m.ref] - pd[m.pred])
        rel_err = dist_err / (rd[m.ref] + EPS)
        bad = (m.cost > DOA_THRESHOLD_DEG) | (dist_err > self.dist_threshold_m) \
            | (rel_err > self.reldist_threshold)

        U, rn, pn = _union_counts(rk, pk)
        mu = np.searchsorted(U, m.key)
        n_pairs = np.bincount(mu, minlength=len(U))
        n_bad = np.bincount(mu, weights=bad, minlength=len(U))
        cls, frame = U % C, U // C
        both = (rn > 0) & (pn > 0)
        fp_extra = np.where(both, np.maximum(pn - rn, 0), pn * (rn == 0))
        fn_extra = np.where(both, np.maximum(rn - pn, 0), rn * (pn == 0))
        K.add_per_class(counts, "Nref", cls, rn)
        K.add_per_class(counts, "TP", cls, n_pairs - n_bad)
        K.add_per_class(counts, "FP_spatial", cls, n_bad)
        K.add_per_class(counts, "FP", cls, fp_extra)
        K.add_per_class(counts, "DE_FP", cls, fp_extra)
        K.add_per_class(counts, "FN", cls, fn_extra)
        K.add_per_class(counts, "DE_FN", cls, fn_extra)
        K.add_per_class(counts, "DE_TP", cls, n_pairs)
        mc = m.key % C
        K.add_per_class(counts, "AngE", mc, m.cost)
        K.add_per_class(counts, "DistE", mc, dist_err)
        K.add_per_class(counts, "RelDistE", mc, rel_err)
        K.add_sdi(counts, frame, fp_extra + n_bad, fn_extra)
        return counts

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


def _union_counts(rk: np.ndarray, pk: np.ndarray):
    """Sorted union of group keys with the number of reference and prediction rows in each."""
    ru, rc = np.unique(rk, return_counts=True)
    pu, pc = np.unique(pk, return_counts=True)
    U = np.union1d(ru, pu)
    rn, pn = np.zeros(len(U)), np.zeros(len(U))
    rn[np.searchsorted(U, ru)] = rc
    pn[np.searchsorted(U, pu)] = pc
    return U, rn, pn
