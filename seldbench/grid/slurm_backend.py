"""The Slurm backend, through submitit: the cells that can start are one job array.

Partition, time limit, account, QoS and constraint come from the grid's ``slurm:`` section;
CPUs, GPUs (whole ones: a fraction is rounded up) and memory from its ``resources:``. A job
preempted or out of time is requeued by submitit (:class:`CellJob` is checkpointable) and
resumes from the run's last checkpoint, like any interrupted ``seldbench run``.
``local=True`` runs the same jobs as local processes (submitit's local executor): the grid
checked end to end without a cluster.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import submitit

from seldbench.errors import SeldbenchError
from seldbench.grid.cells import one_line
from seldbench.grid.driver import Backend, WorkerLost


class CellJob(submitit.helpers.Checkpointable):
    """``fn(*args)`` in a Slurm job; on preemption or timeout submitit calls
    :meth:`checkpoint`, which requeues the same call (the run resumes from ``last.pt``)."""

    def __call__(self, fn: Callable, *args):
        return fn(*args)


class SlurmBackend(Backend):
    name = "slurm"

    def __init__(self, folder: str | Path, slurm: dict, resources, local: bool = False,
                 max_concurrent: int | None = None):
        self.local = local
        folder = Path(folder)
        if local:
            self.executor = submitit.LocalExecutor(folder)
            self.executor.update_parameters(timeout_min=int(slurm.get("time_min") or 600),
                                            gpus_per_node=math.ceil(resources.gpus))
            return
        params = {"time": int(slurm.get("time_min") or 600),
                  "cpus_per_task": max(1, math.ceil(resources.cpus)),
                  "job_name": "seldbench-grid",
                  "additional_parameters": dict(slurm.get("additional") or {})}
        if resources.gpus:
            params["gpus_per_node"] = math.ceil(resources.gpus)
        if resources.memory_gib:
            params["mem"] = f"{math.ceil(resources.memory_gib * 1024)}M"
        for key in ("partition", "account", "qos", "constraint"):
            if slurm.get(key):
                params[key] = slurm[key]
        if max_concurrent:
            params["array_parallelism"] = int(max_concurrent)
        try:
            self.executor = submitit.SlurmExecutor(folder)
            self.executor.update_parameters(**params)
        except (RuntimeError, ValueError) as exc:
            raise SeldbenchError(f"slurm: {one_line(exc)}") from None

    def submit(self, fn: Callable, args: Sequence[tuple]) -> list:
        try:
            with self.executor.batch():
                jobs = [self.executor.submit(CellJob(), fn, *a) for a in args]
        except (OSError, RuntimeError, submitit.core.utils.FailedJobError) as exc:
            raise SeldbenchError(f"slurm: cannot submit: "
                                 f"{one_line(exc)}") from None
        return jobs

    def wait(self, handles: list, timeout_s: float) -> list:
        end = time.monotonic() + timeout_s
        while True:
            done = [h for h in handles if h.done()]
            if done or time.monotonic() >= end:
                return done
            time.sleep(min(0.2, timeout_s))

    def result(self, handle) -> dict:
        try:
            return handle.result()
        except (submitit.core.utils.UncompletedJobError,
                submitit.core.utils.FailedJobError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise WorkerLost(f"job {handle.job_id}: {type(exc).__name__}: "
                             f"{one_line(first, 200)}") from None

    def cancel(self, handles: list) -> None:
        for h in handles:
            try:
                h.cancel(check=False)
            except Exception:  # already finished or gone
                pass
