"""Side inputs of multimodal models: per-label-frame streams beside the features.

A model's ``side_inputs`` hook (see :class:`seldbench.specs.ModelSpec`) says how to encode a
clip's video frames or sentences; the generic parts live here, so every multimodal model gets
them the same way:

- :class:`SideInputCache`: an encoder's output per clip, computed once and cached on disk,
  keyed by the encoder settings, the source file and the frame count;
- :func:`fill_missing`: clips without a stream (no video) get zeros and mask 0, never fake
  frames;
- :func:`collect`: what the core calls for every split; it drops the streams the spec declares
  as training signals (``ModelSpec.training_streams``) outside the train split, so
  validation, test and ``seldbench predict`` see only what a user has, and checks every stream
  has one row per label frame; a run draws the same random numbers after it whether the
  cache was empty or filled (its ``same_draws``).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seldbench.errors import SeldbenchError
from seldbench.io import cached_npy, source_signature


class SideInputCache:
    """Per-clip encoder outputs under ``cache_dir/<namespace>/<stream>/<stem>-<key>.npy``.

    ``computed`` counts the entries computed (not read back) by every cache of this process:
    :func:`collect` reads it to tell whether a model's side inputs were all cached."""

    computed = 0

    def __init__(self, cache_dir: str | os.PathLike, namespace: str) -> None:
        self.dir = Path(cache_dir).expanduser() / namespace

    def get(self, stream: str, stem: str, source: str | os.PathLike, settings: Mapping,
            frames: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()`` once per (``settings``, ``source`` file content, ``frames``): an array
        of ``frames`` rows, read back from the cache after (in memory)."""
        source = Path(source)
        if not source.is_file():
            raise SeldbenchError(f"{source}: no such file (side input '{stream}' of {stem})")
        key = {**settings, **source_signature(source), "frames": int(frames)}

        def count():
            SideInputCache.computed += 1
            return compute()

        out = cached_npy(self.dir / stream, stem, key, count, mmap=False)
        if len(out) != int(frames):
            raise SeldbenchError(f"{source}: side input '{stream}' has {len(out)} frames, "
                                 f"the clip {frames}")
        return out


def fill_missing(streams: dict[str, dict[str, np.ndarray]], frames: Mapping[str, int],
                 name: str, shape: Sequence[int], dtype: Any, *, mask: str,
                 extra: Mapping[str, tuple[Sequence[int], Any]] = {}) -> None:
    """Give every clip of ``streams`` (``{stem: {stream: array}}``) without ``name`` zeros of
    per-frame ``shape`` and ``dtype``, its ``mask`` stream 0 (``(frames,)`` float32), and zeros
    for each ``extra`` stream (``{stream: (per-frame shape, dtype)}``). Clips with ``name`` are
    left as they are (their mask is the model's to set, normally 1)."""
    for stem, s in streams.items():
        if name in s:
            continue
        n = int(frames[stem])
        s[name] = np.zeros((n, *shape), dtype)
        s[mask] = np.zeros(n, np.float32)
        for other, (other_shape, other_dtype) in extra.items():
            s[other] = np.zeros((n, *other_shape), other_dtype)


def collect(spec, cfg: Mapping, dataset, clips: Sequence, frames: Mapping[str, int], *,
            training: bool, cache_dir: Path, device: Any, progress: str = "",
            log: Callable[[str], None] | None = None, same_draws: bool = True
            ) -> dict[str, dict[str, np.ndarray]]:
    """The side streams of ``clips`` from ``spec.side_inputs`` (``{stem: {name: array}}``):
    training-only streams removed unless ``training``; every stream checked to hold one row
    per label frame of its clip. ``progress``: a label (e.g. the split) for a line on stderr
    before and after (encoders are slow on first use; one call, so a plugin loads them once),
    written by ``log`` (default: stderr); empty: silent.

    ``same_draws``: the global random streams (Python, numpy, torch on the CPU and on a CUDA
    ``device``) are left as a call whose clips were all cached leaves them, whatever the cache
    held: where a clip was computed, they are put back and the cache is read again. Building an
    encoder draws from them (timm initialises weights before loading the checkpoint), so
    without this a run would train on other draws with an empty cache than with a filled one.
    False (filling the cache only, ``seldbench cache``): one pass, the streams as it leaves
    them."""
    import time

    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    if progress:
        say(f"side inputs of {spec.name}, {progress}: {len(clips)} clips (encoded once, then "
            f"read from {cache_dir})")

    def call():
        return spec.side_inputs(cfg, dataset, clips, frames, training=training,
                                cache_dir=cache_dir, device=device)

    if same_draws:
        out = _as_if_cached(call, device)
    else:
        out = call()
    if progress:
        say(f"side inputs of {spec.name}, {progress}: done in {time.perf_counter() - t0:.1f} s")
    drop = () if training else tuple(spec.training_streams)
    result = {}
    for clip in clips:
        streams = out.get(clip.stem)
        if streams is None:
            raise SeldbenchError(f"model '{spec.name}': side_inputs returned nothing for clip "
                                 f"{clip.stem}")
        kept = {k: v for k, v in streams.items() if k not in drop}
        for k, v in kept.items():
            if len(v) != int(frames[clip.stem]):
                raise SeldbenchError(f"model '{spec.name}': side input '{k}' of {clip.stem} "
                                     f"has {len(v)} frames, its features {frames[clip.stem]}")
        result[clip.stem] = kept
    return result


def _as_if_cached(call: Callable[[], Any], device: Any) -> Any:
    """``call()`` leaving the global random streams as it leaves them when every entry it reads
    from a :class:`SideInputCache` is there: when it computed one, once more on the filled
    cache, from the streams as they were before (the draws of encoding are undone; those of a
    call on a full cache are kept, so runs recorded on filled caches repeat exactly)."""
    import torch

    from seldbench.rng import rng_state, set_rng_state

    device = torch.device(device)
    gpus = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    before, computed = rng_state(cuda=gpus), SideInputCache.computed
    out = call()
    if SideInputCache.computed != computed:
        del out  # one copy of the streams at a time
        set_rng_state(before)
        out = call()
    return out
