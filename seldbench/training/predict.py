"""Inference: whole clips in fixed-length chunks, decoded to DCASE event tables."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from seldbench.errors import SeldbenchError
from seldbench.metrics.csvio import EventTable
from seldbench.training.data import clip_chunks


class Predictor:
    """Runs a model over clips and decodes its output format.

    Each clip ``(C, frames, bins)`` (normalised features) is cut into zero-padded chunks of
    ``chunk_frames`` label frames, the outputs are concatenated and trimmed to the clip's
    label length, then decoded (multi-ACCDOA: activity threshold and unification angle from
    ``eval``).
    """

    def __init__(self, output: str, num_classes: int, chunk_frames: int, frames_per_label: int,
                 with_distance: bool, device: torch.device, eval_cfg: Mapping,
                 batch_size: int = 32) -> None:
        self.output, self.C = output, num_classes
        self.chunk, self.per = chunk_frames, frames_per_label
        self.with_distance, self.device = with_distance, device
        self.threshold = float(eval_cfg.get("threshold", 0.5))
        self.unify = float(eval_cfg.get("unify_deg", 15.0))
        self.batch_size = batch_size

    @torch.no_grad()
    def raw(self, model: torch.nn.Module, features: np.ndarray) -> np.ndarray:
        """Model output of one clip, ``(label_frames, outputs)``."""
        chunks, frames = clip_chunks(features, self.chunk, self.per)
        outs = [model(chunks[i:i + self.batch_size].to(self.device)).float().cpu()
                for i in range(0, len(chunks), self.batch_size)]
        out = torch.cat(outs).reshape(-1, outs[0].shape[-1])
        return out[:frames].numpy()

    def predict(self, model: torch.nn.Module, clips: Sequence[np.ndarray]) -> list[EventTable]:
        """Decoded event tables (Cartesian DOAs, distance in metres if predicted), one per clip."""
        from seldbench.metrics.decode import multi_accdoa_decode

        was_training = model.training
        model.eval()
        try:
            raws = [self.raw(model, x) for x in clips]
        finally:
            model.train(was_training)
        if self.output == "multi_accdoa":
            return [multi_accdoa_decode(r[None], self.C, with_distance=self.with_distance,
                                        threshold=self.threshold, unify_deg=self.unify)[0]
                    for r in raws]
        raise SeldbenchError(f"no decoder for output format '{self.output}' yet")
