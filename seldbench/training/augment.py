"""Training-split augmentation (``train.augment``), applied to each batch of normalised features
and its targets in the training loop, never to the validation or test split.

**Spatial transforms act on the cached features, not on the audio.** Features are computed
once per split and cached; a rotation of the sound field that maps the microphone channels onto
each other maps the features onto each other too, so the cache (and its speed) is kept:

- FOA (``foa_logmel_iv``, ``foa_logmel_iv_128``): the 16 transforms of the DCASE "audio channel
  swapping" recipe: rotations about z by multiples of 90 deg, with or without the reflection
  y -> -y, with or without z -> -z. Each is a signed permutation ``M`` of (x, y, z); the FOA
  channels Y, Z, X of a plane wave from ``u`` are the gains of ``M u``, so the log-mel channels
  of Y, Z, X permute (power ignores the sign; the per-channel ``top_db`` floor follows its
  channel) and the intensity-vector channels, linear in Y, Z, X and divided by an energy that
  ``M`` leaves alone, are multiplied by ``M``: exactly the features of the rotated field.
- MIC (``mic_logmel_gcc``): the transforms among those 16 that map the tetrahedral capsule
  directions onto each other (derived from the capsule directions, 8 of them): capsule ``i``
  of the rotated field hears what capsule ``p^-1(i)`` heard, so the log-mel channels permute
  and the GCC-PHAT of pair (m, n) becomes that of the pair the permutation maps it to, with its
  lags reversed when the pair's order flips (``GCC_nm(t) = GCC_mn(-t)``). The one lag without
  a mirror (-n_lags/2, far outside the array's physical delays) keeps its value.
- the label directions (ADPIT multi-ACCDOA vectors, track-wise x, y, z) are multiplied by the
  same ``M``; activities, classes, slot and track order and distances are unchanged, so the
  targets keep their ADPIT / permutation-invariant structure.

Features are normalised per (channel, bin), so a transform is applied as the affine map
``x' = a * x[src, gather] + b`` that undoes the normalisation of the source channel and redoes
that of the destination. ``spec_mask`` (SpecAugment) sets random time and frequency stripes of
every channel to 0 (the normalised mean). ``mixup`` mixes a chunk with another chunk of the
batch, ``lam x_i + (1 - lam) x_j`` (normalising is affine, so this is the normalised mix of the
raw features), and its targets become the union of both chunks' events, re-slotted as the
label encoders would (ADPIT: one event in A0, two in B0 B1, three in C0-C2; track-wise: tracks
filled in order; events past three per class or frame dropped). Draws come from one ``torch.Generator`` seeded from
the run seed (and process rank), whose state the trainer saves in ``last.pt``: a resumed run
draws what an uninterrupted one would.
"""
from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from seldbench.config import AUGMENTATIONS
from seldbench.errors import SeldbenchError

#: Feature sets whose channel layout the spatial transforms know.
FOA_FEATURES = ("foa_logmel_iv", "foa_logmel_iv_128")
MIC_FEATURES = ("mic_logmel_gcc",)
#: Stereo feature sets -> (channel sources, signs) of the left-right mirror: left and right
#: log-mel swap, the level difference and the sine of the phase difference change sign.
STEREO_MIRRORS = {
    "stereo_logmel": ([1, 0], [1, 1]),
    "stereo_logmel_ild_ipd": ([1, 0, 2, 3, 4], [1, 1, -1, 1, -1]),
    "stereo_logmel_ild_ipd_ms": ([1, 0, 2, 3, 4, 5, 6], [1, 1, 1, 1, -1, 1, -1]),
}
#: FOA feature channels 1-3 and 4-6 hold (Y, Z, X): the axes (y, z, x) = (1, 2, 0).
_ACN_AXES = (1, 2, 0)


def foa_transforms() -> list[np.ndarray]:
    """The 16 FOA transforms as 3x3 signed permutation matrices on (x, y, z), identity first:
    rotation about z by k * 90 deg (k = 0..3), then optionally y -> -y, then optionally
    z -> -z."""
    out = []
    for flip_z, reflect, k in itertools.product((1, -1), (1, -1), range(4)):
        c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][k]  # cos, sin of k * 90 deg
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], float)
        out.append(np.diag([1.0, reflect, flip_z]) @ rot)
    return out


def capsule_permutation(m: np.ndarray, capsules: np.ndarray, tol: float = 1e-6
                        ) -> list[int] | None:
    """``p`` with ``m @ capsules[i] == capsules[p[i]]`` for every capsule, or None when ``m``
    does not map the array onto itself."""
    moved = capsules @ m.T
    dist = np.linalg.norm(moved[:, None, :] - capsules[None, :, :], axis=-1)
    p = dist.argmin(axis=1)
    if np.any(dist[np.arange(len(p)), p] > tol) or len(set(p.tolist())) != len(p):
        return None
    return p.tolist()


def mic_transforms() -> list[tuple[np.ndarray, list[int]]]:
    """The FOA transforms that map the tetrahedral capsules (the synthetic generator's, which
    are STARSS23's) onto each other, with their capsule permutations."""
    from seldbench.data.synth.spatial import capsule_vectors

    caps = capsule_vectors()
    out = []
    for m in foa_transforms():
        p = capsule_permutation(m, caps)
        if p is not None:
            out.append((m, p))
    return out


@dataclass
class FeatureMap:
    """One spatial transform on raw (un-normalised) features ``(..., C, T, F)``:
    ``out[c, :, f] = sign[c, f] * x[src[c], :, gather[c, f]]``, and on directions ``M``."""

    matrix: np.ndarray  # (3, 3) on (x, y, z)
    src: np.ndarray  # (C,) int
    gather: np.ndarray  # (C, F) int
    sign: np.ndarray  # (C, F) float

    @property
    def flat(self) -> np.ndarray:
        """``(C, F)`` source index into the flattened (channel, bin) axis."""
        return self.src[:, None] * self.gather.shape[1] + self.gather

    def apply_raw(self, x: torch.Tensor) -> torch.Tensor:
        """The transform on un-normalised features ``(B, C, T, F)``."""
        flat = torch.as_tensor(self.flat).expand(x.shape[0], *self.flat.shape)
        sign = torch.as_tensor(self.sign, dtype=x.dtype)
        return _gather(x, flat) * sign[None, :, None, :]

    def inverse(self) -> FeatureMap:
        """The map undoing this one (spatial transforms are exactly invertible)."""
        C, F = self.gather.shape
        src = np.empty(C, int)
        gather = np.empty((C, F), int)
        sign = np.empty((C, F))
        for c in range(C):
            src[self.src[c]] = c
            gather[self.src[c], self.gather[c]] = np.arange(F)
            sign[self.src[c], self.gather[c]] = self.sign[c]
        return FeatureMap(self.matrix.T.copy(), src, gather, sign)


def foa_feature_map(m: np.ndarray, bins: int) -> FeatureMap:
    """The FOA log-mel + intensity-vector channels of the field rotated by ``m``."""
    src = np.arange(7)
    sign = np.ones((7, bins))
    for out_i, axis in enumerate(_ACN_AXES):
        row = m[axis]  # new axis component = row . old (x, y, z): one +-1 entry
        from_axis = int(np.flatnonzero(row)[0])
        from_i = _ACN_AXES.index(from_axis)
        src[1 + out_i] = 1 + from_i  # log-mel: the power of the channel it came from
        src[4 + out_i] = 4 + from_i  # intensity vector: that component, signed
        sign[4 + out_i] = row[from_axis]
    gather = np.broadcast_to(np.arange(bins), (7, bins)).copy()
    return FeatureMap(m, src, gather, sign)


def mic_gcc_feature_map(m: np.ndarray, p: Sequence[int], bins: int) -> FeatureMap:
    """The MIC log-mel + GCC-PHAT channels of the field rotated by ``m``, which moves capsule
    ``i`` to ``p[i]`` (see the module docstring)."""
    inv = np.argsort(p)  # the new capsule j hears the old capsule inv[j]
    pairs = list(itertools.combinations(range(4), 2))
    src = np.zeros(4 + len(pairs), int)
    gather = np.broadcast_to(np.arange(bins), (len(src), bins)).copy()
    src[:4] = inv
    mirror = (bins - np.arange(bins)) % bins  # lag t <-> -t; lag -bins/2 (index 0) stays
    for k, (a, b) in enumerate(pairs):
        oa, ob = int(inv[a]), int(inv[b])
        src[4 + k] = 4 + pairs.index((min(oa, ob), max(oa, ob)))
        if oa > ob:
            gather[4 + k] = mirror
    return FeatureMap(m, src, gather, np.ones((len(src), bins)))


def spatial_maps(feature: str, bins: int) -> list[FeatureMap]:
    """Every spatial transform of a feature set, identity first; an error for a feature whose
    channels have no exact transform."""
    if feature in FOA_FEATURES:
        return [foa_feature_map(m, bins) for m in foa_transforms()]
    if feature in MIC_FEATURES:
        return [mic_gcc_feature_map(m, p, bins) for m, p in mic_transforms()]
    if feature in STEREO_MIRRORS:  # identity and the left-right mirror (y -> -y)
        src, sign = STEREO_MIRRORS[feature]
        ident = np.arange(len(src))
        return [FeatureMap(np.eye(3), ident, np.tile(np.arange(bins), (len(src), 1)),
                           np.ones((len(src), bins))),
                FeatureMap(np.diag([1.0, -1.0, 1.0]), np.asarray(src),
                           np.tile(np.arange(bins), (len(src), 1)),
                           np.repeat(np.asarray(sign, float)[:, None], bins, axis=1))]
    known = FOA_FEATURES + MIC_FEATURES + tuple(STEREO_MIRRORS)
    raise SeldbenchError(f"train.augment channel_swap: no channel transform is known for feature "
                         f"'{feature}' (supported: {', '.join(known)})")


def rotate_targets(y: torch.Tensor, m: torch.Tensor, output: str, num_classes: int
                   ) -> torch.Tensor:
    """Targets ``(batch, frames, ...)`` with their direction vectors multiplied by ``m``
    ``(batch, 3, 3)``: ADPIT ``(..., 6, 4|5, classes)`` rows 1-3, track-wise
    ``(..., tracks, classes + 3 [+ 1])`` columns ``classes .. classes + 2``."""
    y = y.clone()
    if output == "multi_accdoa":
        xyz = y[:, :, :, 1:4, :]  # (B, T, 6, 3, C)
        y[:, :, :, 1:4, :] = torch.einsum("bij,btsjc->btsic", m, xyz)
    elif output == "multi_accdoa_stereo":  # (x, y) of the azimuth, rows 1-2
        xy = y[:, :, :, 1:3, :]
        y[:, :, :, 1:3, :] = torch.einsum("bij,btsjc->btsic", m[:, :2, :2], xy)
    elif output == "track_wise":
        xyz = y[..., num_classes:num_classes + 3]  # (B, T, K, 3)
        y[..., num_classes:num_classes + 3] = torch.einsum("bij,btkj->btki", m, xyz)
    else:
        raise SeldbenchError(f"train.augment channel_swap: no target transform for output "
                             f"'{output}'")
    return y


def _gather(x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """``out[b, c, t, f] = x[b, flat[b, c, f] // F, t, flat[b, c, f] % F]`` for ``x``
    ``(B, C, T, F)`` and ``flat`` ``(B, C, F)``."""
    B, C, T, F = x.shape
    rows = x.transpose(1, 2).reshape(B, T, C * F)
    idx = flat.reshape(B, 1, C * F).expand(B, T, C * F)
    return rows.gather(2, idx).reshape(B, T, C, F).transpose(1, 2)


class _Spatial:
    """``channel_swap``: each chunk gets, with probability ``p``, one of the transforms drawn
    uniformly (identity included, as in the DCASE recipe), else the identity."""

    def __init__(self, p: float, maps: list[FeatureMap], mean: np.ndarray, std: np.ndarray,
                 output: str, num_classes: int) -> None:
        self.p = float(p)
        self.output, self.num_classes = output, num_classes
        self.matrices = torch.tensor(np.stack([fm.matrix for fm in maps]), dtype=torch.float32)
        # normalised domain: x' = a * x[flat] + b, flat indexes (C * F) of the source
        flat, a, b = [], [], []
        for fm in maps:
            s_mean = mean[fm.src[:, None], fm.gather]
            s_std = std[fm.src[:, None], fm.gather]
            flat.append(fm.flat)
            a.append(fm.sign * s_std / std)
            b.append((fm.sign * s_mean - mean) / std)
        self.flat = torch.tensor(np.stack(flat), dtype=torch.long)  # (N, C, F)
        self.a = torch.tensor(np.stack(a), dtype=torch.float32)
        self.b = torch.tensor(np.stack(b), dtype=torch.float32)

    def __call__(self, x, y, gen: torch.Generator):
        B = x.shape[0]
        pick = torch.randint(len(self.flat), (B,), generator=gen)
        keep = torch.rand(B, generator=gen) >= self.p
        pick[keep] = 0
        pad = (x == 0).all(dim=1, keepdim=True).all(dim=3, keepdim=True)  # (B, 1, T, 1)
        x = _gather(x, self.flat[pick]) * self.a[pick][:, :, None, :] + self.b[pick][:, :, None, :]
        x = x.masked_fill(pad, 0.0)  # a clip's zero padding (or a masked frame) stays zero
        y = rotate_targets(y, self.matrices[pick], self.output, self.num_classes)
        return x.contiguous(), y


class _SpecMask:
    """``spec_mask``: per chunk, ``time_masks`` stripes of 0..``time_width`` feature frames and
    ``freq_masks`` stripes of 0..``freq_width`` bins, over every channel, set to 0."""

    def __init__(self, time_masks: int, time_width: int, freq_masks: int, freq_width: int):
        self.masks = ((int(time_masks), int(time_width), 2), (int(freq_masks), int(freq_width), 3))

    def __call__(self, x, y, gen: torch.Generator):
        x = x.clone()
        B = x.shape[0]
        for count, width, dim in self.masks:
            size = x.shape[dim]
            pos = torch.arange(size)
            for _ in range(count):
                w = torch.randint(0, min(width, size) + 1, (B,), generator=gen)
                start = (torch.rand(B, generator=gen) * (size - w + 1)).long()
                hit = (pos[None] >= start[:, None]) & (pos[None] < (start + w)[:, None])  # (B, n)
                shape = (B, 1, size, 1) if dim == 2 else (B, 1, 1, size)
                x.masked_fill_(hit.reshape(shape), 0.0)
        return x, y


def adpit_events(y: torch.Tensor) -> torch.Tensor:
    """The events of ADPIT targets ``(B, T, 6, V, C)`` as ``(B, T, 3, V, C)`` lists: slot groups
    are exclusive (A0 | B0 B1 | C0 C1 C2), so event k is the sum of slot k of each group."""
    return torch.stack([y[:, :, 0] + y[:, :, 1] + y[:, :, 3], y[:, :, 2] + y[:, :, 4],
                        y[:, :, 5]], dim=2)


def adpit_from_events(events: torch.Tensor) -> torch.Tensor:
    """ADPIT targets ``(B, T, 6, V, C)`` of event lists ``(B, T, 3, V, C)`` packed to the front
    (activity in value 0)."""
    n = events[:, :, :, 0].gt(0).sum(dim=2)  # (B, T, C)
    out = events.new_zeros(events.shape[0], events.shape[1], 6, *events.shape[3:])
    for count, first in ((1, 0), (2, 1), (3, 3)):
        out[:, :, first:first + count] = events[:, :, :count] * (n == count)[:, :, None, None]
    return out


def _pack(items: torch.Tensor, active: torch.Tensor, dim: int, keep: int) -> torch.Tensor:
    """The first ``keep`` active entries of ``items`` along ``dim`` (order kept), then the
    rest; ``active`` has ``items``' shape up to and including ``dim``, then broadcasts."""
    order = torch.argsort((~active).to(torch.int8), dim=dim, stable=True)
    order = order.reshape(*order.shape, *[1] * (items.ndim - order.ndim)).expand_as(items)
    return items.gather(dim, order).narrow(dim, 0, keep)


def union_targets(a: torch.Tensor, b: torch.Tensor, output: str, num_classes: int
                  ) -> torch.Tensor:
    """The targets of two chunks' events together (``mixup``), as the encoders lay them out."""
    if output in ("multi_accdoa", "multi_accdoa_stereo"):  # any values per slot
        ev = torch.cat([adpit_events(a), adpit_events(b)], dim=2)  # (B, T, 6, V, C)
        active = ev[:, :, :, 0].gt(0)  # (B, T, 6, C)
        ev = ev.transpose(3, 4)  # (B, T, 6, C, V): activity broadcast over the values
        packed = _pack(ev, active, 2, 3).transpose(3, 4)
        return adpit_from_events(packed)
    if output == "track_wise":
        tracks = torch.cat([a, b], dim=2)  # (B, T, 2K, W)
        active = tracks[..., :num_classes].sum(-1).gt(0)
        return _pack(tracks, active, 2, a.shape[2])
    raise SeldbenchError(f"train.augment mixup: no target union for output '{output}'")


class _Mixup:
    """``mixup``: with probability ``p`` a chunk is mixed with another chunk of the batch,
    weight ``lam`` uniform in [``lam_min``, 1 - ``lam_min``]; targets are the union."""

    def __init__(self, p: float, lam_min: float, output: str, num_classes: int) -> None:
        self.p, self.lam_min = float(p), float(lam_min)
        self.output, self.num_classes = output, num_classes

    def __call__(self, x, y, gen: torch.Generator):
        B = x.shape[0]
        mix = torch.rand(B, generator=gen) < self.p
        other = (torch.arange(B) + torch.randint(1, max(B, 2), (B,), generator=gen)) % B
        lam = self.lam_min + (1 - 2 * self.lam_min) * torch.rand(B, generator=gen)
        if B < 2 or not mix.any():
            return x, y
        lam = torch.where(mix, lam, torch.ones(()))
        x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[other]
        y = torch.where(mix.reshape(B, *[1] * (y.ndim - 1)),
                        union_targets(y, y[other], self.output, self.num_classes), y)
        return x, y


class Augmenter:
    """The ``train.augment`` steps, applied in order to a training batch
    ``(features (B, C, T, F), targets (B, frames, ...), side)``; its generator's state is what
    :meth:`state_dict` saves."""

    def __init__(self, steps: list, seed: int) -> None:
        self.steps = steps
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, side: dict):
        for step in self.steps:
            x, y = step(x, y, self.gen)
        return x, y, side

    def state_dict(self) -> dict:
        return {"generator": self.gen.get_state()}

    def load_state_dict(self, state: Mapping) -> None:
        self.gen.set_state(state["generator"])


def augment_seed(seed: int, rank: int = 0) -> int:
    """The augmentation generator's seed: the run seed's own stream, one per process."""
    digest = hashlib.sha256(f"augment:{seed}:{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def check_augment(entries: Sequence[Mapping], feature: str, channels: int, bins: int,
                  has_side_inputs: bool) -> None:
    """Refuse, before any data is read, what ``train.augment`` cannot do for this feature set
    (``channels`` x ``bins``) and model."""
    for entry in entries:
        name = entry["name"]
        if name in ("channel_swap", "mixup") and has_side_inputs:
            raise SeldbenchError(f"train.augment {name}: the model reads side inputs (video, "
                                 f"text) that {name} would not change with the audio")
        if name == "channel_swap":
            want = spatial_maps(feature, bins)[0].src.shape[0]
            if want != channels:
                raise SeldbenchError(f"train.augment channel_swap: feature '{feature}' has "
                                     f"{channels} channels, the transform expects {want}")


def build_augmenter(entries: Sequence[Mapping], *, feature: str, mean: np.ndarray,
                    std: np.ndarray, output: str, num_classes: int, has_side_inputs: bool,
                    seed: int, rank: int = 0) -> Augmenter | None:
    """The augmenter of ``train.augment`` (entries checked by the config's rules and
    :func:`check_augment`), or None when the list is empty. ``mean``/``std``: the train-split
    normaliser's ``(channels, bins)``."""
    if not entries:
        return None
    check_augment(entries, feature, *mean.shape, has_side_inputs)
    steps = []
    for entry in entries:
        name = entry["name"]
        params = {k: entry.get(k, default) for k, (_, default) in AUGMENTATIONS[name].items()}
        if name == "mixup":
            steps.append(_Mixup(params["p"], params["lam_min"], output, num_classes))
        elif name == "channel_swap":
            steps.append(_Spatial(params["p"], spatial_maps(feature, mean.shape[1]),
                                  np.asarray(mean, np.float64), np.asarray(std, np.float64),
                                  output, num_classes))
        else:
            steps.append(_SpecMask(**params))
    return Augmenter(steps, augment_seed(seed, rank))
