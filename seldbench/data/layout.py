"""The STARSS23 folder layout: listing clips per split, parsing stems, carving validation rooms.

One implementation for every dataset that uses the STARSS23 tree (the real ``starss23`` set and
the generated ``synth`` set)::

    ROOT/foa_dev/dev-train-sony/fold3_room21_mix001.wav      (also dev-train-tau, dev-test-*)
    ROOT/mic_dev/<same sub-folder>/<stem>.wav
    ROOT/metadata_dev/<same sub-folder>/<stem>.csv
    ROOT/video_dev/<same sub-folder>/<stem>.mp4                (optional)
    ROOT/foa_eval/<stem>.wav, mic_eval/, video_eval/           (optional, no metadata)

The fold and the room come from the stem (``foldF_roomR_mixMMM``); sub-folder names are
informative only. Splits: ``test`` = the test folds (4), ``val`` = whole rooms of fold 3,
``train`` = every other dev clip (fold 3 minus the validation rooms, plus any extra training
folds the user has, e.g. the DCASE synthetic folds 1-2), ``eval`` = the evaluation audio.
"""
from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from seldbench.errors import SeldbenchError, suggest
from seldbench.specs import SPATIAL_FORMATS, ClipFiles

#: The four dev sub-folders of STARSS23, in the order the release lists them.
#: STARSS23 class names in index order (docs/datasets.md, "STARSS23"); the synthetic sets use them.
STARSS23_CLASSES = (
    "female speech", "male speech", "clapping", "telephone", "laughter", "domestic sounds",
    "footsteps", "door open/close", "music", "musical instrument", "water tap", "bell", "knock",
)
DEV_SUBFOLDERS = ("dev-train-sony", "dev-train-tau", "dev-test-sony", "dev-test-tau")
#: Rooms recorded by Sony (the others are TAU's).
SONY_ROOMS = frozenset({21, 22, 23, 24})
#: Splits :func:`list_starss_layout` knows.
SPLITS = ("train", "val", "test", "eval")
#: Fraction of fold-3 clips the automatic validation carving aims at.
VAL_FRACTION = 0.175

STEM_RE = re.compile(r"^fold(\d+)_room(\d+)_mix(\d+)")


def parse_stem(stem: str) -> tuple[int, int, int] | None:
    """``(fold, room, mix)`` of a ``foldF_roomR_mixMMM...`` stem, or None if it is not one."""
    m = STEM_RE.match(stem)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def make_stem(fold: int, room: int, mix: int) -> str:
    """``fold3_room4_mix001``: the STARSS23 spelling (room not padded, mix three digits)."""
    return f"fold{fold}_room{room}_mix{mix:03d}"


def dev_subfolder(fold: int, room: int, test_folds: Iterable[int] = (4,)) -> str:
    """The STARSS23 sub-folder of a clip, e.g. ``dev-train-tau`` for fold 3, room 4."""
    part = "test" if fold in tuple(test_folds) else "train"
    return f"dev-{part}-{'sony' if room in SONY_ROOMS else 'tau'}"


def choose_val_rooms(room_counts: Mapping[int, int], fraction: float = VAL_FRACTION) -> tuple[int, ...]:
    """Rooms whose clips make the validation split: the set whose share of clips is closest to
    ``fraction``, with at least one room kept for training (ties: the smallest room numbers).

    Deterministic given the counts; returns ``()`` when there are fewer than two rooms.
    """
    rooms = sorted(room_counts)
    total = sum(room_counts.values())
    if len(rooms) < 2 or total == 0:
        return ()
    best: tuple[float, tuple[int, ...]] | None = None
    if len(rooms) <= 16:
        candidates: Iterable[tuple[int, ...]] = (
            c for k in range(1, len(rooms)) for c in itertools.combinations(rooms, k))
    else:  # greedy: add the room that brings the share closest to the target
        chosen: list[int] = []
        while True:
            rest = [r for r in rooms if r not in chosen]
            share = sum(room_counts[r] for r in chosen) / total
            nxt = min(rest, key=lambda r: (abs(share + room_counts[r] / total - fraction), r))
            if chosen and abs(share + room_counts[nxt] / total - fraction) >= abs(share - fraction):
                break
            chosen.append(nxt)
            if len(chosen) == len(rooms) - 1:
                break
        candidates = [tuple(sorted(chosen))]
    for cand in candidates:
        key = (abs(sum(room_counts[r] for r in cand) / total - fraction), cand)
        if best is None or key < best:
            best = key
    return best[1] if best else ()


def _dev_clips(root: Path, formats: Sequence[str]) -> dict[str, dict]:
    """stem -> {"sub": sub-folder, "audio": {fmt: path}} for every dev WAV under ``root``."""
    found: dict[str, dict] = {}
    for fmt in formats:
        base = root / f"{fmt}_dev"
        if not base.is_dir():
            continue
        for wav in sorted(base.glob("*/*.wav")):
            entry = found.setdefault(wav.stem, {"sub": wav.parent.name, "audio": {}})
            entry["audio"][fmt] = wav
    return found


def list_starss_layout(root: str | Path, split: str, val_rooms: Iterable[int] | None = None, *,
                       formats: Sequence[str] = SPATIAL_FORMATS, test_folds: Iterable[int] = (4,),
                       val_fold: int = 3, val_fraction: float = VAL_FRACTION) -> list[ClipFiles]:
    """The clips of one split of a STARSS23-layout tree, sorted by (fold, room, mix).

    - ``split``: ``train``, ``val``, ``test`` (dev, with metadata) or ``eval`` (no metadata).
    - ``val_rooms``: rooms of ``val_fold`` that form the validation split; None chooses them
      with :func:`choose_val_rooms` from the fold's clip counts (about ``val_fraction``).
    - ``formats``: audio formats to look for; ``ClipFiles.audio`` holds those present.

    A dev WAV whose stem is not ``foldF_roomR_mixMMM``, or that has no metadata CSV, is a
    :class:`SeldbenchError` naming the file. ``ClipFiles.video`` is None when no MP4 exists.
    """
    root = Path(root).expanduser()
    if split not in SPLITS:
        raise SeldbenchError(suggest(split, SPLITS, "split"))
    if not root.is_dir():
        raise SeldbenchError(f"{root}: dataset folder not found")
    test_folds = tuple(test_folds)

    if split == "eval":
        by_stem: dict[str, dict[str, Path]] = {}
        for fmt in formats:
            for wav in sorted((root / f"{fmt}_eval").glob("**/*.wav")):
                by_stem.setdefault(wav.stem, {})[fmt] = wav
        out = []
        for stem in sorted(by_stem):
            videos = sorted((root / "video_eval").glob(f"**/{stem}.mp4"))
            out.append(ClipFiles(stem=stem, audio=by_stem[stem], metadata=None,
                                 video=videos[0] if videos else None))
        return out

    found = _dev_clips(root, formats)
    if not found:
        wanted = ", ".join(f"{f}_dev/" for f in formats)
        raise SeldbenchError(f"{root}: no dev audio found (expected WAVs under {wanted})")
    parsed: dict[str, tuple[int, int, int]] = {}
    for stem, entry in found.items():
        ids = parse_stem(stem)
        if ids is None:
            path = next(iter(entry["audio"].values()))
            raise SeldbenchError(f"{path}: file name is not foldF_roomR_mixMMM")
        parsed[stem] = ids

    if val_rooms is None:
        counts = Counter(room for fold, room, _ in parsed.values() if fold == val_fold)
        val_set = set(choose_val_rooms(counts, val_fraction))
    else:
        val_set = {int(r) for r in val_rooms}

    def in_split(fold: int, room: int) -> bool:
        if fold in test_folds:
            return split == "test"
        if fold == val_fold and room in val_set:
            return split == "val"
        return split == "train"

    out = []
    for stem in sorted(found, key=lambda s: parsed[s]):
        fold, room, _ = parsed[stem]
        if not in_split(fold, room):
            continue
        sub = found[stem]["sub"]
        csv = root / "metadata_dev" / sub / f"{stem}.csv"
        if not csv.is_file():
            raise SeldbenchError(f"{csv}: metadata missing for {next(iter(found[stem]['audio'].values()))}")
        mp4 = root / "video_dev" / sub / f"{stem}.mp4"
        out.append(ClipFiles(stem=stem, audio=dict(found[stem]["audio"]), metadata=csv,
                             video=mp4 if mp4.is_file() else None, fold=fold, room=room))
    return out
