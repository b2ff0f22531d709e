"""``seldbench cache``: compute once, before training, everything a run reads from the cache.

A run caches its features (one HDF5 file per split) and, for multimodal models, its side
inputs (CRATI: the frozen encoders' image tokens and text embeddings, one file per clip) on
first use. Seeds started together would each compute them; warming the cache first, with the
clips spread over several processes, makes every run of that config start with reads only.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from seldbench.data.roots import resolve_root
from seldbench.registry import get_registry
from seldbench.training.data import label_frames
from seldbench.training.plan import plan_run


def warm_cache(model: str, dataset: str, config_file: str | None = None,
               overrides: Sequence[str] = (), workers: int = 1,
               log: Callable[[str], None] = print) -> dict:
    """Cache the features of every split and the model's side inputs of every clip, as
    ``seldbench run`` with the same model, dataset, config and overrides would. Side inputs
    are computed by ``workers`` processes, clip by clip. Returns
    ``{"cache_dir": str, "clips": int, "features_s": float, "side_inputs_s": float}``."""
    from seldbench.features.cache import FeatureCache
    from seldbench.training.trainer import pick_device

    reg = get_registry()
    plan = plan_run(model, dataset, config_file, overrides, None, None, reg)
    cfg, mspec, dspec, fspec = plan.cfg, plan.model, plan.dataset, plan.feature
    device = pick_device(plan.train.device)
    root = resolve_root(dspec, cfg["dataset"]["root"])
    if dspec.prepare is not None:
        dspec.prepare(root)
    clips = {s: dspec.list_clips(root, s) for s in plan.splits}
    cache_dir = plan.cache_dir
    cache = FeatureCache(cache_dir, registry=reg, progress=True)

    t0 = time.perf_counter()
    jobs = []  # (split, clip, label frames)
    for s in plan.splits:
        cached = cache.get(dspec.name, s, clips[s], fspec.name, device=device)
        jobs += [(s, c, label_frames(cached.num_frames(c.stem), fspec.frames_per_label))
                 for c in clips[s]]
    t_features = time.perf_counter() - t0
    log(f"features: {len(jobs)} clips of {dspec.name} in {cache_dir} ({t_features:.1f} s)")

    t0 = time.perf_counter()
    if mspec.side_inputs is not None and jobs:
        args = [(model, dspec.name, cfg["model"], s, c, n, str(cache_dir), str(device))
                for s, c, n in jobs]
        if workers <= 1:
            for a in args:
                _side_inputs_of_clip(*a)
        else:
            _in_processes(args, workers)
        log(f"side inputs of '{model}': {len(jobs)} clips, {workers} process(es) "
            f"({time.perf_counter() - t0:.1f} s)")
    return {"cache_dir": str(cache_dir), "clips": len(jobs), "features_s": t_features,
            "side_inputs_s": time.perf_counter() - t0}


def _in_processes(args: list[tuple], workers: int) -> None:
    import concurrent.futures as cf
    import multiprocessing

    # spawn: CUDA cannot be used in a forked child, and a fresh interpreter has no torch
    # threads to inherit; each child gets its share of the cores
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_child_init,
                                initargs=(threads,)) as pool:
        futures = [pool.submit(_side_inputs_of_clip, *a) for a in args]
        try:
            for f in cf.as_completed(futures):
                f.result()  # the first failure (a SeldbenchError naming its file) is raised
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # clips not started are not started
            raise


def _child_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _side_inputs_of_clip(model: str, dataset: str, model_cfg: dict, split: str, clip,
                         frames: int, cache_dir: str, device: str) -> None:
    from seldbench.side_inputs import collect

    reg = get_registry()
    collect(reg.get_model(model), model_cfg, reg.get_dataset(dataset), [clip],
            {clip.stem: frames}, training=split == "train", cache_dir=Path(cache_dir),
            device=device, same_draws=False)  # filling only: no second pass
