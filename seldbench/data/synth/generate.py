"""Generate a synthetic STARSS23-like dataset: the tree, WAVs, CSVs, MP4s and a manifest.

Layout (exactly STARSS23's, docs/datasets.md, "STARSS23")::

    OUT/foa_dev/{dev-train-sony,dev-train-tau,dev-test-sony,dev-test-tau}/fold3_room4_mix001.wav
    OUT/mic_dev/..., OUT/metadata_dev/... (.csv), OUT/video_dev/... (.mp4)
    OUT/dataset.json   generator version, seed, parameters, rooms, validation rooms

Train clips are fold 3 in rooms 4, 6, 7, 9, 12, 13, 14 (TAU) and 21, 22 (Sony); test clips are
fold 4 in rooms 2, 8, 10, 15, 16 (TAU) and 23, 24 (Sony), as in STARSS23, so train and test
rooms are disjoint. Clips go round-robin over the rooms.

Determinism: a room's acoustics come from ``(seed, room)`` and a clip from
``(seed, fold, room, mix)``, so a clip's files are the same whatever the number of clips,
workers or the order they run in, and on any CPU (:mod:`.exact`; the MP4 encoder settings in
:mod:`.video`). Every file is written atomically, and a clip whose files all
exist is skipped, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seldbench.data.layout import DEV_SUBFOLDERS, choose_val_rooms, dev_subfolder, make_stem
from seldbench.data.synth.config import SynthConfig
from seldbench.data.synth.mixer import RoomNoise, render_audio, sample_room_noise, to_pcm16
from seldbench.data.synth.room import Room, sample_room
from seldbench.data.synth.scene import FRAME_S, Scene, sample_scene
from seldbench.data.synth import GENERATOR_VERSION
from seldbench.errors import SeldbenchError
from seldbench.io import atomic_open, atomic_write_json
from seldbench.progress import Progress

GENERATOR = "seldbench.data.synth"
MANIFEST = "dataset.json"
#: Room order for assigning clips (Sony rooms early, so small sets have both kinds).
TRAIN_ROOMS = (4, 21, 6, 9, 22, 7, 12, 13, 14)
TEST_ROOMS = (2, 23, 8, 10, 24, 15, 16)
TRAIN_FOLD, TEST_FOLD = 3, 4
#: Share of test clips (STARSS23 dev: 78 of 168).
TEST_FRACTION = 0.47
_ROOM_TAG, _CLIP_TAG = 0x5EED_0001, 0x5EED_0002


@dataclass(frozen=True)
class ClipPlan:
    """The identity of one clip."""

    fold: int
    room: int
    mix: int

    @property
    def stem(self) -> str:
        return make_stem(self.fold, self.room, self.mix)

    @property
    def subfolder(self) -> str:
        return dev_subfolder(self.fold, self.room, test_folds=(TEST_FOLD,))


def plan_clips(clips: int, test_fraction: float = TEST_FRACTION) -> list[ClipPlan]:
    """``clips`` clip identities: train (fold 3) first, then test (fold 4, about
    ``test_fraction``, at least one when ``clips`` > 1); rooms round-robin, mixes from 001."""
    if clips < 1:
        raise SeldbenchError(f"synth: clips must be at least 1 (got {clips})")
    n_test = 0 if clips == 1 else min(max(int(round(clips * test_fraction)), 1), clips - 1)
    plans = []
    for count, fold, rooms in ((clips - n_test, TRAIN_FOLD, TRAIN_ROOMS), (n_test, TEST_FOLD, TEST_ROOMS)):
        for i in range(count):
            plans.append(ClipPlan(fold, rooms[i % len(rooms)], i // len(rooms) + 1))
    return plans


def room_setup(seed: int, room: int, cfg: SynthConfig) -> tuple[Room, RoomNoise, int]:
    """The room of ``room`` for ``seed``: geometry, ambient noise, and a seed for its look."""
    geo, noise, look = np.random.SeedSequence([seed, _ROOM_TAG, room]).spawn(3)
    return (sample_room(np.random.default_rng(geo), cfg.rt60_s),
            sample_room_noise(np.random.default_rng(noise)),
            int(np.random.default_rng(look).integers(2**62)))


def _clip_rngs(seed: int, plan: ClipPlan) -> list[np.random.Generator]:
    """Independent streams for the scene and the audio of one clip."""
    ss = np.random.SeedSequence([seed, _CLIP_TAG, plan.fold, plan.room, plan.mix])
    return [np.random.default_rng(s) for s in ss.spawn(2)]


def _frames(duration_s: float) -> int:
    frames = int(round(duration_s / FRAME_S))
    if frames < 1 or abs(frames * FRAME_S - duration_s) > 1e-6:
        raise SeldbenchError(f"synth: duration {duration_s} s is not a positive multiple of 0.1 s")
    return frames


def clip_scene(plan: ClipPlan, seed: int, duration_s: float, cfg: SynthConfig | None = None) -> Scene:
    """The scene of one clip: the same one :func:`generate` renders (tests use it to know
    which events are visible and where the distractors are)."""
    cfg = cfg or SynthConfig()
    room, _, _ = room_setup(seed, plan.room, cfg)
    return sample_scene(_clip_rngs(seed, plan)[0], room, _frames(duration_s), cfg)


def render_clip(plan: ClipPlan, seed: int, duration_s: float, cfg: SynthConfig
                ) -> tuple[Scene, np.ndarray, list[np.ndarray]]:
    """Scene, float audio ``(8, samples)`` (FOA then MIC) and loudness envelopes of one clip."""
    room, noise, _ = room_setup(seed, plan.room, cfg)
    scene_rng, audio_rng = _clip_rngs(seed, plan)
    scene = sample_scene(scene_rng, room, _frames(duration_s), cfg)
    audio, envelopes = render_audio(scene, noise, cfg, audio_rng)
    return scene, audio, envelopes


def clip_paths(out_dir: Path, plan: ClipPlan, video: bool) -> dict[str, Path]:
    sub, stem = plan.subfolder, plan.stem
    paths = {"foa": out_dir / "foa_dev" / sub / f"{stem}.wav",
             "mic": out_dir / "mic_dev" / sub / f"{stem}.wav",
             "metadata": out_dir / "metadata_dev" / sub / f"{stem}.csv"}
    if video:
        paths["video"] = out_dir / "video_dev" / sub / f"{stem}.mp4"
    return paths


def write_clip(out_dir: str | os.PathLike, plan: ClipPlan, seed: int, duration_s: float,
               cfg: SynthConfig, video: bool = True) -> dict:
    """Render one clip and write its WAVs, CSV (and MP4) atomically; returns a small summary."""
    import soundfile as sf

    from seldbench.data.synth.video import render_frames, write_video

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    paths = clip_paths(out_dir, plan, video)
    scene, audio, envelopes = render_clip(plan, seed, duration_s, cfg)
    pcm, gain = to_pcm16(audio)
    for fmt, chans in (("foa", slice(0, 4)), ("mic", slice(4, 8))):
        with atomic_open(paths[fmt], "wb") as fh:
            sf.write(fh, pcm[:, chans], cfg.fs, subtype="PCM_16", format="WAV")
    labels = scene.labels()
    with atomic_open(paths["metadata"], "w", encoding="ascii", newline="") as fh:
        fh.write("".join(",".join(map(str, row)) + "\n" for row in labels.tolist()))
    if video:
        _, _, look_seed = room_setup(seed, plan.room, cfg)
        frames = render_frames(scene, envelopes, cfg, np.random.default_rng(look_seed))
        write_video(paths["video"], frames, cfg)
    return {"stem": plan.stem, "events": len(scene.events), "gain": gain,
            "seconds": round(time.perf_counter() - t0, 2)}


def _params(clips: int, duration_s: float, seed: int, video: bool, test_fraction: float,
            cfg: SynthConfig) -> dict:
    return {"generator": GENERATOR, "generator_version": GENERATOR_VERSION, "seed": seed,
            "clips": clips, "duration_s": duration_s, "video": video,
            "test_fraction": test_fraction, "config": cfg.to_dict()}


def read_manifest(out_dir: str | os.PathLike) -> dict | None:
    """The ``dataset.json`` of a generated set, or None if there is none."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SeldbenchError(f"{path}: unreadable manifest ({exc})") from exc


def is_complete(out_dir: str | os.PathLike, clips: int, duration_s: float, seed: int, video: bool = True,
                config: SynthConfig | None = None, test_fraction: float = TEST_FRACTION) -> bool:
    """Whether ``out_dir`` holds a finished set generated with exactly these parameters."""
    m = read_manifest(out_dir)
    want = _params(clips, float(duration_s), seed, video, test_fraction, config or SynthConfig())
    return bool(m and m.get("complete") and all(m.get(k) == v for k, v in want.items()))


def remove_stale(out_dir: str | os.PathLike) -> str | None:
    """If ``out_dir`` holds a set made by another generator version, delete what the generator
    wrote there (the four ``*_dev`` trees and the manifest) and return that version; otherwise,
    or when the folder holds anything else, return None. Keeps a cached set from mixing clips
    of two versions."""
    out_dir = Path(out_dir).expanduser()
    m = read_manifest(out_dir)
    if not m or m.get("generator") != GENERATOR or m.get("generator_version") == GENERATOR_VERSION:
        return None
    ours = {"foa_dev", "mic_dev", "metadata_dev", "video_dev", MANIFEST}
    if any(p.name not in ours for p in out_dir.iterdir()):
        return None  # not only ours: generate() refuses it with a clear error
    for top in ours - {MANIFEST}:
        shutil.rmtree(out_dir / top, ignore_errors=True)
    (out_dir / MANIFEST).unlink()
    return str(m.get("generator_version"))


def generate(out_dir: str | os.PathLike, clips: int = 20, duration_s: float = 60.0, seed: int = 0,
             video: bool = True, workers: int = 2, config: SynthConfig | None = None,
             test_fraction: float = TEST_FRACTION, log: Callable[[str], None] | None = None,
             progress: bool = True) -> dict:
    """Generate (or finish) a synthetic STARSS23-like set in ``out_dir``; returns the manifest.

    ``clips`` one-``duration_s`` clips (train = fold 3, test = fold 4, about ``test_fraction``),
    ``workers`` processes (spawned: a script that calls this with ``workers > 1`` needs an
    ``if __name__ == "__main__":`` guard). ``out_dir`` must be empty, absent, or a set made
    with the same parameters (then existing clips are kept and missing ones made). ``log``
    gets a line at the start and at the end; ``progress`` shows clips done, elapsed time and
    ETA on stderr (:class:`seldbench.progress.Progress`).
    """
    cfg = config or SynthConfig()
    out_dir = Path(out_dir).expanduser()
    duration_s = float(duration_s)
    _frames(duration_s)
    params = _params(clips, duration_s, seed, video, test_fraction, cfg)
    old = read_manifest(out_dir)
    if old is not None:
        diff = [k for k, v in params.items() if old.get(k) != v]
        if diff:
            raise SeldbenchError(f"{out_dir}: holds a synthetic set made with other parameters "
                                 f"({', '.join(diff)}); use an empty folder")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise SeldbenchError(f"{out_dir}: folder is not empty and holds no synthetic set "
                             f"({MANIFEST}); use an empty folder")
    plans = plan_clips(clips, test_fraction)
    rooms = sorted({p.room for p in plans})
    train_counts = Counter(p.room for p in plans if p.fold == TRAIN_FOLD)
    val_rooms = list(choose_val_rooms(train_counts))
    manifest = {**params, "complete": False, "created_by": f"{GENERATOR} {GENERATOR_VERSION}",
                "val_rooms": val_rooms,
                "splits": {"train": sum(c for r, c in train_counts.items() if r not in val_rooms),
                           "val": sum(train_counts[r] for r in val_rooms),
                           "test": sum(1 for p in plans if p.fold == TEST_FOLD)},
                "rooms": {str(r): room_setup(seed, r, cfg)[0].__dict__ for r in rooms}}
    for top in ("foa_dev", "mic_dev", "metadata_dev") + (("video_dev",) if video else ()):
        for sub in DEV_SUBFOLDERS:
            (out_dir / top / sub).mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / MANIFEST, manifest)

    todo = [p for p in plans if not all(q.is_file() for q in clip_paths(out_dir, p, video).values())]
    say = log or (lambda _msg: None)
    say(f"synth: {len(plans) - len(todo)} of {len(plans)} clips present; generating {len(todo)} "
        f"with {max(1, workers)} worker(s)")
    t0 = time.perf_counter()
    args = [(str(out_dir), p, seed, duration_s, cfg, video) for p in todo]
    with Progress(len(todo), "synth", unit="clips", enabled=progress) as bar:
        if workers <= 1 or len(todo) <= 1:
            for a in args:
                write_clip(*a)
                bar.update()
        else:
            with _worker_pool(workers) as pool:
                futures = [pool.submit(write_clip, *a) for a in args]
                try:
                    for fut in cf.as_completed(futures):
                        fut.result()
                        bar.update()
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
    manifest["complete"] = True
    atomic_write_json(out_dir / MANIFEST, manifest)
    say(f"synth: done in {time.perf_counter() - t0:.1f} s: {out_dir}")
    return manifest


def _worker_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` processes that die with this one.

    Started by ``spawn``, not ``fork``: a forked worker holds copies of every file descriptor
    of its parent, the run folder's ``flock`` among them (close-on-exec does not help, there is
    no exec), so workers orphaned by a ``kill -9`` kept the run locked. A spawned worker is a
    fresh interpreter that inherits no descriptors (the price: each imports numpy/scipy/PyAV
    again, about a second, and a script calling :func:`generate` with workers needs an
    ``if __name__ == "__main__"`` guard). The initializer makes each worker die with its parent.
    """
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_worker_init, initargs=(os.getpid(),))


def _worker_init(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
