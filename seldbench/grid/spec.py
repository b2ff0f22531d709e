"""The grid file: datasets x entries (model, experiment file, overrides, recipe) x seeds.

A grid file is YAML read like a config file (:func:`seldbench.config.load_yaml`: ``yaml.safe_load``
rules, anchors and aliases refused) and checked before anything runs: an unknown key is an error
naming the file, the line and the closest known key; a bad value names the file, line and key::

    datasets: [synth]                 # or one name
    seeds: [0, 1, 2]                  # each entry runs every seed (unless it lists its own)
    set: [train.epochs=40]            # overrides of every entry, before the entry's own
    out: runs                         # runs folder (default: runs/ of the current folder)
    board: true                       # the grid is a leaderboard (its cells must all be done)
    resources: {cpus: 1, gpus: 0.25, memory: 4G}    # of one cell; gpus may be a fraction
    slurm: {partition: gpu, time_min: 120}          # --backend slurm only
    entries:
      - model: crnn
        recipe: "cpu: 40 epochs, batch 8"          # output.recipe of its records
      - model: crati
        config: ../configs/experiments/crati-einv2-cpu.yaml   # relative to this file
        set: [model.video_dropout=0.5]
        seeds: [0]
      - model: crnn
        set: [train.max_clips=10, train.init_from=runs/synth/crnn/RUN]  # relative to this file
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from seldbench.config import (check_values, load_yaml, merge, rule_flag, rule_integer,
                              rule_list_of, rule_number, rule_text)
from seldbench.errors import SeldbenchError

#: every key a grid file may hold, with its default (``entries``' keys below)
GRID_KEYS = {"datasets": None, "seeds": [0], "set": [], "out": None, "board": False,
             "resources": {"cpus": 1, "gpus": 0, "memory": None},
             "slurm": {"partition": None, "time_min": 600, "account": None, "qos": None,
                       "constraint": None, "additional": {}},
             "entries": None}
ENTRY_KEYS = {"model": None, "config": None, "set": [], "recipe": None, "seeds": None}

_SEEDS = rule_list_of(rule_integer(0, 2**32 - 1), "a list of seeds (integers >= 0), e.g. [0, 1, 2]")
_OVERRIDES = rule_list_of(lambda v: None if isinstance(v, str) and "=" in v else "bad",
                      "a list of key.path=value strings, e.g. [train.epochs=40]")
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B?)?", re.IGNORECASE)


def _memory(v) -> str | None:
    if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0):
        return None
    return None if isinstance(v, str) and _MEMORY.fullmatch(v.strip()) else \
        "must be a size such as 4G, 512M or a number of GiB"


GRID_RULES = {
    "datasets": rule_list_of(rule_text(), "a dataset name or a list of them, e.g. [synth]"),
    "seeds": _SEEDS,
    "set": _OVERRIDES,
    "out": rule_text(optional=True),
    "board": rule_flag,
    "resources.cpus": rule_number(gt=0),
    "resources.gpus": rule_number(ge=0),
    "resources.memory": _memory,
    "slurm.partition": rule_text(optional=True),
    "slurm.time_min": rule_integer(1),
    "slurm.account": rule_text(optional=True),
    "slurm.qos": rule_text(optional=True),
    "slurm.constraint": rule_text(optional=True),
    "entries": rule_list_of(lambda v: None if isinstance(v, dict) else "bad",
                        "a non-empty list of entries (mappings with a model: key)"),
}
ENTRY_RULES = {"model": rule_text(), "config": rule_text(optional=True), "set": _OVERRIDES,
               "recipe": rule_text(optional=True),
               "seeds": lambda v: None if v is None else _SEEDS(v)}


@dataclass(frozen=True)
class Resources:
    """What one cell asks of its worker: CPU cores, GPUs (a fraction packs several cells on
    one GPU) and memory in GiB (None: no reservation)."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_gib: float | None = None

    def fit(self, cpus: float, gpus: float, memory_bytes: float | None = None) -> int:
        """How many such cells run at once on ``cpus`` cores, ``gpus`` GPUs and (when the
        cell reserves memory) ``memory_bytes``: at least one."""
        fits = [cpus / self.cpus]
        if self.gpus:
            fits.append(gpus / self.gpus)
        if self.memory_gib and memory_bytes is not None:
            fits.append(memory_bytes / (self.memory_gib * 2**30))
        return max(1, int(min(fits) + 1e-9))


@dataclass(frozen=True)
class Entry:
    """One line of the grid: a model with an experiment file and overrides."""

    model: str
    config: Path | None  # absolute
    overrides: tuple[str, ...]  # the grid's ``set``, then the entry's, then its recipe
    seeds: tuple[int, ...]
    where: str  # "file:line" of the entry, for messages


@dataclass(frozen=True)
class Grid:
    path: Path
    datasets: tuple[str, ...]
    entries: tuple[Entry, ...]
    resources: Resources
    board: bool
    out: Path | None  # runs folder (relative to the current folder, like --out)
    slurm: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem


def memory_gib(text) -> float | None:
    """``"4G"``, ``"512M"``, ``"1.5GiB"`` or a number of GiB -> GiB."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    number, unit = _MEMORY.fullmatch(text.strip()).groups()
    scale = {"K": 2**-20, "M": 2**-10, "G": 1, "T": 2**10}[(unit or "G")[0].upper()]
    return float(number) * scale


#: override keys whose value is an input path: a relative one is relative to the grid file
PATH_KEYS = ("train.init_from",)


def _anchor_paths(overrides, base: Path) -> list[str]:
    """``overrides`` with the relative paths of :data:`PATH_KEYS` made absolute from ``base``
    (the grid file's folder), as its ``config:`` paths are: a grid runs from any folder."""
    out = []
    for item in overrides:
        key, sep, value = str(item).partition("=")
        if (sep and key.strip() in PATH_KEYS and value.strip().lower() not in ("", "null", "none")
                and not Path(value).expanduser().is_absolute()):
            item = f"{key}={(base / value).resolve()}"
        out.append(item)
    return out


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file; every problem is one :class:`SeldbenchError` naming the
    file, the line and the key."""
    path = Path(path)
    data, lines = load_yaml(path)
    source = str(path)
    if isinstance(data.get("datasets"), str):
        data["datasets"] = [data["datasets"]]
    if isinstance(data.get("seeds"), int) and not isinstance(data.get("seeds"), bool):
        data["seeds"] = [data["seeds"]]
    grid = merge(GRID_KEYS, data, source, lines)  # unknown keys: file:line, closest key
    origins = {k: f"{source}:{n}" for k, n in lines.items()}
    for key in ("datasets", "entries"):
        if not grid[key]:
            raise SeldbenchError(f"{source}: '{key}' is missing or empty; a grid needs "
                                 f"{'dataset names' if key == 'datasets' else 'entries'}")
    check_values(grid, origins, GRID_RULES)
    entries = []
    for i, raw in enumerate(grid["entries"]):
        prefix = f"entries.{i}."
        sub = {k[len(prefix):]: n for k, n in lines.items() if k.startswith(prefix)}
        where = f"{source}:{min(sub.values(), default=lines.get('entries', '?'))}"
        if isinstance(raw.get("seeds"), int) and not isinstance(raw.get("seeds"), bool):
            raw["seeds"] = [raw["seeds"]]
        entry = merge(ENTRY_KEYS, raw, source, sub)
        if not entry["model"]:
            raise SeldbenchError(f"{where}: entry {i + 1} has no 'model'")
        check_values(entry, {k: f"{source}:{n}" for k, n in sub.items()}, ENTRY_RULES)
        config = None
        if entry["config"]:
            config = (path.parent / entry["config"]).resolve()
            if not config.is_file():
                at = f"{source}:{sub.get('config', '?')}"
                raise SeldbenchError(f"{at}: config file {entry['config']!r} not found "
                                     f"(looked at {config}; paths are relative to the grid "
                                     "file)")
        recipe = [f"output.recipe={entry['recipe']}"] if entry["recipe"] else []
        seeds = entry["seeds"] if entry["seeds"] is not None else grid["seeds"]
        overrides = _anchor_paths([*grid["set"], *entry["set"]], path.parent)
        entries.append(Entry(entry["model"], config, (*overrides, *recipe), tuple(seeds), where))
    res = grid["resources"]
    return Grid(path=path, datasets=tuple(grid["datasets"]), entries=tuple(entries),
                resources=Resources(float(res["cpus"]), float(res["gpus"]),
                                    memory_gib(res["memory"])),
                board=bool(grid["board"]), out=Path(grid["out"]) if grid["out"] else None,
                slurm=dict(grid["slurm"]))
