"""CRNN: the DCASE 2023 SELDnet baseline (task 3, audio-only), multi-ACCDOA output.

Reference: the DCASE 2023 task 3 baseline, https://github.com/sharathadavanne/seld-dcase2023
(``seldnet_model.py``, ``SeldModel``), built on Adavanne et al., "Sound event localization and
detection of overlapping sources using convolutional recurrent neural networks", IEEE JSTSP
2018 (arXiv:1807.00129), and Shimada et al., "Multi-ACCDOA: localizing and detecting
overlapping sounds from the same class with auxiliary duplicating permutation invariant
training", ICASSP 2022 (arXiv:2110.07124). Architecture as in docs/models.md ("`crnn`"):

    3 x [Conv2d 3x3 (64) -> BatchNorm -> ReLU -> MaxPool (t, f) -> Dropout2d 0.05],
        pools (5, 4), (1, 4), (1, 2)
    -> BiGRU (2 layers, hidden 128, dropout 0.05) -> tanh -> forward * backward (128)
    -> 2 x [MultiheadAttention (128, 8 heads, dropout 0.05) + residual -> LayerNorm]
    -> Linear 128 -> 128 -> Linear 128 -> 3 x 3 x C -> tanh

What differs from the baseline code: sizes are plain constructor arguments instead of a params
dict; the first time pool defaults to the feature set's frames per label frame (5 for the 20-ms
features, as in the baseline); with ``with_distance`` (the 2024 baseline's 3 x 4 x C output)
the last layer has no activation (docs/models.md), negative distances being clipped at decode
time. Parameters: about 0.74 M for FOA (7 x 64), +1.7 k for MIC-GCC (10 x 64), 1.18 M for
SALSA-lite (7 x 382).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class ConvBlock(nn.Module):
    """Conv2d 3x3 (padding 1) -> BatchNorm -> ReLU -> MaxPool -> Dropout2d."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int],
                 dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(pool)
        self.drop = nn.Dropout2d(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, in_channels, frames, bins)`` -> ``(batch, out_channels, frames // t,
        bins // f)``."""
        return self.drop(self.pool(torch.relu(self.bn(self.conv(x)))))


class AttentionBlock(nn.Module):
    """Multi-head self-attention + residual -> LayerNorm (no positional encoding)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, frames, dim)`` -> same shape."""
        y, _ = self.attn(x, x, x, need_weights=False)
        return self.norm(x + y)


class CRNN(nn.Module):
    """The SELDnet CRNN with a multi-ACCDOA head.

    Args:
        in_channels: feature channels, e.g. 7 (FOA log-mel + IV, SALSA-lite) or 10 (MIC-GCC).
        in_bins: feature bins, e.g. 64 mels or 382 SALSA-lite bins.
        num_classes: sound event classes ``C``.
        with_distance: output 3 x 4 x C (x, y, z, distance in metres per track and class),
            without output activation; else 3 x 3 x C with ``tanh``.
        conv_filters: filters of every conv block.
        t_pool, f_pool: max-pool sizes of the conv blocks along time and frequency; the product
            of ``t_pool`` is the number of feature frames per 100-ms label frame.
        rnn_size, rnn_layers: bidirectional GRU hidden size and depth.
        attn_layers, attn_heads: self-attention blocks and heads (width ``rnn_size``).
        fnn_size, fnn_layers: hidden linear layers before the output layer.
        dropout: dropout of the conv blocks, GRU and attention.
        stereo: the DCASE 2025 ``multi_accdoa_stereo`` head: 3 x 4 x C (x, y with ``tanh``,
            distance in metres and an onscreen logit without activation).
    """

    def __init__(self, in_channels: int, in_bins: int, num_classes: int, *,
                 with_distance: bool = False, conv_filters: int = 64,
                 t_pool: Sequence[int] = (5, 1, 1), f_pool: Sequence[int] = (4, 4, 2),
                 rnn_size: int = 128, rnn_layers: int = 2, attn_layers: int = 2,
                 attn_heads: int = 8, fnn_size: int = 128, fnn_layers: int = 1,
                 dropout: float = 0.05, stereo: bool = False) -> None:
        super().__init__()
        self.stereo = bool(stereo)
        if self.stereo:
            self.output_format = "multi_accdoa_stereo"
        if len(t_pool) != len(f_pool):
            raise ValueError(f"t_pool {list(t_pool)} and f_pool {list(f_pool)} differ in length")
        bins = int(in_bins)
        for f in f_pool:
            bins //= int(f)
        if bins < 1:
            raise ValueError(f"{in_bins} bins pooled by {list(f_pool)} leave no bins")
        self.num_classes = int(num_classes)
        self.with_distance = bool(with_distance)
        self.frames_per_label = 1
        for t in t_pool:
            self.frames_per_label *= int(t)

        blocks, ch = [], int(in_channels)
        for t, f in zip(t_pool, f_pool):
            blocks.append(ConvBlock(ch, conv_filters, (int(t), int(f)), dropout))
            ch = conv_filters
        self.conv = nn.Sequential(*blocks)
        self.gru = nn.GRU(conv_filters * bins, rnn_size, num_layers=rnn_layers, batch_first=True,
                          dropout=dropout if rnn_layers > 1 else 0.0, bidirectional=True)
        self.attn = nn.ModuleList(AttentionBlock(rnn_size, attn_heads, dropout)
                                  for _ in range(attn_layers))
        fnn, width = [], rnn_size
        for _ in range(fnn_layers):
            fnn.append(nn.Linear(width, fnn_size))
            width = fnn_size
        self.fnn = nn.Sequential(*fnn)  # no activation between, as in the baseline
        values = 4 if with_distance or self.stereo else 3
        self.head = nn.Linear(width, 3 * values * self.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Features -> multi-ACCDOA.

        Args:
            x: ``(batch, channels, feature_frames, bins)``, e.g. ``(B, 7, 250, 64)`` for FOA
                log-mel + IV (5 s at a 20-ms hop).

        Returns:
            ``(batch, label_frames, 3 * V * classes)`` with ``label_frames = feature_frames //
            frames_per_label`` (e.g. 50), track-major ``[t0: x(C) y(C) z(C) [d(C)], t1, t2]``;
            ``V = 3`` (``tanh``, a track active when its vector norm > 0.5) or ``V = 4`` with
            distance in metres (no activation).
        """
        return self.decode(self.embed(x))

    @property
    def embed_width(self) -> int:
        """Width of :meth:`embed`'s output (the GRU's hidden size)."""
        return self.gru.hidden_size

    @property
    def streams(self) -> dict[str, tuple[int, int]]:
        """One stream: no named channel ranges (see :class:`seldbench.specs.AudioTrunk`)."""
        return {}

    def embed(self, x: Tensor) -> Tensor:
        """The trunk: features ``(batch, channels, feature_frames, bins)`` -> per-label-frame
        embeddings ``(batch, label_frames, rnn_size)`` (what multimodal models build on)."""
        x = self.conv(x)  # (B, filters, T, bins')
        x = x.transpose(1, 2).flatten(2)  # (B, T, filters * bins')
        x, _ = self.gru(x)  # (B, T, 2 * rnn_size)
        x = torch.tanh(x)
        half = x.shape[-1] // 2
        x = x[..., :half] * x[..., half:]  # forward * backward, (B, T, rnn_size)
        for block in self.attn:
            x = block(x)
        return x

    def decode(self, h: Tensor) -> Tensor:
        """The head: embeddings ``(batch, label_frames, rnn_size)`` -> multi-ACCDOA."""
        x = self.head(self.fnn(h))
        if self.stereo:  # [t: x(C) y(C) d(C) on(C)]: tanh on x, y only
            B, T, _ = x.shape
            x = x.reshape(B, T, 3, 4, self.num_classes)
            x = torch.cat([torch.tanh(x[:, :, :, :2]), x[:, :, :, 2:]], dim=3)
            return x.reshape(B, T, -1)
        return x if self.with_distance else torch.tanh(x)



class VisualFusion(nn.Module):
    """The 2025 baseline's audio-visual fusion: per-frame visual vectors projected to the audio
    width, then a Transformer decoder whose queries are the audio frames and whose memory is
    the clip's visual frames (self-attention over audio, cross-attention to video, feed-forward;
    post-norm, no positional encoding).

    Args:
        visual_dim: values per visual frame (grid cells of the encoder's map).
        dim: the audio width (the trunk's ``embed_width``).
        layers, heads, ff, dropout: the decoder's depth, heads, feed-forward width, dropout.
    """

    def __init__(self, visual_dim: int, dim: int, *, layers: int = 2, heads: int = 8,
                 ff: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.project = nn.Linear(int(visual_dim), dim)
        layer = nn.TransformerDecoderLayer(dim, heads, dim_feedforward=ff, dropout=dropout,
                                           batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, num_layers=layers)

    def forward(self, h: Tensor, video: Tensor, video_mask: Tensor | None = None) -> Tensor:
        """Audio ``h`` ``(B, T, dim)``, visual vectors ``(B, T', visual_dim)`` and their mask
        ``(B, T')`` (1: a video frame, 0: none) -> fused ``(B, T, dim)``. A sequence without any
        video frame keeps its audio embedding (as the baseline does without video)."""
        valid = torch.ones(video.shape[:2], dtype=torch.bool, device=video.device) \
            if video_mask is None else video_mask > 0.5
        seen = valid.any(dim=1)
        # a fully masked memory would make every attention row NaN: unmask those sequences,
        # whose result is discarded below
        padding = ~valid & seen[:, None]
        fused = self.decoder(h, self.project(video.to(h.dtype)),
                             memory_key_padding_mask=padding)
        return torch.where(seen[:, None, None], fused, h)


class AudioVisualCRNN(CRNN):
    """The CRNN with the 2025 baseline's visual fusion (:class:`VisualFusion`) between its
    self-attention blocks and its head; the stereo ``multi_accdoa_stereo`` output.

    ``forward(x, video=None, video_mask=None)``: features ``(B, channels, feature_frames,
    bins)``, per-label-frame visual vectors ``(B, label_frames, visual_dim)`` and their mask
    ``(B, label_frames)``; without ``video`` (or with mask 0 everywhere) it is the audio CRNN.
    ``fusion``: the :class:`VisualFusion` keyword arguments; the rest as :class:`CRNN`.
    """

    def __init__(self, in_channels: int, in_bins: int, num_classes: int, *, visual_dim: int,
                 fusion: dict | None = None, **crnn) -> None:
        super().__init__(in_channels, in_bins, num_classes, stereo=True, **crnn)
        self.fusion = VisualFusion(visual_dim, self.embed_width, **(fusion or {}))

    def forward(self, x: Tensor, video: Tensor | None = None,
                video_mask: Tensor | None = None) -> Tensor:
        h = self.embed(x)
        if video is not None:
            h = self.fusion(h, video, video_mask)
        return self.decode(h)
