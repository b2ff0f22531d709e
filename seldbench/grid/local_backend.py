"""The local backend: each job a fresh process on this machine, nothing to install.

For a laptop or a single GPU machine without Ray or Slurm: a job is a spawned Python process
that runs one cell (or one cache warm-up) and sends its result back through a pipe. A process
that dies without sending one (killed, out of memory) is a lost worker, which the driver
retries; the run resumes from its last checkpoint. How many run at once: ``--max-concurrent``,
else as many as the grid's ``resources`` fit in this machine's cores and GPUs (a fraction of a
GPU per cell lets several share one, as on Ray).
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait as wait_any

from seldbench.errors import SeldbenchError
from seldbench.grid.cells import Cell, one_line
from seldbench.grid.driver import Backend, WorkerLost


def _child(conn, fn: Callable, args: tuple) -> None:
    try:
        out = fn(*args)
    except BaseException as exc:  # cells catch their own errors; this is a bug in the job
        out = {"ok": False, "error": f"{type(exc).__name__}: {one_line(exc)}"}
    conn.send(out)
    conn.close()


class _Job:
    def __init__(self, process, conn):
        self.process, self.conn = process, conn
        self.value: dict | None = None

    def finished(self) -> bool:
        if self.value is None and self.conn.poll():
            try:
                self.value = self.conn.recv()
            except EOFError:  # the pipe closed without a result: the process died
                pass
        return self.value is not None or not self.process.is_alive()


def gpu_count() -> int:
    """CUDA devices torch sees here (0 without torch or CUDA)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def local_slots(resources, cpus: int | None = None, gpus: int | None = None) -> int:
    """How many cells of ``resources`` this machine (or ``cpus`` cores and ``gpus`` GPUs) runs
    at once."""
    cpus = (os.cpu_count() or 1) if cpus is None else cpus
    if gpus is None:
        gpus = gpu_count() if resources.gpus else 0  # torch imported only for GPU cells
    return resources.fit(cpus, gpus)


class LocalBackend(Backend):
    name = "local"

    def __init__(self):
        # spawn: a fresh interpreter per job (no CUDA state or threads inherited from the driver)
        self.ctx = mp.get_context("spawn")

    def describe(self) -> str:
        n = gpu_count()
        return f"local processes: {os.cpu_count() or 1} CPU(s)" + (f", {n} GPU(s)" if n else "")

    def slots(self, resources) -> int:
        return local_slots(resources)

    def check(self, cells: Sequence[Cell]) -> None:
        r = cells[0].resources
        have = gpu_count() if r.gpus else 0
        if r.gpus and math.ceil(r.gpus) > have:
            grid_file = cells[0].where.rsplit(":", 1)[0]
            raise SeldbenchError(f"{grid_file}: resources.gpus is {r.gpus:g} per cell, more than "
                                 f"this machine has ({have}); run on a GPU machine or set gpus: 0")

    def submit(self, fn: Callable, args: Sequence[tuple]) -> list:
        jobs = []
        for a in args:
            recv, send = self.ctx.Pipe(duplex=False)
            p = self.ctx.Process(target=_child, args=(send, fn, a), daemon=False)
            p.start()
            send.close()  # only the child holds the sending end: its death closes the pipe
            jobs.append(_Job(p, recv))
        return jobs

    def wait(self, handles: list, timeout_s: float) -> list:
        done = [h for h in handles if h.finished()]
        if done:
            return done
        wait_any([h.conn for h in handles] + [h.process.sentinel for h in handles], timeout_s)
        return [h for h in handles if h.finished()]

    def result(self, handle: _Job) -> dict:
        handle.process.join(5)
        if handle.value is None:
            handle.finished()  # a result sent just before the process ended
        handle.conn.close()
        if handle.value is None:
            code = handle.process.exitcode
            why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            raise WorkerLost(f"process {handle.process.pid} ended with {why}")
        return handle.value

    def cancel(self, handles: list) -> None:
        for h in handles:
            if h.process.is_alive():
                h.process.terminate()
        for h in handles:
            h.process.join(10)
