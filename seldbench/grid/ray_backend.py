"""The Ray backend: cells as Ray tasks, on a local cluster started in this process (default)
or on an existing one (``--address auto`` or ``ray://host:port``).

Ray is imported here only, so ``seldbench run``, ``score`` and ``compare`` never pay for it.
The embedded cluster is sized to this machine (its CPUs and GPUs), starts without a dashboard
and without usage reporting, and never touches the network. A task asks for the grid's
``resources`` (fractions of a GPU let several cells share one); Ray runs as many at once as fit.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from seldbench.errors import SeldbenchError
from seldbench.grid.cells import Cell, one_line
from seldbench.grid.driver import Backend, WorkerLost

#: set before Ray is imported: no usage statistics, no dashboard, no log deduplication
#: (each cell logs to its own file anyway)
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}
#: what a job on a joined cluster needs from this shell (dataset roots, offline hub)
FORWARDED_ENV = ("SELDBENCH_", "HF_", "TRANSFORMERS_OFFLINE", "NUMBA_CACHE_DIR")


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Raise ConnectionError when ``host:port`` (``ray://`` or not) takes no TCP connection:
    Ray itself would retry a dead address for minutes."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return  # "auto": Ray finds the local cluster (or says at once there is none)
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(exc.strerror or str(exc)) from None


class RayBackend(Backend):
    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        for k, v in RAY_ENV.items():
            os.environ.setdefault(k, v)
        import ray

        self.ray = ray
        self.embedded = address is None
        kwargs = dict(include_dashboard=False, configure_logging=False, log_to_driver=False)
        try:
            if self.embedded:
                # workers inherit this process's environment (dataset roots and all)
                ray.init(num_cpus=num_cpus, **kwargs)
            else:
                _reachable(address)
                env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
                ray.init(address=address, runtime_env={"env_vars": env}, **kwargs)
        except (OSError, RuntimeError, ValueError) as exc:
            where = "start a local Ray cluster" if self.embedded else f"reach Ray at {address}"
            raise SeldbenchError(f"cannot {where}: {one_line(exc)}") from None
        self._remote: dict[Callable, object] = {}

    def describe(self) -> str:
        res = self.ray.cluster_resources()
        gpus = f", {res['GPU']:g} GPU(s)" if res.get("GPU") else ""
        kind = "local Ray cluster" if self.embedded else "Ray cluster"
        return f"{kind}: {res.get('CPU', 0):g} CPU(s){gpus}"

    def slots(self, r) -> int:
        """How many cells of resources ``r`` the cluster runs at once now."""
        res = self.ray.cluster_resources()
        return r.fit(res.get("CPU", 0), res.get("GPU", 0), res.get("memory", 0))

    def check(self, cells: Sequence[Cell]) -> None:
        """A cell asking for more than the whole cluster has would wait for ever: refuse it."""
        res = self.ray.cluster_resources()
        r = cells[0].resources
        asks = [("CPU", r.cpus, "cpus"), ("GPU", r.gpus, "gpus"),
                ("memory", (r.memory_gib or 0) * 2**30, "memory")]
        kind = "local Ray cluster" if self.embedded else "Ray cluster"
        grid_file = cells[0].where.rsplit(":", 1)[0]
        for key, want, name in asks:
            have = res.get(key, 0)
            if want > have:
                gib = key == "memory"
                shown = [f"{x / 2**30:.1f} GiB" if gib else f"{x:g}" for x in (want, have)]
                fix = "run on a GPU machine or set gpus: 0" if key == "GPU" else "lower it"
                raise SeldbenchError(f"{grid_file}: resources.{name} is {shown[0]} per cell, "
                                     f"more than the {kind} has ({shown[1]}); {fix}")

    def _task(self, fn: Callable, cell: Cell):
        r = cell.resources
        opts = dict(num_cpus=r.cpus, num_gpus=r.gpus, max_retries=0, retry_exceptions=False)
        if r.memory_gib:
            opts["memory"] = int(r.memory_gib * 2**30)
        if fn not in self._remote:
            self._remote[fn] = self.ray.remote(fn)
        return self._remote[fn].options(**opts)

    def submit(self, fn: Callable, args: Sequence[tuple]) -> list:
        return [self._task(fn, a[0]).remote(*a) for a in args]

    def wait(self, handles: list, timeout_s: float) -> list:
        done, _ = self.ray.wait(handles, num_returns=len(handles), timeout=timeout_s)
        return done

    def result(self, handle) -> dict:
        exc = self.ray.exceptions
        try:
            return self.ray.get(handle)
        except exc.RayTaskError as err:  # raised by the task itself (cells catch their own)
            return {"ok": False, "error": one_line(err.cause or err)}
        except exc.RayError as err:  # the worker or its node died
            raise WorkerLost(type(err).__name__) from None

    def cancel(self, handles: list) -> None:
        for h in handles:
            try:
                self.ray.cancel(h, force=True)
            except Exception:  # already finished or gone
                pass

    def close(self) -> None:
        self.ray.shutdown()
