"""Inference: whole clips in fixed-length chunks, decoded to DCASE event tables."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from seldbench.errors import SeldbenchError
from seldbench.metrics.csvio import EventTable
from seldbench.training.data import clip_chunks, side_chunks


class Predictor:
    """Runs a model over clips and decodes its output format.

    Each clip ``(C, frames, bins)`` (normalised features) is cut into zero-padded chunks of
    ``chunk_frames`` label frames, the outputs are concatenated and trimmed to the clip's
    label length, then decoded (multi-ACCDOA: activity threshold and unification angle from
    ``eval``).
    """

    def __init__(self, output: str, num_classes: int, chunk_frames: int, frames_per_label: int,
                 with_distance: bool, device: torch.device, eval_cfg: Mapping,
                 batch_size: int = 32, model_name: str = "model") -> None:
        self.output, self.C = output, num_classes
        self.chunk, self.per = chunk_frames, frames_per_label
        self.with_distance, self.device = with_distance, device
        self.threshold = float(eval_cfg.get("threshold", 0.5))
        self.unify = float(eval_cfg.get("unify_deg", 15.0))
        self.batch_size = batch_size
        self.model_name = model_name

    @torch.no_grad()
    def raw(self, model: torch.nn.Module, features: np.ndarray,
            side: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Model output of one clip, ``(label_frames, outputs)``; ``side``: the clip's
        per-frame side streams (:attr:`seldbench.specs.ModelSpec.side_inputs`)."""
        chunks, frames = clip_chunks(features, self.chunk, self.per)
        streams = side_chunks(dict(side or {}), frames, self.chunk)
        outs = []
        for i in range(0, len(chunks), self.batch_size):
            kw = {k: v[i:i + self.batch_size].to(self.device) for k, v in streams.items()}
            y = model(chunks[i:i + self.batch_size].to(self.device), **kw)
            if not outs:  # a plugin's shape mistake: one error naming the model
                from seldbench.training.plan import check_output

                check_output(y, self.model_name, self.output, self.C, self.with_distance,
                             frames=self.chunk)
            outs.append(y.float().cpu())
        out = torch.cat(outs).reshape(-1, outs[0].shape[-1])
        return out[:frames].numpy()

    def predict(self, model: torch.nn.Module, clips: Sequence[np.ndarray],
                sides: Sequence[Mapping[str, np.ndarray]] | None = None) -> list[EventTable]:
        """Decoded event tables, one per clip: Cartesian DOAs (distance in metres if predicted);
        for ``multi_accdoa_stereo`` the 2025 ``fctado`` rows (azimuth, distance in cm,
        onscreen)."""
        was_training = model.training
        model.eval()
        sides = list(sides) if sides is not None else [None] * len(clips)
        try:
            raws = [self.raw(model, x, s) for x, s in zip(clips, sides)]
        finally:
            model.train(was_training)
        return [self.decode(r) for r in raws]

    def decode(self, raw: np.ndarray) -> EventTable:
        """One clip's raw output ``(label_frames, outputs)`` -> its event table."""
        from seldbench.metrics.decode import (multi_accdoa_decode, stereo_multi_accdoa_decode,
                                              trackwise_decode)

        if self.output == "multi_accdoa_stereo":  # fctado rows: azimuth, cm, onscreen
            return stereo_multi_accdoa_decode(raw[None], self.C, with_onscreen=True,
                                              threshold=self.threshold, unify_deg=self.unify)[0]

        if self.output == "multi_accdoa":
            return multi_accdoa_decode(raw[None], self.C, with_distance=self.with_distance,
                                       threshold=self.threshold, unify_deg=self.unify)[0]
        if self.output == "track_wise":
            width = self.C + 3 + int(self.with_distance)
            if raw.shape[-1] % width:
                raise SeldbenchError(f"track-wise output has {raw.shape[-1]} values per frame, "
                                     f"not a multiple of classes + {width - self.C}")
            r = raw.reshape(raw.shape[0], -1, width)
            prob = 1.0 / (1.0 + np.exp(-r[..., :self.C]))
            dist = r[..., self.C + 3] if self.with_distance else None
            return trackwise_decode(prob, r[..., self.C:self.C + 3], threshold=self.threshold,
                                    distance=dist)[0]
        raise SeldbenchError(f"no decoder for output format '{self.output}'")
