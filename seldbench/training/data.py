"""One split of a dataset in memory, ready to train on: normalised features, targets, chunks.

Features come from the HDF5 cache (:class:`seldbench.features.cache.FeatureCache`), computed once
per (dataset, split, feature config); the normaliser is fitted on the train split only. A split
of the synthetic benchmark is a few hundred MB of float32, so it is held in memory and each
chunk is one tensor slice: no per-row Python batching.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from seldbench.data.labels import (LABEL_HOP_S, adpit_targets, read_metadata,
                                   stereo_adpit_targets, track_targets)
from seldbench.errors import SeldbenchError
from seldbench.specs import ClipFiles, DatasetSpec, FeatureSpec


def make_targets(output: str, table, frames: int, num_classes: int, with_distance: bool) -> np.ndarray:
    """Training targets of one clip for a model ``output`` format, ``(frames, ...)`` float32."""
    if (table.layout == "fctado") != (output == "multi_accdoa_stereo"):
        what = "DCASE 2025 stereo labels (azimuth only)" if table.layout == "fctado" else \
            "labels with full directions"
        raise SeldbenchError(f"{table.path}: {what} cannot train a model whose output format is "
                             f"'{output}'")
    if output == "multi_accdoa":
        return adpit_targets(table, frames, num_classes, with_distance=with_distance)
    if output == "track_wise":
        return track_targets(table, frames, num_classes, with_distance=with_distance).as_array()
    if output == "multi_accdoa_stereo":
        return stereo_adpit_targets(table, frames, num_classes)
    raise SeldbenchError(f"no targets for output format '{output}'")


@dataclass
class SplitData:
    """A split: per clip normalised features ``(channels, frames, bins)`` and targets
    ``(label_frames, ...)``; ``label_frames[stem]`` is the clip's length in 100-ms frames."""

    name: str
    clips: list[ClipFiles]
    features: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    label_frames: dict[str, int]
    frames_per_label: int
    side: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # stem -> name ->
    # (label_frames, ...) streams of ModelSpec.side_inputs

    def side_of(self, stem: str) -> dict[str, np.ndarray]:
        return self.side.get(stem, {})

    @property
    def stems(self) -> list[str]:
        return [c.stem for c in self.clips]

    @property
    def audio_seconds(self) -> float:
        return sum(self.label_frames.values()) * LABEL_HOP_S


def label_frames(feature_frames: int, per: int) -> int:
    """A clip's length in label frames: ``ceil(feature frames / feature frames per label)``."""
    return math.ceil(feature_frames / per)


def load_split(split: str, clips: Sequence[ClipFiles], dataset: DatasetSpec,
               feature: FeatureSpec, cached, normalize: Callable[[np.ndarray], np.ndarray],
               output: str, with_distance: bool, labelled: bool = True) -> SplitData:
    """Normalised features and targets of ``clips`` (features from ``cached``, a
    :class:`CachedFeatures`). Label length = ``ceil(feature frames / frames_per_label)``."""
    per = feature.frames_per_label
    feats, targets, lengths = {}, {}, {}
    for clip in clips:
        x = normalize(np.asarray(cached[clip.stem], np.float32))
        frames = label_frames(x.shape[1], per)
        feats[clip.stem] = x
        lengths[clip.stem] = frames
        if labelled:
            if clip.metadata is None:
                raise SeldbenchError(f"{clip.stem}: clip of split '{split}' has no metadata file")
            table = read_metadata(clip.metadata, dataset.metadata_columns, len(dataset.classes),
                                  dataset.metadata_format)
            targets[clip.stem] = make_targets(output, table, frames, len(dataset.classes),
                                              with_distance)
    return SplitData(split, list(clips), feats, targets, lengths, per)


class ChunkDataset(Dataset):
    """Fixed-length training chunks of a :class:`SplitData`, sliced on the label grid.

    Each clip contributes ``floor(frames / chunk)`` chunks from its start and, when a tail is
    left, one more chunk ending at the clip's end, so no annotated frame is dropped (the
    official generator drops the tail). Items are ``(features (C, chunk * per, bins), targets
    (chunk, ...))``; ``__getitems__`` returns a whole batch, one slice per chunk.
    """

    def __init__(self, data: SplitData, chunk_frames: int) -> None:
        self.chunk = int(chunk_frames)
        per = data.frames_per_label
        stems = [s for s in data.stems if data.label_frames[s] > 0]
        if not stems:
            raise SeldbenchError(f"split '{data.name}' has no audio to train on")
        # one padded tensor per split: clips end-padded with zeros to the longest
        longest = max(max(data.label_frames[s] for s in stems), self.chunk)
        C, _, F = data.features[stems[0]].shape
        self.x = torch.zeros(len(stems), C, longest * per, F)
        tshape = data.targets[stems[0]].shape[1:]
        self.y = torch.zeros((len(stems), longest, *tshape))
        first = data.side_of(stems[0])  # streams keep their dtype (float16 tokens, uint8 frames)
        names = sorted(first)
        self.side = {name: torch.from_numpy(
            np.zeros((len(stems), longest, *first[name].shape[1:]), first[name].dtype))
            for name in names}
        index = []
        for k, s in enumerate(stems):
            x = torch.from_numpy(data.features[s])
            self.x[k, :, :x.shape[1]] = x
            n = data.label_frames[s]
            self.y[k, :n] = torch.from_numpy(data.targets[s][:n])
            streams = data.side_of(s)
            if sorted(streams) != names:
                raise SeldbenchError(f"{s}: side inputs {sorted(streams)} differ from "
                                     f"{stems[0]}'s {names}")
            for name in names:
                self.side[name][k, :n] = torch.from_numpy(_fit(streams[name], n, s, name))
            starts = list(range(0, max(n - self.chunk, 0) + 1, self.chunk))
            if n > self.chunk and starts[-1] + self.chunk < n:
                starts.append(n - self.chunk)
            index += [(k, st) for st in starts]
        self.index = torch.tensor(index, dtype=torch.long)
        self.per = per

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        x, y, side = self.__getitems__([i])
        return x[0], y[0], {k: v[0] for k, v in side.items()}

    def __getitems__(self, ids: list[int]):
        # one slice (a view) per chunk, one copy by stack: cheaper than a gathered index
        rows = self.index[torch.as_tensor(ids, dtype=torch.long)].tolist()
        c, p = self.chunk, self.per
        x = torch.stack([self.x[k, :, s * p:(s + c) * p] for k, s in rows])
        y = torch.stack([self.y[k, s:s + c] for k, s in rows])
        side = {name: torch.stack([v[k, s:s + c] for k, s in rows])
                for name, v in self.side.items()}
        return x, y, side


def collate_batch(batch):
    """The batch from ``ChunkDataset.__getitems__`` is already stacked."""
    return batch


def _fit(a: np.ndarray, frames: int, stem: str, name: str) -> np.ndarray:
    """A side stream cut or zero-padded to ``frames`` (a video may end a frame early)."""
    a = np.asarray(a)
    if abs(a.shape[0] - frames) > 2:
        raise SeldbenchError(f"{stem}: side input '{name}' has {a.shape[0]} frames, the "
                             f"features {frames}")
    if a.shape[0] >= frames:
        return a[:frames]
    return np.concatenate([a, np.zeros((frames - a.shape[0], *a.shape[1:]), a.dtype)])


def side_chunks(streams: dict[str, np.ndarray], frames: int, chunk_frames: int
                ) -> dict[str, torch.Tensor]:
    """Side streams of one clip as zero-padded chunks ``(n, chunk, ...)``, matching
    :func:`clip_chunks`."""
    n = max(1, math.ceil(frames / chunk_frames))
    out = {}
    for name, a in streams.items():
        a = _fit(a, frames, "clip", name)
        pad = np.zeros((n * chunk_frames, *a.shape[1:]), a.dtype)
        pad[:frames] = a
        out[name] = torch.from_numpy(pad.reshape(n, chunk_frames, *a.shape[1:]))
    return out


def clip_chunks(x: np.ndarray, chunk_frames: int, per: int) -> tuple[torch.Tensor, int]:
    """A whole clip ``(C, frames, F)`` as zero-padded chunks ``(n, C, chunk * per, F)`` for
    inference; returns the chunks and the clip's label frames."""
    C, T, F = x.shape
    frames = math.ceil(T / per)
    n = max(1, math.ceil(frames / chunk_frames))
    pad = np.zeros((C, n * chunk_frames * per, F), np.float32)
    pad[:, :T] = x
    chunks = pad.reshape(C, n, chunk_frames * per, F).transpose(1, 0, 2, 3)
    return torch.from_numpy(np.ascontiguousarray(chunks)), frames
