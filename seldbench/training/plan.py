"""The plan of a run, resolved once: specs looked up, config typed, splits from the dataset.

Every stage of ``seldbench run`` (:mod:`seldbench.training.run`) and the prediction path
(:mod:`seldbench.training.inference`) reads this instead of raw ``cfg[...]`` lookups, and
:func:`assemble` is the one place a model is built from a plan, so what a run trains is what
``seldbench predict`` loads.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seldbench.config import cache_dir_of, config_hash, resolve
from seldbench.errors import SeldbenchError
from seldbench.specs import DatasetSpec, FeatureSpec, MetricSuiteSpec, ModelSpec, model_output

#: The roles a dataset's splits play in a run, in order: fit, select, report.
ROLES = ("train", "val", "test")


@dataclass(frozen=True)
class EvalConfig:
    """The ``eval:`` section, typed: suites (the first selects the model), jackknife
    intervals, the multi-ACCDOA activity ``threshold`` and track unification angle (degrees)."""

    suites: tuple[str, ...]
    jackknife: bool = True
    threshold: float = 0.5
    unify_deg: float = 15.0

    @classmethod
    def from_cfg(cls, section: Mapping) -> EvalConfig:
        return cls(tuple(section["suites"]), bool(section["jackknife"]),
                   float(section["threshold"]), float(section["unify_deg"]))


@dataclass(frozen=True)
class OutputConfig:
    """The ``output:`` section, typed: where run folders go and the recipe label of the row."""

    runs_dir: Path
    recipe: str

    @classmethod
    def from_cfg(cls, section: Mapping, out: str | None = None) -> OutputConfig:
        return cls(Path(out or section["runs_dir"]).expanduser(), str(section["recipe"]))


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs to know before it reads any data."""

    cfg: dict  # the resolved config, as saved with the run and hashed
    digest: str  # config hash (seldbench.config.config_hash with the model's neutral keys)
    seed: int
    model: ModelSpec
    dataset: DatasetSpec
    feature: FeatureSpec
    suites: tuple[MetricSuiteSpec, ...]  # the first selects the model on the val split
    train: Any  # seldbench.training.trainer.TrainConfig
    eval: EvalConfig
    output: OutputConfig
    splits: tuple[str, ...]  # the dataset's splits a run uses: ROLES, in that order

    @property
    def selection(self) -> MetricSuiteSpec:
        return self.suites[0]

    @property
    def chunk_frames(self) -> int:
        """Training and prediction sequence length in 100-ms label frames."""
        from seldbench.data.labels import LABEL_HOP_S

        return int(round(float(self.train.chunk_s) / LABEL_HOP_S))

    @property
    def cache_dir(self) -> Path:
        return cache_dir_of(self.cfg)

    @property
    def run_id(self) -> str:
        m, d = self.model.name, self.dataset.name
        return f"{m}-{d}-s{self.seed}-{self.digest[:8]}"

    @property
    def run_base(self) -> Path:
        """``<runs_dir>/<dataset>/<model>/<run id>`` (a busy one gets ``-2``, ...)."""
        return self.output.runs_dir / self.dataset.name / self.model.name / self.run_id


def resolve_run_config(model: str, dataset: str, config_file: str | None = None,
                       overrides: Sequence[str] = (), seed: int | None = None,
                       registry=None, layers: Sequence[tuple[str, dict]] = ()) -> dict:
    """The resolved config of a run (layers of :mod:`seldbench.config`), names checked."""
    from seldbench.registry import get_registry
    from seldbench.training.finetune import resolve_init

    reg = registry or get_registry()
    mspec, dspec = reg.get_model(model), reg.get_dataset(dataset)
    cfg = resolve(dataset_yaml=dspec.config, model_yaml=mspec.config, experiment=config_file,
                  layers=layers,
                  overrides=[f"dataset.name={dataset}", *overrides,
                             *([f"seed={seed}"] if seed is not None else [])])
    # default: the model's first feature set in one of the dataset's audio formats
    fitting = [f for f in mspec.features if reg.get_feature(f).audio_format in dspec.formats]
    feature = cfg["features"]["name"] or (fitting or mspec.features)[0]
    if feature not in mspec.features:
        raise SeldbenchError(f"features.name={feature}: model '{model}' accepts "
                             f"{', '.join(mspec.features)}")
    fmt = reg.get_feature(feature).audio_format
    if fmt not in dspec.formats:
        raise SeldbenchError(f"features.name={feature}: it reads {fmt} audio, dataset "
                             f"'{dataset}' has {', '.join(dspec.formats)}"
                             + (f" (model '{model}' has no feature set for it)" if not fitting
                                else f" (use {', '.join(fitting)})"))
    cfg["features"]["name"] = feature
    suites = cfg["eval"]["suites"] or list(dspec.metric_suites)
    for s in suites:
        reg.get_metric_suite(s)
    cfg["eval"]["suites"] = list(suites)
    resolve_init(cfg, reg)  # train.init_sha256 from the checkpoint: part of the config hash
    return cfg


def plan_from_config(cfg: dict, model: str, registry=None, out: str | None = None) -> RunPlan:
    """The plan of an already resolved config (a new run, or a finished run's config.json)."""
    from seldbench.registry import get_registry
    from seldbench.training.trainer import TrainConfig

    reg = registry or get_registry()
    mspec = reg.get_model(model)
    dspec = reg.get_dataset(cfg["dataset"]["name"])
    splits = tuple(dspec.splits)
    if not set(ROLES) <= set(splits):
        raise SeldbenchError(f"dataset '{dspec.name}': splits {', '.join(splits)}; a run needs "
                             f"{', '.join(ROLES)}")
    ev = EvalConfig.from_cfg(cfg["eval"])
    return RunPlan(cfg=cfg, digest=config_hash(cfg, mspec.neutral_keys), seed=int(cfg["seed"]),
                   model=mspec, dataset=dspec, feature=reg.get_feature(cfg["features"]["name"]),
                   suites=tuple(reg.get_metric_suite(s) for s in ev.suites),
                   train=TrainConfig.from_cfg(cfg["train"]), eval=ev,
                   output=OutputConfig.from_cfg(cfg["output"], out),
                   splits=tuple(s for s in ROLES if s in splits))


def plan_run(model: str, dataset: str, config_file: str | None = None,
             overrides: Sequence[str] = (), seed: int | None = None, out: str | None = None,
             registry=None, layers: Sequence[tuple[str, dict]] = ()) -> RunPlan:
    """Resolve a run's config and look up its specs, once."""
    cfg = resolve_run_config(model, dataset, config_file, overrides, seed, registry, layers)
    return plan_from_config(cfg, model, registry, out)


@dataclass
class Assembled:
    """A model built from a plan, what it emits, and the predictor that decodes it."""

    model: Any  # torch.nn.Module
    output: str  # "multi_accdoa" | "track_wise" | "multi_accdoa_stereo"
    with_distance: bool
    predictor: Any  # seldbench.training.predict.Predictor


def assemble(plan: RunPlan, device) -> Assembled:
    """Build the plan's model (its config keys checked by its builder) and its predictor on
    ``device``: the one assembly shared by ``seldbench run`` and ``seldbench predict``."""
    from seldbench.training.predict import Predictor

    model = plan.model.build(plan.cfg["model"], plan.dataset, plan.feature)
    output, with_distance = model_output(model, plan.model)
    predictor = Predictor(output, len(plan.dataset.classes), plan.chunk_frames,
                          plan.feature.frames_per_label, with_distance, device,
                          {"threshold": plan.eval.threshold, "unify_deg": plan.eval.unify_deg},
                          model_name=plan.model.name)
    return Assembled(model, output, with_distance, predictor)


def check_distance_labels(plan: RunPlan, assembled: Assembled) -> None:
    """A model that predicts distance trains on distance labels: on a dataset whose metadata
    has none (5 columns, TAU-NIGENS 2021) that is one error naming the key, before any data is
    read, instead of a failure on the first label file after the features were computed."""
    if assembled.with_distance and plan.dataset.metadata_format == "dcase" \
            and plan.dataset.metadata_columns < 6:
        raise SeldbenchError(f"model '{plan.model.name}' predicts distance (model.with_distance"
                             f"), but dataset '{plan.dataset.name}' has no distance labels "
                             f"({plan.dataset.metadata_columns}-column metadata): set "
                             f"model.with_distance=false")


def output_width(output: str, classes: int, with_distance: bool) -> int:
    """Values per label frame that an output format carries for ``classes`` classes."""
    from seldbench.training.losses import (multi_accdoa_output_size, stereo_output_size,
                                           track_wise_output_size)

    size = {"multi_accdoa": multi_accdoa_output_size, "track_wise": track_wise_output_size,
            "multi_accdoa_stereo": stereo_output_size}[output]
    return size(classes, with_distance)


def check_output(y, model_name: str, output: str, classes: int, with_distance: bool,
                 frames: int | None = None) -> None:
    """A model's SELD tensor ``(batch, label_frames, width)`` checked against its declared
    format: a plugin's shape mistake is one error naming the model, not a failure deep in the
    loss or the decoder."""
    width = output_width(output, classes, with_distance)
    shape = tuple(y.shape)
    if len(shape) != 3 or shape[2] != width or (frames is not None and shape[1] != frames):
        want = f"(batch, {frames if frames is not None else 'label_frames'}, {width})"
        raise SeldbenchError(f"model '{model_name}': output of shape {shape}, expected {want} "
                             f"for {output}{' with distance' if with_distance else ''} and "
                             f"{classes} classes")


def make_loss(plan: RunPlan, assembled: Assembled):
    """``loss(output, target) -> scalar``: the spec's loss factory given the ``model:``
    section and the dataset, or the core loss of the model's output format; a tensor output
    is checked against the declared format first."""
    import torch

    from seldbench.training.losses import core_loss

    if plan.model.loss is not None:
        loss = plan.model.loss(plan.cfg["model"], plan.dataset)
    else:
        loss = core_loss(assembled.output, assembled.with_distance)
    args = (plan.model.name, assembled.output, len(plan.dataset.classes),
            assembled.with_distance)

    def checked(output, target):
        if torch.is_tensor(output):
            check_output(output, *args, frames=target.shape[1])
        return loss(output, target)

    return checked
