"""Plain-text renderings of scores (leaderboards come later from run records)."""
from __future__ import annotations

import math

#: figures shown as percentages in tables (stored as fractions)
PERCENT = {"F", "LR", "F_onscreen", "OnscreenAcc"}


def fmt(name: str, value: float | None) -> str:
    """A figure as a table cell: F, LR and onscreen figures in %, angles in degrees, the rest
    with 3 decimals.
    A per-class name ``FIG[class]`` is formatted as ``FIG``."""
    name = name.split("[", 1)[0]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if name in PERCENT:
        return f"{100 * value:.1f}%"
    if name in ("LE", "DOAE"):
        return f"{value:.1f}°"
    return f"{value:.3f}"


def interval_marks(figure: str, check: dict) -> str:
    """``*`` (interval outside the figure's range) and ``!`` (interval misses the figure), as
    :func:`seldbench.metrics.jackknife.check_intervals` found; its warnings explain them."""
    return "*" * (figure in check.get("out_of_range", ())) \
        + "!" * (figure in check.get("excludes_estimate", ()))


def score_table(result, class_names=None) -> str:
    """The overall figures (with intervals) and the per-class table of a ScoreResult; classes
    by index, or by name when ``class_names`` are given."""
    figs = [k for k in result.figures if k != "classwise"]
    lines = [f"suite {result.suite}, {len(result.files)} files"
             + (", options: " + ", ".join(k if v is True else f"{k}={v}"
                                           for k, v in result.options.items())
                if result.options else "")]
    check = getattr(result, "interval_check", None) or {}
    name_w = max([6, *map(len, figs)])
    for k in figs:
        cell = fmt(k, result.figures[k])
        if k in result.interval:
            lo, hi = result.interval[k]
            cell += f"  [{fmt(k, lo)}, {fmt(k, hi)}]"
            cell += interval_marks(k, check)
        lines.append(f"  {k:<{name_w}} {cell}")
    per = [k for k in figs if k != "ER"]
    width = {k: max(8, len(k)) for k in per}
    lines.append("")
    label = (lambda c: class_names[c]) if class_names else str
    cw = max([5, *(len(label(row["class"])) for row in result.figures["classwise"])])
    lines.append(f"  {'class':>{cw}} " + " ".join(f"{k:>{width[k]}}" for k in per))
    for row in result.figures["classwise"]:
        lines.append(f"  {label(row['class']):>{cw}} "
                     + " ".join(f"{fmt(k, row.get(k)):>{width[k]}}" for k in per))
    return "\n".join(lines)


def next_steps(record: dict, runs_dir: str | None = None) -> str:
    """What to run after a finished run: tabulate, use the model, the benchmark set."""
    from pathlib import Path

    runs = Path(runs_dir or record["config"]["output"]["runs_dir"])
    folder = runs / record["dataset"]["name"] / record["model"]["name"] / record["run_id"]
    return (f"next: `seldbench compare --runs {runs}` tabulates runs (seeds grouped); "
            f"`seldbench predict --checkpoint {folder} --audio FILE.wav --out FILE.csv` applies "
            f"this model; `seldbench run --model {record['model']['name']} --dataset synth` "
            f"trains on the benchmark set (docs/datasets.md for STARSS23)")


def record_table(record: dict) -> str:
    """The test figures of a run record, one block per metric suite."""
    sel = record["selection"]
    lines = [f"{record['model']['name']}@{record['model']['version']} on "
             f"{record['dataset']['name']} ({record['split']}), seed {record['seed']}; "
             f"best epoch {sel['best_epoch']} by val {sel['suite']} {sel['figure']}"]
    for suite, res in record["results"].items():
        if "skipped" in res:
            lines.append(f"  {suite}: skipped ({res['skipped']})")
            continue
        cells = []
        check = res.get("jackknife_check") or {}
        for k, v in res["figures"].items():
            cell = f"{k} {fmt(k, v)}"
            if k in res.get("interval", {}):
                lo, hi = res["interval"][k]
                cell += f" [{fmt(k, lo)}, {fmt(k, hi)}]" + interval_marks(k, check)
            cells.append(cell)
        lines.append(f"  {suite}: " + ", ".join(cells))
        if check:
            from seldbench.metrics.jackknife import interval_warnings

            lines += [f"  note: {w}" for w in interval_warnings(check)]
    return "\n".join(lines)
