"""The cells of a grid: one (dataset, model, config, seed) each, planned, found on disk, run.

A cell runs exactly what ``seldbench run`` runs (:func:`seldbench.training.run.run`): the same
run folder, record, config hash and resume. Its state is read from the runs folder: *done* when a
record of its model, dataset, config hash, seed and recipe lies in its run folder or a sibling
(``<run id>-2``, ``<run id>-data-<hash>``, ...), *partial* when a checkpoint does, else *missing*.
The functions :func:`run_cell` and :func:`warm_cell` are what a worker executes; they return a
dict and never raise for a problem of the cell (its one-line error is in ``"error"``).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seldbench.errors import SeldbenchError
from seldbench.grid.spec import Grid, Resources


@dataclass(frozen=True)
class Cell:
    """One run of a grid, planned (``error`` set when its config does not resolve)."""

    dataset: str
    model: str
    config: str | None  # experiment file, absolute
    overrides: tuple[str, ...]
    seed: int
    out: str  # runs folder, absolute
    resources: Resources
    where: str  # "file:line" of its entry
    run_id: str = ""
    run_base: str = ""  # <out>/<dataset>/<model>/<run id>
    config_hash: str = ""
    recipe: str = ""
    epochs: int = 0
    warm_key: str = ""  # cells with one key read the same cached features and side inputs
    error: str | None = None

    @property
    def name(self) -> str:
        return self.run_id or f"{self.model}-{self.dataset}-s{self.seed}"


def expand(grid: Grid, out: str | os.PathLike | None = None, registry=None) -> list[Cell]:
    """The grid's cells, dataset by dataset, entry by entry, seed by seed, each planned as
    ``seldbench run`` would plan it (nothing is read but the config files)."""
    from dataclasses import replace

    from seldbench.registry import get_registry
    from seldbench.training.plan import plan_run

    reg = registry or get_registry()
    runs = Path(out or grid.out or "runs").expanduser().resolve()
    cells = []
    for dataset in grid.datasets:
        for entry in grid.entries:
            for seed in entry.seeds:
                cell = Cell(dataset, entry.model, str(entry.config) if entry.config else None,
                            entry.overrides, seed, str(runs), grid.resources, entry.where)
                try:
                    plan = plan_run(entry.model, dataset, cell.config, entry.overrides, seed,
                                    str(runs), reg)
                except SeldbenchError as exc:
                    cells.append(replace(cell, error=f"{entry.where}: {exc}"))
                    continue
                cfg = plan.cfg
                side = [plan.model.name, cfg["model"]] if plan.model.side_inputs else []
                key = json.dumps([dataset, cfg["dataset"], cfg["features"], side],
                                 sort_keys=True, default=str)
                cells.append(replace(cell, run_id=plan.run_id, run_base=str(plan.run_base),
                                     config_hash=plan.digest, recipe=plan.output.recipe,
                                     epochs=int(plan.train.epochs), warm_key=key))
    if not cells:
        raise SeldbenchError(f"{grid.path}: the grid has no cells (empty seeds?)")
    return cells


# ----------------------------------------------------------------------------- state on disk


@dataclass(frozen=True)
class State:
    kind: str  # "done" | "partial" | "missing" | "invalid"
    folder: Path | None = None  # the run folder holding the record or checkpoint
    detail: str = ""


def _family(cell: Cell) -> list[Path]:
    """The cell's run folder and its siblings, the folder first."""
    base = Path(cell.run_base)
    if not base.parent.is_dir():
        return []
    return sorted((p for p in base.parent.iterdir()
                   if p.name == base.name or p.name.startswith(base.name + "-")),
                  key=lambda p: (p != base, p.name))


def is_record_of(cell: Cell, record: dict) -> bool:
    """Whether ``record`` is this cell's result (model, dataset, config hash, seed, recipe)."""
    try:
        return (record["model"]["name"], record["dataset"]["name"], record["config_hash"],
                int(record["seed"]), record["recipe"]) == \
            (cell.model, cell.dataset, cell.config_hash, cell.seed, cell.recipe)
    except (KeyError, TypeError, ValueError):
        return False


def cell_state(cell: Cell, epochs: bool = False) -> State:
    """Where the cell stands on disk; ``epochs``: read how many epochs a partial run finished
    (loads its ``last.pt``)."""
    if cell.error:
        return State("invalid", detail=cell.error)
    partial = None
    for folder in _family(cell):
        try:
            record = json.loads((folder / "record.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        if record is not None and is_record_of(cell, record):
            return State("done", folder)
        if record is None and partial is None and (folder / "last.pt").is_file():
            partial = folder
    if partial is None:
        return State("missing")
    detail = ""
    if epochs:
        from seldbench.training.trainer import load_checkpoint

        try:
            done = int(load_checkpoint(partial / "last.pt")["epoch"])
            detail = f"epoch {done} of {cell.epochs}"
        except (SeldbenchError, KeyError, TypeError, ValueError) as exc:
            detail = f"unreadable checkpoint ({exc})"
    return State("partial", partial, detail)


def record_paths(cells: Sequence[Cell]) -> list[Path]:
    """The records of the cells that are done."""
    out = []
    for c in cells:
        state = cell_state(c)
        if state.kind == "done":
            out.append(state.folder / "record.json")
    return out


# ----------------------------------------------------------------------------- in a worker


def _logger(log_path: str | None):
    if log_path is None:
        return lambda m: None, lambda: None
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    fh = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (closed by the caller)

    def log(message: str) -> None:
        fh.write(f"{time.strftime('%H:%M:%S')} {message}\n")
        fh.flush()

    return log, fh.close


def one_line(text, limit: int = 300) -> str:
    """``text`` (or an exception) on one line, at most ``limit`` characters."""
    return " ".join(str(text).split())[:limit]


def _guarded(work, log) -> dict:
    """``work()``'s dict, or ``{"ok": False, "error": one line}``: a cell's failure is data."""
    t0 = time.perf_counter()
    try:
        out = work()
    except SeldbenchError as exc:
        out = {"ok": False, "error": str(exc)}
    except Exception as exc:  # a bug or a divergence: still one line; the log has the rest
        import traceback

        log(traceback.format_exc())
        out = {"ok": False, "error": f"{type(exc).__name__}: {one_line(exc)}"}
    out["wall_s"] = time.perf_counter() - t0
    out["pid"] = os.getpid()
    if not out.get("ok"):
        log(f"failed: {out['error']}")
    return out


def _threads(cell: Cell) -> None:
    """This worker's share of cores (a run's ``train.threads``, when set, wins later)."""
    import torch

    torch.set_num_threads(max(1, int(cell.resources.cpus)))


def run_cell(cell: Cell, log_path: str | None = None) -> dict:
    """Run one cell in this process: ``seldbench run`` with the cell's model, dataset, config,
    overrides, seed and runs folder. Returns ``{"ok", "run_dir", "error", "wall_s", "pid"}``."""
    log, close = _logger(log_path)

    def work():
        from seldbench.training.run import run

        _threads(cell)
        record = run(cell.model, cell.dataset, cell.config, cell.overrides, cell.seed, cell.out,
                     progress=False, log=log)
        run_dir = str(Path(cell.run_base).parent / record["run_id"])
        if not is_record_of(cell, record):  # e.g. the same config and seed, another recipe
            return {"ok": False, "run_dir": run_dir, "error": (
                f"{run_dir} holds a run of this config and seed with recipe "
                f"'{record.get('recipe')}', not '{cell.recipe}'; give this grid its own runs "
                "folder (out: in the grid file, or --out)")}
        return {"ok": True, "run_dir": run_dir}

    try:
        log(f"cell {cell.name}: {cell.model} on {cell.dataset}, seed {cell.seed}")
        return _guarded(work, log)
    finally:
        close()


def warm_cell(cell: Cell, log_path: str | None = None) -> dict:
    """Cache what the cells of ``cell.warm_key`` read (``seldbench cache``): features of every
    split and the model's side inputs."""
    log, close = _logger(log_path)

    def work():
        from seldbench.training.warm_cache import warm_cache

        _threads(cell)
        warm_cache(cell.model, cell.dataset, cell.config, cell.overrides,
                   workers=max(1, int(cell.resources.cpus)), log=log)
        return {"ok": True}

    try:
        return _guarded(work, log)
    finally:
        close()
