"""Benchmark grids: ``seldbench grid run|status FILE`` and ``seldbench compare --grid FILE``.

:mod:`.spec` reads a grid file, :mod:`.cells` expands it into cells (one ``seldbench run``
each) and finds them on disk, :mod:`.driver` schedules them on a backend
(:mod:`.ray_backend`, :mod:`.slurm_backend`; imported only when a grid runs).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from seldbench.grid.cells import Cell, cell_state, expand, record_paths
from seldbench.grid.spec import Grid, load_grid

BACKENDS = ("ray", "local", "slurm", "slurm-local")


def load_cells(path: str | os.PathLike, out: str | None = None) -> tuple[Grid, list[Cell]]:
    """The grid file at ``path`` and its planned cells (runs folder ``out`` if given)."""
    grid = load_grid(path)
    return grid, expand(grid, out)


def status_rows(cells: list[Cell], epochs: bool = True) -> list[dict]:
    """One row per cell: ``{"cell", "model", "dataset", "seed", "config", "state", "detail",
    "folder"}``; a failure the last ``grid run`` noted is shown on a cell not done."""
    import json

    from seldbench.grid.driver import state_file

    noted = {}
    if cells:
        try:
            noted = json.loads(state_file(cells, _grid_name(cells)).read_text())["cells"]
        except (OSError, ValueError, KeyError, TypeError):
            noted = {}
    rows = []
    for c in cells:
        st = cell_state(c, epochs=epochs)
        kind, detail = st.kind, st.detail
        last = noted.get(c.name, {})
        if kind in ("missing", "partial") and last.get("state") == "failed":
            kind, detail = "failed", f"{last.get('error')}" + (f" ({detail})" if detail else "")
        shown = {"missing": "not started"}.get(kind, kind)
        rows.append({"cell": c.name, "model": c.model, "dataset": c.dataset, "seed": c.seed,
                     "config": c.config_hash[:8], "state": shown, "detail": detail,
                     "folder": str(st.folder or c.run_base or "")})
    return rows


def _grid_name(cells: list[Cell]) -> str:
    return Path(cells[0].where.rsplit(":", 1)[0]).stem


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of :func:`status_rows`."""
    head = ["state", "cell", "detail / folder"]
    body = [[r["state"], r["cell"], r["detail"] or r["folder"]] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    total = ", ".join(f"{n} {k}" for k, n in counts.items())
    return "\n".join([fmt.format(*head), *(fmt.format(*b) for b in body),
                      f"{len(rows)} cells: {total}"]) + "\n"


def make_backend(name: str, grid: Grid, cells: list[Cell], address: str | None,
                 max_concurrent: int | None):
    """The backend ``name`` (one of :data:`BACKENDS`); imports Ray or submitit only here."""
    from seldbench.errors import SeldbenchError

    if name == "local":
        from seldbench.grid.local_backend import LocalBackend

        return LocalBackend()
    try:
        if name == "ray":
            from seldbench.grid.ray_backend import RayBackend

            return RayBackend(address)
        from seldbench.grid.slurm_backend import SlurmBackend
    except ImportError as exc:
        raise SeldbenchError(f"--backend {name} needs {exc.name}: pip install "
                             "'seldbench[grid]' (or the lock file)") from None

    folder = Path(cells[0].out) / ".grid" / "submitit" / grid.name
    return SlurmBackend(folder, grid.slurm, grid.resources, local=name == "slurm-local",
                        max_concurrent=max_concurrent)


def run_grid_file(path: str | os.PathLike, backend: str = "ray", address: str | None = None,
                  max_concurrent: int | None = None, retries: int = 2,
                  out: str | None = None, echo: Callable[[str], None] = print):
    """``seldbench grid run FILE``: returns the :class:`~seldbench.grid.driver.Summary`."""
    from seldbench.grid.driver import run_grid

    grid, cells = load_cells(path, out)
    if backend == "slurm-local" and max_concurrent is None:  # local processes: the cores
        max_concurrent = max(1, int((os.cpu_count() or 1) // max(grid.resources.cpus, 1)))
    todo = [c for c in cells if cell_state(c).kind not in ("done", "invalid")]
    engine = make_backend(backend, grid, cells, address, max_concurrent) if todo else None
    if engine is not None and engine.name in ("ray", "local"):
        echo(f"[grid] {engine.describe()}")
        # as many at once as fit now, so that "running" means running, not queued
        max_concurrent = max_concurrent or engine.slots(grid.resources)
    try:
        return run_grid(cells, engine, grid.name, retries, max_concurrent, echo)
    finally:
        if engine is not None:
            engine.close()


__all__ = ["BACKENDS", "format_rows", "load_cells", "record_paths", "run_grid_file",
           "status_rows"]
