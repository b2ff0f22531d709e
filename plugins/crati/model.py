"""CRATI: an audio backbone (the CRNN or EINV2), image-conditioned fusion, and projection heads
for contrastive alignment with frozen image and text embeddings (docs/models.md, "`crati`";
our design).

``forward(x, image=None, frames=None, image_mask=None, **training_streams)``:

- ``eval()``: the backbone's output (``output_format``: multi-ACCDOA ``(batch, label_frames,
  3 * V * classes)`` for the CRNN, track-wise for EINV2, ``multi_accdoa_stereo`` for either
  on stereo features) from audio, plus the video
  when given: cached tokens ``image`` ``(B, T, tokens, channels)`` of the frozen encoder, or
  raw ``frames`` ``(B, T, h, w, 3)`` uint8 that the fine-tuned encoder encodes (every
  ``every``-th frame, held); ``image_mask`` ``(B, T)`` is 0 where a clip has no video, and the
  fusion then adds nothing;
- ``train()``: a dict with ``seld`` (the output above) and the L2-normalised embeddings in the
  shared space for :func:`seldbench_plugins.crati.loss.crati_loss`.

With ``fusion=False`` and every contrastive weight 0 the model is its backbone: same parameters
(created first, from the same seed), same output; the extra heads are created from a forked
RNG so they do not change the backbone's initialisation. The fusion adds to the backbone's
per-frame embedding (for EINV2 the SED and DOA streams side by side, before the per-track
Conformers); the contrastive terms read it before fusion.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from seldbench.api import SeldbenchError, grid_directions


def _mlp(d_in: int, d_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out))


def _size_text_head(model: nn.Module, state_dict, prefix: str, *args) -> None:
    """Load-state-dict pre-hook of :class:`CRATI`: a model built without its text encoder
    gets the text head of the checkpoint's width."""
    first = state_dict.get(prefix + "text_proj.0.weight")  # (embed_dim, text_dim)
    if model.text_proj is None and first is not None:
        model.text_proj = _mlp(int(first.shape[1]), int(first.shape[0]))


class ImageFusion(nn.Module):
    """Cross-attention from each audio frame to the image tokens of the same frame.

    Keys and values are the projected tokens plus an embedding of each token's direction
    (unit vector of its cell centre on a frame of ``projection``: equirectangular or a
    perspective camera's), so what is attended carries both content and direction.
    The result is added to the audio embedding through a zero-initialised projection, and
    multiplied by ``image_mask``: without video the audio path is unchanged.
    """

    def __init__(self, d_audio: int, d_image: int, grid: tuple[int, int], heads: int = 4,
                 dropout: float = 0.05, classes: int = 0, slot_dim: int = 8,
                 token_dim: int | None = None, slot_kernel: int = 1,
                 presence: bool = False, into: Tensor | None = None,
                 projection: str = "equirectangular") -> None:
        super().__init__()
        # which audio channels the evidence is added to (1) or kept from (0); default all
        self.register_buffer("into", torch.ones(d_audio) if into is None else into.float(),
                             persistent=False)  # config, not state: old checkpoints load
        azel = np.radians(grid_directions(*grid, projection=projection))
        xyz = np.stack([np.cos(azel[:, 1]) * np.cos(azel[:, 0]),
                        np.cos(azel[:, 1]) * np.sin(azel[:, 0]), np.sin(azel[:, 1])], -1)
        self.register_buffer("directions", torch.tensor(xyz, dtype=torch.float32))
        # tokens are projected to token_dim (default: the audio width); a small one keeps a
        # fine grid (many tokens per frame) cheap
        dk = int(token_dim or d_audio)
        self.kv = nn.Linear(d_image, dk)
        self.where = nn.Linear(3, dk)
        self.norm = nn.LayerNorm(dk)
        # attention runs at the token width: the audio query is projected down to it
        self.query = nn.Linear(d_audio, dk) if dk != d_audio else nn.Identity()
        self.attn = nn.MultiheadAttention(dk, heads, dropout=dropout, batch_first=True)
        self.out = nn.Linear(dk, d_audio)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.classes = int(classes)
        if self.classes:  # one learned query per class, independent of the audio
            self.class_queries = nn.Parameter(torch.randn(self.classes, dk) * dk ** -0.5)
            self.class_key = nn.Linear(dk, dk)
            self.class_value = nn.Linear(dk, slot_dim)
            # presence: a visual detector per class (shared weights, own bias) whose logit is
            # one more slot feature, trained by the presence loss
            self.presence = nn.Linear(slot_dim + 4, 1) if presence else None
            if presence:
                self.presence_bias = nn.Parameter(torch.zeros(self.classes))
            n_in = self.classes * (slot_dim + 4 + int(presence))
            # slot_kernel > 1: a temporal convolution (frames) that pools the per-frame visual
            # evidence of an object that stays in view for the whole event
            self.class_out = nn.Linear(n_in, d_audio) if slot_kernel <= 1 else \
                nn.Conv1d(n_in, d_audio, int(slot_kernel), padding=int(slot_kernel) // 2)
            nn.init.zeros_(self.class_out.weight)
            nn.init.zeros_(self.class_out.bias)

    def forward(self, h: Tensor, image: Tensor, image_mask: Tensor
                ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``h`` ``(B, T, d)`` fused with the tokens; with class queries, their attention logits
        over the cells ``(B, T, classes, tokens)`` (grounding loss), and with presence its logits
        ``(B, T, classes)`` (presence loss); else None."""
        B, T, D = h.shape
        tokens = image.float().reshape(B * T, image.shape[2], image.shape[3])
        kv = self.norm(self.kv(tokens) + self.where(self.directions))
        q = self.query(h).reshape(B * T, 1, kv.shape[-1])
        att, _ = self.attn(q, kv, kv, need_weights=False)
        add = self.out(att.reshape(B, T, -1))
        logits = seen = None
        if self.classes:
            # per class: where its object is (attention-weighted cell directions), what is
            # there (a small value) and how strongly it matches (the best logit)
            logits = self.class_key(kv) @ self.class_queries.T / math.sqrt(kv.shape[-1])
            logits = logits.transpose(1, 2)  # (BT, C, N)
            a = logits.softmax(-1)
            slots = torch.cat([a @ self.class_value(kv), a @ self.directions,
                               logits.amax(-1, keepdim=True)], -1)  # (BT, C, slot + 4)
            if self.presence is not None:
                seen = self.presence(slots).squeeze(-1) + self.presence_bias  # (BT, C)
                slots = torch.cat([slots, seen.unsqueeze(-1)], -1)
                seen = seen.reshape(B, T, self.classes)
            slots = slots.reshape(B, T, -1)
            if isinstance(self.class_out, nn.Conv1d):
                add = add + self.class_out(slots.transpose(1, 2)).transpose(1, 2)
            else:
                add = add + self.class_out(slots)
            logits = logits.reshape(B, T, self.classes, -1)
        return h + add * image_mask.float().unsqueeze(-1) * self.into, logits, seen


class CRATI(nn.Module):
    """Args: ``trunk`` (a backbone with ``embed``/``decode``/``embed_width``: the CRNN or
    EINV2), its ``output_format``, image token ``grid`` (rows, cols), the video ``projection``
    (the dataset's: where each grid cell looks) and ``image_dim``, ``text_dim``, shared space ``embed_dim``, ``fusion`` on/off, loss
    ``weights`` (seld, audio_text, audio_image, align), ``temperature`` (learnable or not)."""

    def __init__(self, trunk: nn.Module, *, image_dim: int, grid: tuple[int, int],
                 output_format: str = "multi_accdoa",
                 text_dim: int | None, embed_dim: int = 256, fusion: bool = True,
                 fusion_heads: int = 4,
                 weights: Mapping[str, float], temperature: float = 0.07,
                 learnable_temperature: bool = True,
                 image_encoder: nn.Module | None = None, image_tail: nn.Module | None = None,
                 every: int = 1,
                 video_dropout: float = 0.0, class_queries: bool = False,
                 token_dim: int | None = None, slot_kernel: int = 1,
                 presence: bool = False,
                 visual_residual: bool = False, fuse_into: str = "all",
                 projection: str = "equirectangular", seed: int = 0) -> None:
        super().__init__()
        self.trunk = trunk
        self.image_encoder = image_encoder  # set: fine-tuned with the model (BN statistics frozen)
        self.image_tail = image_tail  # or only its last layers, on cached earlier-stage tokens
        self.every = max(1, int(every))
        self.with_distance = trunk.with_distance
        self.num_classes = trunk.num_classes
        self.weights = {k: float(v) for k, v in weights.items()}
        self.video_dropout = float(video_dropout)
        self.output_format = output_format  # the core decodes and scores what the trunk emits
        d = trunk.embed_width
        into = None
        if fuse_into != "all":  # one of trunk.streams (checked by the builder), e.g. EINV2's
            into = torch.zeros(d)  # SED stream only: the image says what and when, the audio
            into[slice(*trunk.streams[fuse_into])] = 1.0  # alone says where
        with torch.random.fork_rng(devices=[]):  # leave the backbone's initialisation untouched
            torch.manual_seed(seed + 7919)
            self.fusion = ImageFusion(d, image_dim, grid, fusion_heads,
                                      classes=self.num_classes if class_queries else 0,
                                      token_dim=token_dim, slot_kernel=slot_kernel,
                                      presence=presence, into=into,
                                      projection=projection) \
                if fusion else None
            self.audio_proj = _mlp(d, embed_dim)
            self.image_proj = _mlp(image_dim, embed_dim)
            # no text encoder on this machine (None): sized by the checkpoint loaded into it
            self.text_proj = _mlp(text_dim, embed_dim) if text_dim is not None else None
        self.register_load_state_dict_pre_hook(_size_text_head)
        if visual_residual:
            if output_format != "multi_accdoa":
                raise ValueError("visual_residual needs a multi-ACCDOA output")
            if self.fusion is None or self.fusion.presence is None:
                raise ValueError("visual_residual needs the fusion's presence detector")
            # per class: gain (0 at init: the output is unchanged until it is learned), then the
            # scale and shift that recalibrate the presence logit for the SELD output
            self.residual = nn.Parameter(torch.tensor([[0.0], [1.0], [0.0]]).repeat(
                1, self.num_classes))
        else:
            self.residual = None
        scale = torch.tensor(math.log(1.0 / float(temperature)))
        if learnable_temperature:
            self.logit_scale = nn.Parameter(scale)
        else:
            self.register_buffer("logit_scale", scale)

    def train(self, mode: bool = True):
        super().train(mode)
        for enc in (self.image_encoder, self.image_tail):  # fine-tuning keeps the pretrained
            if enc is not None:  # BN statistics
                enc.eval()
        return self

    def encode_frames(self, frames: Tensor) -> Tensor:
        """``(B, T, h, w, 3)`` uint8 -> tokens ``(B, T, tokens, channels)`` with the (trainable)
        image encoder, every ``every``-th frame encoded and held."""
        B, T = frames.shape[:2]
        picked = frames[:, ::self.every]
        tokens = self.image_encoder(picked.reshape(-1, *frames.shape[2:]))
        tokens = tokens.reshape(B, picked.shape[1], *tokens.shape[1:])
        return tokens.repeat_interleave(self.every, dim=1)[:, :T]

    def add_visual_evidence(self, seld: Tensor, grounding: Tensor, seen: Tensor, mask: Tensor
                            ) -> Tensor:
        """Multi-ACCDOA ``seld`` ``(B, T, 3 * V * C)`` plus, for each class on every track,
        ``gain * sigmoid(scale * presence + shift)`` times the unit vector of where its query
        attends (``grounding`` ``(B, T, C, cells)``), on frames with video (``mask`` ``(B, T)``).

        Why: a class the audio misses (sparse impacts, labelled active through the silence
        between them) stays visible for the whole event; through the fusion and the decoder
        that evidence did not reach its output, this path takes it there directly."""
        B, T = seld.shape[:2]
        C = self.num_classes
        gain, scale, shift = self.residual
        strength = gain * torch.sigmoid(scale * seen + shift) * mask.float().unsqueeze(-1)
        where = nn.functional.normalize(grounding.softmax(-1) @ self.fusion.directions, dim=-1)
        push = (strength.unsqueeze(-1) * where).transpose(-1, -2)  # (B, T, 3, C): x, y, z rows
        out = seld.reshape(B, T, 3, -1, C)
        xyz = out[:, :, :, :3] + push.unsqueeze(2)
        return torch.cat([xyz, out[:, :, :, 3:]], 3).reshape(B, T, -1)

    def forward(self, x: Tensor, image: Tensor | None = None, frames: Tensor | None = None,
                image_mask: Tensor | None = None, event_cells: Tensor | None = None,
                event_mask: Tensor | None = None, text: Tensor | None = None,
                text_mask: Tensor | None = None):
        if frames is not None and self.image_encoder is not None:
            image = self.encode_frames(frames)
        elif image is not None and self.image_tail is not None:
            tokens = self.image_tail(image.flatten(0, 1))
            image = tokens.reshape(*image.shape[:2], *tokens.shape[1:])
        h = self.trunk.embed(x)  # (B, T, d): the audio representation
        fused, grounding, seen = h, None, None
        video_mask = image_mask if image_mask is not None else torch.ones(h.shape[:2],
                                                                          device=h.device)
        if self.fusion is not None and image is not None:
            mask = video_mask
            if self.training and self.video_dropout > 0:
                # whole sequences without video, so the audio path keeps learning to localise
                # on its own instead of leaning on the (coarse) image shortcut
                keep = torch.rand(h.shape[0], 1, device=h.device) >= self.video_dropout
                mask = mask * keep
            fused, grounding, seen = self.fusion(h, image, mask)
        seld = self.trunk.decode(fused)
        if self.residual is not None and seen is not None:
            seld = self.add_visual_evidence(seld, grounding, seen, mask)
        if not self.training:
            return seld
        # tensors only: the loss's settings come from the config (the plugin's loss factory)
        out = {"seld": seld, "scale": self.logit_scale.exp().clamp(max=100.0)}
        if grounding is not None and self.weights.get("grounding", 0):
            out.update(grounding=grounding, directions=self.fusion.directions,
                       video_mask=video_mask)
        if seen is not None and self.weights.get("presence", 0):
            out.update(presence=seen, video_mask=video_mask)
        want = any(self.weights.get(k, 0) for k in ("audio_text", "audio_image", "align"))
        if want:  # embeddings of the pre-fusion audio: the audio representation is shaped
            out["audio"] = nn.functional.normalize(self.audio_proj(h), dim=-1)
            if image is not None and event_cells is not None:
                # the tokens of the cells holding the frame's sources, averaged
                idx = event_cells.long().unsqueeze(-1).expand(-1, -1, -1, image.shape[-1])
                picked = torch.gather(image.float(), 2, idx)  # (B, T, 3, channels)
                w = event_mask.float().unsqueeze(-1)
                event = (picked * w).sum(2) / w.sum(2).clamp_min(1.0)
                out["image"] = nn.functional.normalize(self.image_proj(event), dim=-1)
                out["image_mask"] = (event_mask.sum(-1) > 0).float() * (
                    image_mask.float() if image_mask is not None else 1.0)
            if text is not None:
                if self.text_proj is None:
                    raise SeldbenchError(f"model.text.encoder: not found when the model was "
                                         f"built, so its text head cannot take the "
                                         f"{text.shape[-1]}-d text embeddings; training with "
                                         f"text needs the local text encoder")
                out["text"] = nn.functional.normalize(self.text_proj(text.float()), dim=-1)
                out["text_mask"] = text_mask
        return out
