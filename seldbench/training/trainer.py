"""The training loop shared by every model: epochs, validation, best checkpoint, resume.

A :class:`Trainer` owns one run folder. ``last.pt`` (model, optimiser, scaler, RNG states,
history) is written atomically at the end of every epoch and ``best.pt`` whenever validation
improves, so a run killed at any point resumes from its last finished epoch when the same
command is run again, and - with deterministic algorithms and the RNG states restored - ends
with the same weights as an uninterrupted run.
"""
from __future__ import annotations

import errno
import math
import os
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seldbench.config import OPTIMIZERS
from seldbench.errors import SeldbenchError
from seldbench.io import atomic_open
from seldbench.rng import rng_state, set_rng_state


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and torch; with ``deterministic`` ask torch for deterministic
    algorithms (warn-only where an op has none)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS picks reproducible kernels only with a fixed workspace; it reads this when its
        # first handle is made, which is after seeding (the model is built later)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU; otherwise the named device, checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SeldbenchError(f"train.device={name}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SeldbenchError(f"train.device={name}: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise SeldbenchError(f"train.device={name}: MPS is not available on this machine")
    return dev


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` through a temporary file: a crash never leaves half a checkpoint, and a
    failed write (disk full...) is one error naming ``path``. ``state`` must hold only what
    :func:`load_checkpoint` accepts: tensors, numbers, strings, None, lists, tuples, dicts."""
    with atomic_open(path, "wb") as fh:
        try:
            torch.save(state, fh)
        except RuntimeError as exc:  # torch's zip writer reports a failed write this way
            if "inline_container" not in str(exc) and "PytorchStreamWriter" not in str(exc):
                raise
            cause = exc.__context__ if isinstance(exc.__context__, OSError) else None
            raise OSError(getattr(cause, "errno", errno.EIO),
                          getattr(cause, "strerror", None)
                          or f"torch.save failed ({_one_line(exc)})") from None


#: First bytes of a zip archive: every checkpoint ``torch.save`` writes is one.
_ZIP_MAGIC = b"PK\x03\x04"


def check_sha256(path: Path, expected: str) -> None:
    """Refuse ``path`` unless its SHA-256 (hex) is ``expected`` (e.g. the run record's
    ``checkpoint.sha256``): a file changed or replaced since it was recorded is one error."""
    from seldbench.results.records import file_sha256

    actual = file_sha256(path)
    if actual != expected.lower():
        raise SeldbenchError(f"{path}: SHA-256 {actual[:12]}... is not the {expected[:12]}... "
                             "its run record gives; the file was changed or replaced since the "
                             "run wrote it")


def load_checkpoint(path: Path, device: torch.device | str = "cpu",
                    sha256: str | None = None) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`, after checking its ``sha256``
    when given. Only tensors and plain values are unpickled (``weights_only``): a file that
    holds other Python objects is refused without running any of its code, and so is a file
    that is not a torch zip archive (a bare pickle, a truncated or foreign file): one
    :class:`SeldbenchError` naming the file."""
    import pickle

    if sha256 is not None:
        check_sha256(path, sha256)
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise SeldbenchError(f"{path}: cannot read checkpoint ({exc.strerror or exc})") from None
    if head != _ZIP_MAGIC:  # the legacy (non-zip) format is a bare pickle: never unpickle it
        raise SeldbenchError(f"{path}: cannot read checkpoint (not a torch zip archive: "
                             "a truncated or foreign file)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's text suggests weights_only=False; keep only the name of the culprit
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        raise SeldbenchError(f"{path}: refused to load checkpoint: it holds Python objects "
                             "other than tensors and plain values"
                             + (f" ({found.group(1)})" if found else "")) from None
    except Exception as exc:  # torch raises several types for a damaged file
        raise SeldbenchError(f"{path}: cannot read checkpoint ({type(exc).__name__}: "
                             f"{_one_line(exc)})") from None
    if not isinstance(state, dict):
        raise SeldbenchError(f"{path}: not a seldbench checkpoint (a {type(state).__name__}, "
                             "not a mapping)")
    return state


def _one_line(exc: BaseException, limit: int = 200) -> str:
    return " ".join(str(exc).split())[:limit]


def _plain(obj):
    """``obj`` with numpy scalars and arrays (e.g. validation figures) as Python values."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    return obj


def make_optimizer(model: torch.nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """``train.optimizer`` (adam | adamw) over the trainable parameters."""
    name = str(train.optimizer).lower()
    if name not in OPTIMIZERS:
        raise SeldbenchError(f"train.optimizer={train.optimizer!r}: unknown optimiser "
                             f"(known: {', '.join(OPTIMIZERS)})")
    params = [p for p in model.parameters() if p.requires_grad]
    return getattr(torch.optim, OPTIMIZERS[name])(params, lr=train.lr,
                                                  weight_decay=train.weight_decay)


@dataclass
class TrainConfig:
    """The ``train:`` section, typed."""

    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "adam"
    weight_decay: float = 0.0
    lr_milestones: tuple = ()
    lr_gamma: float = 0.1
    grad_clip: float = 0.0
    early_stop_patience: int = 0
    amp: bool = True
    num_workers: int = 0
    chunk_s: float = 5.0  # training sequence length, seconds
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0: torch's default
    deterministic: bool = True
    tensorboard: bool = False  # event files in <run folder>/tensorboard

    @classmethod
    def from_cfg(cls, cfg: dict) -> TrainConfig:
        keys = cls.__dataclass_fields__
        return cls(**{k: cfg[k] for k in keys if k in cfg})


@dataclass
class History:
    """Per-epoch losses and validation figures, and the best epoch so far."""

    epochs: list = field(default_factory=list)  # [{"epoch", "loss", "val": {...}, "time_s"}]
    best_epoch: int = 0
    best_value: float | None = None
    stale: int = 0  # epochs since the last improvement
    train_seconds: float = 0.0
    audio_seconds: float = 0.0


class Trainer:
    """Trains ``model`` on ``loader`` and selects the best epoch by ``validate()``.

    Batches are ``(features, targets, side)``; ``side`` (a dict of per-frame tensors, empty for
    audio-only models) goes to the model as keyword arguments.
    ``validate(model) -> (value, figures)``: the ranking figure on the validation split (never
    the test split) and all figures; ``higher_is_better`` gives its direction. ``loss(output,
    target) -> scalar``. ``on_step(epoch, step)`` is called after every optimiser step (tests
    use it to interrupt a run). ``augment(x, y, side) -> (x, y, side)`` (optional, e.g. a
    :class:`seldbench.training.augment.Augmenter`) transforms each training batch; its
    ``state_dict()`` is saved in ``last.pt`` so a resumed run draws the same augmentations.
    """

    def __init__(self, model: torch.nn.Module, loss: Callable, loader, validate: Callable,
                 higher_is_better: bool, run_dir: Path, train: TrainConfig,
                 device: torch.device, seed: int, chunk_seconds: float,
                 on_step: Callable[[int, int], None] | None = None, progress: bool = True,
                 distributed: bool = False, augment=None) -> None:
        self.module = model.to(device)  # the bare model: checkpoints and validation
        self.rank0 = not distributed or torch.distributed.get_rank() == 0
        if distributed:  # gradients all-reduced across processes (torchrun)
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.module, device_ids=[device.index] if device.type == "cuda" else None)
        else:
            self.model = self.module
        self.loss, self.loader, self.validate = loss, loader, validate
        self.higher = higher_is_better
        self.dir = Path(run_dir)
        self.cfg = train
        self.device = device
        self.seed = seed
        self.chunk_seconds = chunk_seconds
        self.on_step = on_step
        self.progress = progress and self.rank0
        self.opt = make_optimizer(self.module, train)
        self.sched = torch.optim.lr_scheduler.MultiStepLR(
            self.opt, [int(m) for m in train.lr_milestones], gamma=float(train.lr_gamma))
        self.use_amp = bool(train.amp) and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.history = History()
        self.start_epoch = 1
        self.world = torch.distributed.get_world_size() if distributed else 1
        self.augment = augment
        self.log = _EpochLog(self.dir / "tensorboard") if train.tensorboard and self.rank0 \
            else None

    # ---------------------------------------------------------------- checkpoints

    @property
    def last_path(self) -> Path:
        return self.dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.dir / "best.pt"

    def _state(self, epoch: int) -> dict:
        gen = self._loader_generator()
        return {"epoch": epoch, "model": self.module.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
                "history": _plain(self.history.__dict__),
                "rng": rng_state(), "loader_rng": gen.get_state() if gen is not None else None,
                "augment": self.augment.state_dict() if self.augment is not None else None}

    def _loader_generator(self) -> torch.Generator | None:
        return self.loader.generator  # None with a DistributedSampler (seeded by epoch)

    def resume(self) -> bool:
        """Continue from ``last.pt`` if it exists; returns whether it did."""
        if not self.last_path.exists():
            return False
        try:
            # on the CPU: RNG states must be CPU tensors, and load_state_dict moves the rest
            state = load_checkpoint(self.last_path, "cpu")
        except SeldbenchError as exc:  # e.g. a last.pt from before the safe loader (numpy state)
            raise SeldbenchError(f"{exc}; delete it to train this run again from "
                                 "epoch 1") from None
        self.module.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = History(**state["history"])
        set_rng_state(state["rng"])
        if state["loader_rng"] is not None and self._loader_generator() is not None:
            self._loader_generator().set_state(state["loader_rng"])
        if self.augment is not None:
            if state.get("augment") is None:
                raise SeldbenchError(f"{self.last_path}: saved without augmentation state; "
                                     "delete it to train this run again from epoch 1")
            self.augment.load_state_dict(state["augment"])
        self.start_epoch = state["epoch"] + 1
        return True

    # ---------------------------------------------------------------- loop

    def _improved(self, value: float) -> bool:
        best = self.history.best_value
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return best is None or (value > best if self.higher else value < best)

    def fit(self) -> History:
        """Train from ``start_epoch`` to ``epochs`` (or early stop); returns the history."""
        from tqdm import tqdm

        h = self.history
        patience = self.cfg.early_stop_patience
        for epoch in range(self.start_epoch, self.cfg.epochs + 1):
            if patience and h.stale >= patience:
                break
            self.model.train()
            if hasattr(self.loader.sampler, "set_epoch"):
                self.loader.sampler.set_epoch(epoch)
            t0 = time.perf_counter()
            total, steps = 0.0, 0
            # a bar redrawn in place on a terminal only: in a log file the epoch line says it all
            bar = tqdm(self.loader, desc=f"epoch {epoch}/{self.cfg.epochs}", leave=False,
                       disable=not (self.progress and sys.stderr.isatty()), unit="batch")
            for x, y, side in bar:
                if self.augment is not None:  # on the CPU, from its own seeded generator
                    x, y, side = self.augment(x, y, side)
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                side = {k: v.to(self.device, non_blocking=True) for k, v in side.items()}
                with torch.autocast(self.device.type, enabled=self.use_amp):
                    out = self.model(x, **side)
                if torch.is_tensor(out):  # a dict (multimodal models) is its loss's to cast
                    out = out.float()
                loss = self.loss(out, y)
                self.opt.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if self.cfg.grad_clip:
                    self.scaler.unscale_(self.opt)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
                self.scaler.step(self.opt)
                self.scaler.update()
                total += float(loss.detach())
                steps += 1
                h.audio_seconds += x.shape[0] * self.chunk_seconds * self.world
                bar.set_postfix(loss=f"{total / steps:.4f}")
                if self.on_step is not None:
                    self.on_step(epoch, steps)
            h.train_seconds += time.perf_counter() - t0
            lr = self.opt.param_groups[0]["lr"]  # the rate this epoch trained with
            self.sched.step()
            value, figures = self.validate(self.module)
            improved = self._improved(value)
            h.epochs.append({"epoch": epoch, "loss": total / max(steps, 1), "val": figures,
                             "time_s": time.perf_counter() - t0})
            if improved:
                h.best_epoch, h.best_value, h.stale = epoch, float(value), 0
                if self.rank0:
                    save_checkpoint(self.best_path, {"epoch": epoch, "model": self.module.state_dict()})
            else:
                h.stale += 1
            if self.progress:
                from seldbench.results.tables import fmt  # F and LR in %, as the results

                shown = ", ".join(f"{k} {fmt(k, v)}" for k, v in figures.items()
                                  if isinstance(v, float) and not math.isnan(v))
                print(f"epoch {epoch}: loss {total / max(steps, 1):.4f}; val {shown}"
                      f"{' (best)' if improved else ''}", flush=True)
            if self.log is not None:
                self.log.write(epoch, total / max(steps, 1), lr, figures)
            if self.rank0:
                save_checkpoint(self.last_path, self._state(epoch))
            _barrier()
        if self.rank0 and not self.best_path.exists():  # no finite validation figure ever
            save_checkpoint(self.best_path, {"epoch": self.cfg.epochs,
                                             "model": self.module.state_dict()})
        if self.log is not None:
            self.log.close()
        _barrier()
        return h


class _EpochLog:
    """TensorBoard scalars per epoch (``torch.utils.tensorboard``, local event files only):
    ``train/loss``, ``train/lr`` and ``val/<figure>``."""

    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise SeldbenchError("train.tensorboard: true needs the tensorboard package "
                                 "(pip install tensorboard; requirements-lock.txt pins it)") from None
        self.folder = folder
        self.writer_cls = SummaryWriter
        self.writer = None

    def write(self, epoch: int, loss: float, lr: float, figures: dict) -> None:
        if self.writer is None:  # purge_step: drop what a killed run logged past this epoch
            self.writer = self.writer_cls(str(self.folder), purge_step=epoch)
        self.writer.add_scalar("train/loss", loss, epoch)
        self.writer.add_scalar("train/lr", lr, epoch)
        for name, value in figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"val/{name}", float(value), epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
