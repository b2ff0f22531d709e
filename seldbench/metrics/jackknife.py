"""Leave-one-file-out jackknife confidence intervals, and the checks that say when they mean
little."""
from __future__ import annotations

import math

import numpy as np

#: below this many files an interval is flagged: its t factor is above t(0.975, 9) = 2.26 and
#: the spread behind it comes from fewer than 10 leave-one-out values, one file can swing it
MIN_FILES = 10
#: the values each figure can take, by figure name; an interval reaching outside is flagged
FIGURE_RANGES = {"ER": (0.0, math.inf), "F": (0.0, 1.0), "LR": (0.0, 1.0), "SELD": (0.0, math.inf),
                 "LE": (0.0, 180.0), "DOAE": (0.0, 180.0), "DistE": (0.0, math.inf),
                 "RDE": (0.0, math.inf), "F_onscreen": (0.0, 1.0), "OnscreenAcc": (0.0, 1.0)}


def jackknife_interval(full: float, partial: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """95% interval ``estimate +/- t(1 - alpha/2, N-1) * std_err`` around the bias-corrected
    estimate ``full - (N-1)(mean(partial) - full)``; ``partial`` holds the N leave-one-out
    figures. NaN partial figures (e.g. a class with no match) give a NaN interval."""
    from scipy import stats  # about 0.4 s to import: only when intervals are asked for

    partial = np.asarray(partial, np.float64)
    n = len(partial)
    with np.errstate(all="ignore"):  # infinite figures give NaN intervals, not warnings
        mean = partial.mean()
        bias = (n - 1) * (mean - full)
        std_err = np.sqrt((n - 1) * np.mean((partial - mean) ** 2))
        estimate = full - bias
        t = stats.t.ppf(1 - alpha / 2, n - 1)
        return float(estimate - t * std_err), float(estimate + t * std_err)


def check_intervals(figures: dict, interval: dict, n_files: int) -> dict:
    """Which intervals mean little: ``{"files", "too_few_files", "out_of_range",
    "excludes_estimate"}``, the last two lists of figure names (``FIG[class]`` per class) whose
    interval reaches outside :data:`FIGURE_RANGES` or does not contain the figure itself."""
    items = [(k, figures[k], interval[k]) for k in interval]
    for row in figures.get("classwise", []):
        items += [(f"{k}[{row['class']}]", row[k], v) for k, v in row.get("interval", {}).items()]
    out_of_range, excludes = [], []
    for name, value, (lo, hi) in items:
        low, high = FIGURE_RANGES.get(name.split("[", 1)[0], (-math.inf, math.inf))
        if lo < low or hi > high:
            out_of_range.append(name)
        if not lo <= value <= hi and not any(map(math.isnan, (lo, hi, value))):
            excludes.append(name)
    return {"files": n_files, "too_few_files": n_files < MIN_FILES,
            "out_of_range": out_of_range, "excludes_estimate": excludes}


def interval_warnings(check: dict) -> list[str]:
    """One line per kind of flag raised by :func:`check_intervals`."""
    def names(xs: list[str]) -> str:
        return ", ".join(xs[:6]) + (f" and {len(xs) - 6} more" if len(xs) > 6 else "")

    out = []
    if check["too_few_files"]:
        out.append(f"jackknife over {check['files']} files: below {MIN_FILES} files the intervals "
                   "mean little (a wide t factor times a spread from so few leave-one-out scores)")
    if check["out_of_range"]:
        out.append("jackknife intervals reach outside the figure's possible range (* in the "
                   f"table; FIG[class] in --json): {names(check['out_of_range'])}; too few or "
                   "too uneven files")
    if check["excludes_estimate"]:
        out.append("jackknife intervals do not contain the figure itself (! in the table; "
                   f"FIG[class] in --json): {names(check['excludes_estimate'])}; the bias "
                   "correction moved them: too few or too uneven files")
    return out
