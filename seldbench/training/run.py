"""``seldbench run``: config -> data -> features -> train -> predict test -> score -> record.

The run folder is ``<runs_dir>/<dataset>/<model>/<run id>`` where the id is the model, dataset,
seed and a hash of the resolved config, so running the same command again resumes the same
run (or, when it has finished, prints its record). A second process running the same command
at the same time takes a sibling folder (``...-2``), so nothing is overwritten.
"""
from __future__ import annotations

import copy
import datetime as _dt
import fcntl
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


from seldbench.config import CONFIG_DIR, cache_dir_of, config_hash, resolve
from seldbench.data.roots import resolve_root
from seldbench.errors import SeldbenchError
from seldbench.io import atomic_write_json, ensure_dir
from seldbench.registry import get_registry
from seldbench.specs import model_output

SPLITS = ("train", "val", "test")


# ----------------------------------------------------------------------------- config



def resolve_run_config(model: str, dataset: str, config_file: str | None = None,
                       overrides: Sequence[str] = (), seed: int | None = None,
                       registry=None, layers: Sequence[tuple[str, dict]] = ()) -> dict:
    """The resolved config of a run (layers of :mod:`seldbench.config`), names checked."""
    reg = registry or get_registry()
    mspec, dspec = reg.get_model(model), reg.get_dataset(dataset)
    ds_yaml = CONFIG_DIR / "datasets" / f"{dspec.name}.yaml"
    cfg = resolve(dataset_yaml=ds_yaml if ds_yaml.exists() else None,
                  model_yaml=mspec.config, experiment=config_file, layers=layers,
                  overrides=[f"dataset.name={dataset}", *overrides,
                             *([f"seed={seed}"] if seed is not None else [])])
    feature = cfg["features"]["name"] or mspec.features[0]
    if feature not in mspec.features:
        raise SeldbenchError(f"features.name={feature}: model '{model}' accepts "
                             f"{', '.join(mspec.features)}")
    reg.get_feature(feature)
    cfg["features"]["name"] = feature
    suites = cfg["eval"]["suites"] or list(dspec.metric_suites)
    for s in suites:
        reg.get_metric_suite(s)
    cfg["eval"]["suites"] = list(suites)
    return cfg


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
    reg = get_registry()
    cfg = resolve_run_config(model, dataset, config_file, overrides, seed, reg, layers)
    digest = config_hash(cfg, reg.get_model(model).neutral_keys)
    seed = int(cfg["seed"])
    runs_dir = Path(out or cfg["output"]["runs_dir"])
    base = runs_dir / dataset / model / f"{model}-{dataset}-s{seed}-{digest[:8]}"
    dist = _Dist.start(cfg["train"]["device"])
    rd = claim_run_dir(base) if dist.rank0 else None
    try:
        path = Path(dist.share(str(rd.path) if rd else None))
        record_path = path / "record.json"
        if dist.share(record_path.exists() if dist.rank0 else None):
            if dist.rank0:
                log(f"{path}: run already complete")
            return json.loads(record_path.read_text())
        return _run(reg, model, cfg, digest, path, progress, on_step, log, dist)
    finally:
        if rd is not None:
            rd.release()
        dist.stop()


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


def _run(reg, model_name: str, cfg: dict, digest: str, run_dir: Path, progress: bool,
         on_step, log, dist: _Dist) -> dict:
    import torch

    from seldbench.features.cache import FeatureCache, Normalizer
    from seldbench.results.records import (device_info, file_sha256, hash_files, provenance,
                                           write_record)
    from seldbench.training.data import ChunkDataset, collate_batch, load_split
    from seldbench.training.predict import Predictor
    from seldbench.training.trainer import TrainConfig, Trainer, pick_device, seed_everything

    t_start = time.perf_counter()
    # package versions and git state of the code this process runs: taken now, not at the end,
    # so a checkout that moves during a long run does not misdate the record
    prov = provenance()
    mspec = reg.get_model(model_name)
    dspec = reg.get_dataset(cfg["dataset"]["name"])
    fspec = reg.get_feature(cfg["features"]["name"])
    tr = cfg["train"]
    if tr["threads"]:
        torch.set_num_threads(int(tr["threads"]))
    seed = int(cfg["seed"])
    seed_everything(seed, bool(tr["deterministic"]))
    device = pick_device(tr["device"])
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if dist.rank0:
        atomic_write_json(run_dir / "config.json", cfg)

    # data: files, features (cached), normaliser (train only), labels
    root = resolve_root(dspec, cfg["dataset"]["root"])
    if dspec.prepare is not None and dist.rank0:
        dspec.prepare(root)
    dist.barrier()  # rank 0 generates data and features; the others then read them
    clips = {s: dspec.list_clips(root, s) for s in SPLITS}
    for s in SPLITS:
        if not clips[s]:
            raise SeldbenchError(f"dataset '{dspec.name}' at {root}: split '{s}' has no clips")
    cache_dir = cache_dir_of(cfg)
    cache = FeatureCache(cache_dir, registry=reg)
    cached = {}
    for turn in ((0,) if dist.world < 2 else (0, 1)):
        if (turn == 0) == dist.rank0:
            cached = {s: cache.get(dspec.name, s, clips[s], fspec.name, device=device)
                      for s in SPLITS}
        dist.barrier()
    norm = Normalizer.fit(cached["train"])
    if dist.rank0:
        norm.save(run_dir / "normalizer.npz")

    model = mspec.build(cfg["model"], dspec, fspec)
    output, with_distance = model_output(model, mspec)
    data = {s: load_split(s, clips[s], dspec, fspec, cached[s], norm.apply, output,
                          with_distance) for s in SPLITS}
    if mspec.side_inputs is not None:  # e.g. cached image/text embeddings (rank 0 first)
        for turn in ((0,) if dist.world < 2 else (0, 1)):
            if (turn == 0) == dist.rank0:
                for s in SPLITS:
                    data[s].side = mspec.side_inputs(
                        cfg["model"], dspec, clips[s], data[s].label_frames,
                        training=s == "train", cache_dir=cache_dir, device=device)
            dist.barrier()
    chunk = int(round(tr["chunk_s"] / 0.1))
    train_set = ChunkDataset(data["train"], chunk)
    gen = torch.Generator().manual_seed(seed)
    sampler = None
    if dist.world > 1:  # each process a shard; train.batch_size stays the global batch
        sampler = torch.utils.data.DistributedSampler(train_set, dist.world, dist.rank,
                                                      shuffle=True, seed=seed)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=max(1, int(tr["batch_size"]) // dist.world),
        shuffle=sampler is None, sampler=sampler, generator=gen if sampler is None else None,
        collate_fn=collate_batch, num_workers=int(tr["num_workers"]),
        persistent_workers=int(tr["num_workers"]) > 0, pin_memory=device.type == "cuda")
    loss_fn = _loss(mspec, output, with_distance)

    # model selection on val with the first suite; test scored with every suite
    suites = cfg["eval"]["suites"]
    sel = reg.get_metric_suite(suites[0])
    predictor = Predictor(output, len(dspec.classes), chunk, fspec.frames_per_label,
                          with_distance, device, cfg["eval"])
    sel_scorer = sel.build(len(dspec.classes))
    val_refs = [sel_scorer.read_reference(c.metadata) for c in clips["val"]]

    def validate(m):
        figures = None
        if dist.rank0:  # one process scores; every process gets the figures
            val = data["val"]
            tables = predictor.predict(m, [val.features[s] for s in val.stems],
                                       [val.side_of(s) for s in val.stems])
            figures = sel_scorer.summarise(sel_scorer.counts(list(zip(val_refs, tables))).sum(0))
            figures = {k: v for k, v in figures.items() if k != "classwise"}
        figures = dist.share(figures)
        return figures[sel.rank_by], figures

    trainer = Trainer(model, loss_fn, loader, validate, sel.higher_is_better, run_dir,
                      TrainConfig.from_cfg(tr), device, seed, chunk * 0.1, on_step, progress,
                      distributed=dist.world > 1)
    if trainer.resume() and dist.rank0:
        log(f"{run_dir}: resuming after epoch {trainer.start_epoch - 1}")
    history = trainer.fit()
    if not dist.rank0:
        return {}

    # test: best checkpoint, predictions as DCASE CSVs, every suite with jackknife intervals
    from seldbench.training.trainer import load_checkpoint

    model.load_state_dict(load_checkpoint(trainer.best_path, device)["model"])
    test = data["test"]
    tables = predictor.predict(model, [test.features[s] for s in test.stems],
                               [test.side_of(s) for s in test.stems])
    results = score_predictions(reg, suites, dspec, clips["test"], tables, run_dir,
                                with_distance, bool(cfg["eval"]["jackknife"]))
    n_params = sum(p.numel() for p in model.parameters())
    files = [c.metadata for s in SPLITS for c in clips[s]] + \
        [p for s in SPLITS for c in clips[s] for p in c.audio.values()]
    record = {
        "schema": 1,
        "run_id": run_dir.name,
        "status": "complete",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seldbench_version": prov["packages"].get("seldbench", "unknown"),
        "model": {"name": mspec.name, "version": mspec.version, "params": int(n_params),
                  "plugin": reg.plugin_of("model", mspec.name)},
        "dataset": {"name": dspec.name, "version": dspec.version, "data_hash": hash_files(files)},
        "split": "test",
        "selection": {"split": "val", "suite": sel.name, "figure": sel.rank_by,
                      "best_epoch": history.best_epoch, "best_value": history.best_value,
                      "val_is_test": False},
        "results": results,
        "config": cfg, "config_hash": digest, "seed": int(cfg["seed"]),
        "recipe": str(cfg["output"]["recipe"]),
        "device": {**device_info(str(device)), "processes": dist.world},
        **prov,
        "wall_time_s": time.perf_counter() - t_start,
        "train": {"epochs_run": len(history.epochs),
                  "audio_s_per_s": history.audio_seconds / max(history.train_seconds, 1e-9),
                  **_peak_memory(device),
                  "history": [{"epoch": e["epoch"], "loss": e["loss"], "val": e["val"]}
                              for e in history.epochs]},
        "checkpoint": {"file": trainer.best_path.name, "sha256": file_sha256(trainer.best_path)},
    }
    write_record(run_dir, record)
    return record


def _peak_memory(device) -> dict:
    """Peak resident memory of this process (GB) and, on CUDA, peak allocated GPU memory."""
    import resource

    import torch

    out = {"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if device.type == "cuda":
        out["peak_gpu_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def _loss(mspec, output: str, with_distance: bool):
    if mspec.loss is not None:
        return mspec.loss
    if output == "multi_accdoa":
        from seldbench.training.losses import adpit_loss

        return lambda out, y: adpit_loss(out, y, with_distance=with_distance)
    if output == "track_wise":
        from seldbench.training.losses import pit_loss

        return lambda out, y: pit_loss(out, y, with_distance=with_distance)
    raise SeldbenchError(f"model '{mspec.name}': output '{output}' has no core loss yet; "
                         "give the ModelSpec a loss")


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
        folder = run_dir / "predictions" / name
        pairs = []
        for clip, table in zip(clips, tables):
            t = as_layout(table, scorer.prediction_layout)
            path = folder / f"{clip.stem}.csv"
            write_dcase_csv(path, t)
            pairs.append((scorer.read_reference(clip.metadata), scorer.read_prediction(path)))
        per_file = scorer.counts(pairs)
        figures, interval = summarise_with_interval(scorer, per_file, spec.figures,
                                                    jackknife and len(pairs) > 1)
        results[name] = {"figures": {k: _num(v) for k, v in figures.items() if k != "classwise"},
                         "interval": {k: [_num(a), _num(b)] for k, (a, b) in interval.items()},
                         "classwise": figures["classwise"], "options": {}}
    return results


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
