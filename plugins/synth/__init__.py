"""The synthetic STARSS23-like datasets that seldbench generates itself (docs/datasets.md,
"The synthetic sets").

- ``synth``: the benchmark set, sized like STARSS23 dev: 170 one-minute clips (90 fold-3
  train clips in 9 rooms, 80 fold-4 test clips in 7 other rooms), FOA + MIC + 360-degree
  video. Generated on first use by ``prepare(root)`` (several minutes on 2 cores), then cached.
- ``synth-small``: 32 clips of 30 s with video (17 train, 15 test), about two minutes to
  generate: the README's first run, small enough for a laptop, big enough that a CRNN visibly
  learns (test F 9.5%, LE 84 deg after 80 epochs of batch 8; ``docs/datasets.md``).
- ``synth-mini``: 6 clips of 15 s with video, generated in seconds, for tests.

All use the STARSS23 tree, stems and CSV schema, so every STARSS23 code path runs on them.
Splits: ``test`` = fold 4; ``val`` = whole fold-3 rooms (recorded in the set's
``dataset.json``); ``train`` = the other fold-3 rooms. The root is ``$SELDBENCH_SYNTH_ROOT``
(``$SELDBENCH_SYNTH_MINI_ROOT``) or ``$SELDBENCH_DATA/<name>`` (default
``~/.cache/seldbench/<name>``). Generate a custom set with ``seldbench data synth OUT_DIR``.
"""
from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path

from seldbench.api import STARSS23_CLASSES as CLASSES
from seldbench.api import SYNTH_GENERATOR_VERSION as GENERATOR_VERSION
from seldbench.api import SeldbenchError, data_home, list_starss_layout
from seldbench.hookspecs import hookimpl
from seldbench.specs import ClipFiles, DatasetSpec

log = logging.getLogger(__name__)

#: name -> generation parameters (changing any of them changes the data: bump the version).
SIZES = {
    "synth": {"clips": 170, "duration_s": 60.0, "seed": 2023, "video": True},
    "synth-small": {"clips": 32, "duration_s": 30.0, "seed": 5, "video": True},
    "synth-mini": {"clips": 6, "duration_s": 15.0, "seed": 7, "video": True},
}
VERSION = GENERATOR_VERSION  # the data changes only with the generator (or SIZES)


def _root_env(name: str) -> str:
    return f"SELDBENCH_{name.upper().replace('-', '_')}_ROOT"


def list_clips(root: str | os.PathLike, split: str, *, name: str = "synth") -> list[ClipFiles]:
    """The clips of ``split`` under a generated set (validation rooms from its manifest)."""
    from seldbench.api import synth_manifest as read_manifest  # numpy/scipy only when used

    root = Path(root).expanduser()
    manifest = read_manifest(root) if root.is_dir() else None
    if manifest is None:
        raise SeldbenchError(f"{root}: no generated '{name}' set here (dataset.json missing); "
                             f"it is made on first use, or by `seldbench data synth {root}`")
    return list_starss_layout(root, split, val_rooms=manifest.get("val_rooms"), test_folds=(4,),
                              val_fold=3)


def prepare(root: str | os.PathLike, *, name: str = "synth", workers: int | None = None) -> None:
    """Generate the set into ``root`` unless it is already complete (resumes a partial one;
    a cached set from another generator version is deleted and made again).

    A complete set that ``seldbench data synth`` made there with other parameters is used as it
    is (a custom synthetic set: the run's data hash tells it apart); an unfinished one, or one
    of another generator version, is an error, never deleted."""
    from seldbench.api import generate_synth as generate
    from seldbench.api import synth_is_complete as is_complete
    from seldbench.api import synth_manifest as read_manifest
    from seldbench.api import synth_remove_stale as remove_stale

    params = SIZES[name]
    if is_complete(root, **params):
        return
    m = read_manifest(root) if Path(root).expanduser().is_dir() else None
    if m is not None and any(m.get(k) != v for k, v in params.items()):
        made = (f"{m.get('clips')} clips of {m.get('duration_s')} s, seed {m.get('seed')}, "
                f"generator {m.get('generator_version')}")
        if m.get("complete") and m.get("generator_version") == GENERATOR_VERSION:
            log.warning("%s: using the synthetic set generated there (%s), not the registered "
                        "'%s' parameters", root, made, name)
            return
        problem = ("unfinished: run the `seldbench data synth` command that started it again"
                   if m.get("generator_version") == GENERATOR_VERSION else
                   f"made by another generator version; regenerate it with `seldbench data synth "
                   f"{root} ...` (this is {GENERATOR_VERSION})")
        raise SeldbenchError(f"{root}: a synthetic set made with other parameters than "
                             f"'{name}' ({made}), {problem}")
    stale = remove_stale(root)
    if stale:
        log.warning("%s: the '%s' set there was made by generator %s; regenerating it with %s",
                    root, name, stale, GENERATOR_VERSION)
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    log.info("generating the '%s' dataset in %s (%d clips, %d workers)", name, root,
             params["clips"], workers)
    generate(root, workers=workers, log=log.info, **params)


@hookimpl
def seldbench_register_datasets():
    specs = []
    for name, params in SIZES.items():
        minutes = params["clips"] * params["duration_s"] / 60
        specs.append(DatasetSpec(
            name=name, version=VERSION, classes=CLASSES, splits=("train", "val", "test"),
            list_clips=partial(list_clips, name=name), metric_suites=("dcase2023", "dcase2024"),
            formats=("foa", "mic"), has_video=params["video"], metadata_columns=6,
            root_env=_root_env(name), default_root=data_home() / name,
            prepare=partial(prepare, name=name),
            description=(f"synthetic STARSS23-like set generated by seldbench: {params['clips']} "
                         f"clips of {params['duration_s']:g} s ({minutes:.0f} min), seed "
                         f"{params['seed']}, FOA + MIC + 360-degree video"),
        ))
    return specs
