"""``seldbench data verify``: check a dataset's files without changing anything (docs/datasets.md,
"Checking a dataset").

The checks follow the DCASE folder convention every Task-3 dataset uses
(``<fmt>_dev/<sub-folder>/<stem>.wav``, ``metadata_dev/<sub-folder>/<stem>.csv``,
``video_dev/<sub-folder>/<stem>.mp4``, and ``<fmt>_eval/`` / ``video_eval/`` without metadata)
plus what the dataset's own listing (:attr:`DatasetSpec.list_clips`) says:

- every split lists without error, and every expected folder exists: ``<fmt>_dev`` for each of
  the dataset's audio formats, ``metadata_dev``, ``video_dev`` when the dataset has video, and
  every sub-folder of one tree in the others;
- every clip has a WAV of each format and a CSV, and an MP4 when its listed ``ClipFiles.video``
  is a path (a listed clip with ``video=None`` is a clip known to have none);
- each WAV: readable, not truncated, 24 kHz, exactly the channels of its format (4 for
  ``foa`` / ``mic``, 2 for ``stereo``);
- each CSV: the dataset's column count (the 2025 stereo layout: its header line), integer
  fields, class in range (the strict reader :func:`~seldbench.metrics.csvio.read_dcase_csv`),
  azimuth in [-180, 180], elevation in [-90, 90], distance >= 0, frames within the audio length;
- each MP4: readable, 2:1 for 360-degree video (not checked for perspective video), as long as
  its audio within one second.

Every problem is one line ``path: problem`` (``path:line: problem`` inside a CSV).
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from seldbench.data.audio import SAMPLE_RATE, audio_info, format_channels
from seldbench.data.labels import label_frames, read_metadata
from seldbench.data.roots import resolve_root
from seldbench.data.video import video_info
from seldbench.errors import SeldbenchError
from seldbench.specs import DatasetSpec

#: Largest accepted difference between a video's and its audio's length, seconds.
VIDEO_LENGTH_TOLERANCE_S = 1.0


@dataclass
class VerifyReport:
    """What :func:`verify_dataset` found: problem lines and counts of checked files."""

    dataset: str
    root: Path
    problems: list[str] = field(default_factory=list)
    checked: Counter = field(default_factory=Counter)  # "wav", "csv", "mp4"
    split_sizes: dict[str, int | None] = field(default_factory=dict)  # None: listing failed
    notes: list[str] = field(default_factory=list)  # worth knowing, not a problem

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, path: str | os.PathLike, problem: str) -> None:
        self._add_line(f"{path}: {problem}")

    def _add_line(self, line: str) -> None:
        if line not in self.problems:
            self.problems.append(line)

    def summary(self) -> str:
        splits = ", ".join(f"{k} {'?' if v is None else v}" for k, v in self.split_sizes.items())
        files = ", ".join(f"{self.checked[k]} {k.upper()}" for k in ("wav", "csv", "mp4"))
        verdict = ("no problems" if self.ok else
                   f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}")
        return (f"{self.dataset} at {self.root}: clips {splits or 'none'}; checked {files}: "
                f"{verdict}")


def _index(tree: Path, suffix: str, report: VerifyReport) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if tree.is_dir():
        for path in sorted(tree.rglob(f"*{suffix}")):
            if path.stem in found:
                report.add(path, f"same clip name as {found[path.stem]}")
                continue
            found[path.stem] = path
    return found


def _subfolders(tree: Path) -> set[str]:
    return {p.name for p in tree.iterdir() if p.is_dir()} if tree.is_dir() else set()


def _check_wav(path: Path, audio_format: str, report: VerifyReport) -> int | None:
    """Length in samples, or None (after reporting) when the WAV is unusable."""
    report.checked["wav"] += 1
    try:
        samples = audio_info(path, SAMPLE_RATE, audio_format=audio_format)
    except SeldbenchError as exc:
        report._add_line(str(exc))
        return None
    channels, want = sf.info(str(path)).channels, format_channels(audio_format)
    if channels != want:
        report.add(path, f"{channels} channels, expected {want} for the {audio_format} format")
    return samples


def _first(report: VerifyReport, path: str, lines: np.ndarray, mask: np.ndarray,
           problem) -> None:
    if mask.any():
        idx = np.flatnonzero(mask)
        more = f" (and {len(idx) - 1} more rows)" if len(idx) > 1 else ""
        report._add_line(f"{path}:{int(lines[idx[0]])}: {problem(idx[0])}{more}")


def _check_csv(path: Path, spec: DatasetSpec, samples: int | None, report: VerifyReport) -> None:
    report.checked["csv"] += 1
    try:
        table = read_metadata(path, spec.metadata_columns, len(spec.classes),
                              spec.metadata_format)
    except SeldbenchError as exc:
        report._add_line(str(exc))
        return
    p = str(path)
    az = table.coords[:, 0]
    _first(report, p, table.line, (az < -180) | (az > 180),
           lambda i: f"azimuth {az[i]:g} outside [-180, 180]")
    if table.distance is not None:
        d = table.distance
        _first(report, p, table.line, d < 0, lambda i: f"negative distance {d[i]:g}")
    if samples is not None:
        n = label_frames(samples, SAMPLE_RATE)
        _first(report, p, table.line, table.frame >= n,
               lambda i: f"frame {table.frame[i]} beyond the audio ({n} label frames of "
                         f"100 ms)")


def _check_mp4(path: Path, samples: int | None, report: VerifyReport,
               projection: str = "equirectangular") -> None:
    report.checked["mp4"] += 1
    try:
        info = video_info(path)
    except SeldbenchError as exc:
        report._add_line(str(exc))
        return
    if projection == "equirectangular" and info.width != 2 * info.height:
        report.add(path, f"frame size {info.width}x{info.height} is not 2:1 (equirectangular)")
    if samples is not None:
        audio_s = samples / SAMPLE_RATE
        if info.duration_s <= 0:
            report.add(path, "video duration unknown")
        elif abs(info.duration_s - audio_s) > VIDEO_LENGTH_TOLERANCE_S:
            report.add(path, f"video lasts {info.duration_s:.2f} s, its audio {audio_s:.2f} s "
                             f"(more than {VIDEO_LENGTH_TOLERANCE_S:g} s apart)")


def _check_part(spec: DatasetSpec, root: Path, kind: str, expect_video: dict[str, Path],
                report: VerifyReport, required: bool, video: bool = False) -> None:
    """Check the ``dev`` (with metadata) or ``eval`` trees."""
    audio_trees = {fmt: root / f"{fmt}_{kind}" for fmt in spec.formats}
    meta_tree = root / "metadata_dev" if kind == "dev" else None
    video_tree = root / f"video_{kind}" if spec.has_video else None
    if required:
        for tree in [*audio_trees.values(), meta_tree]:
            if not tree.is_dir():
                report.add(tree, "missing folder")
        if video_tree is not None and not video_tree.is_dir():
            if video:
                report.add(video_tree, "missing folder")
            else:  # an audio-only user need not download the videos
                report.notes.append(f"{video_tree}: missing folder: fine for audio-only "
                                    f"models; multimodal models (CRATI) then run without "
                                    f"video (check with --video)")
    present = [t for t in [*audio_trees.values(), meta_tree] if t is not None and t.is_dir()]
    subs = set().union(*(_subfolders(t) for t in present)) if present else set()
    for tree in present:
        for sub in sorted(subs - _subfolders(tree)):
            if any(line.startswith(f"{tree / sub}: ") for line in report.problems):
                continue  # already reported by the dataset's listing
            report.add(tree / sub, "missing folder (present in "
                       + ", ".join(t.name for t in present if sub in _subfolders(t)) + ")")

    wavs = {fmt: _index(tree, ".wav", report) for fmt, tree in audio_trees.items()}
    csvs = _index(meta_tree, ".csv", report) if meta_tree is not None else {}
    mp4s = _index(video_tree, ".mp4", report) if video_tree is not None else {}
    stems = sorted(set().union(*(w.keys() for w in wavs.values()), csvs))
    for stem in stems:
        fmt0 = next((f for f, w in wavs.items() if stem in w), None)
        some = wavs[fmt0][stem] if fmt0 else csvs[stem]
        sub = some.parent.relative_to(audio_trees[fmt0] if fmt0 else meta_tree)  # "" in eval
        lengths = []
        for fmt, found in wavs.items():
            if stem not in found:
                if (audio_trees[fmt] / sub).is_dir():
                    report.add(audio_trees[fmt] / sub / f"{stem}.wav", f"missing (clip {stem} "
                               f"has {some.relative_to(root)})")
                continue  # a missing folder is reported once, above
            samples = _check_wav(found[stem], fmt, report)
            if samples is not None:
                lengths.append(samples)
        samples = min(lengths) if lengths else None
        if meta_tree is not None:
            if stem in csvs:
                _check_csv(csvs[stem], spec, samples, report)
            elif (meta_tree / sub).is_dir():
                report.add(meta_tree / sub / f"{stem}.csv", f"metadata missing for {some}")
        if video_tree is not None:
            video = mp4s.get(stem)
            if video is None and stem in expect_video:
                if expect_video[stem].parent.is_dir():
                    report.add(expect_video[stem], f"video missing for {some}")
                elif video_tree.is_dir():
                    report.add(expect_video[stem].parent, "missing folder")
            elif video is not None:
                _check_mp4(video, samples, report, spec.video_projection)


def verify_dataset(spec: DatasetSpec, root: str | os.PathLike,
                   splits: Iterable[str] | None = None, video: bool = False) -> VerifyReport:
    """Check every file of ``spec`` under ``root``; reads only, never writes. A missing
    ``video_dev/`` is a problem only with ``video`` (a user of audio-only models need not have
    it); MP4s that are there are always checked."""
    root = Path(root)
    report = VerifyReport(spec.name, root)
    if not root.is_dir():
        report.add(root, "dataset folder not found")
        return report
    expect_video: dict[str, Path] = {}
    for split in (spec.splits if splits is None else tuple(splits)):
        try:
            clips = spec.list_clips(root, split)
        except SeldbenchError as exc:
            report._add_line(str(exc))
            report.split_sizes[split] = None
            continue
        report.split_sizes[split] = len(clips)
        for clip in clips:
            if clip.video is not None:
                expect_video[clip.stem] = Path(clip.video)
    _check_part(spec, root, "dev", expect_video, report, required=True, video=video)
    if any((root / f"{fmt}_eval").is_dir() for fmt in spec.formats):
        _check_part(spec, root, "eval", {}, report, required=False)
    return report


def verify(dataset: str, root: str | os.PathLike | None = None, registry=None,
           video: bool = False) -> VerifyReport:
    """``seldbench data verify``: look ``dataset`` up, find its root, check it."""
    if registry is None:
        from seldbench.registry import get_registry

        registry = get_registry()
    spec = registry.get_dataset(dataset)
    return verify_dataset(spec, resolve_root(spec, root), video=video)


__all__ = ["VerifyReport", "verify_dataset", "verify", "VIDEO_LENGTH_TOLERANCE_S"]
