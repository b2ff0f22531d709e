"""Additive per-file counters: rows of a ``(len(COUNTERS), classes)`` array.

Every figure of every suite is a function of these sums, so the score of any set of files is
the figure of the summed counters, and leave-one-file-out partial scores are one subtraction.
The global substitution/deletion/insertion counts S, D, I live in column 0 of their rows.
``TP_onscreen``/``FP_spatial_onscreen`` are TP/FP_spatial when a match must also get the
on/off-screen flag right, and ``OnscreenCorrect`` counts matches whose flags agree (2025).
"""
from __future__ import annotations

import numpy as np

COUNTERS = ("TP", "FP", "FP_spatial", "FN", "Nref", "AngE", "DistE", "RelDistE",
            "DE_TP", "DE_FP", "DE_FN", "S", "D", "I", "TP_onscreen", "FP_spatial_onscreen",
            "OnscreenCorrect")
IDX = {name: k for k, name in enumerate(COUNTERS)}


def zeros(num_classes: int) -> np.ndarray:
    return np.zeros((len(COUNTERS), num_classes), np.float64)


def get(counts: np.ndarray, name: str) -> np.ndarray:
    return counts[IDX[name]]
