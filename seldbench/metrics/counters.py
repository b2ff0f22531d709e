"""Additive per-file counters: rows of a ``(len(COUNTERS), classes)`` array.

Every figure of every suite is a function of these sums, so the score of any set of files is
the figure of the summed counters, and leave-one-file-out partial scores are one subtraction.
The global substitution/deletion/insertion counts S, D, I live in column 0 of their rows.
"""
from __future__ import annotations

import numpy as np

COUNTERS = ("TP", "FP", "FP_spatial", "FN", "Nref", "AngE", "DistE", "RelDistE",
            "DE_TP", "DE_FP", "DE_FN", "S", "D", "I")
IDX = {name: k for k, name in enumerate(COUNTERS)}


def zeros(num_classes: int) -> np.ndarray:
    return np.zeros((len(COUNTERS), num_classes), np.float64)


def add_per_class(counts: np.ndarray, name: str, cls: np.ndarray, values) -> None:
    """``counts[name][cls[k]] += values[k]`` for every k (values may be a scalar)."""
    values = np.broadcast_to(np.asarray(values, np.float64), cls.shape)
    counts[IDX[name]] += np.bincount(cls, weights=values, minlength=counts.shape[1])


def add_sdi(counts: np.ndarray, unit: np.ndarray, loc_fp, loc_fn) -> None:
    """Accumulate S, D, I from per-(unit, class) ``loc_fp``/``loc_fn`` summed within each unit
    (a unit is a 1-s block or a 100-ms frame)."""
    if len(unit) == 0:
        return
    _, inv = np.unique(unit, return_inverse=True)
    fp = np.bincount(inv, weights=np.asarray(loc_fp, np.float64))
    fn = np.bincount(inv, weights=np.asarray(loc_fn, np.float64))
    counts[IDX["S"], 0] += np.minimum(fp, fn).sum()
    counts[IDX["D"], 0] += np.maximum(0, fn - fp).sum()
    counts[IDX["I"], 0] += np.maximum(0, fp - fn).sum()


def get(counts: np.ndarray, name: str) -> np.ndarray:
    return counts[IDX[name]]
