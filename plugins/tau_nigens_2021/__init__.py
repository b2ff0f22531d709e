"""TAU-NIGENS Spatial Sound Events 2021 (DCASE 2021 Task 3), registered as a dataset plugin.

Politis et al., "A dataset of dynamic reverberant sound scenes with directional interferers for
sound event localization and detection", DCASE 2021 Workshop (arXiv:2106.06999). Not
downloadable here: point ``SELDBENCH_TAU2021_ROOT`` (or ``dataset.root`` / ``--root``) at the
folder holding ``foa_dev/``, ``mic_dev/`` and ``metadata_dev/``.

- 600 one-minute clips, 12 classes, no video, unlabelled directional interferers;
- metadata: 5 columns (frame, class, source, azimuth, elevation), no distance;
- splits by the fold in the file name (``foldK_roomR_mixNNN...``): folds 1-4 train, 5 val,
  6 test; the sub-folder names (dev-train, dev-val, dev-test) are informative only;
- ``eval``: ``foa_eval/`` and ``mic_eval/`` when present (no metadata).
"""
from __future__ import annotations

import os
from pathlib import Path

from seldbench.api import SeldbenchError, parse_stem, suggest
from seldbench.hookspecs import hookimpl
from seldbench.specs import SPATIAL_FORMATS, ClipFiles, DatasetSpec

CLASSES = (
    "alarm", "crying baby", "crash", "barking dog", "female scream", "female speech",
    "footsteps", "knocking on door", "male scream", "male speech", "ringing phone", "piano",
)
ROOT_ENV = "SELDBENCH_TAU2021_ROOT"
SPLIT_FOLDS = {"train": (1, 2, 3, 4), "val": (5,), "test": (6,)}
SPLITS = ("train", "val", "test", "eval")


def _index(base: Path, suffix: str) -> dict[str, Path]:
    """stem -> file for every ``*suffix`` file below ``base`` (any sub-folder depth)."""
    found: dict[str, Path] = {}
    if not base.is_dir():
        return found
    for path in sorted(base.rglob(f"*{suffix}")):
        if path.stem in found:
            raise SeldbenchError(f"{path}: same name as {found[path.stem]}")
        found[path.stem] = path
    return found


def list_clips(root: str | os.PathLike, split: str) -> list[ClipFiles]:
    """The clips of ``split`` (train, val, test or eval) under the TAU-NIGENS 2021 ``root``,
    sorted by (fold, room, mix). A clip whose CSV is missing gets the expected CSV path (in the
    audio's sub-folder); reading it, or ``seldbench data verify``, reports it."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise SeldbenchError(f"{root}: TAU-NIGENS 2021 folder not found (set {ROOT_ENV} or "
                             f"dataset.root)")
    if split not in SPLITS:
        raise SeldbenchError(suggest(split, SPLITS, "split"))
    kind = "eval" if split == "eval" else "dev"
    audio: dict[str, dict[str, Path]] = {}
    for fmt in SPATIAL_FORMATS:
        for stem, path in _index(root / f"{fmt}_{kind}", ".wav").items():
            audio.setdefault(stem, {})[fmt] = path
    if split == "eval":
        return [ClipFiles(stem=s, audio=audio[s], metadata=None) for s in sorted(audio)]
    if not audio:
        raise SeldbenchError(f"{root}: no dev audio found (expected WAVs under foa_dev/ or "
                             f"mic_dev/)")
    metadata = _index(root / "metadata_dev", ".csv")
    out = []
    for stem, files in audio.items():
        ids = parse_stem(stem)
        if ids is None:
            raise SeldbenchError(f"{next(iter(files.values()))}: file name is not "
                                 f"foldK_roomR_mixNNN")
        fold, room, _ = ids
        if not any(fold in folds for folds in SPLIT_FOLDS.values()):
            raise SeldbenchError(f"{next(iter(files.values()))}: fold {fold} is not a "
                                 f"TAU-NIGENS 2021 dev fold (1-6)")
        if fold not in SPLIT_FOLDS[split]:
            continue
        csv = metadata.get(stem)
        if csv is None:
            csv = root / "metadata_dev" / next(iter(files.values())).parent.name / f"{stem}.csv"
        out.append(ClipFiles(stem=stem, audio=files, metadata=csv, video=None, fold=fold,
                             room=room))
    return sorted(out, key=lambda c: (parse_stem(c.stem), c.stem))


@hookimpl
def seldbench_register_datasets():
    return [DatasetSpec(
        name="tau-nigens-2021", version="1.0", classes=CLASSES,
        splits=("train", "val", "test"), list_clips=list_clips,
        metric_suites=("dcase2021", "dcase2023"), formats=SPATIAL_FORMATS, has_video=False,
        metadata_columns=5, root_env=ROOT_ENV,
        description="TAU-NIGENS Spatial Sound Events 2021 (DCASE 2021 Task 3): 12 classes, "
                    "folds 1-4 train, 5 val, 6 test",
    )]
