"""The specs that plugins return from their hooks (see :mod:`seldbench.hookspecs`).

Plain frozen dataclasses: a plugin builds them with keyword arguments, the registry validates
them once at load time (:func:`seldbench.registry.validate_spec`), and the rest of the core only
reads them. Units: angles in degrees, distances in metres, time in 100-ms label frames.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from seldbench.errors import SeldbenchError

#: Model output formats the core knows how to decode and score.
OUTPUT_FORMATS = ("multi_accdoa", "track_wise", "multi_accdoa_stereo")
#: Audio formats of the DCASE datasets (4-channel FOA and MIC, 2-channel stereo of 2025).
AUDIO_FORMATS = ("foa", "mic", "stereo")
#: The 4-channel formats of the STARSS23 / TAU-NIGENS releases (``foa_dev/``, ``mic_dev/``).
SPATIAL_FORMATS = ("foa", "mic")
#: Metadata CSV formats: headerless DCASE rows (5 or 6 columns), or the 2025 stereo layout
#: with its header line ``frame,class,source,azimuth,distance,onscreen``.
METADATA_FORMATS = ("dcase", "dcase2025")


@dataclass(frozen=True)
class MetricSuiteSpec:
    """A metric suite: scores DCASE CSV predictions against references.

    ``build(num_classes, **options)`` returns a *scorer* object with four methods:

    - ``read_reference(path) -> EventTable`` and ``read_prediction(path) -> EventTable``: strict
      readers (a bad row raises :class:`SeldbenchError` ``file:line: problem``);
    - optionally ``read_references(paths)`` and ``read_predictions(paths)``: the same for many
      files in one batch (the same tables; where a file is bad, some file's error), which
      ``seldbench score`` then uses;
    - ``counts(pairs) -> np.ndarray``: additive counters of each ``(ref, pred)`` table pair,
      shape ``(files, counters, num_classes)`` (all files at once, so a suite can vectorise
      across them);
    - ``summarise(counts) -> dict``: the figures (keys = ``figures``) plus ``classwise`` from
      counters summed over files, shape ``(counters, num_classes)``.

    Because counters add up over files, the core computes leave-one-file-out jackknife
    intervals by subtraction, for any suite.
    """

    name: str
    version: str
    build: Callable[..., Any]
    figures: tuple[str, ...]
    rank_by: str
    higher_is_better: bool
    default_classes: int
    description: str = ""
    unit: str = "segment"  # "segment" (1 s) or "frame" (100 ms)
    options: Mapping[str, Any] = field(default_factory=dict)  # non-parity switches, default off


@dataclass(frozen=True)
class ClipFiles:
    """The files of one recording. ``video`` is None when the clip has none."""

    stem: str
    audio: Mapping[str, Path]  # audio format ("foa"/"mic"/"stereo") -> WAV path
    metadata: Path | None  # DCASE CSV, None for evaluation clips
    video: Path | None = None
    fold: int | None = None
    room: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: where its files are and how they are split.

    ``list_clips(root, split) -> list[ClipFiles]`` lists one split (``splits`` names them,
    e.g. train/val/test). The core reads audio and labels, computes features and batches.
    """

    name: str
    version: str
    classes: tuple[str, ...]
    splits: tuple[str, ...]
    list_clips: Callable[[Path, str], list[ClipFiles]]
    metric_suites: tuple[str, ...]  # the first one selects the model and ranks the leaderboard
    formats: tuple[str, ...] = SPATIAL_FORMATS
    has_video: bool = False
    metadata_columns: int = 6  # 5: no distance (TAU-NIGENS 2021), 6: distance in cm
    metadata_format: str = "dcase"  # or "dcase2025" (stereo: header, azimuth, distance, onscreen)
    video_projection: str = "equirectangular"  # 2:1 360-degree frames, or "perspective" (2025)
    root_env: str | None = None  # environment variable naming the root folder
    default_root: Path | None = None
    prepare: Callable[[Path], None] | None = None  # e.g. generate a synthetic set on first use
    config: Path | None = None  # the dataset's default YAML (its dataset: keys), if it has one
    description: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A model: its builder, the inputs it needs and the output it produces.

    ``build(cfg, dataset, feature) -> torch.nn.Module`` receives the model's config section (a
    mapping), the dataset's :class:`DatasetSpec` (class names) and the :class:`FeatureSpec` of
    the run (input channels, bins, feature frames per label frame). The module maps features
    ``(batch, channels, feature_frames, bins)`` to ``(batch, label_frames, outputs)``: for
    ``multi_accdoa`` outputs = 3 tracks x (3 or 4 with distance) x classes, track-major; for
    ``track_wise`` outputs = 3 tracks x (classes logits + x, y, z [+ distance_m]), track-major;
    for ``multi_accdoa_stereo`` (DCASE 2025) outputs = 3 tracks x 4 x classes, track-major
    ``[t0: x(C) y(C) distance_m(C) onscreen_logit(C), t1, t2]``, (x, y) the azimuth's
    activity-coupled vector (distance always carried).

    ``side_inputs(cfg, dataset, clips, frames, *, training, cache_dir, device)`` (optional, for
    multimodal models) returns ``{stem: {name: array (frames[stem], ...)}}``: per-label-frame
    streams such as cached image or text embeddings and their masks. The core chunks them with
    the features and calls ``model(features, **streams)``. ``training`` is True for the train
    split only; the streams named in ``training_streams`` (text from the annotations) are
    dropped by the core elsewhere, so validation, test and ``seldbench predict`` see what a user
    has (:func:`seldbench.side_inputs.collect`). Cache what encoders compute through
    :class:`seldbench.side_inputs.SideInputCache`: the core then makes a run draw the same
    random numbers whether the cache was empty or filled.
    In ``eval()`` mode the model returns the SELD output tensor; in ``train()`` mode it may
    return anything its ``loss`` accepts (e.g. a dict with embeddings for contrastive terms).

    ``neutral_keys`` (``{"image.finetune_blocks": 0}``): when a new version of a plugin adds a
    config key whose default keeps the old behaviour, list it here with that default. A run's
    config hash then leaves the key out while it holds that value, so runs from before and after
    the key share one configuration: they group into one leaderboard row, and a run started
    before an upgrade resumes after it. A key that changes what the model does by default needs
    a new ``version`` instead.
    """

    name: str
    version: str
    build: Callable[..., Any]
    features: tuple[str, ...] = ("foa_logmel_iv",)  # accepted feature sets; first is the default
    output: str = "multi_accdoa"
    with_distance: bool = False
    needs_video: bool = False  # uses video frames when the clip has them
    needs_text: bool = False  # uses per-frame text (training only)
    # loss(cfg, dataset) -> (loss(output, target) -> scalar): a factory given the model's
    # resolved ``model:`` section and the DatasetSpec, so loss settings come from the config,
    # not through the forward output. None: the core loss of ``output`` (multi-ACCDOA: ADPIT
    # MSE; track-wise: PIT BCE + MSE; seldbench.api.core_loss)
    loss: Callable[..., Any] | None = None
    side_inputs: Callable[..., Any] | None = None  # per-frame inputs beside the features, below
    # side streams that are training signals only (e.g. text built from the annotations): the
    # core drops them outside the train split (seldbench.side_inputs.collect)
    training_streams: tuple[str, ...] = ()
    config: Path | None = None  # the model's default YAML
    description: str = ""
    # one line shown when the model runs without an experiment file (--config): e.g. that the
    # design on the leaderboard is another configuration, and which file gives it
    default_note: str = ""
    # config keys (dotted, under ``model:``) added after runs of this model were recorded, each
    # with the value that keeps what the model did before the key existed; see ``neutral_keys``
    # in the class docstring
    neutral_keys: Mapping[str, Any] = field(default_factory=dict)


def model_output(model: Any, spec: ModelSpec) -> tuple[str, bool]:
    """What a built ``model`` emits: its output format and whether it carries distance. The
    module's ``output_format`` / ``with_distance`` attributes win where its config chooses them
    (e.g. CRATI's backbone), else ``spec.output`` / ``spec.with_distance``."""
    fmt = getattr(model, "output_format", spec.output)
    if fmt not in OUTPUT_FORMATS:
        raise SeldbenchError(f"model '{spec.name}': output format '{fmt}' (expected one of "
                             f"{', '.join(OUTPUT_FORMATS)})")
    if fmt == "multi_accdoa_stereo":
        return fmt, True  # the 2025 format always carries distance
    return fmt, bool(getattr(model, "with_distance", spec.with_distance))


@dataclass(frozen=True)
class FeatureSpec:
    """An input representation computed by the core from 24-kHz audio.

    ``build(**cfg) -> torch.nn.Module`` maps audio ``(batch, audio channels, samples)`` (4 for
    ``foa`` / ``mic``, 2 for ``stereo``) to ``(batch, channels, feature_frames, bins)``.
    """

    name: str
    version: str
    build: Callable[..., Any]
    audio_format: str
    channels: int
    bins: int
    frames_per_label: int  # feature frames per 100-ms label frame
    description: str = ""


@runtime_checkable
class Scorer(Protocol):
    """What a metric suite's ``build(num_classes, **options)`` returns (see
    :class:`MetricSuiteSpec`). ``prediction_layout`` names the CSV columns its predictions are
    written in (``"fctxyzd"``: frame, class, track, x, y, z, distance); ``needs_distance`` says
    whether a model without distance can be scored by it. A suite whose files are not the
    headerless DCASE CSVs (``dcase2025``: a header line and other columns) also offers
    ``write_reference(path, table)`` and ``write_prediction(path, table)``, which write any
    :class:`~seldbench.metrics.csvio.EventTable` in its own format (the contract tests use
    them)."""

    prediction_layout: str
    needs_distance: bool

    def read_reference(self, path: Path) -> Any: ...

    def read_prediction(self, path: Path) -> Any: ...

    def counts(self, pairs: Any) -> Any: ...

    def summarise(self, counts: Any) -> dict: ...


@runtime_checkable
class AudioTrunk(Protocol):
    """An audio SELD network split at its representation, so a multimodal model can wrap it:
    ``decode(embed(x))`` is the model's own output.

    - ``embed(x)``: features ``(batch, channels, feature_frames, bins)`` -> ``(batch,
      label_frames, embed_width)``, the representation other modalities are fused into;
    - ``decode(h)``: ``(batch, label_frames, embed_width)`` -> the SELD output of the model's
      format (``output_format`` or its spec's ``output``);
    - ``streams``: named channel ranges ``{name: (start, stop)}`` of ``embed``'s output that may
      be fused separately (EINV2: ``sed``, ``doa``); empty when there is one stream.

    The CRNN and EINV2 builders return trunks; ``isinstance(module, AudioTrunk)`` checks one.
    """

    num_classes: int
    with_distance: bool
    embed_width: int
    streams: Mapping[str, tuple[int, int]]

    def embed(self, x: Any) -> Any: ...

    def decode(self, h: Any) -> Any: ...


SPEC_TYPES: dict[str, type] = {
    "model": ModelSpec,
    "dataset": DatasetSpec,
    "metric suite": MetricSuiteSpec,
    "feature": FeatureSpec,
}
