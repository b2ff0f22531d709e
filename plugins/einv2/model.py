"""EINV2: the event-independent network V2 with 3 output tracks, track-wise output.

References: Cao, Iqbal, Kong, An, Wang, Plumbley, "An Improved Event-Independent Network for
Polyphonic Sound Event Localization and Detection", ICASSP 2021 (arXiv:2010.13092); Hu, Cao et
al., "A track-wise ensemble event independent network for polyphonic sound event localization
and detection", ICASSP 2022 (arXiv:2203.10228), whose DCASE 2022 code adds the per-track
Conformers. Architecture as in docs/models.md ("`einv2`"):

    SED branch (4 log-mel channels) and DOA branch (all channels), each
        4 x [Conv 3x3 no bias -> BN -> ReLU] x 2 (64, 128, 256, 512) -> AvgPool
        pools (2, 2), (2, 2), (2, 2), (1, 2) at 8 feature frames per label frame
        cross-stitch after blocks 1-3; mean over frequency
    per track k = 1..3: SED Conformer stack, DOA Conformer stack (2 blocks, d 512, 8 heads),
        cross-stitch between the two, Linear d -> C (logits), Linear d -> 3 -> tanh
        [Linear d -> 1 -> softplus: distance in metres, with ``with_distance``]
    or, with ``stereo`` (DCASE 2025 ``multi_accdoa_stereo``), per track k and class c:
        activity a = sigmoid(Linear d -> C on the SED stream), (x, y) = a * tanh(Linear
        d -> 2 C on the DOA stream), distance = softplus(Linear d -> C), onscreen logit =
        Linear d -> C (both on the DOA stream)

What differs from the reference code:

- Cross-stitch form: both outputs mix the *inputs* of the unit, ``sed' = a00 sed + a01 doa``,
  ``doa' = a10 sed + a11 doa`` (the reference computes ``doa'`` from the already mixed
  ``sed'``). One (channels, 2, 2) parameter per unit, initialised uniformly in [0.1, 0.9].
- Relative positional self-attention is Transformer-XL style (Dai et al. 2019,
  arXiv:1901.02860; as in ESPnet's Conformer, which the reference uses): sinusoidal encodings
  of the relative distances ``-(T-1) .. T-1``, a bias-free projection ``W_pos`` and learned
  per-head biases ``u`` (content) and ``v`` (position); scores
  ``((q + u) k^T + (q + v) (W_pos r)^T) / sqrt(d_head)``, written here from the paper.
- The time pools derive from the feature set's frames per label frame (its prime factors,
  largest first); with ``channels[-1] != d_model`` a Linear maps the CNN output to ``d_model``.
- The optional distance head (not in EINV2) reads the DOA stream of its track.
- The stereo head (ours) keeps the split of the two branches: the SED stream says whether a
  class is active on the track, the DOA stream where; their product is the class-wise
  activity-coupled (x, y) vector the core's multi-ACCDOA stereo format, ADPIT loss and 2025
  decoder read, so EINV2 needs no track-wise variant of that format. The ADPIT loss assigns
  the per-track stacks to events instead of PIT; the onscreen logit reads the DOA stream
  (whether a source is on screen is a question of where it is).

Parameters: 85.3 M at the published width with 13 classes (CNNs 9.4 M, 6 Conformer stacks
75.9 M, 6.3 M per block); the ``einv2-small`` experiment config (channels 32-256, d 128,
4 heads, 1 block) has 4.8 M.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CrossStitch(nn.Module):
    """Learnable 2 x 2 mixing per channel of two equally shaped streams.

    ``weight[c] = [[a00, a01], [a10, a11]]``, initialised uniformly in [0.1, 0.9];
    ``a' = a00 a + a01 b``, ``b' = a10 a + a11 b`` (both from the unit's inputs).
    """

    def __init__(self, channels: int, channel_dim: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 2, 2).uniform_(0.1, 0.9))
        self.channel_dim = channel_dim

    def forward(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """``a``, ``b``: same shape, channels on ``channel_dim`` -> mixed ``(a', b')``."""
        shape = [1] * a.ndim
        shape[self.channel_dim] = -1
        w = [self.weight[:, i, j].reshape(shape) for i in (0, 1) for j in (0, 1)]
        return w[0] * a + w[1] * b, w[2] * a + w[3] * b


class DoubleConv(nn.Module):
    """[Conv2d 3x3 (no bias) -> BatchNorm -> ReLU] x 2 -> AvgPool2d (t, f)."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.AvgPool2d(pool))

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, in, frames, bins)`` -> ``(batch, out, frames // t, bins // f)``."""
        return self.net(x)


def relative_sinusoids(frames: int, dim: int, device=None, dtype=None) -> Tensor:
    """Sinusoidal encodings of the relative distances ``T-1, T-2, ..., -(T-1)``:
    ``(2 T - 1, dim)``, row ``j`` for distance ``T - 1 - j`` (query index minus key index)."""
    pos = torch.arange(frames - 1, -frames, -1, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32)
                    * (-math.log(10000.0) / dim))
    pe = torch.zeros(2 * frames - 1, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe.to(dtype or torch.float32)


class RelPositionSelfAttention(nn.Module):
    """Multi-head self-attention with Transformer-XL relative positions (see module doc)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"d_model {dim} is not a multiple of heads {heads}")
        self.heads, self.d_head = heads, dim // heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.pos = nn.Linear(dim, dim, bias=False)
        self.bias_u = nn.Parameter(torch.zeros(heads, self.d_head))
        self.bias_v = nn.Parameter(torch.zeros(heads, self.d_head))
        nn.init.xavier_uniform_(self.bias_u)
        nn.init.xavier_uniform_(self.bias_v)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, frames, dim)`` -> same shape."""
        B, T, _ = x.shape
        H, D = self.heads, self.d_head
        q = self.q(x).view(B, T, H, D)
        k = self.k(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        v = self.v(x).view(B, T, H, D).transpose(1, 2)
        r = self.pos(relative_sinusoids(T, H * D, x.device, x.dtype)).view(2 * T - 1, H, D)
        content = ((q + self.bias_u).transpose(1, 2)) @ k.transpose(-1, -2)  # (B, H, T, T)
        by_dist = torch.einsum("bthd,rhd->bhtr", q + self.bias_v, r)  # (B, H, T, 2T - 1)
        i = torch.arange(T, device=x.device)
        idx = (T - 1) - i[:, None] + i[None, :]  # column of distance i - j
        position = by_dist.gather(-1, idx.expand(B, H, T, T))
        attn = self.drop(torch.softmax((content + position) / math.sqrt(D), dim=-1))
        y = (attn @ v).transpose(1, 2).reshape(B, T, H * D)
        return self.out(y)


class FeedForward(nn.Sequential):
    """LayerNorm -> Linear d -> mult d -> SiLU -> Dropout -> Linear -> Dropout."""

    def __init__(self, dim: int, mult: int, dropout: float) -> None:
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, mult * dim), nn.SiLU(),
                         nn.Dropout(dropout), nn.Linear(mult * dim, dim), nn.Dropout(dropout))


class ConvModule(nn.Module):
    """LayerNorm -> pointwise d -> 2d -> GLU -> depthwise (kernel k) -> BN -> SiLU ->
    pointwise d -> d -> Dropout."""

    def __init__(self, dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"conv_kernel {kernel} must be odd")
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Conv1d(dim, 2 * dim, 1)
        self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.bn = nn.BatchNorm1d(dim)
        self.pw2 = nn.Conv1d(dim, dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, frames, dim)`` -> same shape."""
        y = F.glu(self.pw1(self.norm(x).transpose(1, 2)), dim=1)
        y = self.pw2(F.silu(self.bn(self.dw(y))))
        return self.drop(y.transpose(1, 2))


class ConformerBlock(nn.Module):
    """Macaron Conformer block: x + FF/2, + MHSA, + Conv, + FF/2, LayerNorm."""

    def __init__(self, dim: int, heads: int, ff_mult: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.ff1 = FeedForward(dim, ff_mult, dropout)
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = RelPositionSelfAttention(dim, heads, dropout)
        self.attn_drop = nn.Dropout(dropout)
        self.conv = ConvModule(dim, kernel, dropout)
        self.ff2 = FeedForward(dim, ff_mult, dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, frames, dim)`` -> same shape."""
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn_drop(self.attn(self.attn_norm(x)))
        x = x + self.conv(x)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


def time_pools(frames_per_label: int, blocks: int = 4) -> list[int]:
    """Time pools of the conv blocks whose product is ``frames_per_label``: its prime factors,
    largest first, the smallest merged until they fit, padded with 1 (8 -> [2, 2, 2, 1])."""
    n, factors, p = int(frames_per_label), [], 2
    if n < 1:
        raise ValueError(f"frames_per_label {frames_per_label} < 1")
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    factors.sort()
    while len(factors) > blocks:
        factors = sorted([factors[0] * factors[1], *factors[2:]])
    return sorted(factors, reverse=True) + [1] * (blocks - len(factors))


class EINV2(nn.Module):
    """EINV2 with per-track Conformers and a track-wise output.

    Args:
        in_channels: feature channels, all fed to the DOA branch (7 for FOA log-mel + IV).
        in_bins: feature bins (128 mels).
        num_classes: sound event classes ``C``.
        sed_channels: leading channels fed to the SED branch (the 4 log-mels).
        with_distance: add a distance output (metres, softplus) per track.
        channels: output channels of the 4 double-conv blocks.
        t_pool, f_pool: average-pool sizes of the blocks along time and frequency; the product
            of ``t_pool`` is the number of feature frames per 100-ms label frame.
        d_model, heads, conformer_blocks, ff_mult, conv_kernel, dropout: Conformer stacks.
        tracks: output tracks (the core's track-wise targets have 3).
        stereo: the ``multi_accdoa_stereo`` head (see the module doc; 3 tracks).
    """

    def __init__(self, in_channels: int, in_bins: int, num_classes: int, *,
                 sed_channels: int = 4, with_distance: bool = False,
                 channels: Sequence[int] = (64, 128, 256, 512),
                 t_pool: Sequence[int] = (2, 2, 2, 1), f_pool: Sequence[int] = (2, 2, 2, 2),
                 d_model: int = 512, heads: int = 8, conformer_blocks: int = 2, ff_mult: int = 4,
                 conv_kernel: int = 31, dropout: float = 0.1, tracks: int = 3,
                 stereo: bool = False) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not (len(channels) == len(t_pool) == len(f_pool)) or len(channels) < 1:
            raise ValueError(f"channels {channels}, t_pool {list(t_pool)} and f_pool "
                             f"{list(f_pool)} must have the same (non-zero) length")
        bins = int(in_bins)
        for f in f_pool:
            bins //= int(f)
        if bins < 1:
            raise ValueError(f"{in_bins} bins pooled by {list(f_pool)} leave no bins")
        if not 0 < sed_channels <= in_channels:
            raise ValueError(f"sed_channels {sed_channels} not in 1..{in_channels}")
        self.stereo = bool(stereo)
        if self.stereo:
            if with_distance or tracks != 3:
                raise ValueError("the stereo head has 3 tracks and always carries distance")
            self.output_format = "multi_accdoa_stereo"
        self.num_classes, self.tracks = int(num_classes), int(tracks)
        self.with_distance, self.sed_channels = bool(with_distance), int(sed_channels)
        self.frames_per_label = math.prod(int(t) for t in t_pool)
        self.d_model = int(d_model)

        def cnn(first: int) -> nn.ModuleList:
            ins = [first, *channels[:-1]]
            return nn.ModuleList(DoubleConv(i, o, (int(t), int(f)))
                                 for i, o, t, f in zip(ins, channels, t_pool, f_pool))

        self.sed_cnn, self.doa_cnn = cnn(self.sed_channels), cnn(int(in_channels))
        self.cnn_stitch = nn.ModuleList(CrossStitch(c, 1) for c in channels[:-1])
        proj = (lambda: nn.Identity()) if channels[-1] == d_model else \
            (lambda: nn.Linear(channels[-1], d_model))
        self.sed_proj, self.doa_proj = proj(), proj()

        def stacks() -> nn.ModuleList:
            return nn.ModuleList(
                nn.Sequential(*(ConformerBlock(d_model, heads, ff_mult, conv_kernel, dropout)
                                for _ in range(conformer_blocks)))
                for _ in range(self.tracks))

        self.sed_conformer, self.doa_conformer = stacks(), stacks()
        self.track_stitch = nn.ModuleList(CrossStitch(d_model, -1) for _ in range(self.tracks))
        C = self.num_classes

        def heads(width: int) -> nn.ModuleList:
            return nn.ModuleList(nn.Linear(d_model, width) for _ in range(self.tracks))

        self.sed_head = heads(C)
        # stereo: (x, y) per class; else one x, y, z per track
        self.doa_head = heads(2 * C if self.stereo else 3)
        self.dist_head = heads(C if self.stereo else 1) \
            if self.with_distance or self.stereo else None
        self.onscreen_head = heads(C) if self.stereo else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    @property
    def track_width(self) -> int:
        """Values per track: ``C`` logits + x, y, z [+ distance_m]; stereo: ``4 C``."""
        if self.stereo:
            return 4 * self.num_classes
        return self.num_classes + 3 + int(self.with_distance)

    @property
    def embed_width(self) -> int:
        """Width of :meth:`embed`'s output: the SED and DOA streams side by side."""
        return 2 * self.d_model

    @property
    def streams(self) -> dict[str, tuple[int, int]]:
        """Where each stream lies in :meth:`embed`'s channels: ``{name: (start, stop)}``."""
        return {"sed": (0, self.d_model), "doa": (self.d_model, 2 * self.d_model)}

    def forward(self, x: Tensor) -> Tensor:
        """Features -> track-wise output.

        Args:
            x: ``(batch, channels, feature_frames, bins)``, e.g. ``(B, 7, 400, 128)`` for
                ``foa_logmel_iv_128`` (5 s at a 12.5-ms hop); the first ``sed_channels``
                channels are the log-mels.

        Returns:
            ``(batch, label_frames, tracks * (C + 3 [+ 1]))``, ``label_frames =
            feature_frames // frames_per_label`` (e.g. 50), track-major: per track ``C`` class
            logits, then x, y, z in [-1, 1] (tanh) [, distance in metres >= 0 (softplus)];
            stereo: ``(batch, label_frames, 3 * 4 * C)``, per track ``x(C) y(C) distance_m(C)
            onscreen_logit(C)``.
        """
        return self.decode(self.embed(x))

    def embed(self, x: Tensor) -> Tensor:
        """The CNN branches: features -> ``(batch, label_frames, 2 * d_model)``, the SED stream
        then the DOA stream (what multimodal models build on)."""
        sed, doa = x[:, :self.sed_channels], x
        last = len(self.sed_cnn) - 1
        for k, (sed_block, doa_block) in enumerate(zip(self.sed_cnn, self.doa_cnn)):
            sed, doa = sed_block(sed), doa_block(doa)
            if k < last:
                sed, doa = self.cnn_stitch[k](sed, doa)
        sed = self.sed_proj(sed.mean(dim=3).transpose(1, 2))  # (B, T, d)
        doa = self.doa_proj(doa.mean(dim=3).transpose(1, 2))
        return torch.cat([sed, doa], dim=-1)

    def decode(self, h: Tensor) -> Tensor:
        """The per-track Conformers and heads: ``(batch, label_frames, 2 * d_model)`` ->
        track-wise or stereo output (see :meth:`forward`)."""
        sed, doa = h.split(self.d_model, dim=-1)
        out = []
        for k in range(self.tracks):
            s, d = self.track_stitch[k](self.sed_conformer[k](sed), self.doa_conformer[k](doa))
            if self.stereo:  # activity from the SED stream scales the DOA stream's (x, y)
                xy = torch.sigmoid(self.sed_head[k](s)).repeat(1, 1, 2) * \
                    torch.tanh(self.doa_head[k](d))
                out += [xy, F.softplus(self.dist_head[k](d)), self.onscreen_head[k](d)]
                continue
            parts = [self.sed_head[k](s), torch.tanh(self.doa_head[k](d))]
            if self.dist_head is not None:
                parts.append(F.softplus(self.dist_head[k](d)))
            out.append(torch.cat(parts, dim=-1))
        return torch.cat(out, dim=-1)  # (B, T, tracks * width), track-major
