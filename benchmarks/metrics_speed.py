"""Scoring speed: the vectorised suites against the per-frame loop reference, side by side.

Both score the same generated set of 78 one-minute files (13 classes, ~25 events per file) from
the same parsed tables; the loop reference follows docs/metrics.md ("Segment suites", "Frame suite")
(:mod:`seldbench.metrics.reference`), structured like the official scorers. Prints seconds
and the ratio per suite, then the end-to-end time of ``score_folders`` including CSV reading,
then whole processes: ``seldbench score`` (and ``--help``) run as a fresh subprocess each time,
next to the loop reference's scoring alone (and the official scorer's process, when given).

    python benchmarks/metrics_speed.py [--files 78] [--repeat 3]
        [--official-2023 DIR] [--official-2024 DIR] [--files-2025 600] [--official-2025 DIR]

With ``--official-2023`` / ``--official-2024`` pointing at local checkouts of the official
scorers (sharathadavanne/seld-dcase2023, partha2409/DCASE2024_seld_baseline; not shipped here),
their ``ComputeSELDResults`` is also timed on the same files in a subprocess (with the numpy-2
aliases and stand-ins for the feature-extraction-only imports), the scoring part separately from
its CSV loading, and its figures are checked against seldbench's.

The 2025 row scores ``--files-2025`` random 5-s stereo clips (50 frames, the ``fctado`` layout):
the loop reference, the compiled suite and ``score_folders``, and reads them with the strict
reader one file at a time and in batches (:func:`~seldbench.metrics.csvio.read_many`); with ``--official-2025`` (a
checkout of partha2409/DCASE2025_seld_baseline) also the official ``ComputeSELDResults``
construction plus ``get_SELD_Results`` on the same files (one call, which gives one of the two
F figures; ``cv2`` and tensorboard stood in, as only its feature extraction uses them).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from seldbench.metrics import reference
from seldbench.metrics.score import score_folders
from seldbench.metrics.simulate import write_random_set
from seldbench.registry import get_registry


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


_OFFICIAL_DRIVER = r"""
import json, os, sys, tempfile, time, types
import numpy as np
for name, val in (("float", float), ("int", int), ("bool", bool), ("NaN", np.nan)):
    if name not in np.__dict__:
        setattr(np, name, val)
class _Any(types.ModuleType):
    def __getattr__(self, item):
        if item.startswith("__"):
            raise AttributeError(item)
        return lambda *a, **k: None
import importlib
for name in ("sklearn", "sklearn.preprocessing", "joblib", "IPython", "cv2", "cls_vid_features"):
    try:  # only the imports that feature extraction needs and this venv lacks are stood in
        importlib.import_module(name)
    except Exception:
        sys.modules[name] = _Any(name)
repo, ref, pred, classes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, repo)
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    import parameters, cls_compute_seld_results as ccsr, cls_feature_class as cfc
    params = parameters.get_params()
params["unique_classes"] = classes
tmp = tempfile.mkdtemp()
os.symlink(os.path.abspath(ref), os.path.join(tmp, "split"))
load = cfc.FeatureClass.load_output_format_file
spent = [0.0]
def timed(self, *a, **k):
    t = time.perf_counter(); r = load(self, *a, **k); spent[0] += time.perf_counter() - t; return r
cfc.FeatureClass.load_output_format_file = timed
with contextlib.redirect_stdout(io.StringIO()):
    t0 = time.perf_counter()
    res = ccsr.ComputeSELDResults(params, ref_files_folder=tmp).get_SELD_Results(pred)
    total = time.perf_counter() - t0
print(json.dumps({"total": total, "csv": spent[0], "figures": [float(v) for v in res[:-1]]}))
"""


_OFFICIAL_2025 = r"""
import contextlib, io, json, os, sys, tempfile, time, types, warnings
for name in ("cv2", "torch.utils.tensorboard"):  # imported by utils.py for features only
    m = types.ModuleType(name); m.SummaryWriter = None; sys.modules[name] = m
repo, ref, pred, classes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, repo)
import metrics
from parameters import params
params = dict(params, nb_classes=classes, average="macro", lad_req_onscreen=False)
tmp = tempfile.mkdtemp()
os.symlink(os.path.abspath(ref), os.path.join(tmp, "split"))
load = metrics.load_labels
spent = [0.0]
def timed(*a, **k):
    t = time.perf_counter(); r = load(*a, **k); spent[0] += time.perf_counter() - t; return r
metrics.load_labels = timed
with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    res = metrics.ComputeSELDResults(params, ref_files_folder=tmp).get_SELD_Results(pred)
    total = time.perf_counter() - t0
print(json.dumps({"total": total, "csv": spent[0], "figures": [float(v) for v in res[:-1]]}))
"""


def official_time(repo: str, ref: Path, pred: Path, classes: int,
                  driver: str = _OFFICIAL_DRIVER) -> dict:
    """The official scorer in a subprocess: its scoring call's seconds ("total", of which "csv"
    loading), its figures, and the whole process's wall seconds ("process")."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", driver, repo, str(ref), str(pred),
                          str(classes)], capture_output=True, text=True, cwd=repo)
    wall = time.perf_counter() - t0
    if out.returncode:
        raise SystemExit(f"official scorer in {repo} failed: {out.stderr.strip()[-400:]}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "process": wall}


def compare_timed(sc, fast, slow, repeat: int) -> tuple[float, float, float, int]:
    """Check ``fast`` (the compiled suite) against ``slow`` (the loop reference), then time
    them: (loop seconds, compiled on 1 thread, compiled on the scorer's threads, threads)."""
    a, b = fast(), slow()
    assert all(np.isclose(a[k], b[k], equal_nan=True) for k in a if k != "classwise"), \
        "vectorised and loop reference disagree"
    t_slow = best_of(slow, repeat)
    threads = sc.workers
    sc.workers = 1
    t_one = best_of(fast, repeat)
    sc.workers = threads
    return t_slow, t_one, best_of(fast, repeat), threads


def process_time(args: list[str], repeat: int) -> float:
    """Best wall seconds of a fresh ``args`` process (interpreter start and imports included)."""
    def once():
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"{' '.join(args[:3])} failed: {r.stderr.strip()[-400:]}")
    return best_of(once, repeat)


def seldbench_command() -> list[str]:
    """The installed ``seldbench`` script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("seldbench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "seldbench.cli"]


def stereo_row(args, C: int) -> None:
    """The dcase2025 row: 5-s stereo clips, loop reference, compiled suite, official scorer."""
    from seldbench.metrics.simulate import write_random_stereo_set

    with tempfile.TemporaryDirectory() as tmp:
        ref_dir, pred_dir = Path(tmp) / "ref", Path(tmp) / "pred"
        write_random_stereo_set(tmp, args.files_2025, num_classes=C, seed=0)
        sc = get_registry().get_metric_suite("dcase2025").build(C)
        tables = [(sc.read_reference(r), sc.read_prediction(pred_dir / r.name))
                  for r in sorted(ref_dir.iterdir())]

        def fast():
            return sc.summarise(sc.counts(tables).sum(0))

        def slow():
            return sc.summarise(sum(reference.stereo_frame_counts(r, p, C, sc.eval_frames(r))
                                    for r, p in tables))

        t_slow, t_one, t_all, threads = compare_timed(sc, fast, slow, args.repeat)
        a = fast()
        t_e2e = best_of(lambda: score_folders(pred_dir, ref_dir, "dcase2025"), args.repeat)
        print(f"dcase2025, {args.files_2025} five-second stereo clips: loop reference "
              f"{t_slow:.3f}s, compiled {t_one:.4f}s on 1 thread ({t_slow / t_one:.0f}x), "
              f"{t_all:.4f}s on {threads} ({t_slow / t_all:.0f}x); score_folders incl. CSV "
              f"reading {t_e2e:.3f}s")
        refs = sorted(ref_dir.iterdir())
        preds = [pred_dir / r.name for r in refs]
        t_each = best_of(lambda: [(sc.read_reference(r), sc.read_prediction(p))
                                  for r, p in zip(refs, preds)], args.repeat)
        t_batch = best_of(lambda: (sc.read_references(refs), sc.read_predictions(preds)),
                          args.repeat)
        n = 2 * len(refs)
        print(f"dcase2025 CSV reading, {n} files: one by one {t_each / n * 1e3:.3f} ms a file, "
              f"in two batches {t_batch / n * 1e3:.3f} ms a file ({t_each / t_batch:.1f}x)")
        if args.official_2025:
            off = official_time(args.official_2025, ref_dir, pred_dir, C, _OFFICIAL_2025)
            names = ("F", "DOAE", "DistE", "RDE", "OnscreenAcc")
            scale = {"DistE": 100.0}  # the official distance error is in cm
            worst = max(abs(v - a[n] * scale.get(n, 1.0)) for v, n in zip(off["figures"], names)
                        if not (np.isnan(v) and np.isnan(a[n])))
            rest = off["total"] - off["csv"]
            print(f"dcase2025 official: {off['total']:.2f}s in all (one F figure per call), "
                  f"{rest:.2f}s scoring without CSV loading -> seldbench scoring (both F "
                  f"figures) {rest / t_all:.0f}x faster ({threads} threads), "
                  f"{rest / t_one:.0f}x on 1 thread; end to end {off['total'] / t_e2e:.0f}x; "
                  f"largest figure difference {worst:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=78)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--official-2023", default=None, help="checkout of seld-dcase2023")
    ap.add_argument("--official-2024", default=None, help="checkout of DCASE2024_seld_baseline")
    ap.add_argument("--files-2025", type=int, default=600, help="5-s clips of the 2025 row")
    ap.add_argument("--official-2025", default=None, help="checkout of DCASE2025_seld_baseline")
    args = ap.parse_args()
    C = 13
    stereo_row(args, C)
    print()
    with tempfile.TemporaryDirectory() as tmp:
        write_random_set(tmp, args.files, num_classes=C, seed=0)
        refs = sorted((Path(tmp) / "ref").iterdir())
        preds = sorted((Path(tmp) / "pred").iterdir())
        print(f"{args.files} one-minute files, {C} classes; best of {args.repeat}\n")
        loop_s: dict[str, float] = {}
        official: dict[str, dict] = {}
        print(f"{'suite':<10} {'loop reference':>15} {'compiled, 1 thread':>19} {'speed-up':>9}"
              f" {'N threads':>10} {'speed-up':>9}")
        for suite in ("dcase2023", "dcase2024"):
            sc = get_registry().get_metric_suite(suite).build(C)
            tables = [(sc.read_reference(r), sc.read_prediction(p)) for r, p in zip(refs, preds)]

            def fast():
                return sc.summarise(sc.counts(tables).sum(0))

            def slow():
                total = 0
                for r, p in tables:
                    L = int(r.frame.max())
                    if suite == "dcase2024":
                        total = total + reference.frame_counts(r, p, C, L)
                    else:
                        total = total + reference.segment_counts(r, p, C, math.ceil(L / 10) * 10,
                                                                 "FP_spatial")
                return sc.summarise(total)

            t_slow, t_one, t_all, threads = compare_timed(sc, fast, slow, args.repeat)
            loop_s[suite] = t_slow
            print(f"{suite:<10} {t_slow:>14.3f}s {t_one:>18.4f}s {t_slow / t_one:>8.0f}x"
                  f" {t_all:>9.4f}s {t_slow / t_all:>8.0f}x  ({threads} threads)")
        print()
        for suite, repo in (("dcase2023", args.official_2023), ("dcase2024", args.official_2024)):
            if not repo:
                continue
            sc = get_registry().get_metric_suite(suite).build(C)
            tables = [(sc.read_reference(r), sc.read_prediction(p)) for r, p in zip(refs, preds)]
            ours = sc.summarise(sc.counts(tables).sum(0))
            off = official[suite] = official_time(repo, Path(tmp) / "ref", Path(tmp) / "pred", C)
            names = get_registry().get_metric_suite(suite).figures
            worst = max(abs(a - ours[n]) for a, n in zip(off["figures"], names)
                        if not (np.isnan(a) and np.isnan(ours[n])))
            t_fast = best_of(lambda: sc.summarise(sc.counts(tables).sum(0)), args.repeat)
            t_e2e = best_of(lambda: score_folders(Path(tmp) / "pred", Path(tmp) / "ref", suite),
                            args.repeat)
            rest = off["total"] - off["csv"]
            print(f"{suite} official: {off['total']:.2f}s in all, {rest:.2f}s scoring without CSV "
                  f"loading -> seldbench scoring {rest / t_fast:.0f}x faster "
                  f"({sc.workers} threads), end to end {off['total'] / t_e2e:.0f}x; "
                  f"largest figure difference {worst:.1e}")
        print()
        for suite in ("dcase2023", "dcase2024"):
            t = best_of(lambda: score_folders(Path(tmp) / "pred", Path(tmp) / "ref", suite), args.repeat)
            tj = best_of(lambda: score_folders(Path(tmp) / "pred", Path(tmp) / "ref", suite,
                                               jackknife=True), args.repeat)
            print(f"{suite}: score_folders incl. CSV reading {t:.3f}s; with jackknife {tj:.3f}s")
        print(f"\nwhole processes, best of {args.repeat} (a fresh interpreter each):")
        cmd = seldbench_command()
        for label, argv in (("python -c pass", [sys.executable, "-c", "pass"]),
                            ("seldbench --help", cmd + ["--help"]),
                            ("seldbench score --help", cmd + ["score", "--help"])):
            print(f"  {label:<24} {process_time(argv, args.repeat):.3f}s")
        for suite in ("dcase2023", "dcase2024"):
            t = process_time(cmd + ["score", "--pred", str(Path(tmp) / "pred"), "--ref",
                                    str(Path(tmp) / "ref"), "--suite", suite, "--json"],
                             args.repeat)
            line = (f"  seldbench score {suite}: {t:.3f}s for {args.files} files; the loop "
                    f"reference's scoring alone {loop_s[suite]:.2f}s ({loop_s[suite] / t:.1f}x)")
            if suite in official:
                off = official[suite]
                line += (f"; official process {off['process']:.2f}s ({off['process'] / t:.1f}x), "
                         f"its scoring call alone {off['total']:.2f}s ({off['total'] / t:.1f}x)")
            print(line)


if __name__ == "__main__":
    main()
