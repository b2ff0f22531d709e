"""Leave-one-file-out jackknife confidence intervals."""
from __future__ import annotations

import numpy as np
from scipy import stats


def jackknife_interval(full: float, partial: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """95% interval ``estimate +/- t(1 - alpha/2, N-1) * std_err`` around the bias-corrected
    estimate ``full - (N-1)(mean(partial) - full)``; ``partial`` holds the N leave-one-out
    figures. NaN partial figures (e.g. a class with no match) give a NaN interval."""
    partial = np.asarray(partial, np.float64)
    n = len(partial)
    mean = partial.mean()
    bias = (n - 1) * (mean - full)
    std_err = np.sqrt((n - 1) * np.mean((partial - mean) ** 2))
    estimate = full - bias
    t = stats.t.ppf(1 - alpha / 2, n - 1)
    return float(estimate - t * std_err), float(estimate + t * std_err)
