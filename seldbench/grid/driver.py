"""``seldbench grid run``: schedule a grid's cells on a backend, resumably.

The driver is the same for every backend (:class:`Backend`: Ray, Slurm through submitit):
cells already done are skipped; the cache of each (dataset, feature config, side inputs) is
warmed by one job before the cells that read it start, one warm job per dataset at a time (two
would prepare the same data at once), and a free slot goes to a ready cell before a warm job; a
cell whose worker dies (killed, node lost) is submitted again, up to ``retries`` times, and
resumes from its last checkpoint; a cell that fails (a bad key, a missing dataset, divergence)
is reported with its one-line error while the others go on.
What happened to each cell is kept in ``<runs>/.grid/<grid name>.json`` for ``grid status``.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seldbench.grid.cells import Cell, cell_state, run_cell, warm_cell
from seldbench.io import atomic_write_json


class WorkerLost(Exception):
    """The process running a job died (SIGKILL, out of memory, node lost): try again."""


class Backend:
    """Where jobs run. ``submit`` starts ``fn(*args)`` for each args tuple (Slurm: as one job
    array) and returns one handle each; ``wait`` returns the handles finished within
    ``timeout_s``; ``result`` gives a finished job's value or raises :class:`WorkerLost`."""

    name = "backend"

    def check(self, cells: Sequence[Cell]) -> None:
        """Raise SeldbenchError when the cells can never be scheduled (e.g. no GPU)."""

    def submit(self, fn: Callable, args: Sequence[tuple]) -> list:
        raise NotImplementedError

    def wait(self, handles: list, timeout_s: float) -> list:
        raise NotImplementedError

    def result(self, handle) -> dict:
        raise NotImplementedError

    def cancel(self, handles: list) -> None:
        """Stop jobs still running (the driver was interrupted)."""

    def close(self) -> None:
        pass


@dataclass
class Summary:
    total: int
    done: list[Cell] = field(default_factory=list)  # finished now or before
    skipped: list[Cell] = field(default_factory=list)  # done before this run
    failed: list[tuple[Cell, str]] = field(default_factory=list)
    retried: dict[str, int] = field(default_factory=dict)  # cell name -> worker losses
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def state_file(cells: Sequence[Cell], grid_name: str) -> Path:
    """Where the driver keeps what happened to each cell of a grid."""
    return Path(cells[0].out) / ".grid" / f"{grid_name}.json"


def _fmt_s(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class _Progress:
    """One line per cell state change and an overall line: done / running / failed / total,
    with an ETA from the cells finished in this run."""

    def __init__(self, total: int, parallel: int | None, echo: Callable[[str], None]):
        self.total, self.parallel, self.echo = total, parallel, echo
        self.done = self.failed = self.running = 0
        self.durations: list[float] = []

    def cell(self, cell: Cell, what: str) -> None:
        self.echo(f"[grid] {cell.name}: {what}")

    def bar(self) -> None:
        width = 20
        filled = int(width * (self.done + self.failed) / max(self.total, 1))
        left = self.total - self.done - self.failed
        eta = ""
        if self.durations and left:
            per = sum(self.durations) / len(self.durations)
            lanes = max(1, min(left, self.parallel or self.running or 1))
            eta = f", ETA {_fmt_s(per * left / lanes)}"
        self.echo(f"[grid] [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                  f"done, {self.running} running, {self.failed} failed{eta}")


def run_grid(cells: Sequence[Cell], backend: Backend, grid_name: str, retries: int = 2,
             max_concurrent: int | None = None, echo: Callable[[str], None] = print,
             poll_s: float = 0.5) -> Summary:
    """Run every cell not yet done; returns the summary (``ok`` False when a cell failed)."""
    t0 = time.perf_counter()
    summary = Summary(len(cells))
    progress = _Progress(len(cells), max_concurrent, echo)
    status_path = state_file(cells, grid_name)
    log_dir = status_path.parent / "logs"
    record: dict[str, dict] = {}

    def note(cell: Cell, **what) -> None:
        record[cell.name] = {"dataset": cell.dataset, "model": cell.model, "seed": cell.seed,
                             "config_hash": cell.config_hash, **what}
        atomic_write_json(status_path, {"grid": grid_name, "cells": record})

    def fail(cell: Cell, error: str) -> None:
        summary.failed.append((cell, error))
        progress.failed += 1
        progress.cell(cell, f"failed: {error}")
        note(cell, state="failed", error=error, log=str(log_dir / f"{cell.name}.log"))

    todo: list[Cell] = []
    for cell in cells:
        state = cell_state(cell)
        if state.kind == "invalid":
            fail(cell, cell.error)
        elif state.kind == "done":
            summary.done.append(cell)
            summary.skipped.append(cell)
            progress.done += 1
            progress.cell(cell, f"done already ({state.folder})")
        else:
            todo.append(cell)
    if todo:
        backend.check(todo)
    # the cache of each key is warmed once, before its cells; one warm job per dataset at once
    waiting: dict[str, list[Cell]] = {}
    for cell in todo:
        waiting.setdefault(cell.warm_key, []).append(cell)
    warm_queue = list(waiting)
    ready: list[Cell] = []
    inflight: dict = {}  # handle -> ("warm", key, cell, attempt) | ("cell", None, cell, attempt)
    attempts: dict[str, int] = {}
    progress.bar()

    def capacity() -> int:
        return len(todo) if max_concurrent is None else max(0, max_concurrent - len(inflight))

    def start(kind: str, key, items: list[Cell]) -> None:
        if not items:
            return
        fn = warm_cell if kind == "warm" else run_cell
        suffix = ".warm.log" if kind == "warm" else ".log"
        handles = backend.submit(fn, [(c, str(log_dir / f"{c.name}{suffix}")) for c in items])
        for h, c in zip(handles, items):
            inflight[h] = (kind, key, c)
            if kind == "cell":
                progress.running += 1
                progress.cell(c, "started" if not attempts.get(c.name)
                              else f"started again (attempt {attempts[c.name] + 1})")
                note(c, state="running", log=str(log_dir / f"{c.name}.log"))

    try:
        while warm_queue or ready or inflight:
            # cells whose cache is warm go first: with few slots, warming every cache before
            # any cell would delay every result by the sum of all the warm-ups
            n = capacity()
            start("cell", None, ready[:n])
            del ready[:n]
            busy = {c.dataset for kind, _, c in inflight.values() if kind == "warm"}
            for key in list(warm_queue):
                head = waiting[key][0]
                if head.dataset not in busy and capacity() > 0:
                    warm_queue.remove(key)
                    busy.add(head.dataset)
                    progress.cell(head, f"caching what {len(waiting[key])} cell(s) read")
                    start("warm", key, [head])
            if not inflight:
                continue
            for handle in backend.wait(list(inflight), poll_s):
                kind, key, cell = inflight.pop(handle)
                try:
                    out = backend.result(handle)
                except WorkerLost as lost:
                    out = {"ok": False, "lost": str(lost)}
                if kind == "warm":
                    if out.get("lost") and attempts.get(f"warm:{key}", 0) < retries:
                        attempts[f"warm:{key}"] = attempts.get(f"warm:{key}", 0) + 1
                        progress.cell(cell, f"cache worker lost ({out['lost']}); retrying")
                        warm_queue.insert(0, key)
                        continue
                    if out.get("ok"):
                        ready += waiting.pop(key)
                    else:
                        for c in waiting.pop(key):
                            fail(c, f"caching its features failed: "
                                    f"{out.get('error') or out['lost']}")
                    continue
                progress.running -= 1
                if out.get("lost"):
                    n_lost = attempts.get(cell.name, 0)
                    if n_lost < retries:
                        attempts[cell.name] = n_lost + 1
                        summary.retried[cell.name] = n_lost + 1
                        progress.cell(cell, f"worker lost ({out['lost']}); retry {n_lost + 1} "
                                      f"of {retries}, resuming from its last checkpoint")
                        ready.insert(0, cell)
                        continue
                    fail(cell, f"worker lost {n_lost + 1} times ({out['lost']}); "
                               f"--retries {retries} spent")
                elif out.get("ok"):
                    summary.done.append(cell)
                    progress.done += 1
                    progress.durations.append(float(out.get("wall_s", 0.0)))
                    progress.cell(cell, f"done in {_fmt_s(out.get('wall_s', 0.0))} "
                                  f"({out['run_dir']})")
                    note(cell, state="done", run_dir=out["run_dir"],
                         wall_s=round(float(out.get("wall_s", 0.0)), 3))
                else:
                    fail(cell, out["error"])
                progress.bar()
    except BaseException:  # interrupted: stop what runs (rerunning the grid resumes it)
        if inflight:
            backend.cancel(list(inflight))
        raise
    summary.wall_s = time.perf_counter() - t0
    return summary
