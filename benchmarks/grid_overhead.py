"""What a grid costs and gains: N short cells through ``seldbench grid run`` against the same
cells run one after another by ``seldbench run``, side by side in one process tree.

The cells are CRNN runs on synth-mini (1 epoch, batch 4, one torch thread), seeds 0..N-1; the
features are cached once before anything is timed, so every variant trains and scores the same
work. Three variants, each in a fresh runs folder:

- ``seldbench run`` x N, one after another (the reference: one process per run);
- ``seldbench grid run`` on the embedded Ray cluster with ``--max-concurrent 1``: its wall
  time minus the cells' own times, per cell, is the scheduling overhead (Ray start-up, worker
  start, task dispatch, state file);
- the same grid with 2 workers (``--max-concurrent 2``): the speed-up over the reference.

    python benchmarks/grid_overhead.py [--cells 6]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import print_table

SET = ["train.epochs=1", "train.batch_size=4", "train.threads=1", "eval.jackknife=false"]


def _timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd[:4])}... failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=6)
    args = ap.parse_args()
    n = args.cells
    exe = str(Path(sys.executable).with_name("seldbench"))
    tmp = Path(tempfile.mkdtemp(prefix="grid-overhead-"))
    env = {**os.environ, "SELDBENCH_SYNTH_MINI_ROOT": str(tmp / "data"), "HF_HUB_OFFLINE": "1"}
    sets = [*SET, f"features.cache_dir={tmp / 'cache'}"]
    flags = [a for s in sets for a in ("--set", s)]
    # data and features once, untimed
    _timed([exe, "cache", "--model", "crnn", "--dataset", "synth-mini", *flags], env)

    seq = 0.0
    for seed in range(n):
        seq += _timed([exe, "run", "--model", "crnn", "--dataset", "synth-mini", "--quiet",
                       "--seed", str(seed), "--out", str(tmp / "seq"), *flags], env)
    rows, walls = [], {}
    for workers in (1, 2):
        out = tmp / f"grid{workers}"
        grid = tmp / f"grid{workers}.yaml"
        grid.write_text(f"datasets: synth-mini\nseeds: {list(range(n))}\nout: {out}\n"
                        f"set: {json.dumps(sets)}\nresources: {{cpus: 1}}\n"
                        "entries:\n  - model: crnn\n")
        walls[workers] = _timed([exe, "grid", "run", str(grid), "--max-concurrent",
                                 str(workers)], env)
        cells = json.loads((out / ".grid" / f"{grid.stem}.json").read_text())["cells"]
        inside = sum(c["wall_s"] for c in cells.values())
        rows.append((f"grid, {workers} worker(s)", f"{walls[workers]:.1f}",
                     f"{walls[workers] / n:.2f}",
                     f"{(walls[workers] - inside) / n:.2f}" if workers == 1 else "-",
                     f"{seq / walls[workers]:.2f}x"))
    rows.insert(0, ("seldbench run x N, one after another", f"{seq:.1f}", f"{seq / n:.2f}",
                    "-", "1.00x"))
    print(f"{n} cells (crnn, synth-mini, 1 epoch, batch 4, 1 thread), {os.cpu_count()} cores")
    print_table(("how", "wall s", "s per cell", "scheduling overhead s per cell",
                 "speed-up vs one after another"), rows)


if __name__ == "__main__":
    main()
