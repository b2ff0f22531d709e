"""Frozen-encoder embeddings of a clip, computed once and cached (``cache_dir/crati/``).

Per clip and label frame (100 ms):

- ``image``: ``(T, rows * cols, channels)`` float16 tokens of the video frame (the encoder's
  feature map over the equirectangular or perspective frame, ``DatasetSpec.video_projection``;
  see :func:`seldbench.data.video.grid_directions` for each cell's direction), with
  ``image_mask`` ``(T,)`` = 1. A clip without video gets zero
  tokens and mask 0: no fake frames.
- ``frames`` instead of ``image`` when the whole image encoder is fine-tuned: ``(T, h, w, 3)``
  uint8 video frames at the encoder's input size (the model encodes them every step). When only
  its last n blocks are fine-tuned, ``image`` holds the tokens before those blocks instead, and
  the model's copy of them turns these into tokens every step.
- ``event_cells`` / ``event_mask`` (training only): ``(T, 3)`` the token index (grid cell) of
  each annotated source of the frame (up to 3, track order) and whether it exists; the model
  takes the tokens there as the image of the event (a "crop at the source direction", taken on
  the feature map). 0 where the clip has no video. On a perspective video only the sources
  labelled on screen count (the 2025 labels have no elevation: their cell is on the horizon row).
- ``text`` (training only): ``(T, dim)`` sentence embedding of the frame's description
  (:func:`seldbench.data.labels.describe_frames`), ``text_mask`` = 1.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from seldbench.api import (SideInputCache, describe_frames, direction_cell, fill_missing,
                           load_video_frames, read_metadata, track_targets)
from seldbench.specs import ClipFiles, DatasetSpec

#: Bump when an embedding rule changes, so old cache entries are not reused.
EMBEDDING_VERSION = 1


class ClipEmbedder:
    """Computes and caches the embeddings of clips for one image/text encoder config."""

    def __init__(self, image_cfg: Mapping, text_cfg: Mapping, cache_dir: str | Path,
                 device: torch.device | str = "cpu") -> None:
        self.image_cfg, self.text_cfg = dict(image_cfg), dict(text_cfg)
        self.cache = SideInputCache(cache_dir, "crati")
        self.dir = self.cache.dir
        self.device = torch.device(device)
        self._image = self._text = None
        h, w = (int(v) for v in self.image_cfg["input_size"])
        self.size = (h, w)
        self.every = max(1, int(self.image_cfg.get("every", 1)))
        # the tokens cached: those of the token stage, or, when the encoder's last n blocks
        # are fine-tuned, those before them (the input of the model's tuned tail)
        tuned = bool(self.image_cfg.get("finetune"))
        self.cut = int(self.image_cfg.get("finetune_blocks") or 0) if tuned else 0
        self.frames = tuned and not self.cut  # the whole encoder learns: frames, not tokens

    # -------------------------------------------------------------- encoders (lazy)

    @property
    def image_encoder(self):
        if self._image is None:
            from seldbench_plugins.crati.encoders import ImageEncoder

            self._image = ImageEncoder(self.image_cfg["encoder"], self.image_cfg["weights"],
                                       stage=int(self.image_cfg["stage"]),
                                       cut=self.cut).eval().to(self.device)
        return self._image

    @property
    def text_encoder(self):
        if self._text is None:
            from seldbench_plugins.crati.encoders import TextEncoder

            self._text = TextEncoder(self.text_cfg["encoder"], self.device)
        return self._text

    def _key(self, what: str) -> dict:
        cfg = self.image_cfg if what == "image" else self.text_cfg
        return {"what": what, "version": EMBEDDING_VERSION,
                **{k: (str(v) if v is not None else None) for k, v in sorted(cfg.items())
                   if k not in ("finetune", "finetune_blocks")},
                **({"cut": self.cut} if what == "image" and self.cut else {})}

    # -------------------------------------------------------------- per clip

    def image_tokens(self, clip: ClipFiles, frames: int) -> np.ndarray | None:
        """``(frames, tokens, channels)`` float16, or None without video."""
        if clip.video is None:
            return None
        return self.cache.get("image", clip.stem, clip.video, self._key("image"), frames,
                              lambda: self._encode_video(clip.video, frames))

    @torch.no_grad()
    def _encode_video(self, path: Path, frames: int) -> np.ndarray:
        h, w = self.size
        video = load_video_frames(path, frames, width=w, height=h)  # (T, h, w, 3) uint8
        picked = np.arange(0, frames, self.every)  # hold each encoded frame for `every` frames
        out = []
        for i in range(0, len(picked), 64):
            batch = torch.from_numpy(np.ascontiguousarray(video[picked[i:i + 64]]))
            out.append(self.image_encoder(batch.to(self.device)).half().cpu().numpy())
        tokens = np.concatenate(out)
        return np.repeat(tokens, self.every, axis=0)[:frames]

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (rows, cols) of the model's token stage at the configured input size."""
        return self.image_encoder.grid(*self.size, stage=self.image_encoder.stage)

    @property
    def cached_shape(self) -> tuple[int, int]:
        """``(tokens, channels)`` of one frame's cached tokens."""
        rows, cols = self.image_encoder.grid(*self.size)
        return rows * cols, self.image_encoder.channels

    def text_embeddings(self, clip: ClipFiles, dataset: DatasetSpec, frames: int) -> np.ndarray:
        """``(frames, dim)`` float16 embeddings of the per-frame descriptions."""
        settings = {**self._key("text"), "classes": list(dataset.classes)}

        def compute():
            table = _labels(clip, dataset)
            texts = describe_frames(table, frames, dataset.classes,
                                    seed=int(self.text_cfg.get("seed", 0))).frame
            unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
            return self.text_encoder(list(unique))[inverse].astype(np.float16)

        return self.cache.get("text", clip.stem, clip.metadata, settings, frames, compute)

    def event_cells(self, clip: ClipFiles, dataset: DatasetSpec, frames: int
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Grid cell of each frame's annotated sources ``(T, 3)`` and their mask ``(T, 3)``
        (on a perspective video: the sources labelled on screen)."""
        rows, cols = self.grid
        table = _labels(clip, dataset)
        if table.onscreen is not None and dataset.video_projection == "perspective":
            table = _rows_where(table, table.onscreen > 0)
        tt = track_targets(table, frames, len(dataset.classes))
        x, y, z = tt.xyz[..., 0], tt.xyz[..., 1], tt.xyz[..., 2]
        az = np.degrees(np.arctan2(y, x))
        el = np.degrees(np.arctan2(z, np.hypot(x, y)))
        active = tt.cls >= 0
        cells = np.where(active, direction_cell(az, el, rows, cols,
                                                projection=dataset.video_projection), 0)
        return cells.astype(np.float32), active.astype(np.float32)

    def video_frames(self, clip: ClipFiles, frames: int) -> np.ndarray | None:
        """``(frames, h, w, 3)`` uint8 at the encoder's input size (fine-tuning), or None."""
        if clip.video is None:
            return None
        h, w = self.size
        return np.asarray(load_video_frames(clip.video, frames, width=w, height=h,
                                            cache_dir=self.dir / "frames"))


def _labels(clip: ClipFiles, dataset: DatasetSpec):
    """The clip's annotation in the dataset's metadata format."""
    return read_metadata(clip.metadata, dataset.metadata_columns, len(dataset.classes),
                         dataset.metadata_format)


def _rows_where(table, keep: np.ndarray):
    """The rows of an event table where ``keep`` holds (an EventTable of the same layout)."""
    from dataclasses import fields, replace

    return replace(table, **{f.name: getattr(table, f.name)[keep] for f in fields(table)
                             if isinstance(getattr(table, f.name), np.ndarray)})


def clip_streams(embedder: ClipEmbedder, dataset: DatasetSpec, clips: Sequence[ClipFiles],
                 frames: Mapping[str, int], *, training: bool, image: bool, text: bool
                 ) -> dict[str, dict[str, np.ndarray]]:
    """The side streams of every clip (see the module docstring)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    shape = None
    finetune = embedder.frames
    name = "frames" if finetune else "image"
    for clip in clips:
        n = int(frames[clip.stem])
        streams: dict[str, np.ndarray] = {}
        if image:
            pixels = embedder.video_frames(clip, n) if finetune else \
                embedder.image_tokens(clip, n)
            if pixels is not None:
                shape = pixels.shape[1:], pixels.dtype
                streams[name], streams["image_mask"] = pixels, np.ones(n, np.float32)
                if training:
                    streams["event_cells"], streams["event_mask"] = \
                        embedder.event_cells(clip, dataset, n)
        if training and text:
            streams["text"] = embedder.text_embeddings(clip, dataset, n)
            streams["text_mask"] = np.ones(n, np.float32)
        out[clip.stem] = streams
    if image:  # clips without video: zeros and mask 0 (never fake frames the model would see)
        if shape is None:
            shape = (((*embedder.size, 3), np.uint8) if finetune else
                     (embedder.cached_shape, np.float16))
        events = {"event_cells": ((3,), np.float32), "event_mask": ((3,), np.float32)}
        fill_missing(out, frames, name, *shape, mask="image_mask",
                     extra=events if training else {})
    return out
