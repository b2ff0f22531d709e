"""``seldbench plot``: reference vs predicted directions of one test clip of a run, as a PNG.

A 2 x 2 grid: rows azimuth and elevation (degrees), columns reference (the dataset's metadata
CSV) and prediction (the run's ``predictions/<suite>/<stem>.csv``, Cartesian converted to
degrees), time in seconds on a shared axis, one colour per class. Drawn with matplotlib's Agg
canvas (no display, no pyplot state) and written atomically.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seldbench.errors import SeldbenchError


@dataclass
class ClipTracks:
    """One clip's events in degrees: ``time_s``, ``cls``, ``azimuth_deg``, ``elevation_deg``."""

    time_s: np.ndarray
    cls: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray

    @classmethod
    def from_table(cls, table) -> ClipTracks:
        from seldbench.data.labels import LABEL_HOP_S

        azel = table.polar() if len(table) else np.zeros((0, 2))  # 2025 stereo: elevation 0
        return cls(table.frame * LABEL_HOP_S, table.cls, azel[:, 0], azel[:, 1])


def clip_tracks(run_dir: str | os.PathLike, clip: str | None = None, suite: str = "dcase2023",
                registry: Any = None) -> tuple[str, ClipTracks, ClipTracks, dict]:
    """``(stem, reference, prediction, info)`` of one test clip of a run (default: the first
    test clip of the dataset). ``info`` has ``classes``, ``run_id``, ``model``, ``dataset``,
    ``suite``.

    Errors: not a run folder, no predictions for ``suite`` (naming those there are), an unknown
    ``clip`` (listing the available stems), a clip without metadata.
    """
    from seldbench.data.labels import read_metadata
    from seldbench.data.roots import resolve_root
    from seldbench.registry import get_registry
    from seldbench.results.records import read_run_info

    path, config, record = read_run_info(run_dir)
    reg = registry or get_registry()
    dspec = reg.get_dataset(config["dataset"]["name"])
    folder = path / "predictions" / suite
    if not folder.is_dir():
        there = sorted(p.name for p in (path / "predictions").glob("*") if p.is_dir())
        raise SeldbenchError(f"{folder}: no predictions for suite '{suite}' "
                             f"(this run has: {', '.join(there) or 'none'})")
    root = resolve_root(dspec, config["dataset"].get("root"))
    clips = {c.stem: c for c in dspec.list_clips(root, "test")}
    stems = [s for s in clips if (folder / f"{s}.csv").is_file()]
    if not stems:
        raise SeldbenchError(f"{folder}: no prediction CSV for any test clip of "
                             f"'{dspec.name}' at {root}")
    stem = clip if clip is not None else stems[0]
    if stem not in stems:
        raise SeldbenchError(f"clip '{stem}': not a predicted test clip of this run "
                             f"(available: {', '.join(stems)})")
    meta = clips[stem].metadata
    if meta is None:
        raise SeldbenchError(f"clip '{stem}': the dataset has no metadata file for it")
    num_classes = len(dspec.classes)
    ref = read_metadata(meta, dspec.metadata_columns, num_classes, dspec.metadata_format)
    pred = reg.get_metric_suite(suite).build(num_classes).read_prediction(folder / f"{stem}.csv")
    info = {"classes": list(dspec.classes), "run_id": path.name, "suite": suite,
            "model": record["model"]["name"], "dataset": dspec.name}
    return stem, ClipTracks.from_table(ref), ClipTracks.from_table(pred), info


def render_png(stem: str, ref: ClipTracks, pred: ClipTracks, info: dict) -> bytes:
    """The 2 x 2 figure as PNG bytes."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as exc:
        raise SeldbenchError(f"seldbench plot needs matplotlib ({exc}); pip install "
                             "matplotlib") from None
    import matplotlib

    classes = info["classes"]
    cmap = matplotlib.colormaps["tab20" if len(classes) > 10 else "tab10"]
    colours = [cmap(k % cmap.N) for k in range(len(classes))]
    end_s = max([0.1, *(float(t.time_s.max()) + 0.1 for t in (ref, pred) if len(t.time_s))])

    fig = Figure(figsize=(12, 6.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2, sharex=True, sharey="row")
    columns = (("reference", ref), (f"prediction ({info['suite']})", pred))
    for col, (title, tracks) in enumerate(columns):
        rows = (("azimuth (°)", tracks.azimuth_deg, 180),
                ("elevation (°)", tracks.elevation_deg, 90))
        for row, (label, values, lim) in enumerate(rows):
            ax = axes[row, col]
            ax.scatter(tracks.time_s, values, s=6, marker="o", linewidths=0,
                       c=[colours[c] for c in tracks.cls] if len(tracks.cls) else None)
            ax.set_ylim(-lim, lim)
            ax.set_yticks(np.linspace(-lim, lim, 5))
            ax.set_xlim(0, end_s)
            ax.grid(True, alpha=0.3)
            if col == 0:
                ax.set_ylabel(label)
            if row == 0:
                ax.set_title(f"{title}: {len(tracks.time_s)} rows")
            else:
                ax.set_xlabel("time (s)")
    present = sorted(set(ref.cls.tolist()) | set(pred.cls.tolist()))
    handles = [Line2D([], [], ls="", marker="o", color=colours[c], label=f"{c} {classes[c]}")
               for c in present]
    if handles:
        fig.legend(handles=handles, loc="outside right center", fontsize="small",
                   title="class", frameon=False)
    fig.suptitle(f"{stem}: {info['model']} on {info['dataset']} ({info['run_id']})")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def plot_run(run_dir: str | os.PathLike, out: str | os.PathLike, clip: str | None = None,
             suite: str = "dcase2023") -> str:
    """``seldbench plot``: write the PNG of one test clip of a run to ``out`` atomically;
    returns the clip's stem."""
    from seldbench.io import atomic_open

    stem, ref, pred, info = clip_tracks(run_dir, clip, suite)
    png = render_png(stem, ref, pred, info)
    with atomic_open(Path(out), "wb") as fh:
        fh.write(png)
    return stem


__all__ = ["ClipTracks", "clip_tracks", "plot_run", "render_png"]
