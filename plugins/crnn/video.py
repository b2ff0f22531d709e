"""The audio-visual CRNN's side input: one visual vector per 100-ms label frame, cached.

``video`` ``(T, rows * cols)`` float16: the video frame of each label frame (10 fps, as the 2025
baseline samples it) through the frozen image encoder (:class:`seldbench.api.ImageEncoder`,
``model.video``), its last feature map averaged over channels, row-major over the grid (the
baseline's form: the mean over ResNet-50's 2048 channels of a 7 x 7 map, 49 values); with
``video_mask`` ``(T,)`` = 1. Clips without video get zeros and mask 0
(:func:`seldbench.api.fill_missing`). Cached once per clip under ``cache_dir/crnn-av/video/``,
keyed by the encoder settings and the video file.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from seldbench.api import ImageEncoder, SideInputCache, fill_missing, load_video_frames
from seldbench.specs import ClipFiles

#: Bump when the rule that makes a visual vector changes, so old cache entries are not reused.
VIDEO_FEATURE_VERSION = 1
#: Frames encoded per forward pass of the image encoder.
BATCH = 64


def image_encoder(video_cfg: Mapping) -> ImageEncoder:
    """The configured frozen encoder (``model.video``), weights checked and loaded, in eval."""
    return ImageEncoder(video_cfg["encoder"], video_cfg["weights"], int(video_cfg["stage"]),
                        key="model.video").eval()


def visual_dim(encoder: ImageEncoder, video_cfg: Mapping) -> int:
    """Values per visual vector: the cells of the encoder's map at ``model.video.input_size``."""
    rows, cols = encoder.grid(*video_cfg["input_size"])
    return rows * cols


class VideoFeatures:
    """Computes and caches the visual vectors of clips for one ``model.video`` config."""

    def __init__(self, video_cfg: Mapping, cache_dir: str | Path, device="cpu") -> None:
        import torch

        self.cfg = dict(video_cfg)
        self.cache = SideInputCache(cache_dir, "crnn-av")
        self.device = torch.device(device)
        self._encoder = None

    @property
    def encoder(self) -> ImageEncoder:
        if self._encoder is None:  # loaded on the first clip that is not cached
            self._encoder = image_encoder(self.cfg).to(self.device)
        return self._encoder

    def settings(self) -> dict:
        return {"version": VIDEO_FEATURE_VERSION,
                **{k: (str(v) if v is not None else None) for k, v in sorted(self.cfg.items())}}

    def of_clip(self, clip: ClipFiles, frames: int) -> np.ndarray:
        """``(frames, rows * cols)`` float16 of a clip with video."""
        return self.cache.get("video", clip.stem, clip.video, self.settings(), frames,
                              lambda: self._encode(clip.video, frames))

    def _encode(self, path: Path, frames: int) -> np.ndarray:
        import torch

        h, w = (int(v) for v in self.cfg["input_size"])
        video = load_video_frames(path, frames, width=w, height=h)  # (T, h, w, 3) uint8
        out = []
        with torch.no_grad():
            for i in range(0, frames, BATCH):
                batch = torch.from_numpy(np.ascontiguousarray(video[i:i + BATCH]))
                fmap = self.encoder.feature_map(self.encoder.normalise(batch.to(self.device)))
                out.append(fmap.mean(dim=1).flatten(1).half().cpu().numpy())  # (n, rows * cols)
        return np.concatenate(out)

    def shape(self) -> tuple[int]:
        """Per-frame shape of the cached vectors (for clips without video)."""
        return (visual_dim(self.encoder, self.cfg),)


def clip_streams(features: VideoFeatures, clips: Sequence[ClipFiles], frames: Mapping[str, int],
                 *, has_video: bool) -> dict[str, dict[str, np.ndarray]]:
    """``{stem: {"video": (T, cells) float16, "video_mask": (T,) float32}}`` for every clip;
    zeros and mask 0 where a clip (or the whole dataset) has no video."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for clip in clips:
        n = int(frames[clip.stem])
        out[clip.stem] = {}
        if has_video and clip.video is not None:
            out[clip.stem] = {"video": features.of_clip(clip, n),
                              "video_mask": np.ones(n, np.float32)}
    if any(not s for s in out.values()):
        fill_missing(out, frames, "video", features.shape(), np.float16, mask="video_mask")
    return out
