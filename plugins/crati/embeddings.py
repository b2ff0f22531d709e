"""Frozen-encoder embeddings of a clip, computed once and cached (``cache_dir/crati/``).

Per clip and label frame (100 ms):

- ``image``: ``(T, rows * cols, channels)`` float16 tokens of the video frame (the encoder's
  feature map over the equirectangular frame; see :func:`seldbench.data.video.grid_directions`
  for each cell's direction), with ``image_mask`` ``(T,)`` = 1. A clip without video gets zero
  tokens and mask 0: no fake frames.
- ``image_event`` (training only): ``(T, channels)`` the mean of the tokens of the cells holding
  the frame's annotated sources (the "crop at the source direction", taken on the feature map),
  ``image_event_mask`` = 1 where the clip has video and the frame has an event.
- ``text`` (training only): ``(T, dim)`` sentence embedding of the frame's description
  (:func:`seldbench.data.labels.describe_frames`), ``text_mask`` = 1.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from seldbench.data.labels import describe_frames, read_metadata, track_targets
from seldbench.data.video import direction_cell, load_video_frames
from seldbench.errors import SeldbenchError
from seldbench.io import cached_npy, source_signature
from seldbench.specs import ClipFiles, DatasetSpec

#: Bump when an embedding rule changes, so old cache entries are not reused.
EMBEDDING_VERSION = 1


class ClipEmbedder:
    """Computes and caches the embeddings of clips for one image/text encoder config."""

    def __init__(self, image_cfg: Mapping, text_cfg: Mapping, cache_dir: str | Path,
                 device: torch.device | str = "cpu") -> None:
        self.image_cfg, self.text_cfg = dict(image_cfg), dict(text_cfg)
        self.dir = Path(cache_dir).expanduser() / "crati"
        self.device = torch.device(device)
        self._image = self._text = None
        h, w = (int(v) for v in self.image_cfg["input_size"])
        self.size = (h, w)
        self.every = max(1, int(self.image_cfg.get("every", 1)))

    # -------------------------------------------------------------- encoders (lazy)

    @property
    def image_encoder(self):
        if self._image is None:
            from seldbench_plugins.crati.encoders import ImageEncoder

            self._image = ImageEncoder(self.image_cfg["encoder"], self.image_cfg["weights"],
                                       stage=int(self.image_cfg["stage"])).eval().to(self.device)
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
                   if k != "finetune"}}

    # -------------------------------------------------------------- per clip

    def image_tokens(self, clip: ClipFiles, frames: int) -> np.ndarray | None:
        """``(frames, tokens, channels)`` float16, or None without video."""
        if clip.video is None:
            return None
        if not Path(clip.video).is_file():
            raise SeldbenchError(f"{clip.video}: no such video file")
        key = {**self._key("image"), **source_signature(clip.video), "frames": int(frames)}
        return cached_npy(self.dir / "image", clip.stem, key,
                          lambda: self._encode_video(clip.video, frames), mmap=False)

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
        """Token grid (rows, cols) of the image encoder at the configured input size."""
        h, w = self.size
        stride = self.image_encoder.reduction
        return math.ceil(h / stride), math.ceil(w / stride)

    def text_embeddings(self, clip: ClipFiles, dataset: DatasetSpec, frames: int) -> np.ndarray:
        """``(frames, dim)`` float16 embeddings of the per-frame descriptions."""
        key = {**self._key("text"), **source_signature(clip.metadata), "frames": int(frames),
               "classes": list(dataset.classes)}

        def compute():
            table = read_metadata(clip.metadata, dataset.metadata_columns, len(dataset.classes))
            texts = describe_frames(table, frames, dataset.classes,
                                    seed=int(self.text_cfg.get("seed", 0))).frame
            unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
            return self.text_encoder(list(unique))[inverse].astype(np.float16)

        return cached_npy(self.dir / "text", clip.stem, key, compute, mmap=False)

    def event_tokens(self, clip: ClipFiles, dataset: DatasetSpec, tokens: np.ndarray,
                     frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean token of the cells holding each frame's annotated sources, and its mask."""
        rows, cols = self.grid
        table = read_metadata(clip.metadata, dataset.metadata_columns, len(dataset.classes))
        tt = track_targets(table, frames, len(dataset.classes))
        active = tt.cls >= 0  # (T, 3)
        x, y, z = tt.xyz[..., 0], tt.xyz[..., 1], tt.xyz[..., 2]
        az = np.degrees(np.arctan2(y, x))
        el = np.degrees(np.arctan2(z, np.hypot(x, y)))
        cell = direction_cell(az, el, rows, cols)  # (T, 3)
        picked = np.take_along_axis(tokens.astype(np.float32), cell[..., None], axis=1)
        count = active.sum(1)
        mean = (picked * active[..., None]).sum(1) / np.maximum(count, 1)[:, None]
        return mean.astype(np.float16), (count > 0).astype(np.float32)


def clip_streams(embedder: ClipEmbedder, dataset: DatasetSpec, clips: Sequence[ClipFiles],
                 frames: Mapping[str, int], *, training: bool, image: bool, text: bool
                 ) -> dict[str, dict[str, np.ndarray]]:
    """The side streams of every clip (see the module docstring)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    channels = None
    for clip in clips:
        n = int(frames[clip.stem])
        streams: dict[str, np.ndarray] = {}
        if image:
            tok = embedder.image_tokens(clip, n)
            if tok is not None:
                channels = tok.shape[1:]
                streams["image"], streams["image_mask"] = tok, np.ones(n, np.float32)
                if training:
                    streams["image_event"], streams["image_event_mask"] = \
                        embedder.event_tokens(clip, dataset, tok, n)
        if training and text:
            streams["text"] = embedder.text_embeddings(clip, dataset, n)
            streams["text_mask"] = np.ones(n, np.float32)
        out[clip.stem] = streams
    if image:  # clips without video: zero tokens, mask 0 (shape from a clip with video)
        if channels is None:
            rows, cols = embedder.grid
            channels = (rows * cols, embedder.image_encoder.channels)
        for clip in clips:
            s, n = out[clip.stem], int(frames[clip.stem])
            if "image" not in s:
                s["image"] = np.zeros((n, *channels), np.float16)
                s["image_mask"] = np.zeros(n, np.float32)
                if training:
                    s["image_event"] = np.zeros((n, channels[-1]), np.float16)
                    s["image_event_mask"] = np.zeros(n, np.float32)
    return out
