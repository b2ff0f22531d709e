"""The DCASE SELD metric suites: 2021 (segment, micro), 2022/2023 (segment, macro), 2024
(frame, with distance) and 2025 (stereo: frame, folded azimuth, distance, on/off-screen). One
implementation, with each year's rules as named parameters.

Each scorer reads CSVs strictly (:mod:`seldbench.metrics.csvio`), turns a batch of files into
additive per-file counters (:mod:`seldbench.metrics.counters`) in one vectorised pass over all
files, frames and classes, and turns summed counters into figures. Parity with the official
scorers is the default; ``no_last_frame_drop`` (off by default) also scores the last annotated
reference frame, which the official 2022-2024 code loses.
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from seldbench.errors import SeldbenchError
from seldbench.metrics import counters as K
from seldbench.metrics.csvio import (HEADER_2025, EventTable, as_stereo, concat_polar,
                                     read_dcase_csv, read_many, write_dcase2025_csv)

EPS = np.finfo(np.float64).eps
DOA_THRESHOLD_DEG = 20.0
FRAMES_PER_SEGMENT = 10  # 100-ms label frames per 1-s segment
MAX_FRAMES = 10_000_000  # ~11.5 days of 100-ms frames: beyond this a frame index is an error
MAX_TRACKS = 10  # 2025: entries of one class in one frame the official loader keeps


def default_workers() -> int:
    """Threads for the matching loop: the CPUs this process may use, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def _in_threads(fn, pairs: Sequence, workers: int) -> np.ndarray:
    """``fn(pairs)`` on ``workers`` contiguous groups of files at once, stacked in file order.
    Counters are per file, so the groups are independent; the compiled loops and most numpy
    calls release the GIL."""
    rows = np.cumsum([len(r) + len(p) for r, p in pairs])
    if workers < 2 or len(pairs) < 2 or rows[-1] < 20000:
        return fn(pairs)
    cuts = np.searchsorted(rows, rows[-1] * np.arange(1, workers) / workers) + 1
    bounds = [0, *sorted({int(c) for c in cuts if 0 < c < len(pairs)}), len(pairs)]
    chunks = [pairs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        return np.concatenate(list(pool.map(fn, chunks)))


def _last_frame(ref: EventTable, suite: str, empty_ok: bool = False) -> int:
    """The last annotated frame index; ``empty_ok``: 0 for a reference without events (2025
    scores no frame of it, as its official code does) instead of an error."""
    if len(ref) == 0 and empty_ok:
        return 0
    if len(ref) == 0:
        raise SeldbenchError(f"{ref.path}: reference has no events; {suite} takes the evaluated "
                             "length from its last annotated frame")
    last = int(ref.frame.max())
    if last >= MAX_FRAMES:
        line = int(ref.line[int(np.argmax(ref.frame))])
        raise SeldbenchError(f"{ref.path}:{line}: frame {last} is beyond {MAX_FRAMES} "
                             "(more than 11 days of 100-ms frames)")
    return last


def _limit_tracks(skey: np.ndarray, idx: np.ndarray, source: np.ndarray, limit: int) -> np.ndarray:
    """The official 2025 track placement, where it changes anything: of a (frame, class) with
    more than ``limit`` entries, the first ``limit`` (file order) keep their places, and each
    later one overwrites the entry placed on track 0 (the entry whose source id is 0, else the
    first one sent to the lowest free track), so the last one's values sit there.

    ``skey``: sorted keys of the rows ``idx``; ``source``: every row's source id. Returns
    ``idx`` with those rows dropped or redirected (values are read through it).
    """
    starts = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]]) if len(skey) else skey
    lengths = np.diff(np.r_[starts, len(skey)])
    big = np.flatnonzero(lengths > limit)
    if not len(big):
        return idx
    idx = idx.copy()
    keep = np.ones(len(idx), bool)
    for b in big:  # rare: a Python loop over the overfull groups only
        s0, n = int(starts[b]), int(lengths[b])
        placed: dict[int, int] = {}  # track -> position in the group
        for pos in range(limit):
            src = int(source[idx[s0 + pos]])
            placed[src if src < limit and src not in placed
                   else min(set(range(limit)) - placed.keys())] = pos
        idx[s0 + placed[0]] = idx[s0 + n - 1]
        keep[s0 + limit:s0 + n] = False
    return idx[keep]


class _Batch:
    """Rows of many files sorted on one (file, frame, class) grid, with their assignment.

    Frame ``f`` of file ``i`` is grid row ``offset[i] + f``; file ``i`` owns ``n_frames[i]`` grid
    rows and key ``row * C + class``. ``rk``/``pk`` are the sorted reference/prediction keys
    (file order kept inside a key); ``m_*`` the assigned pairs in key order.
    """

    def __init__(self, pairs: Sequence[tuple[EventTable, EventTable]], n_frames, num_classes: int,
                 metric: int, prepare=None, track_limit: int | None = None) -> None:
        """``metric``: the matching cost (``kernels.POLAR``/``UNIT``/``FOLDED_AZIMUTH``);
        ``prepare``: applied to the concatenated coordinates of each side first (the 2025
        fold); ``track_limit``: entries kept per (frame, class), see :func:`_limit_tracks`.
        ``rd``/``pd`` and ``ron``/``pon`` are the sorted rows' distances and onscreen flags
        (zeros where a layout has none)."""
        C = self.C = num_classes
        n_frames = np.asarray(n_frames, np.int64)
        offset = np.concatenate([[0], np.cumsum(n_frames)[:-1]]).astype(np.int64)
        self.n_files = len(pairs)
        self.row_file = np.repeat(np.arange(len(pairs)), n_frames)

        def gather(side: int):
            tabs = [pair[side] for pair in pairs]
            fid = np.repeat(np.arange(len(tabs)), [len(t) for t in tabs])
            frame = np.concatenate([t.frame for t in tabs])
            key = (offset[fid] + frame) * C + np.concatenate([t.cls for t in tabs])
            keep = np.flatnonzero(frame < n_frames[fid])
            idx = keep[np.argsort(key[keep], kind="stable")]  # file order kept inside a key
            if track_limit is not None and len(idx) > track_limit:
                idx = _limit_tracks(key[idx], idx, np.concatenate([t.track for t in tabs]),
                                    track_limit)
            dist, on = (np.concatenate([getattr(t, a) if getattr(t, a) is not None
                                        else np.zeros(len(t)) for t in tabs]) if tabs
                        else np.zeros(0) for a in ("distance", "onscreen"))
            cart = {t.cartesian for t in tabs}
            if len(cart) == 1:  # one layout: converted in the compiled loop
                coords, is_cart = np.concatenate([t.coords for t in tabs]), cart.pop()
            else:
                coords, is_cart = concat_polar(tabs), False
            if prepare is not None:
                coords = np.ascontiguousarray(prepare(coords))
            return key[idx], coords, idx, is_cart, dist[idx], on[idx]

        from seldbench.metrics import kernels  # numba: imported when files are scored

        self.rk, rc, ri, r_cart, self.rd, self.ron = gather(0)
        self.pk, pc, pi, p_cart, self.pd, self.pon = gather(1)
        m_r, m_p, m_c, m_pos, n, hard, n_hard = kernels.match_sorted(
            self.rk, self.pk, rc, pc, ri, pi, r_cart, p_cart, metric)
        parts = [(m_r[:n], m_p[:n], m_c[:n], m_pos[:n])]
        if n_hard:  # rare: big groups and ties, decided by scipy (0.2 s to import)
            from scipy.optimize import linear_sum_assignment
        for i, g, j, p in hard[:n_hard]:
            cost = kernels.cost_block(rc, pc, ri, pi, r_cart, p_cart, metric, i, g, j, p)
            a, b = linear_sum_assignment(cost)
            parts.append((i + a, j + b, cost[a, b], a))
        m_r, m_p, m_c, m_pos = (np.concatenate(x) for x in zip(*parts))
        if n_hard:
            order = np.argsort(self.rk[m_r], kind="stable")
            m_r, m_p, m_c, m_pos = m_r[order], m_p[order], m_c[order], m_pos[order]
        self.m_ref, self.m_pred, self.m_cost, self.m_pos = m_r, m_p, m_c, m_pos.astype(np.int64)
        self.m_key = self.rk[m_r]


def _frame_counts(b: _Batch, C: int, dist_threshold: float, reldist_threshold: float,
                  onscreen: bool) -> np.ndarray:
    """Counters of the 100-ms frame rules for an assigned batch; distance errors in the unit
    of the files' distances (2024: m, 2025: cm), relative ones as the official ``/ (d + eps)``."""
    from seldbench.metrics import kernels

    with np.errstate(over="ignore"):  # distances near the float limit: inf, as upstream
        dist_err = np.abs(b.rd[b.m_ref] - b.pd[b.m_pred])
    rel_err = dist_err / (b.rd[b.m_ref] + EPS)
    on_ok = (b.ron[b.m_ref] == b.pon[b.m_pred]).astype(np.float64)
    return kernels.frame_counts(b.rk, b.pk, b.m_key, b.m_cost, dist_err, rel_err, on_ok, C,
                                b.row_file, b.n_files, DOA_THRESHOLD_DEG, dist_threshold,
                                reldist_threshold, onscreen)


def _f_score(counts: np.ndarray, tp: str = "TP", fps: str = "FP_spatial") -> np.ndarray:
    """Per-class location-sensitive F: ``TP / (eps + TP + FP_spatial + (FP + FN) / 2)``."""
    TP, FPs, FP, FN = (K.get(counts, n) for n in (tp, fps, "FP", "FN"))
    return TP / (EPS + TP + FPs + 0.5 * (FP + FN))


def _per_match(counts: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
    """Per-class means over matched pairs ``sum / (DE_TP + eps)`` of each counter in ``names``;
    NaN for a class without a match (the 2024/2025 official convention)."""
    DE_TP = K.get(counts, "DE_TP")
    with np.errstate(invalid="ignore", divide="ignore"):
        return [np.where(DE_TP == 0, np.nan, K.get(counts, n) / (DE_TP + EPS)) for n in names]


class _Scorer:
    """What both scorers share: counters of many files at once, spread over threads."""

    workers: int = 1
    num_classes: int
    ref_layouts: dict
    pred_layouts: dict

    def _reading(self, side: str) -> dict:
        """The strict reader's arguments for the reference (``"ref"``) or prediction files."""
        return {"layouts": self.ref_layouts if side == "ref" else self.pred_layouts,
                "num_classes": self.num_classes}

    def _loaded(self, table: EventTable, side: str) -> EventTable:
        """A table as read, in the units the scorer works in."""
        return table

    def read_reference(self, path) -> EventTable:
        return self._loaded(read_dcase_csv(path, **self._reading("ref")), "ref")

    def read_prediction(self, path) -> EventTable:
        return self._loaded(read_dcase_csv(path, **self._reading("pred")), "pred")

    def read_references(self, paths) -> list[EventTable]:
        """:meth:`read_reference` of many files in one batch (:func:`~seldbench.metrics.csvio.
        read_many`: the same tables, and the error of the first bad file)."""
        return [self._loaded(t, "ref") for t in read_many(paths, **self._reading("ref"))]

    def read_predictions(self, paths) -> list[EventTable]:
        """:meth:`read_prediction` of many files in one batch."""
        return [self._loaded(t, "pred") for t in read_many(paths, **self._reading("pred"))]

    def empty_prediction(self) -> EventTable:
        """The prediction of a file a system wrote nothing for."""
        return EventTable.empty("<no prediction>", next(iter(self.pred_layouts.values())))

    def file_counts(self, ref: EventTable, pred: EventTable) -> np.ndarray:
        return self.counts([(ref, pred)])[0]

    def counts(self, pairs: Sequence[tuple[EventTable, EventTable]]) -> np.ndarray:
        """Counters ``(files, counters, classes)`` of (reference, prediction) table pairs."""
        return _in_threads(self._counts, pairs, self.workers)

    def _counts(self, pairs: Sequence[tuple[EventTable, EventTable]]) -> np.ndarray:
        raise NotImplementedError


class SegmentScorer(_Scorer):
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
        #: the layout a system should write its predictions in, and whether it needs distance
        self.prediction_layout = next(iter(pred_layouts.values()))
        self.needs_distance = False
        self.fixed_frames, self.no_last_frame_drop = fixed_frames, no_last_frame_drop
        self.workers = default_workers()

    def eval_frames(self, ref: EventTable) -> int:
        """Frames scored in a file: a whole number of 1-s segments."""
        if self.fixed_frames is not None:
            return self.fixed_frames
        L = _last_frame(ref, self.suite) + (1 if self.no_last_frame_drop else 0)
        return math.ceil(L / FRAMES_PER_SEGMENT) * FRAMES_PER_SEGMENT

    def _counts(self, pairs: Sequence[tuple[EventTable, EventTable]]) -> np.ndarray:
        from seldbench.metrics import kernels

        b = _Batch(pairs, [self.eval_frames(ref) for ref, _ in pairs], self.num_classes,
                   kernels.POLAR)
        max_pos = int(b.m_pos.max()) + 1 if len(b.m_pos) else 1
        return kernels.segment_counts(b.rk, b.pk, b.m_key, b.m_pos, b.m_cost, self.num_classes,
                                      FRAMES_PER_SEGMENT, b.row_file, b.n_files,
                                      K.IDX[self.spatial_fp], max_pos, DOA_THRESHOLD_DEG)

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


class FrameScorer(_Scorer):
    """100-ms frame scoring with distance (DCASE 2024): frames ``0 .. L-1``, ``L`` the last
    reference frame index. Angles in Cartesian form after the official polar round trip;
    reference distances in cm (divided by 100), predicted distances in metres as given."""

    prediction_layout = "fctxyzd"
    needs_distance = True
    ref_layouts = {6: "fctaed"}
    pred_layouts = {6: "fctaed", 7: "fctxyzd"}

    def __init__(self, num_classes: int, *, dist_threshold_m: float = math.inf,
                 reldist_threshold: float = 1.0, no_last_frame_drop: bool = False) -> None:
        self.num_classes = num_classes
        self.dist_threshold_m, self.reldist_threshold = dist_threshold_m, reldist_threshold
        self.no_last_frame_drop = no_last_frame_drop
        self.workers = default_workers()

    def _loaded(self, table: EventTable, side: str) -> EventTable:
        if side == "ref":
            table.distance = table.distance / 100  # cm -> m
        return table

    def eval_frames(self, ref: EventTable) -> int:
        return _last_frame(ref, "dcase2024") + (1 if self.no_last_frame_drop else 0)

    def _counts(self, pairs: Sequence[tuple[EventTable, EventTable]]) -> np.ndarray:
        # unit vectors after the official polar round trip, then Cartesian angles
        from seldbench.metrics import kernels

        b = _Batch(pairs, [self.eval_frames(ref) for ref, _ in pairs], self.num_classes,
                   kernels.UNIT)
        return _frame_counts(b, self.num_classes, self.dist_threshold_m, self.reldist_threshold,
                             onscreen=False)

    def summarise(self, counts: np.ndarray) -> dict:
        DE_TP, DE_FN = K.get(counts, "DE_TP"), K.get(counts, "DE_FN")
        S, D, I = (counts[K.IDX[n], 0] for n in "SDI")
        ER = (S + D + I) / (K.get(counts, "Nref").sum() + EPS)
        F_c = _f_score(counts)
        AngE_c, DistE_c, RDE_c = _per_match(counts, ("AngE", "DistE", "RelDistE"))
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


class StereoFrameScorer(_Scorer):
    """100-ms frame scoring of stereo SELD (DCASE 2025 Task 3), as the official
    ``ComputeSELDResults``: azimuth only, folded front-back to [-90, 90]; references and
    predictions in the ``fctado`` layout (header line; distances in cm); frames ``0 .. L-1``,
    ``L`` the last reference frame (none for a reference without events); at most 10 entries
    per (frame, class), the later ones overwriting track 0; Hungarian assignment on the folded
    azimuth difference; a match fails on an error above 20 degrees or a relative distance
    error above 1.0 (strict ``>``), and for ``F_onscreen`` also on a wrong onscreen flag.
    Localisation figures are means over all matched pairs. ``average``: ``"macro"`` (per class,
    then the mean; NaN errors of classes without a match left out) or ``"micro"``.
    ``DistE`` is reported in metres (the official figure in cm / 100).
    """

    prediction_layout = "fctado"
    needs_distance = True
    pred_layouts = {6: "fctado"}

    def __init__(self, num_classes: int, *, average: str = "macro",
                 no_last_frame_drop: bool = False, dist_threshold_cm: float = math.inf,
                 reldist_threshold: float = 1.0) -> None:
        if average not in ("macro", "micro"):
            raise SeldbenchError(f"dcase2025: average '{average}' is not 'macro' or 'micro'")
        self.num_classes, self.average = num_classes, average
        self.no_last_frame_drop = no_last_frame_drop
        self.dist_threshold_cm, self.reldist_threshold = dist_threshold_cm, reldist_threshold
        self.workers = default_workers()

    def _reading(self, side: str) -> dict:
        return {"layouts": self.pred_layouts, "num_classes": self.num_classes,
                "header": HEADER_2025, "positive_distance": side == "ref"}

    def write_reference(self, path, table: EventTable) -> None:
        """Write ``table`` (any layout; see :func:`~seldbench.metrics.csvio.as_stereo`) as a
        reference CSV of this suite: the hook the contract tests and simulations use where a
        suite's files are not the headerless DCASE CSVs."""
        write_dcase2025_csv(path, as_stereo(table))

    def write_prediction(self, path, table: EventTable) -> None:
        """Write ``table`` as a prediction CSV of this suite (as :meth:`write_reference`)."""
        write_dcase2025_csv(path, as_stereo(table))

    def eval_frames(self, ref: EventTable) -> int:
        """``L`` (``L + 1`` with ``no_last_frame_drop``); 0 for a reference without events."""
        extra = 1 if self.no_last_frame_drop and len(ref) else 0
        return _last_frame(ref, "dcase2025", empty_ok=True) + extra

    def _counts(self, pairs: Sequence[tuple[EventTable, EventTable]]) -> np.ndarray:
        from seldbench.metrics import kernels
        from seldbench.metrics.angles import fold_azimuth

        b = _Batch(pairs, [self.eval_frames(ref) for ref, _ in pairs], self.num_classes,
                   kernels.FOLDED_AZIMUTH, prepare=fold_azimuth, track_limit=MAX_TRACKS)
        return _frame_counts(b, self.num_classes, self.dist_threshold_cm, self.reldist_threshold,
                             onscreen=True)

    def summarise(self, counts: np.ndarray) -> dict:
        names = ("AngE", "DistE", "RelDistE", "OnscreenCorrect")
        per_class = _per_match(counts, names)
        per_class[1] = per_class[1] / 100  # cm -> m
        F_c, Fo_c = _f_score(counts), _f_score(counts, "TP_onscreen", "FP_spatial_onscreen")
        if self.average == "micro":
            whole = counts.sum(axis=1, keepdims=True)
            F, Fo = float(_f_score(whole)[0]), float(_f_score(whole, "TP_onscreen",
                                                             "FP_spatial_onscreen")[0])
            errors = [float(v[0]) for v in _per_match(whole, names)]
            errors[1] /= 100
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all NaN: NaN, as upstream
                F, Fo = float(F_c.mean()), float(Fo_c.mean())
                errors = [float(np.nanmean(v)) for v in per_class]
        keys = ("DOAE", "DistE", "RDE", "OnscreenAcc")
        out = {"F": F, "F_onscreen": Fo, **dict(zip(keys, errors))}
        out["classwise"] = [{"class": c, "F": float(F_c[c]), "F_onscreen": float(Fo_c[c]),
                             **{k: float(v[c]) for k, v in zip(keys, per_class)}}
                            for c in range(self.num_classes)]
        return out
