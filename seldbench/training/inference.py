"""Prediction with a finished run: load its folder once, then predict any WAV file.

A run folder ``<runs>/<dataset>/<model>/<run id>`` (written by ``seldbench run``) holds
everything needed to rebuild the system exactly as it was tested: ``config.json`` (resolved
config), ``record.json`` (model and dataset names), ``normalizer.npz`` (train-split statistics)
and ``best.pt`` (the selected weights). Features are computed by the run's feature set with
its default options, as the run's feature cache computed them, so :func:`predict_file` on a
test clip of the run's dataset gives the rows of ``predictions/<suite>/<stem>.csv``.

Typical use::

    run = load_run("runs/synth-mini/crnn/crnn-synth-mini-s0-a63b68e6")
    table = predict_file(run, "clip.wav")          # EventTable, Cartesian DOAs
    write_dcase_csv("clip.csv", as_layout(table, "fctxyzd"))
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any


from seldbench.errors import SeldbenchError
from seldbench.metrics.csvio import EventTable, as_layout
from seldbench.results.records import RUN_FILES, read_run_info

if TYPE_CHECKING:
    import torch

#: The layout ``seldbench predict`` writes: the 2022-2024 prediction layout (DCASE 2023 suite).
PREDICT_LAYOUT = "fctxyzd"


@dataclass
class LoadedRun:
    """A run folder loaded for inference.

    ``model`` is in eval mode on ``device``; ``feature`` maps audio ``(batch, 4, samples)`` to
    ``(batch, channels, frames, bins)`` and lives on ``device`` too; ``normalizer`` standardises
    its output; ``predictor`` chunks, runs and decodes as the run's test prediction did.
    """

    path: Path
    config: dict
    record: dict
    model_spec: Any  # ModelSpec
    dataset_spec: Any  # DatasetSpec
    feature_spec: Any  # FeatureSpec
    model: torch.nn.Module
    feature: torch.nn.Module
    normalizer: Any  # seldbench.features.cache.Normalizer
    predictor: Any  # seldbench.training.predict.Predictor
    with_distance: bool
    device: torch.device

    @property
    def name(self) -> str:
        """``model@version on dataset (run id)``, for messages."""
        return (f"{self.model_spec.name}@{self.model_spec.version} on {self.dataset_spec.name} "
                f"({self.path.name})")


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "auto",
             registry: Any = None) -> LoadedRun:
    """Load a finished run folder for prediction: model (best checkpoint, eval mode), feature
    module, normaliser and predictor, on ``device`` (``auto``: CUDA when present).

    Every file is checked before the model is built; a problem is one :class:`SeldbenchError`
    naming the folder or file (missing, not a run folder, truncated checkpoint, weights that do
    not fit the model the config describes, a feature set that changed since training).
    """
    import torch

    from seldbench.features.cache import FeatureCache, Normalizer, config_hash, feature_config
    from seldbench.registry import get_registry
    from seldbench.training.plan import assemble, plan_from_config
    from seldbench.training.trainer import load_checkpoint, pick_device

    path, config, record = read_run_info(run_dir)
    for name in RUN_FILES[2:]:
        if not (path / name).is_file():
            raise SeldbenchError(f"{path / name}: missing from the run folder")
    reg = registry or get_registry()
    plan = plan_from_config(config, record["model"]["name"], reg)
    dev = pick_device(str(device)) if not isinstance(device, torch.device) else device

    normalizer = Normalizer.load(path / "normalizer.npz")
    # build only: FeatureCache.build computes and caches nothing
    fspec, feature = FeatureCache(path, registry=reg).build(plan.feature.name)
    trained_hash = normalizer.meta.get("config_hash")
    now_hash = config_hash(feature_config(fspec, feature))
    if trained_hash is not None and trained_hash != now_hash:
        raise SeldbenchError(f"{path}: feature set '{fspec.name}' has changed since the run was "
                             f"trained (config hash {now_hash}, the run's {trained_hash}); "
                             "its predictions would not match")

    checkpoint = load_checkpoint(path / "best.pt", dev,
                                 sha256=(record.get("checkpoint") or {}).get("sha256"))
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise SeldbenchError(f"{path / 'best.pt'}: not a seldbench checkpoint (no 'model' entry)")
    built = assemble(plan, dev)
    try:
        built.model.load_state_dict(checkpoint["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise SeldbenchError(f"{path / 'best.pt'}: weights do not fit model "
                             f"'{plan.model.name}' as config.json builds it ({first})") from None
    built.model.to(dev).eval()
    feature.to(dev).eval()
    return LoadedRun(path, config, record, plan.model, plan.dataset, fspec, built.model, feature,
                     normalizer, built.predictor, built.with_distance, dev)


def predict_file(run: LoadedRun, wav_path: str | os.PathLike,
                 video_path: str | os.PathLike | None = None) -> EventTable:
    """Events of one recording: read, features, normalise, predict, decode.

    ``wav_path``: a 24-kHz WAV in the run's audio format (4 channels, 2 for stereo; ``run.feature_spec.
    audio_format``: FOA for the ``foa_*`` feature sets, the tetrahedral mic array for
    ``mic_*``; the format cannot be told from the file, so it is not checked). Any length: the
    clip is predicted in chunks of the run's ``train.chunk_s``.

    ``video_path``: the recording's 360-degree video (equirectangular MP4). A model with side
    inputs (``ModelSpec.side_inputs``, e.g. CRATI's image tokens) gets them from it, computed
    as in training (text never: it is a training signal); without a video such a model runs
    with its image branch off. Audio-only models ignore it (the file must exist, so a typo is
    not silently ignored).

    Returns an :class:`EventTable` with Cartesian DOAs (``fctxyz``, or ``fctxyzd`` with
    distance in metres when the model predicts it), frames in 100-ms label frames. Errors name
    the file (missing, unreadable, truncated, wrong sample rate or channel count, too short).
    """
    import torch

    from seldbench.data.audio import read_audio

    if video_path is not None and not Path(video_path).is_file():
        raise SeldbenchError(f"{video_path}: no such video file")
    audio = read_audio(wav_path, audio_format=run.feature_spec.audio_format)  # (ch, samples)
    hop = int(getattr(run.feature, "hop_length", 1))
    if audio.shape[1] < hop:
        raise SeldbenchError(f"{wav_path}: {audio.shape[1]} samples, shorter than one feature "
                             f"frame ({hop} samples)")
    with torch.inference_mode():
        x = run.feature(torch.from_numpy(audio)[None].to(run.device)).float().cpu().numpy()[0]
    if x.shape[0] != run.feature_spec.channels:
        raise SeldbenchError(f"feature '{run.feature_spec.name}': module returned {x.shape[0]} "
                             f"channels, the spec declares {run.feature_spec.channels}")
    x = run.normalizer.apply(x)
    side = None
    if run.model_spec.side_inputs is not None:
        side = _side_inputs(run, wav_path, video_path, -(-x.shape[1] // run.feature_spec.frames_per_label))
    table = run.predictor.predict(run.model, [x], [side])[0]
    table.path = str(wav_path)
    return table


def _side_inputs(run: LoadedRun, wav_path, video_path, frames: int) -> dict:
    """The model's side streams for one user recording (test-time streams only)."""
    from dataclasses import replace

    from seldbench.config import cache_dir_of
    from seldbench.specs import ClipFiles

    stem = Path(wav_path).stem
    clip = ClipFiles(stem, {run.feature_spec.audio_format: Path(wav_path)}, None,
                     Path(video_path) if video_path is not None else None)
    dataset = replace(run.dataset_spec, has_video=run.dataset_spec.has_video and clip.video
                      is not None)
    from seldbench.side_inputs import collect

    streams = collect(run.model_spec, run.config["model"], dataset, [clip], {stem: frames},
                      training=False, cache_dir=cache_dir_of(run.config), device=run.device)
    return streams[stem]


def predict_to_csv(run_dir: str | os.PathLike, wav_path: str | os.PathLike,
                   out: str | os.PathLike, video_path: str | os.PathLike | None = None,
                   device: str = "auto") -> EventTable:
    """``seldbench predict``: load the run, predict ``wav_path`` and write ``out`` atomically as
    a 7-column DCASE CSV (frame, class, track, x, y, z, distance_m; distance 0 when the model
    predicts none), or for a stereo model the DCASE 2025 CSV (header line; azimuth, distance
    in cm, onscreen). Returns the written table."""
    from seldbench.data.audio import audio_info

    fmt = _audio_format(run_dir)  # checked in argument order: the run folder, then the files
    audio_info(wav_path, audio_format=fmt)  # a bad WAV fails before the model is loaded
    if video_path is not None and not Path(video_path).is_file():
        raise SeldbenchError(f"{video_path}: no such video file")
    run = load_run(run_dir, device)
    return _write_prediction(out, predict_file(run, wav_path, video_path))


def _audio_format(run_dir) -> str | None:
    """The audio format (foa, mic, stereo) a finished run's feature set reads; None when the
    config names none (:func:`load_run` then says what is wrong)."""
    from seldbench.registry import get_registry

    _, config, _ = read_run_info(run_dir)
    name = (config.get("features") or {}).get("name")
    reg = get_registry()
    return reg.get_feature(name).audio_format if name in reg.list("feature") else None


def _write_prediction(path, table: EventTable) -> EventTable:
    """Write a predicted table: the 2025 stereo CSV (header, azimuth, cm, onscreen) for a
    stereo model's ``fctado`` rows, else the 7-column ``fctxyzd`` CSV."""
    from seldbench.metrics.csvio import write_dcase2025_csv, write_dcase_csv

    if table.layout == "fctado":
        write_dcase2025_csv(path, table)
        return table
    table = as_layout(table, PREDICT_LAYOUT)
    write_dcase_csv(path, table)
    return table


def predict_folder(run_dir: str | os.PathLike, audio_dir: str | os.PathLike,
                   out_dir: str | os.PathLike, video_dir: str | os.PathLike | None = None,
                   device: str = "auto", log=print) -> dict[str, int]:
    """``seldbench predict --audio DIR --out DIR``: every ``*.wav`` of ``audio_dir`` (sorted)
    predicted into ``out_dir/<stem>.csv``; its video, where a model reads one, is
    ``video_dir/<stem>.mp4`` when that exists (a clip without one runs with the image branch
    off, and says so). The run is loaded once. Returns ``{stem: rows}``."""
    from seldbench.data.audio import audio_info

    fmt = _audio_format(run_dir)
    wavs = sorted(p for p in Path(audio_dir).glob("*") if p.suffix.lower() == ".wav")
    if not wavs:
        raise SeldbenchError(f"{audio_dir}: no .wav files to predict")
    if video_dir is not None and not Path(video_dir).is_dir():
        raise SeldbenchError(f"{video_dir}: no such video folder")
    for wav in wavs:  # every WAV checked before the model is loaded
        audio_info(wav, audio_format=fmt)
    run = load_run(run_dir, device)
    rows = {}
    for wav in wavs:
        video = Path(video_dir) / f"{wav.stem}.mp4" if video_dir is not None else None
        if video is not None and not video.is_file():
            if run.model_spec.needs_video:
                log(f"{wav}: no {video.name} in {video_dir}; predicted without video")
            video = None
        table = _write_prediction(Path(out_dir) / f"{wav.stem}.csv", predict_file(run, wav, video))
        rows[wav.stem] = len(table)
    return rows


__all__ = ["LoadedRun", "PREDICT_LAYOUT", "as_layout", "load_run", "predict_file",
           "predict_folder", "predict_to_csv", "read_run_info"]
