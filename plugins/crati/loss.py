"""CRATI's loss: the core SELD loss of the trunk's output format (ADPIT MSE for multi-ACCDOA,
PIT for a track-wise output, stereo ADPIT for ``multi_accdoa_stereo``) plus the contrastive
terms (docs/models.md, "Losses").

``L = w_seld L_seld + w_at L_at + w_ai L_ai + w_align L_align`` where

- ``L_at`` / ``L_ai``: symmetric multi-positive InfoNCE between audio and text / image
  embeddings of the same frames across the batch; frames whose sets of active classes are equal
  are all positives of each other (so the many frames of the same class do not push apart);
  with ``positive_sectors`` n > 0, the azimuth sector (360/n degrees) of each active class must
  be equal too, so the embedding keeps where the sources are, not only what they are;
- ``L_align``: ``1 - cos(audio, normalise(image + text))`` over frames with both (or the one
  present): pulls the three modalities to one point beyond the pairwise terms;
- ``L_ground`` (with class queries, weight ``grounding``): for each active class of a frame with
  video, ``-log`` of the attention its query gives to the grid cells holding that class's
  annotated sources (the cell nearest each target direction; on stereo labels only the sources
  labelled on screen): the image branch learns where each class's object is;
- ``L_presence`` (with class queries and ``presence``, weight ``presence``): binary
  cross-entropy of each class's visual presence logit against whether the class is active
  (on stereo labels: and on screen), over frames with video: a visual detector whose output
  the fusion passes on.

At most ``contrast_frames`` frames per term (a random subset from the torch RNG, so
reproducible under the trainer's seeding) enter the similarity matrices.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn import functional as F

from seldbench.api import ADPIT_SLOTS, core_loss


@dataclass(frozen=True)
class LossSettings:
    """What the loss needs from the ``model:`` section (built by the plugin's loss factory)."""

    output_format: str = "multi_accdoa"  # the trunk's, whose core SELD loss is used
    classes: int = 13
    weights: Mapping[str, float] = field(default_factory=lambda: {"seld": 1.0})
    with_distance: bool = False
    contrast_frames: int = 512  # at most this many frames per contrastive term
    positive_sectors: int = 0


def sources(target: Tensor, num_classes: int, output_format: str = "multi_accdoa",
            visible: bool = False) -> tuple[Tensor, Tensor]:
    """The annotated sources of a core target: which slots hold an active source of each class,
    ``(B, T, S, C)`` bool, and their unit vectors ``(B, T, S, C, 3)``.

    Reads the target of each output format: multi-ACCDOA's ADPIT ``(B, T, 6, V + 1, C)`` (S = 6
    slots), the stereo ADPIT ``(B, T, 6, 5, C)`` (activity, x, y, distance, onscreen; z = 0, the
    labels have azimuth only; ``visible``: only the sources on screen count) and the track-wise
    ``(B, T, tracks, C + 3 [+ 1])`` (S = tracks, one class per track)."""
    C = num_classes
    if output_format == "multi_accdoa_stereo":
        active = target[:, :, :ADPIT_SLOTS, 0, :C] > 0.5
        if visible:
            active = active & (target[:, :, :ADPIT_SLOTS, 4, :C] > 0.5)
        xy = target[:, :, :ADPIT_SLOTS, 1:3, :C].transpose(-1, -2)
        return active, F.pad(xy, (0, 1))
    if target.dim() == 5:
        return (target[:, :, :ADPIT_SLOTS, 0, :C] > 0.5,
                target[:, :, :ADPIT_SLOTS, 1:4, :C].transpose(-1, -2))
    xyz = target[..., C:C + 3].unsqueeze(3)  # (B, T, tracks, 1, 3)
    return target[..., :C] > 0.5, xyz.expand(*target.shape[:3], C, 3)


def class_sets(target: Tensor, num_classes: int, output_format: str = "multi_accdoa",
               visible: bool = False) -> Tensor:
    """Active (``visible``: and visible, see :func:`sources`) classes per frame of a core target
    -> ``(B, T, C)``."""
    return sources(target, num_classes, output_format, visible)[0].any(2)


def frame_keys(target: Tensor, num_classes: int, sectors: int = 0,
               output_format: str = "multi_accdoa") -> Tensor:
    """What makes two frames positives: ``(B, T, C)`` active classes (``sectors`` 0), or
    ``(B, T, C, sectors)`` the azimuth sectors holding each class's sources, from a core
    target (see :func:`sources`)."""
    if not sectors:
        return class_sets(target, num_classes, output_format)
    active, xyz = sources(target, num_classes, output_format)
    az = torch.atan2(xyz[..., 1], xyz[..., 0])  # radians, (-pi, pi]
    sector = ((az + torch.pi) / (2 * torch.pi) * sectors).long().clamp(0, sectors - 1)
    hit = F.one_hot(sector, sectors).bool() & active[..., None]
    return hit.any(2)


def same_keys(keys: Tensor) -> Tensor:
    """``(N, N)`` bool: whether rows ``i`` and ``j`` of the bool ``keys`` ``(N, K)`` are equal.

    The rows are packed into 62-bit integers first, so this compares ``(N, N, ceil(K / 62))``
    integers instead of ``(N, N, K)`` booleans (CRATI's 400 frames x 104 sector keys: 32x
    faster on one CPU thread, ``benchmarks/crati_positives.py``; the broadcast was ~8% of a
    training step), with no host-device sync."""
    n, k = keys.shape
    groups = -(-k // 62)
    bits = F.pad(keys.long(), (0, groups * 62 - k)).view(n, groups, 62)
    codes = (bits << torch.arange(62, device=keys.device)).sum(-1)  # (N, groups) int64
    return (codes[:, None, :] == codes[None, :, :]).all(-1)


def multi_positive_nce(a: Tensor, b: Tensor, positive: Tensor, scale: Tensor) -> Tensor:
    """Symmetric InfoNCE of unit vectors ``a``, ``b`` ``(N, D)``; ``positive`` ``(N, N)`` bool
    with a true diagonal. Each row's loss averages the log-probabilities of its positives."""
    logits = scale * a @ b.T
    pos = positive.float()
    ab = -(F.log_softmax(logits, 1) * pos).sum(1) / pos.sum(1)
    ba = -(F.log_softmax(logits.T, 1) * pos.T).sum(1) / pos.T.sum(1)
    return 0.5 * (ab.mean() + ba.mean())


def grounding_loss(logits: Tensor, target: Tensor, directions: Tensor, video_mask: Tensor,
                   output_format: str = "multi_accdoa") -> Tensor:
    """Multi-positive cross-entropy of class-query attention ``logits`` ``(B, T, C, cells)``
    against the cells of each active class's visible sources in the core ``target`` (see
    :func:`sources`); ``directions`` ``(cells, 3)`` unit vectors; frames with ``video_mask`` 0
    and inactive classes are left out."""
    active, xyz = sources(target, logits.shape[2], output_format, visible=True)
    cell = (xyz @ directions.T).argmax(-1)  # (B, T, S, C): nearest cell centre
    hit = F.one_hot(cell, directions.shape[0]).bool() & active[..., None]
    positive = hit.any(2)  # (B, T, C, cells)
    valid = positive.any(-1) & (video_mask[..., None] > 0.5)
    if not valid.any():
        return logits.sum() * 0.0
    logp = F.log_softmax(logits.float(), -1).masked_fill(~positive, float("-inf"))
    return -torch.logsumexp(logp, -1)[valid].mean()


def _pick(mask: Tensor, limit: int) -> Tensor:
    idx = mask.nonzero().squeeze(1)
    if len(idx) > limit:
        idx = idx[torch.randperm(len(idx), device=idx.device)[:limit]]
    return idx


def crati_loss(output, target: Tensor, *, settings: LossSettings = LossSettings()) -> Tensor:
    """The total loss (see the module docstring); ``output`` is CRATI's training dict (or the
    bare SELD tensor, for which it is the trunk's SELD loss)."""
    s = settings
    seld_loss = core_loss(s.output_format, s.with_distance)
    if isinstance(output, Tensor):
        return seld_loss(output, target)
    w = s.weights
    loss = w.get("seld", 1.0) * seld_loss(output["seld"], target)
    if "grounding" in output:
        loss = loss + w["grounding"] * grounding_loss(output["grounding"], target,
                                                      output["directions"], output["video_mask"],
                                                      s.output_format)
    if "presence" in output:
        C = output["presence"].shape[-1]
        active = class_sets(target, C, s.output_format, visible=True).float()
        per = F.binary_cross_entropy_with_logits(output["presence"].float(), active,
                                                 reduction="none").mean(-1)
        m = (output["video_mask"] > 0.5).float()
        loss = loss + w["presence"] * (per * m).sum() / m.sum().clamp_min(1.0)
    if "audio" not in output:
        return loss
    sets = frame_keys(target, s.classes, s.positive_sectors,
                      s.output_format).flatten(0, 1).flatten(1)
    audio = output["audio"].flatten(0, 1).float()
    scale = output["scale"]
    others = {}
    for name, key in (("text", "audio_text"), ("image", "audio_image")):
        if name not in output:
            continue
        emb, mask = output[name].flatten(0, 1).float(), output[f"{name}_mask"].flatten() > 0.5
        others[name] = (emb, mask)
        if w.get(key, 0) and mask.any():
            idx = _pick(mask, s.contrast_frames)
            positive = same_keys(sets[idx])  # equal keys: positives
            loss = loss + w[key] * multi_positive_nce(audio[idx], emb[idx], positive, scale)
    if w.get("align", 0) and others:
        total = torch.zeros_like(audio)
        have = torch.zeros(audio.shape[0], dtype=torch.bool, device=audio.device)
        for emb, mask in others.values():
            total = total + emb * mask[:, None]
            have |= mask
        if have.any():
            cos = (audio[have] * F.normalize(total[have], dim=-1)).sum(-1)
            loss = loss + w["align"] * (1.0 - cos).mean()
    return loss
