"""STARSS23 (DCASE 2023/2024 Task 3): real recordings with 360-degree video, registered as a
dataset plugin.

Sony-TAu Realistic Spatial Soundscapes 2023, Shimada et al., "STARSS23: An audio-visual dataset
of spatial recordings of real scenes with spatiotemporal annotations of sound events",
NeurIPS 2023 Datasets and Benchmarks (arXiv:2306.09126). Not downloadable here: point
``SELDBENCH_STARSS23_ROOT`` (or ``dataset.root`` / ``--root``) at the folder holding
``foa_dev/``, ``mic_dev/``, ``metadata_dev/`` and ``video_dev/``.

Splits (what differs from the official recipe, which validates on the test fold):

- ``test``: fold 4 (dev-test-sony, dev-test-tau), never seen during model selection;
- ``val``: whole rooms of fold 3, chosen deterministically from the clip counts (about 17.5%
  of fold 3; :func:`seldbench.data.layout.choose_val_rooms`);
- ``train``: the other fold-3 rooms, plus extra training folds (e.g. the DCASE synthetic folds
  1-2 placed as ``foa_dev/dev-train-synth/fold1_*.wav`` etc.) only when asked for with
  ``extra_train_folds`` or ``SELDBENCH_STARSS23_EXTRA_FOLDS=1,2``;
- ``eval``: the evaluation audio when present (no metadata).

Metadata: 6 columns, distance in centimetres. Twelve dev-train clips
(``fold3_room21_mix001``..``012``) have no video: their ``ClipFiles.video`` is None. Every
other STARSS23 clip's ``video`` is its expected MP4 path whenever ``video_dev/`` exists, so a
missing file is reported, not silently treated as a clip without video.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from seldbench.api import DEV_SUBFOLDERS, STARSS23_CLASSES, SeldbenchError, list_starss_layout
from seldbench.hookspecs import hookimpl
from seldbench.specs import SPATIAL_FORMATS, ClipFiles, DatasetSpec

CLASSES = STARSS23_CLASSES
ROOT_ENV = "SELDBENCH_STARSS23_ROOT"
EXTRA_FOLDS_ENV = "SELDBENCH_STARSS23_EXTRA_FOLDS"
TRAIN_FOLD = 3
TEST_FOLD = 4
#: Dev-train clips released without video.
NO_VIDEO = frozenset(f"fold3_room21_mix{i:03d}" for i in range(1, 13))
_SPLIT_SUBFOLDERS = {
    "train": DEV_SUBFOLDERS[:2], "val": DEV_SUBFOLDERS[:2], "test": DEV_SUBFOLDERS[2:],
}


def _extra_folds(extra_train_folds: Iterable[int] | None) -> frozenset[int]:
    if extra_train_folds is not None:
        return frozenset(int(f) for f in extra_train_folds)
    text = os.environ.get(EXTRA_FOLDS_ENV, "").strip()
    try:
        return frozenset(int(f) for f in text.replace(" ", "").split(",") if f)
    except ValueError:
        raise SeldbenchError(f"{EXTRA_FOLDS_ENV}={text!r}: expected comma-separated fold "
                             f"numbers, e.g. 1,2") from None


def _check_folders(root: Path, split: str) -> None:
    """The split's STARSS23 sub-folders must exist in metadata_dev and every audio tree."""
    trees = [t for t in (f"{fmt}_dev" for fmt in SPATIAL_FORMATS) if (root / t).is_dir()]
    for tree in ["metadata_dev", *trees]:
        for sub in _SPLIT_SUBFOLDERS[split]:
            if not (root / tree / sub).is_dir():
                raise SeldbenchError(f"{root / tree / sub}: missing folder (STARSS23 has "
                                     f"{', '.join(DEV_SUBFOLDERS)} in {tree})")


def list_clips(root: str | os.PathLike, split: str, *, val_rooms: Iterable[int] | None = None,
               extra_train_folds: Iterable[int] | None = None) -> list[ClipFiles]:
    """The clips of ``split`` (train, val, test or eval) under the STARSS23 ``root``.

    ``val_rooms`` overrides the automatic choice of fold-3 validation rooms;
    ``extra_train_folds`` (default: ``SELDBENCH_STARSS23_EXTRA_FOLDS``, none) adds clips of
    other folds found in the tree to ``train``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise SeldbenchError(f"{root}: STARSS23 folder not found (set {ROOT_ENV} or "
                             f"dataset.root)")
    extra = _extra_folds(extra_train_folds)
    if split in _SPLIT_SUBFOLDERS:
        _check_folders(root, split)
    clips = list_starss_layout(root, split, val_rooms, test_folds=(TEST_FOLD,),
                               val_fold=TRAIN_FOLD)
    if split == "eval":
        return clips
    has_video_tree = (root / "video_dev").is_dir()
    out = []
    for clip in clips:
        if clip.fold not in (TRAIN_FOLD, TEST_FOLD):
            if split == "train" and clip.fold in extra:
                out.append(clip)  # e.g. DCASE synthetic folds: no video
            continue
        if clip.video is None and has_video_tree and clip.stem not in NO_VIDEO:
            sub = clip.metadata.parent.name
            clip = replace(clip, video=root / "video_dev" / sub / f"{clip.stem}.mp4")
        elif clip.stem in NO_VIDEO:
            clip = replace(clip, video=None)
        out.append(clip)
    return out


@hookimpl
def seldbench_register_datasets():
    return [DatasetSpec(
        name="starss23", version="1.0", classes=CLASSES, splits=("train", "val", "test"),
        list_clips=list_clips, metric_suites=("dcase2023", "dcase2024"),
        formats=SPATIAL_FORMATS, has_video=True, metadata_columns=6, root_env=ROOT_ENV,
        description="STARSS23 dev (DCASE 2023/2024 Task 3): 13 classes, real recordings with "
                    "360-degree video; val = fold-3 rooms, test = fold 4",
    )]
