"""``seldbench run``: config -> data -> features -> train -> predict test -> score -> record.

The run folder is ``<runs_dir>/<dataset>/<model>/<run id>`` where the id is the model, dataset,
seed and a hash of the resolved config, so running the same command again resumes the same
run (or, when it has finished, prints its record). A second process running the same command
at the same time takes a sibling folder (``...-2``), so nothing is overwritten.
"""
from __future__ import annotations

import copy
import fcntl
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


import numpy as np

from seldbench.data.roots import resolve_root
from seldbench.errors import SeldbenchError
from seldbench.io import atomic_write_json, ensure_dir
from seldbench.registry import get_registry
from seldbench.training.plan import ROLES, RunPlan, plan_run, resolve_run_config

SPLITS = ROLES  # kept for callers of the old name
__all__ = ["SPLITS", "claim_run_dir", "record_layer", "rerun", "resolve_run_config", "run",
           "score_predictions"]
def rerun(record_path: str | os.PathLike, overrides: Sequence[str] = (), out: str | None = None,
          progress: bool = True, log=print) -> tuple[dict, dict]:
    """Train again what a run record describes: its model, dataset and seed, and its resolved
    config as the last config layer, except where files go on the machine that made it
    (``output.runs_dir``, ``dataset.root``, ``features.cache_dir``: this machine's defaults,
    or ``overrides``). Returns ``(old record, new record)``. A key the record holds that
    today's config no longer has is an error naming the record and the key."""
    from seldbench.results.records import load_records

    path = Path(record_path)
    path = path / "record.json" if path.is_dir() else path
    (old,) = load_records(path)
    new = run(old["model"]["name"], old["dataset"]["name"], None, overrides, int(old["seed"]),
              out, progress=progress, log=log, layers=[(f"{path}: config", record_layer(old))])
    return old, new


def record_layer(record: dict) -> dict:
    """A run record's resolved config as a config layer for :func:`rerun`: without the seed
    (given apart) and without where files went on the machine that made it."""
    layer = copy.deepcopy(record["config"])
    layer.pop("seed", None)
    for section, key in (("output", "runs_dir"), ("dataset", "root"), ("features", "cache_dir")):
        if isinstance(layer.get(section), dict):
            layer[section].pop(key, None)
    return layer


# ----------------------------------------------------------------------------- run folder


@dataclass
class RunDir:
    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1


def claim_run_dir(base: Path) -> RunDir:
    """``base`` (or ``base-2``, ``base-3``... when another live process holds it), locked for
    this process. The lock is a kernel ``flock`` on ``.lock``: it dies with its process, so a
    killed run's folder is free at once (that run resumes), and two processes starting at the
    same instant can never both hold one folder (a pid written into the file could not
    promise that: the other process may read the file between its creation and its write)."""
    for k in range(1, 1000):
        path = base if k == 1 else base.with_name(f"{base.name}-{k}")
        ensure_dir(path)  # a file in the way or a read-only disk: one error naming it
        fd = os.open(path / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # busy: try the next folder
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())  # for people looking, not for the lock
        return RunDir(path, fd)
    raise SeldbenchError(f"{base}: no free run folder")


# ----------------------------------------------------------------------------- main entry


def run(model: str, dataset: str, config_file: str | None = None,
        overrides: Sequence[str] = (), seed: int | None = None, out: str | None = None,
        progress: bool = True, on_step: Callable | None = None, log=print,
        layers: Sequence[tuple[str, dict]] = ()) -> dict:
    """Train ``model`` on ``dataset``, predict and score its test split; returns the record.
    ``layers``: config mappings merged after ``config_file`` (see :func:`rerun`)."""
    from seldbench.results.records import data_identity
    from seldbench.training.augment import check_augment
    from seldbench.training.plan import assemble, check_distance_labels

    reg = get_registry()
    plan = plan_run(model, dataset, config_file, overrides, seed, out, reg, layers)
    if plan.model.default_note and config_file is None and not layers:
        log(f"note: model '{plan.model.name}': {plan.model.default_note}")
    dist = _Dist.start(plan.train.device)
    t_start = time.perf_counter()  # the record's wall time: data preparation included
    rd = None
    try:
        if dist.rank0:  # a bad --out fails now, not after the data was generated
            ensure_dir(plan.run_base.parent, plan.run_base)
        device = _set_up(plan, dist)
        built = assemble(plan, device)  # a bad model key fails here, before any data is read
        check_distance_labels(plan, built)
        check_augment(plan.cfg["train"]["augment"], plan.feature.name, plan.feature.channels,
                      plan.feature.bins, plan.model.side_inputs is not None)
        clips = _list_clips(plan, dist, log)
        identity = data_identity(clips, plan.feature.audio_format,
                                 plan.model.needs_video and plan.dataset.has_video)
        if dist.rank0:
            rd = claim_run_dir(data_folder(plan.run_base, identity["data_hash"], log))
        path = Path(dist.share(str(rd.path) if rd else None))
        record_path = path / "record.json"
        if dist.share(record_path.exists() if dist.rank0 else None):
            if dist.rank0:
                log(f"{path}: run already complete")
            return json.loads(record_path.read_text())
        return _run(reg, plan, built, device, clips, identity, path, progress, on_step, log,
                    dist, t_start)
    finally:
        if rd is not None:
            rd.release()
        dist.stop()


def data_folder(base: Path, data_hash: str, log=print) -> Path:
    """The run folder for this data: ``base``, unless a run there was made with other data
    (its ``data.json`` or record says so), then ``base-data-<hash>``: a finished run is never
    taken for a run of other data, nor resumed on it."""
    seen = None
    for name, key in (("data.json", ("data_hash",)), ("record.json", ("dataset", "data_hash"))):
        try:
            doc = json.loads((base / name).read_text(encoding="utf-8"))
            for k in key:
                doc = doc[k]
            seen = str(doc)
            break
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if seen is None or seen == data_hash:
        return base
    other = base.with_name(f"{base.name}-data-{data_hash[:8]}")
    log(f"{base}: made with other data (data hash {seen[:8]}, this data {data_hash[:8]}); "
        f"this run goes to {other}")
    return other


def _list_clips(plan: RunPlan, dist, log) -> dict:
    """The clips of each split (the data prepared on rank 0 first, e.g. generated); says when
    a model that reads video gets clips without it."""
    root = resolve_root(plan.dataset, plan.cfg["dataset"]["root"])
    if plan.dataset.prepare is not None and dist.rank0:
        plan.dataset.prepare(root)
    dist.barrier()  # rank 0 generates data; the others then read it
    clips = {s: plan.dataset.list_clips(root, s) for s in plan.splits}
    for s in plan.splits:
        if not clips[s]:
            raise SeldbenchError(f"dataset '{plan.dataset.name}' at {root}: split '{s}' has "
                                 f"no clips")
    clips["train"] = train_slice(clips["train"], plan.cfg["train"]["max_clips"])
    if plan.model.needs_video and plan.dataset.has_video and dist.rank0:
        for s in plan.splits:
            missing = sum(c.video is None for c in clips[s])
            if missing:
                whole = " (no video at all: is the video folder there?)" \
                    if missing == len(clips[s]) else ""
                log(f"warning: model '{plan.model.name}' reads video, but {missing} of "
                    f"{len(clips[s])} {s} clips of {root} have none{whole}; they get zeros "
                    f"and mask 0")
    return clips


def train_slice(clips: list, max_clips: int | None) -> list:
    """``train.max_clips`` clips of the train split, spread evenly over it in name order (so
    over its rooms), the same for every seed; all of them when None or more than there are."""
    if max_clips is None or max_clips >= len(clips):
        return clips
    ordered = sorted(clips, key=lambda c: c.stem)
    picks = np.unique(np.round(np.linspace(0, len(ordered) - 1, int(max_clips))).astype(int))
    return [ordered[i] for i in picks]


@dataclass
class _Dist:
    """This process's place in a ``torchrun`` job (world 1 when started directly)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def rank0(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, device: str) -> _Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world < 2:
            return cls()
        import torch
        import torch.distributed as td

        cuda = device != "cpu" and torch.cuda.is_available()
        if not td.is_initialized():
            td.init_process_group(backend="nccl" if cuda else "gloo")
        return cls(world, td.get_rank(), int(os.environ.get("LOCAL_RANK", "0")))

    def share(self, value):
        """``value`` of rank 0, on every rank."""
        if self.world < 2:
            return value
        import torch.distributed as td

        box = [value]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            td.barrier()

    def stop(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def _run(reg, plan: RunPlan, built, device, clips: dict, identity: dict, run_dir: Path,
         progress: bool, on_step, log, dist: _Dist, t_start: float) -> dict:
    """The stages of a run after the model is built and the data listed (:func:`run`):
    weights to start from, features, train, test, record."""
    from seldbench.results.records import provenance, run_record, write_record
    from seldbench.training.plan import make_loss

    # package versions and git state of the code this process runs: taken now, not at the end,
    # so a checkout that moves during a long run does not misdate the record
    prov = provenance()
    if dist.rank0:
        atomic_write_json(run_dir / "config.json", plan.cfg)
        atomic_write_json(run_dir / "data.json", identity)  # what data_folder() compares
    init = _init_weights(plan, built, log if dist.rank0 else (lambda m: None))
    loss = make_loss(plan, built)
    data, norm = _load_data(reg, plan, built, clips, run_dir, device, dist, progress, log)
    trainer = _train(plan, built, loss, clips, data, run_dir, device, on_step, progress, log,
                     dist, norm)
    if not dist.rank0:
        return {}
    results = _test(reg, plan, built, trainer, clips, data, run_dir, device)
    record = run_record(plan, run_dir, built.model, reg.plugin_of("model", plan.model.name),
                        clips, trainer, results, prov, device, dist.world,
                        time.perf_counter() - t_start, identity, init)
    write_record(run_dir, record)
    return record


def _set_up(plan: RunPlan, dist: _Dist):
    """Threads, seeds and the device of this process."""
    import torch

    from seldbench.training.trainer import pick_device, seed_everything

    if plan.train.threads:
        torch.set_num_threads(int(plan.train.threads))
    seed_everything(plan.seed, bool(plan.train.deterministic))
    device = pick_device(plan.train.device)
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    return device


def _init_weights(plan: RunPlan, built, log) -> dict | None:
    """``train.init_from`` weights loaded and ``train.freeze`` applied, before the optimiser
    is made; what the record keeps of it (None when neither is set)."""
    from seldbench.training.finetune import freeze, head_change, init_source, load_init

    train = plan.cfg["train"]
    out = {}
    if train["init_from"] is not None:  # resolve_init filled in its SHA-256, checked on load
        path = Path(train["init_from"])
        source = init_source(path, train["init_sha256"])
        classes = len(plan.dataset.classes)
        fresh = load_init(built.model, source, classes, built.with_distance)
        out = {"from": str(path), "sha256": source.sha256, "reinitialised": fresh}
        log(f"weights from {path}" + (
            f"; re-initialised ({head_change(source, classes, built.with_distance)}): "
            f"{', '.join(fresh)}" if fresh else ""))
    if train["freeze"]:
        out["frozen"] = list(train["freeze"])
        out["frozen_values"] = freeze(built.model, train["freeze"])
    return out or None


def _rank0_first(dist: _Dist, work: Callable[[], object]):
    """``work()`` on rank 0, then on the other ranks (which read what rank 0 cached)."""
    result = None
    for turn in ((0,) if dist.world < 2 else (0, 1)):
        if (turn == 0) == dist.rank0:
            result = work()
        dist.barrier()
    return result


def _load_data(reg, plan: RunPlan, built, clips: dict, run_dir: Path, device, dist: _Dist,
               progress: bool = False, log=print):
    """Cached features, the train-split normaliser (saved with the run), labels and side
    inputs: ``({split: SplitData}, the normaliser)``."""
    from seldbench.features.cache import FeatureCache, Normalizer
    from seldbench.side_inputs import collect
    from seldbench.training.data import load_split

    progress = progress and dist.rank0  # one process reports
    cache = FeatureCache(plan.cache_dir, registry=reg, progress=progress)
    cached = _rank0_first(dist, lambda: {
        s: cache.get(plan.dataset.name, s, clips[s], plan.feature.name, device=device)
        for s in plan.splits})
    norm = Normalizer.fit(cached["train"])
    if dist.rank0:
        norm.save(run_dir / "normalizer.npz")
    data = {s: load_split(s, clips[s], plan.dataset, plan.feature, cached[s], norm.apply,
                          built.output, built.with_distance) for s in plan.splits}
    if plan.model.side_inputs is not None:  # e.g. cached image/text embeddings (rank 0 first)
        def side():
            for s in plan.splits:
                data[s].side = collect(plan.model, plan.cfg["model"], plan.dataset, clips[s],
                                       data[s].label_frames, training=s == "train",
                                       cache_dir=plan.cache_dir, device=device,
                                       progress=f"{plan.dataset.name} {s}" if progress else "",
                                       log=log)
        _rank0_first(dist, side)
    return data, norm


def _train(plan: RunPlan, built, loss, clips, data, run_dir: Path, device, on_step, progress,
           log, dist: _Dist, norm):
    """Train on the train split (``train.augment`` applied to its batches only), selecting the
    best epoch on val with the first suite."""
    import torch

    from seldbench.training.augment import build_augmenter
    from seldbench.training.data import ChunkDataset, collate_batch
    from seldbench.training.trainer import Trainer

    train_set = ChunkDataset(data["train"], plan.chunk_frames)
    gen = torch.Generator().manual_seed(plan.seed)
    sampler = None
    if dist.world > 1:  # each process a shard; train.batch_size stays the global batch
        sampler = torch.utils.data.DistributedSampler(train_set, dist.world, dist.rank,
                                                      shuffle=True, seed=plan.seed)
    workers = int(plan.train.num_workers)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=max(1, int(plan.train.batch_size) // dist.world),
        shuffle=sampler is None, sampler=sampler, generator=gen if sampler is None else None,
        collate_fn=collate_batch, num_workers=workers, persistent_workers=workers > 0,
        pin_memory=device.type == "cuda")
    augment = build_augmenter(plan.cfg["train"]["augment"], feature=plan.feature.name,
                              mean=norm.mean, std=norm.std, output=built.output,
                              num_classes=len(plan.dataset.classes),
                              has_side_inputs=plan.model.side_inputs is not None,
                              seed=plan.seed, rank=dist.rank)
    sel = plan.selection
    scorer = sel.build(len(plan.dataset.classes))
    val = data["val"]
    refs = [scorer.read_reference(c.metadata) for c in clips["val"]]

    def validate(m):
        figures = None
        if dist.rank0:  # one process scores; every process gets the figures
            tables = built.predictor.predict(m, [val.features[s] for s in val.stems],
                                             [val.side_of(s) for s in val.stems])
            figures = scorer.summarise(scorer.counts(list(zip(refs, tables))).sum(0))
            figures = {k: v for k, v in figures.items() if k != "classwise"}
        figures = dist.share(figures)
        return figures[sel.rank_by], figures

    trainer = Trainer(built.model, loss, loader, validate, sel.higher_is_better, run_dir,
                      plan.train, device, plan.seed, plan.chunk_frames * 0.1, on_step,
                      progress, distributed=dist.world > 1, augment=augment)
    if trainer.resume() and dist.rank0:
        log(f"{run_dir}: resuming after epoch {trainer.start_epoch - 1}")
    trainer.fit()
    return trainer


def _test(reg, plan: RunPlan, built, trainer, clips, data, run_dir: Path, device) -> dict:
    """The best checkpoint predicts the test split, scored with every suite."""
    from seldbench.training.trainer import load_checkpoint

    built.model.load_state_dict(load_checkpoint(trainer.best_path, device)["model"])
    test = data["test"]
    tables = built.predictor.predict(built.model, [test.features[s] for s in test.stems],
                                     [test.side_of(s) for s in test.stems])
    return score_predictions(reg, plan.eval.suites, plan.dataset, clips["test"], tables,
                             run_dir, built.with_distance, plan.eval.jackknife)


def score_predictions(reg, suites: Sequence[str], dspec, clips, tables, run_dir: Path,
                      with_distance: bool, jackknife: bool) -> dict:
    """Write the test predictions as DCASE CSVs (one folder per suite layout) and score them
    exactly as ``seldbench score`` would: read back strictly, every file, jackknife intervals."""
    from seldbench.metrics.csvio import as_layout, write_dcase_csv
    from seldbench.metrics.score import summarise_with_interval

    results = {}
    for name in suites:
        spec = reg.get_metric_suite(name)
        scorer = spec.build(len(dspec.classes))
        if scorer.needs_distance and not with_distance:
            results[name] = {"skipped": "the model predicts no distance"}
            continue
        if not hasattr(scorer, "write_prediction") and any(t.layout == "fctado" for t in tables):
            results[name] = {"skipped": "the model predicts azimuth only (DCASE 2025 stereo)"}
            continue
        folder = run_dir / "predictions" / name
        pairs = []
        for clip, table in zip(clips, tables):
            path = folder / f"{clip.stem}.csv"
            if hasattr(scorer, "write_prediction"):  # its own format (dcase2025: header, cm)
                scorer.write_prediction(path, table)
            else:
                write_dcase_csv(path, as_layout(table, scorer.prediction_layout))
            pairs.append((scorer.read_reference(clip.metadata), scorer.read_prediction(path)))
        per_file = scorer.counts(pairs)
        figures, interval = summarise_with_interval(scorer, per_file, spec.figures,
                                                    jackknife and len(pairs) > 1)
        results[name] = {"figures": {k: _num(v) for k, v in figures.items() if k != "classwise"},
                         "interval": {k: [_num(a), _num(b)] for k, (a, b) in interval.items()},
                         "classwise": figures["classwise"], "options": {}}
        if interval:  # which intervals mean little (few files, out of range), as score says
            from seldbench.metrics.jackknife import check_intervals

            results[name]["jackknife_check"] = check_intervals(figures, interval, len(pairs))
    return results


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
