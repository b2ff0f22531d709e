"""The DCASE 2025 Task 3 stereo SELD dev set, registered as a dataset plugin: ``stereo-seld``.

Shimada et al., "Stereo Sound Event Localization and Detection with Onscreen/offscreen
Classification", DCASE 2025 task paper (arXiv:2507.12042). Not downloadable here: point
``SELDBENCH_STEREO_SELD_ROOT`` (or ``dataset.root`` / ``--root``) at the folder holding::

    ROOT/stereo_dev/dev-train-tau/<stem>.wav      (also dev-train-sony, dev-test-tau|sony,
    ROOT/metadata_dev/<same sub-folder>/<stem>.csv  and optionally dev-train-synth)
    ROOT/video_dev/<same sub-folder>/<stem>.mp4     (perspective video, optional)

Each clip is a 5-s cut of a STARSS23 recording, its stem starting with the source recording's
name (``fold3_room4_mix001`` + the cut's own suffix). WAVs: 2 channels (left, right), 24 kHz.
CSVs: the 2025 layout with a header line ``frame,class,source,azimuth,distance,onscreen``
(azimuth in degrees relative to the view, distance in cm).

Splits (the official recipe validates on the test folders; here they stay unseen):

- ``test``: ``dev-test-tau`` and ``dev-test-sony``;
- ``val``: whole *source recordings* of ``dev-train-tau`` and ``dev-train-sony``: in each of
  the two folders the recordings are ranked by a hash of their name and the first ones taken
  until about 17.5% of the folder's clips (at least one recording, never all): every cut of a
  recording is on one side, so no scene is in both train and val; the choice is deterministic
  and does not change when other recordings are added;
- ``train``: every other dev-train clip, ``dev-train-synth`` included when present.

The generated sets ``synth-stereo`` (from ``synth``) and ``synth-stereo-mini`` (from
``synth-mini``, for tests) are derived from the FOA synthetic scenes the way the official set
was derived from STARSS23 (:func:`seldbench.data.synth.stereo.derive_stereo`: per 5-s cut a
view direction, the rotated FOA scene as mid-side stereo, a perspective crop of the 360-degree
video, labels in the rotated frame with distance and onscreen). They are written on first use
into ``$SELDBENCH_DATA/<name>`` in exactly this layout, so they share every code path.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from functools import partial

from seldbench.api import STARSS23_CLASSES, SeldbenchError
from seldbench.hookspecs import hookimpl
from seldbench.specs import ClipFiles, DatasetSpec

ROOT_ENV = "SELDBENCH_STEREO_SELD_ROOT"
AUDIO_TREE, META_TREE, VIDEO_TREE = "stereo_dev", "metadata_dev", "video_dev"
TRAIN_FOLDERS = ("dev-train-tau", "dev-train-sony")
TEST_FOLDERS = ("dev-test-tau", "dev-test-sony")
SYNTH_FOLDER = "dev-train-synth"
#: Fraction of each real training folder's clips carved out for validation.
VAL_FRACTION = 0.175
SOURCE_RE = re.compile(r"^(fold\d+_room\d+_mix\d+)")


def source_recording(path: Path) -> str:
    """The STARSS23 recording a clip was cut from: the ``foldF_roomR_mixMMM`` its stem starts
    with. A stem without one is a :class:`SeldbenchError` naming the file."""
    m = SOURCE_RE.match(path.stem)
    if m is None:
        raise SeldbenchError(f"{path}: file name does not start with the source recording "
                             f"(foldF_roomR_mixMMM)")
    return m[1]


def _rank(name: str) -> str:
    return hashlib.blake2b(name.encode(), digest_size=8).hexdigest()


def choose_val_sources(counts: dict[str, int], fraction: float = VAL_FRACTION) -> set[str]:
    """Source recordings of one folder that form its validation part: ranked by a hash of the
    name, taken while the share of clips stays closest to ``fraction``; at least one, never
    all (none with fewer than two recordings)."""
    if len(counts) < 2:
        return set()
    total = sum(counts.values())
    chosen: list[str] = []
    share = 0.0
    for name in sorted(counts, key=lambda n: (_rank(n), n)):
        if len(chosen) == len(counts) - 1:
            break
        nxt = share + counts[name] / total
        if chosen and abs(nxt - fraction) >= abs(share - fraction):
            break
        chosen.append(name)
        share = nxt
    return set(chosen)


def _folder_clips(root: Path, sub: str) -> list[tuple[Path, str]]:
    wavs = sorted((root / AUDIO_TREE / sub).glob("*.wav"))
    return [(w, source_recording(w)) for w in wavs]


def list_clips(root: str | os.PathLike, split: str) -> list[ClipFiles]:
    """The clips of ``split`` (train, val or test) under the DCASE 2025 stereo ``root``,
    sorted by folder and stem."""
    root = Path(root).expanduser()
    if split not in ("train", "val", "test"):
        raise SeldbenchError(f"split '{split}': stereo-seld has train, val and test")
    if not root.is_dir():
        raise SeldbenchError(f"{root}: stereo dataset folder not found (for stereo-seld set "
                             f"{ROOT_ENV} or dataset.root)")
    folders = TEST_FOLDERS if split == "test" else TRAIN_FOLDERS
    for tree in (AUDIO_TREE, META_TREE):
        for sub in folders:
            if not (root / tree / sub).is_dir():
                raise SeldbenchError(f"{root / tree / sub}: missing folder (the DCASE 2025 "
                                     f"stereo set has {', '.join(TRAIN_FOLDERS + TEST_FOLDERS)} "
                                     f"in {tree})")
    picked: list[tuple[str, Path]] = []
    for sub in folders:
        clips = _folder_clips(root, sub)
        if split != "test":
            counts: dict[str, int] = {}
            for _, src in clips:
                counts[src] = counts.get(src, 0) + 1
            val = choose_val_sources(counts)
            clips = [(w, s) for w, s in clips if (s in val) == (split == "val")]
        picked += [(sub, w) for w, _ in clips]
    if split == "train" and (root / AUDIO_TREE / SYNTH_FOLDER).is_dir():
        picked += [(SYNTH_FOLDER, w) for w in sorted((root / AUDIO_TREE / SYNTH_FOLDER).glob("*.wav"))]
    has_video = (root / VIDEO_TREE).is_dir()
    out = []
    for sub, wav in picked:
        csv = root / META_TREE / sub / f"{wav.stem}.csv"
        if not csv.is_file():
            raise SeldbenchError(f"{csv}: metadata missing for {wav}")
        # real clips have video; a missing MP4 is reported (by data verify), not hidden
        video = root / VIDEO_TREE / sub / f"{wav.stem}.mp4" \
            if has_video and sub != SYNTH_FOLDER else None
        out.append(ClipFiles(stem=wav.stem, audio={"stereo": wav}, metadata=csv, video=video))
    return out


#: derived set -> (source set, seed of the view directions)
DERIVED = {"synth-stereo": ("synth", 2025), "synth-stereo-mini": ("synth-mini", 7)}


def prepare_derived(root: str | os.PathLike, *, name: str) -> None:
    """Make the source set (generated on first use) and derive ``name`` from it into ``root``
    unless it is already complete."""
    from seldbench.api import derive_stereo, get_dataset, resolve_root, synth_manifest

    source_name, seed = DERIVED[name]
    source = get_dataset(source_name)
    source_root = resolve_root(source)
    if source.prepare is not None:
        source.prepare(source_root)
    m = synth_manifest(source_root) or {}
    derive_stereo(source_root, root, seed=seed, source={
        "dataset": source_name, **{k: m.get(k) for k in ("generator_version", "seed", "clips",
                                                         "duration_s")}})


def _root_env(name: str) -> str:
    return f"SELDBENCH_{name.upper().replace('-', '_')}_ROOT"


@hookimpl
def seldbench_register_datasets():
    from seldbench.api import data_home

    derived = [DatasetSpec(
        name=name, version="1.0", classes=STARSS23_CLASSES, splits=("train", "val", "test"),
        list_clips=list_clips, metric_suites=("dcase2025",), formats=("stereo",),
        has_video=True, metadata_columns=6, metadata_format="dcase2025",
        video_projection="perspective", root_env=_root_env(name),
        default_root=data_home() / name, prepare=partial(prepare_derived, name=name),
        description=f"stereo set derived from '{source}' like DCASE 2025 from STARSS23: 5-s "
                    f"cuts, a view direction each, mid-side stereo, perspective video, "
                    f"onscreen labels",
    ) for name, (source, _) in DERIVED.items()]
    return derived + [DatasetSpec(
        name="stereo-seld", version="1.0", classes=STARSS23_CLASSES,
        splits=("train", "val", "test"), list_clips=list_clips, metric_suites=("dcase2025",),
        formats=("stereo",), has_video=True, metadata_columns=6, metadata_format="dcase2025",
        video_projection="perspective", root_env=ROOT_ENV,
        description="DCASE 2025 Task 3 stereo SELD dev set: 5-s stereo clips cut from STARSS23 "
                    "with perspective video, 13 classes, azimuth + distance + onscreen; val = "
                    "whole source recordings of dev-train, test = dev-test",
    )]
