"""Feature cache (HDF5, one file per dataset, split and feature config) and the train-split normaliser.

Layout: ``<root>/<dataset>/<split>/<feature>-<hash>.h5``, where ``hash`` is the SHA-256 (first 16
hex digits) of the feature's resolved configuration: name, version, audio format and every
constructor argument of the feature module, defaults included (padding mode among them). One
HDF5 dataset per clip stem, ``(channels, frames, bins)`` float32, with the source file's size
and mtime as attributes so that a changed WAV is recomputed. Features are always computed on
whole clips (the ``top_db`` floor of the log-mel depends on the whole clip). Files are written
to a temporary file and moved into place (:func:`seldbench.io.atomic_open`): a reader never
sees half a cache, and an interrupted run leaves the old cache intact.

Typical use by a trainer::

    cache = FeatureCache(root / "features")
    train = cache.get("starss23", "train", train_clips, "foa_logmel_iv", device="cuda")
    norm = Normalizer.fit(train)            # train split only
    norm.save(run_dir / "normalizer.npz")
    x = norm.apply(train.read(stem, 0, 250))  # (7, 250, 64), a 5-s chunk
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from seldbench.data.audio import audio_info, read_audio
from seldbench.errors import SeldbenchError
from seldbench.io import atomic_open
from seldbench.specs import ClipFiles, FeatureSpec

CACHE_FORMAT = 1  # bump when the file layout changes


def feature_config(spec: FeatureSpec, module: torch.nn.Module,
                   options: Mapping[str, Any] | None = None) -> dict:
    """The resolved configuration that identifies a feature's values (what the cache hashes).

    ``module.config`` (all constructor arguments, defaults included) when the module has one,
    otherwise the ``options`` it was built with.
    """
    resolved = getattr(module, "config", None)
    if resolved is None:
        resolved = dict(options or {})
    return {"feature": spec.name, "version": spec.version, "audio_format": spec.audio_format,
            "options": {k: resolved[k] for k in sorted(resolved)}, "cache_format": CACHE_FORMAT}


def config_hash(config: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``config`` as canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _signature(path: Path) -> tuple[int, int]:
    st = path.stat()
    return int(st.st_size), int(st.st_mtime_ns)


def _check_name(value: str, what: str) -> str:
    if not value or value in (".", "..") or "/" in value or "\\" in value:
        raise SeldbenchError(f"feature cache: invalid {what} {value!r}")
    return value


class CachedFeatures(Mapping):
    """The cached features of one split: a read-only mapping ``stem -> (channels, frames, bins)``.

    Arrays are read from the HDF5 file on access (nothing is held in memory); ``read`` returns a
    slice of frames, which is what a chunking Dataset wants. Safe to pass to DataLoader
    workers: the file handle is reopened in each process and is not pickled.
    """

    def __init__(self, path: Path, stems: Sequence[str], *, dataset: str, split: str,
                 feature: str, config: Mapping[str, Any], config_hash: str,
                 frames_per_label: int) -> None:
        self.path = Path(path)
        self.stems = list(stems)
        self._known = set(self.stems)
        self.dataset = dataset
        self.split = split
        self.feature = feature
        self.config = dict(config)
        self.config_hash = config_hash
        self.frames_per_label = frames_per_label
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def _h5(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def _dataset(self, stem: str) -> h5py.Dataset:
        if stem not in self._known:
            raise KeyError(stem)
        return self._h5()[stem]

    def __getitem__(self, stem: str) -> np.ndarray:
        return self._dataset(stem)[()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.stems)

    def __len__(self) -> int:
        return len(self.stems)

    def shape(self, stem: str) -> tuple[int, int, int]:
        """``(channels, frames, bins)`` of one clip, without reading it."""
        return tuple(self._dataset(stem).shape)

    def num_frames(self, stem: str) -> int:
        """Feature frames of one clip."""
        return self.shape(stem)[1]

    def read(self, stem: str, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` of one clip, ``(channels, stop - start, bins)`` float32.

        Frames past the end of the clip are zeros (the inference chunks' padding).
        """
        if not 0 <= start <= stop:
            raise ValueError(f"need 0 <= start <= stop, got {start}, {stop}")
        ds = self._dataset(stem)
        frames = ds.shape[1]
        part = ds[:, start:min(stop, frames), :] if start < frames else \
            np.zeros((ds.shape[0], 0, ds.shape[2]), np.float32)
        if part.shape[1] < stop - start:
            pad = np.zeros((ds.shape[0], stop - start - part.shape[1], ds.shape[2]), np.float32)
            part = np.concatenate([part, pad], axis=1)
        return part

    def load_all(self) -> dict[str, np.ndarray]:
        """Every clip in memory, ``{stem: (channels, frames, bins)}``."""
        return {stem: self[stem] for stem in self.stems}

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None
        state["_pid"] = None
        return state

    def __repr__(self) -> str:
        return (f"CachedFeatures({self.feature}@{self.config_hash}, {self.dataset}/{self.split}, "
                f"{len(self)} clips, {self.path})")


class FeatureCache:
    """Computes features for whole clips and caches them under ``root``.

    ``computed`` counts the clips this object has computed (cache hits add nothing).
    """

    def __init__(self, root: str | os.PathLike, registry: Any = None, batch_size: int = 4,
                 progress: bool = False) -> None:
        self.root = Path(root)
        self._registry = registry
        self.batch_size = max(1, int(batch_size))
        self.progress = progress  # clips done and ETA on stderr while computing
        self.computed = 0

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from seldbench.registry import get_registry

            self._registry = get_registry()
        return self._registry

    def build(self, feature: str | FeatureSpec,
              options: Mapping[str, Any] | None = None) -> tuple[FeatureSpec, torch.nn.Module]:
        """The feature's spec and its module built with ``options`` (constructor arguments)."""
        spec = feature if isinstance(feature, FeatureSpec) else self.registry.get_feature(feature)
        try:
            module = spec.build(**dict(options or {}))
        except (TypeError, ValueError) as exc:
            raise SeldbenchError(f"feature '{spec.name}': bad options {dict(options or {})}: "
                                 f"{' '.join(str(exc).split())}") from exc
        return spec, module

    def path(self, dataset: str, split: str, feature: str | FeatureSpec,
             options: Mapping[str, Any] | None = None) -> Path:
        """Where the cache file of (dataset, split, feature config) lives."""
        spec, module = self.build(feature, options)
        return self._path(dataset, split, spec.name, config_hash(feature_config(spec, module, options)))

    def _path(self, dataset: str, split: str, name: str, digest: str) -> Path:
        return (self.root / _check_name(dataset, "dataset name") / _check_name(split, "split name")
                / f"{name}-{digest}.h5")

    def get(self, dataset: str, split: str, clips: Sequence[ClipFiles] | Mapping[str, Any],
            feature: str | FeatureSpec, options: Mapping[str, Any] | None = None,
            device: str | torch.device = "cpu") -> CachedFeatures:
        """Features of ``clips`` (one split of one dataset), computed once and then read from disk.

        ``clips``: :class:`ClipFiles` (the audio of the feature's format is used) or a mapping
        ``stem -> WAV path``. Clips missing from the cache, or whose WAV changed (size or mtime),
        are computed on ``device`` and added; the others are reused. Every WAV is checked before
        anything is computed. Returns a :class:`CachedFeatures` over ``clips``, in their order.
        """
        spec, module = self.build(feature, options)
        config = feature_config(spec, module, options)
        digest = config_hash(config)
        path = self._path(dataset, split, spec.name, digest)
        sources = self._sources(clips, spec)
        existing = self._existing(path, digest)
        pending = [stem for stem, src in sources.items() if existing.get(stem) != _signature(src)]
        if pending:
            lengths = {stem: audio_info(sources[stem], audio_format=spec.audio_format)
                       for stem in pending}  # check at the door
            hop = getattr(module, "hop_length", 1)
            for stem, n in lengths.items():
                if n < hop:
                    raise SeldbenchError(f"{sources[stem]}: {n} samples, shorter than one "
                                         f"feature frame ({hop} samples)")
            keep = [stem for stem in existing if stem not in pending]
            self._write(path, spec, module, config, digest, dataset, split, keep, pending,
                        sources, lengths, torch.device(device))
        return CachedFeatures(path, list(sources), dataset=dataset, split=split,
                              feature=spec.name, config=config, config_hash=digest,
                              frames_per_label=spec.frames_per_label)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _sources(clips: Sequence[ClipFiles] | Mapping[str, Any], spec: FeatureSpec) -> dict[str, Path]:
        sources: dict[str, Path] = {}
        items = clips.items() if isinstance(clips, Mapping) else \
            ((clip.stem, clip) for clip in clips)
        for stem, item in items:
            if isinstance(item, ClipFiles):
                if spec.audio_format not in item.audio:
                    raise SeldbenchError(f"clip '{stem}': no {spec.audio_format} audio (feature "
                                         f"'{spec.name}' needs it)")
                item = item.audio[spec.audio_format]
            if not stem or "/" in stem or stem in (".", ".."):
                raise SeldbenchError(f"{item}: invalid clip stem {stem!r}")
            if stem in sources:
                raise SeldbenchError(f"{item}: clip stem '{stem}' appears twice "
                                     f"(also {sources[stem]})")
            path = Path(item)
            if not path.is_file():
                raise SeldbenchError(f"{path}: no such audio file")
            sources[stem] = path
        return sources

    @staticmethod
    def _existing(path: Path, digest: str) -> dict[str, tuple[int, int]]:
        """Stems in an existing cache file with the source signature they were computed from."""
        if not path.is_file():
            return {}
        try:
            with h5py.File(path, "r") as h5:
                if h5.attrs.get("config_hash") != digest:
                    return {}
                return {stem: (int(ds.attrs["source_size"]), int(ds.attrs["source_mtime_ns"]))
                        for stem, ds in h5.items()}
        except (OSError, KeyError):  # unreadable or foreign file: rebuild it
            return {}

    def _write(self, path: Path, spec: FeatureSpec, module: torch.nn.Module, config: dict,
               digest: str, dataset: str, split: str, keep: list[str], pending: list[str],
               sources: dict[str, Path], lengths: dict[str, int], device: torch.device) -> None:
        module = module.to(device).eval()
        # clips of equal length share a batch; longest first
        order = sorted(pending, key=lambda s: -lengths[s])
        with atomic_open(path, "w+b") as fh, h5py.File(fh, "w") as out:
            out.attrs.update(feature=spec.name, version=spec.version, dataset=dataset, split=split,
                             config=json.dumps(config, sort_keys=True), config_hash=digest)
            if keep:
                with h5py.File(path, "r") as old:
                    for stem in keep:
                        ds = out.create_dataset(stem, data=old[stem][()])
                        ds.attrs.update(dict(old[stem].attrs))
            from seldbench.progress import Progress

            shown = Progress(len(order), f"features {spec.name} of {dataset} {split}",
                             unit="clips", enabled=self.progress)
            i = 0
            while i < len(order):
                group = [order[i]]
                while (len(group) < self.batch_size and i + len(group) < len(order)
                       and lengths[order[i + len(group)]] == lengths[order[i]]):
                    group.append(order[i + len(group)])
                i += len(group)
                audio = np.stack([read_audio(sources[stem], audio_format=spec.audio_format)
                                  for stem in group])
                with torch.inference_mode():
                    feats = module(torch.from_numpy(audio).to(device)).float().cpu().numpy()
                if feats.shape[1] != spec.channels:
                    raise SeldbenchError(f"feature '{spec.name}': module returned "
                                         f"{feats.shape[1]} channels, the spec declares "
                                         f"{spec.channels}")
                shown.update(len(group))
                for stem, feat in zip(group, feats):
                    ds = out.create_dataset(stem, data=feat)
                    size, mtime = _signature(sources[stem])
                    ds.attrs.update(source=str(sources[stem]), source_size=size,
                                    source_mtime_ns=mtime, samples=lengths[stem])
                self.computed += len(group)
            shown.close()


class Normalizer:
    """Per (channel, bin) standardisation fitted on the train split only.

    ``mean`` and ``std`` are ``(channels, bins)`` float32; bins whose standard deviation is 0
    (e.g. SALSA-Lite's zeroed phase bins) get std 1, as scikit-learn's StandardScaler does.
    ``meta`` records what it was fitted on (dataset, split, feature, config hash, frames).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, meta: Mapping[str, Any] | None = None) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        if self.mean.ndim != 2 or self.mean.shape != self.std.shape:
            raise ValueError("mean and std must both be (channels, bins)")
        self.meta = dict(meta or {})

    @classmethod
    def fit(cls, features: Mapping[str, np.ndarray], train_split: str = "train") -> Normalizer:
        """Fit on every frame of every clip of ``features`` (population mean and std).

        ``features`` is normally :class:`CachedFeatures`; its split must be ``train_split``
        (fitting on val/test data would leak it into the model's inputs). Statistics are
        accumulated in float64, clip by clip (Chan's parallel update), so memory is one clip.
        """
        split = getattr(features, "split", None)
        if split is not None and split != train_split:
            raise SeldbenchError(f"normaliser: features of split '{split}' given; fit it on the "
                                 f"train split ('{train_split}') only")
        count, mean, m2 = 0, None, None
        for stem in features:
            x = np.asarray(features[stem], dtype=np.float64)  # (C, T, B)
            n = x.shape[1]
            if n == 0:
                continue
            x_mean = x.mean(axis=1)
            x_m2 = np.square(x - x_mean[:, None, :]).sum(axis=1)
            if mean is None:
                count, mean, m2 = n, x_mean, x_m2
                continue
            if x_mean.shape != mean.shape:
                raise SeldbenchError(f"normaliser: clip '{stem}' has shape {x.shape}, others "
                                     f"(channels, bins) = {mean.shape}")
            delta = x_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + x_m2 + np.square(delta) * (count * n / total)
            count = total
        if mean is None:
            raise SeldbenchError("normaliser: no feature frames to fit on")
        std = np.sqrt(m2 / count)
        std[std < 10 * np.finfo(np.float64).eps] = 1.0
        meta = {"frames": int(count), "clips": len(features)}
        for key in ("dataset", "split", "feature", "config_hash"):
            if hasattr(features, key):
                meta[key] = getattr(features, key)
        return cls(mean, std, meta)

    def apply(self, x: Any) -> Any:
        """``(x - mean) / std`` for features ``(..., channels, frames, bins)`` (numpy or torch)."""
        if tuple(x.shape[-3:-2]) + tuple(x.shape[-1:]) != self.mean.shape:
            raise SeldbenchError(f"normaliser: fitted on (channels, bins) = {self.mean.shape}, "
                                 f"got features of shape {tuple(x.shape)}")
        if isinstance(x, torch.Tensor):
            mean = torch.as_tensor(self.mean, device=x.device, dtype=x.dtype)[:, None, :]
            std = torch.as_tensor(self.std, device=x.device, dtype=x.dtype)[:, None, :]
            return (x - mean) / std
        return ((x - self.mean[:, None, :]) / self.std[:, None, :]).astype(np.float32, copy=False)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``mean``, ``std`` and ``meta`` to an ``.npz`` file, atomically."""
        with atomic_open(path, "wb") as fh:
            np.savez(fh, mean=self.mean, std=self.std, meta=np.array(json.dumps(self.meta)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Normalizer:
        """Read a file written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["mean"], data["std"], json.loads(str(data["meta"])))
        except FileNotFoundError as exc:
            raise SeldbenchError(f"{path}: no such normaliser file") from exc
        except (OSError, KeyError, ValueError) as exc:
            raise SeldbenchError(f"{path}: not a normaliser file "
                                 f"({' '.join(str(exc).split())})") from exc

    def __repr__(self) -> str:
        return f"Normalizer({self.mean.shape}, fitted on {self.meta})"
