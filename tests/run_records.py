"""Synthetic run records (schema 1) for the records and leaderboard tests."""
from __future__ import annotations

import copy
import hashlib

SUITE_FIGURES = {
    "dcase2021": ("ER", "F", "LE", "LR", "SELD"),
    "dcase2023": ("ER", "F", "LE", "LR", "SELD"),
    "dcase2024": ("ER", "F", "DOAE", "DistE", "RDE", "LR", "SELD"),
}

PACKAGES = {"seldbench": "0.1.0", "torch": "2.5.1", "numpy": "2.1.0"}


def result(figures: dict, half: float = 0.05) -> dict:
    """One suite's result block: the figures and a symmetric jackknife interval."""
    return {"figures": dict(figures),
            "interval": {k: ([None, None] if v is None else [v - half, v + half])
                         for k, v in figures.items()},
            "classwise": [], "options": {}}


def make_record(model: str = "A", seed: int = 0, results: dict | None = None, *,
                dataset: str = "synth-mini", split: str = "test", config_hash: str = "c0ffee" * 4,
                recipe: str = "cpu-short", device: str = "cpu", params: int = 737_141,
                packages: dict | None = None, git: dict | None = "default",
                version: str = "1.0") -> dict:
    """A complete, valid schema-1 run record."""
    if results is None:
        results = {"dcase2023": result({"ER": 0.5, "F": 0.5, "LE": 20.0, "LR": 0.6,
                                        "SELD": 0.4})}
    if git == "default":
        git = {"revision": "1" * 40, "dirty": False}
    run_id = f"{model}-{dataset}-{split}-s{seed}-{config_hash[:8]}"
    return {
        "schema": 1, "run_id": run_id, "status": "complete",
        "created": "2025-01-01T00:00:00+00:00", "seldbench_version": "0.1.0",
        "model": {"name": model, "version": version, "params": params, "plugin": "test"},
        "dataset": {"name": dataset, "version": "1.0", "data_hash": "d" * 64},
        "split": split,
        "selection": {"split": "val", "suite": "dcase2023", "figure": "SELD", "best_epoch": 3,
                      "best_value": 0.5, "val_is_test": False},
        "results": copy.deepcopy(results),
        "config": {"seed": seed, "train": {"epochs": 5}}, "config_hash": config_hash,
        "seed": seed, "recipe": recipe,
        "device": {"type": device, "name": "Test CPU" if device == "cpu" else "Test GPU",
                   "count": 1},
        "packages": dict(packages or PACKAGES), "git": git,
        "wall_time_s": 12.5,
        "train": {"epochs_run": 5, "audio_s_per_s": 100.0,
                  "history": [{"epoch": 1, "loss": 1.0, "val": {"SELD": 0.5}}]},
        "checkpoint": {"file": "best.pt", "sha256": hashlib.sha256(run_id.encode()).hexdigest()},
    }
