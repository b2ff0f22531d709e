"""What a stereo run's onscreen output adds: its dcase2025 figures next to two references that
need no video, scored on the same predictions (same detections, same matched pairs).

- ``off``: every onscreen flag 0 (on `synth-stereo` about 84% of test events are off screen);
- ``azimuth``: onscreen = 1 where the predicted azimuth is within the camera's half field of
  view (``--half-fov``, 50 degrees for the 100-degree camera of `synth-stereo`), what the audio
  direction alone can say (stereo cannot tell front from back, so an event behind the camera
  can be called on screen).

Only the onscreen column changes, so F, DOAE, DistE and RDE are those of the run; F_onscreen and
OnscreenAcc say whether the model's flags beat these guesses.

    python leaderboards/onscreen.py runs/synth-stereo/crnn-av/*/        # one line per run, JSON
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

FIGURES = ("F", "F_onscreen", "DOAE", "OnscreenAcc")


def with_onscreen(pred_dir: Path, out_dir: Path, rule: str, half_fov: float = 50.0) -> Path:
    """Copy the 2025 prediction CSVs of ``pred_dir`` to ``out_dir`` with the onscreen column
    set by ``rule`` (``"off"`` or ``"azimuth"``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(pred_dir.glob("*.csv")):
        lines = path.read_text().splitlines()
        rows = [lines[0]]  # the header line
        for line in lines[1:]:
            cols = line.split(",")
            cols[5] = "1" if rule == "azimuth" and abs(float(cols[3])) <= half_fov else "0"
            rows.append(",".join(cols))
        (out_dir / path.name).write_text("\n".join(rows) + "\n")
    return out_dir


def reference_folder(run_dir: Path, tmp: Path) -> Path:
    """A folder linking the reference CSVs of the run's test split (from its record)."""
    from seldbench.data.roots import resolve_root
    from seldbench.registry import get_registry

    record = json.loads((run_dir / "record.json").read_text())
    dataset = get_registry().get_dataset(record["dataset"]["name"])
    root = resolve_root(dataset, record["config"]["dataset"]["root"])
    refs = tmp / "ref"
    refs.mkdir()
    for clip in dataset.list_clips(root, record["split"]):
        (refs / f"{clip.stem}.csv").symlink_to(clip.metadata)
    return refs


def compare_onscreen(run_dir: str | Path, half_fov: float = 50.0) -> dict[str, dict[str, float]]:
    """``{"model" | "off" | "azimuth": {figure: value}}`` for one run folder."""
    from seldbench.metrics.score import score_folders

    run_dir = Path(run_dir)
    pred = run_dir / "predictions" / "dcase2025"
    if not pred.is_dir():
        raise SystemExit(f"{run_dir}: no predictions/dcase2025 (not a stereo run?)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        refs = reference_folder(run_dir, tmp)
        folders = {"model": pred, "off": with_onscreen(pred, tmp / "off", "off"),
                   "azimuth": with_onscreen(pred, tmp / "azimuth", "azimuth", half_fov)}
        out = {}
        for name, folder in folders.items():
            figures = score_folders(folder, refs, "dcase2025").figures
            out[name] = {k: round(float(figures[k]), 4) for k in FIGURES}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="stereo run folders (with record.json)")
    parser.add_argument("--half-fov", type=float, default=50.0, help="degrees (default 50)")
    args = parser.parse_args(argv)
    for run in args.runs:
        print(json.dumps({"run": Path(run).name, **compare_onscreen(run, args.half_fov)}))


if __name__ == "__main__":
    main(sys.argv[1:])
