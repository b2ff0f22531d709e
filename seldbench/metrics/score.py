"""Score a folder of prediction CSVs against a folder of reference CSVs with a metric suite."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seldbench.errors import SeldbenchError
from seldbench.metrics.csvio import check_regular_file
from seldbench.metrics.jackknife import check_intervals, interval_warnings, jackknife_interval

#: more classes than any SELD set has; beyond this the counters would not fit in memory
MAX_CLASSES = 1000


@dataclass
class ScoreResult:
    """Figures of one suite over a set of files, optionally with jackknife intervals."""

    suite: str
    figures: dict  # name -> float, plus "classwise": list of per-class dicts
    files: list[str]
    interval: dict = field(default_factory=dict)  # name -> (low, high), when jackknifed
    warnings: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    #: when jackknifed, which intervals mean little (see :func:`check_intervals`)
    interval_check: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = dict(self.figures)
        out["suite"] = self.suite
        if self.interval:
            out["jackknife"] = {k: list(v) for k, v in self.interval.items()}
            out["jackknife_check"] = dict(self.interval_check)
        if self.options:
            out["options"] = dict(self.options)
        return out


def _csv_files(folder: Path, what: str) -> dict[str, Path]:
    """``{stem: path}`` of the ``*.csv`` files (any case) of ``folder``; an entry that is not a
    regular file (a folder, a FIFO, a dangling or looping link) or a stem given twice (``x.csv``
    and ``x.CSV``) is an error."""
    if not folder.exists():
        raise SeldbenchError(f"{folder}: {what} folder does not exist")
    if not folder.is_dir():
        raise SeldbenchError(f"{folder}: {what} path is not a folder")
    try:
        # by name: the order of sorted(paths) within one folder, without pathlib's slow compare
        entries = sorted(folder.iterdir(), key=lambda p: os.path.normcase(p.name))
    except OSError as exc:
        raise SeldbenchError(f"{folder}: cannot list the {what} folder: {exc.strerror}") from None
    files: dict[str, Path] = {}
    for p in entries:
        if p.suffix.lower() != ".csv":
            continue
        check_regular_file(p, f"{what} CSV")
        if p.stem in files:
            raise SeldbenchError(f"{p}: another {what} of '{p.stem}' is '{files[p.stem].name}'; "
                                 "keep one")
        files[p.stem] = p
    return files


def _read_pairs(scorer, refs: dict[str, Path], preds: dict[str, Path]) -> list[tuple]:
    """``(reference, prediction)`` tables in the order of ``refs`` (an empty prediction where a
    stem has none), read in two batches where the scorer offers batch readers; where a file is
    bad, the error is the one reading the pairs one by one meets first."""
    stems = [s for s in refs if s in preds]

    def one_by_one() -> list[tuple]:
        return [(scorer.read_reference(path), scorer.read_prediction(preds[stem])
                 if stem in preds else scorer.empty_prediction()) for stem, path in refs.items()]

    if not (hasattr(scorer, "read_references") and hasattr(scorer, "read_predictions")):
        return one_by_one()
    try:
        ref_tables = scorer.read_references(list(refs.values()))
        got = dict(zip(stems, scorer.read_predictions([preds[s] for s in stems])))
    except SeldbenchError:  # the first bad file of the reference, prediction order words it
        return one_by_one()
    return [(ref, got[stem] if stem in preds else scorer.empty_prediction())
            for stem, ref in zip(refs, ref_tables)]


def score_tables(scorer, pairs: dict[str, tuple]) -> np.ndarray:
    """Per-file counters ``(files, counters, classes)`` for ``{stem: (ref, pred)}`` tables."""
    return scorer.counts(list(pairs.values()))


def summarise_with_interval(scorer, per_file: np.ndarray, figures: tuple[str, ...],
                            jackknife: bool) -> tuple[dict, dict]:
    """Figures of the summed counters, and leave-one-file-out jackknife intervals if asked."""
    total = per_file.sum(axis=0)
    result = scorer.summarise(total)
    interval: dict = {}
    if jackknife:
        n = per_file.shape[0]
        if n < 2:
            raise SeldbenchError("--jackknife needs at least 2 files")
        partial = [scorer.summarise(total - per_file[k]) for k in range(n)]
        for name in figures:
            interval[name] = jackknife_interval(result[name], np.array([p[name] for p in partial]))
        for c, row in enumerate(result["classwise"]):
            row["interval"] = {
                name: list(jackknife_interval(row[name], np.array([p["classwise"][c][name] for p in partial])))
                for name in figures if name in row}
    return result, interval


def score_folders(pred_dir: str | os.PathLike, ref_dir: str | os.PathLike, suite: str,
                  num_classes: int | None = None, jackknife: bool = False,
                  registry=None, **options) -> ScoreResult:
    """Score every prediction CSV in ``pred_dir`` against the reference CSV of the same stem.

    A reference without a prediction is scored as an empty prediction (with a warning); a
    prediction without a reference is an error.
    """
    from seldbench.registry import get_registry

    spec = (registry or get_registry()).get_metric_suite(suite)
    unknown = set(options) - set(spec.options)
    if unknown:
        name = sorted(unknown)[0]
        raise SeldbenchError(f"suite '{suite}': unknown option '{name}' "
                             f"(options: {', '.join(spec.options) or 'none'})")
    classes = num_classes or spec.default_classes
    if not 1 <= classes <= MAX_CLASSES:
        raise SeldbenchError(f"suite '{suite}': {classes} classes; scoring takes 1 to "
                             f"{MAX_CLASSES} (DCASE sets have 11 to 13)")
    scorer = spec.build(classes, **options)
    pred_dir, ref_dir = Path(pred_dir), Path(ref_dir)
    refs = _csv_files(ref_dir, "reference")
    preds = _csv_files(pred_dir, "prediction")
    if not refs:
        raise SeldbenchError(f"{ref_dir}: no reference CSV files")
    orphans = sorted(set(preds) - set(refs))
    if orphans:
        raise SeldbenchError(f"{preds[orphans[0]]}: no reference '{orphans[0]}.csv' in {ref_dir}"
                             + (f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""))
    warns = [f"{ref_path}: no prediction '{stem}.csv'; scored as an empty prediction"
             for stem, ref_path in refs.items() if stem not in preds]
    pairs = dict(zip(refs, _read_pairs(scorer, refs, preds)))
    per_file = score_tables(scorer, pairs)
    result, interval = summarise_with_interval(scorer, per_file, spec.figures, jackknife)
    check = check_intervals(result, interval, len(pairs)) if jackknife else {}
    warns += interval_warnings(check) if jackknife else []
    return ScoreResult(suite, result, list(pairs), interval, warns,
                       {k: v for k, v in options.items() if v}, check)
