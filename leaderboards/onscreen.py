"""What a stereo run's onscreen output adds: its dcase2025 figures next to two references that
need no video, scored on the same predictions (same detections, same matched pairs).

- ``off``: every onscreen flag 0 (on `synth-stereo` about 84% of test events are off screen);
- ``azimuth``: onscreen = 1 where the predicted azimuth is within the camera's half field of
  view (``--half-fov``, 50 degrees for the 100-degree camera of `synth-stereo`), what the audio
  direction alone can say (stereo cannot tell front from back, so an event behind the camera
  can be called on screen).

Only the onscreen column changes, so F, DOAE, DistE and RDE are those of the run; F_onscreen and
OnscreenAcc say whether the model's flags beat these guesses.

``--video`` asks the same question of a model that reads video (crnn-av, CRATI) by predicting
the test split again with the run's weights and other video: ``video`` (its own, as tested:
reproduces the run's figures), ``none`` (no video: zeros and mask 0, what video dropout trains
for) and ``other`` (each cut given the video of the cut half the split away, in name order).
Every figure can move here, not only the onscreen ones.

    python leaderboards/onscreen.py runs/synth-stereo/crnn-av/*/        # one line per run, JSON
    python leaderboards/onscreen.py --video runs/synth-stereo/crati/*/
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


def tested_clips(dataset, record: dict) -> list:
    """The clips of the split a run was tested on (its record's dataset root and split)."""
    from seldbench.data.roots import resolve_root

    return dataset.list_clips(resolve_root(dataset, record["config"]["dataset"]["root"]),
                              record["split"])


def reference_folder(run_dir: Path, tmp: Path) -> Path:
    """A folder linking the reference CSVs of the run's test split (from its record)."""
    from seldbench.registry import get_registry

    record = json.loads((run_dir / "record.json").read_text())
    dataset = get_registry().get_dataset(record["dataset"]["name"])
    refs = tmp / "ref"
    refs.mkdir()
    for clip in tested_clips(dataset, record):
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


def compare_video(run_dir: str | Path, device: str = "cpu") -> dict[str, dict[str, float]]:
    """``{"video" | "none" | "other": {figure: value}}``: the run's test split predicted by its
    best weights with its own video, with none, and with another cut's, scored with
    ``dcase2025`` (F, F_onscreen, DOAE, OnscreenAcc). The other cut's streams are fitted to
    each cut's length as any side stream is (a frame or two; the 2025 sets are 5-s cuts)."""
    from dataclasses import replace

    from seldbench.config import cache_dir_of
    from seldbench.features.cache import FeatureCache
    from seldbench.registry import get_registry
    from seldbench.side_inputs import collect
    from seldbench.training.data import load_split
    from seldbench.training.inference import load_run

    run = load_run(run_dir, device)
    if run.model_spec.side_inputs is None or not run.model_spec.needs_video:
        raise SystemExit(f"{run_dir}: model '{run.model_spec.name}' reads no video")
    dataset, cache_dir, split = run.dataset_spec, cache_dir_of(run.config), run.record["split"]
    clips = tested_clips(dataset, run.record)
    cached = FeatureCache(cache_dir).get(dataset.name, split, clips, run.feature_spec.name)
    data = load_split(split, clips, dataset, run.feature_spec, cached, run.normalizer.apply,
                      run.predictor.output, run.with_distance, labelled=False)
    features = [data.features[c.stem] for c in clips]

    def side(clip_list, spec):
        streams = collect(run.model_spec, run.config["model"], spec, clip_list, data.label_frames,
                          training=False, cache_dir=cache_dir, device=run.device)
        return [streams[c.stem] for c in clip_list]

    own = side(clips, dataset)
    half = len(clips) // 2
    other = [own[(i + half) % len(clips)] for i in range(len(clips))]
    none = side([replace(c, video=None) for c in clips], replace(dataset, has_video=False))
    scorer = get_registry().get_metric_suite("dcase2025").build(len(dataset.classes))
    refs = [scorer.read_reference(c.metadata) for c in clips]
    out = {}
    for name, sides in (("video", own), ("none", none), ("other", other)):
        tables = run.predictor.predict(run.model, features, sides)
        figures = scorer.summarise(scorer.counts(list(zip(refs, tables))).sum(0))
        out[name] = {k: round(float(figures[k]), 4) for k in FIGURES}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="stereo run folders (with record.json)")
    parser.add_argument("--half-fov", type=float, default=50.0, help="degrees (default 50)")
    parser.add_argument("--video", action="store_true",
                        help="predict again with the run's own video, none and another cut's")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for --video (default 1: on a machine busy with "
                             "trainings, two spinning threads took 20 times as long)")
    args = parser.parse_args(argv)
    if args.video:
        import torch

        torch.set_num_threads(args.threads)
    for run in args.runs:
        figures = compare_video(run) if args.video else compare_onscreen(run, args.half_fov)
        print(json.dumps({"run": Path(run).name, **figures}))


if __name__ == "__main__":
    main(sys.argv[1:])
