"""Run records: what a finished run produced and everything needed to rerun it.

A run record is one ``record.json`` in the run folder, written atomically by the trainer through
:func:`write_record` and read back by ``seldbench compare`` through :func:`load_records`.
Schema version 1 (every key is required unless marked optional; extra keys are allowed)::

    {"schema": 1, "run_id": str, "status": "complete",
     "created": ISO-8601 UTC str, "seldbench_version": str,
     "model": {"name": str, "version": str, "params": int, "plugin": str},
     "dataset": {"name": str, "version": str, "data_hash": str},
     "split": "test",
     "selection": {"split": "val", "suite": str, "figure": str, "best_epoch": int,
                   "best_value": float | null, "val_is_test": bool},
     "results": {SUITE: {"figures": {FIG: float | null}, "interval": {FIG: [lo, hi]},
                         "classwise": [...], "options": {}}
                 | {"skipped": str}},          # a suite that could not score this model
     "config": {...resolved config...}, "config_hash": str, "seed": int,
     "recipe": str,                             # short label, e.g. "cpu-short: 20 epochs synth"
     "device": {"type": str, "name": str, "count": int, ...},   # device_info()
     "packages": {name: version}, "git": {"revision": str, "dirty": bool} | null,
     "wall_time_s": float,
     "train": {"epochs_run": int, "audio_s_per_s": float,
               "history": [{"epoch": int, "loss": float, "val": {FIG: float | null}}]},
     "checkpoint": {"file": str, "sha256": str}}

Figures are stored in their natural units: F and LR as fractions, angles in degrees, distances
in metres; ``null`` stands for an undefined figure (NaN).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seldbench.errors import SeldbenchError
from seldbench.io import atomic_write_json

SCHEMA_VERSION = 1
RECORD_NAME = "record.json"

#: packages whose versions go into every record (missing ones are left out)
PACKAGES = ("seldbench", "torch", "numpy", "scipy", "pandas", "timm", "transformers", "librosa",
            "h5py", "numba")

#: files up to this size are hashed whole by :func:`hash_files`; larger ones are sampled
SMALL_FILE_BYTES = 1 << 20
#: bytes read from each end of a large file by :func:`hash_files`
SAMPLE_BYTES = 64 << 10

_GIT_TIMEOUT_S = 5.0


# ----------------------------------------------------------------------------- provenance


def provenance() -> dict[str, Any]:
    """Versions and source revision of the software doing a run (no host name, no user name).

    Returns ``{"packages": {name: version}, "python": "3.12.3", "platform": "Linux-...",
    "git": {"revision": sha, "dirty": bool} | None}``. ``git`` describes the checkout that
    holds the imported ``seldbench`` package (an editable install); it is None when that is
    not a git checkout or git is unavailable.
    """
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"packages": packages, "python": platform.python_version(),
            "platform": platform.platform(), "git": git_info()}


def git_info(root: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """``{"revision": sha, "dirty": bool}`` of the git checkout at ``root`` (default: the one
    holding the seldbench package), or None when ``root`` is not the top of a checkout."""
    if root is None:
        root = Path(__file__).resolve().parents[2]  # .../<checkout>/seldbench/results/records.py
    root = Path(root).resolve()
    top = _git(root, "rev-parse", "--show-toplevel")
    # a package installed into site-packages inside some other repository is not a checkout
    if top is None or Path(top).resolve() != root:
        return None
    revision = _git(root, "rev-parse", "HEAD")
    # untracked files count: a new, uncommitted module changes what a run does
    status = _git(root, "status", "--porcelain")
    if revision is None or status is None:
        return None
    return {"revision": revision, "dirty": bool(status)}


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=_GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def device_info(device: str) -> dict[str, Any]:
    """What a run ran on: ``{"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "count": 1, ...}``.

    ``device`` is a torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``). For
    CPUs, ``name`` is the model name from ``/proc/cpuinfo`` and ``count`` the usable cores;
    for CUDA, ``name`` is the name of the device used and ``count`` the visible GPUs, plus
    ``cuda`` (the CUDA version torch was built with). torch is imported only for GPUs.
    """
    kind, _, index = str(device).partition(":")
    info: dict[str, Any] = {"type": kind}
    if kind == "cuda":
        import torch

        idx = int(index) if index else torch.cuda.current_device()
        info.update(name=torch.cuda.get_device_name(idx), count=torch.cuda.device_count(),
                    cuda=torch.version.cuda)
        props = torch.cuda.get_device_properties(idx)
        info["memory_gib"] = round(props.total_memory / 2**30, 1)
    elif kind == "mps":
        info.update(name=f"Apple {platform.machine()} (MPS)", count=1)
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        info.update(name=_cpu_name(), count=cores)
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


# ----------------------------------------------------------------------------- hashes


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's whole content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise SeldbenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return h.hexdigest()


def hash_files(paths: Iterable[str | os.PathLike | None]) -> str:
    """One SHA-256 (hex) identifying a set of data files, fast enough to run on every run.

    Each file contributes its path relative to the common folder of all the files (so the hash
    does not depend on where the dataset lives), its size, and a content hash:

    - files up to 1 MiB (metadata CSVs, manifests): SHA-256 of the whole file;
    - larger files (WAV, MP4): SHA-256 of the first and the last 64 KiB.

    Modification times are left out on purpose: a copied or re-downloaded dataset must hash
    the same. The sampled hash catches a different recording, a re-encode, a truncation or a
    changed header; it misses an edit in the middle of a large file that keeps its size.
    The order of ``paths`` does not matter; ``None`` entries (clips without metadata) and
    duplicates are skipped.
    """
    files = sorted({Path(p).resolve() for p in paths if p is not None})
    if not files:
        return hashlib.sha256(b"seldbench-data-v1\n").hexdigest()
    base = Path(os.path.commonpath([str(p.parent) for p in files]))
    h = hashlib.sha256(b"seldbench-data-v1\n")
    for path in files:
        try:
            size = path.stat().st_size
            if size <= SMALL_FILE_BYTES:
                digest = file_sha256(path)
            else:
                sample = hashlib.sha256()
                with open(path, "rb") as fh:
                    sample.update(fh.read(SAMPLE_BYTES))
                    fh.seek(size - SAMPLE_BYTES)
                    sample.update(fh.read(SAMPLE_BYTES))
                digest = "sampled:" + sample.hexdigest()
        except OSError as exc:
            raise SeldbenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
        h.update(f"{path.relative_to(base).as_posix()}\t{size}\t{digest}\n".encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- write / read


def data_identity(clips: dict, audio_format: str, video: bool) -> dict:
    """What identifies the data a run reads: ``{"data_hash", "files", "clips",
    "clips_without_video"}``.

    ``clips``: ``{split: [ClipFiles]}``. The hash covers which clip is in which split, the
    metadata, the audio of ``audio_format`` (the one the features read) and, with ``video``
    (a model that reads video on a dataset that has it), the MP4s; each file by
    :func:`hash_files`' rules. So another tree (other clips, other lengths), a missing video
    folder or a re-encoded video give another hash, and a run of the same command on that data
    goes to another folder (:func:`seldbench.training.run.run`)."""
    files, lines = [], []
    without_video = {}
    for split, listed in clips.items():
        without_video[split] = sum(c.video is None for c in listed)
        for c in sorted(listed, key=lambda c: c.stem):
            lines.append(f"{split}\t{c.stem}\t{'video' if video and c.video else '-'}")
            files += [c.metadata, c.audio.get(audio_format)]
            if video and c.video is not None:
                files.append(c.video)
    h = hashlib.sha256(b"seldbench-data-v2\n")
    h.update("\n".join(lines).encode())
    h.update(hash_files(files).encode())
    return {"data_hash": h.hexdigest(), "files": len({f for f in files if f is not None}),
            "clips": {s: len(v) for s, v in clips.items()},
            "clips_without_video": without_video if video else {}}


def run_record(plan, run_dir: Path, model, plugin: str, clips: dict, trainer, results: dict,
               prov: dict, device, processes: int, wall_time_s: float,
               identity: dict | None = None, init: dict | None = None) -> dict:
    """The record of a finished run (schema 1, the module docstring), from its plan
    (:class:`seldbench.training.plan.RunPlan`), built model, clips per split, trainer (history
    and best checkpoint), test results and provenance taken when it started. ``init``: where
    the weights came from and what was frozen (``train.init_from``, ``train.freeze``)."""
    import datetime as dt

    history = trainer.history
    identity = identity or data_identity(clips, plan.feature.audio_format,
                                         plan.model.needs_video and plan.dataset.has_video)
    val_stems = {c.stem for c in clips["val"]}
    return {
        "schema": SCHEMA_VERSION,
        "run_id": Path(run_dir).name,
        "status": "complete",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seldbench_version": prov["packages"].get("seldbench", "unknown"),
        "model": {"name": plan.model.name, "version": plan.model.version,
                  "params": int(sum(p.numel() for p in model.parameters())), "plugin": plugin},
        "dataset": {"name": plan.dataset.name, "version": plan.dataset.version,
                    **identity},
        "split": "test",
        "selection": {"split": "val", "suite": plan.selection.name,
                      "figure": plan.selection.rank_by, "best_epoch": history.best_epoch,
                      "best_value": history.best_value,
                      # true when a validation clip is also a test clip: selection saw the test
                      "val_is_test": any(c.stem in val_stems for c in clips["test"])},
        "results": results,
        "config": plan.cfg, "config_hash": plan.digest, "seed": plan.seed,
        "recipe": plan.output.recipe,
        "device": {**device_info(str(device)), "processes": int(processes)},
        **prov,
        "wall_time_s": float(wall_time_s),
        "train": {"epochs_run": len(history.epochs),
                  "audio_s_per_s": history.audio_seconds / max(history.train_seconds, 1e-9),
                  **peak_memory(device),
                  "history": [{"epoch": e["epoch"], "loss": e["loss"], "val": e["val"]}
                              for e in history.epochs]},
        "checkpoint": {"file": trainer.best_path.name,
                       "sha256": file_sha256(trainer.best_path)},
        **({"init": init} if init else {}),
    }


def peak_memory(device) -> dict:
    """Peak resident memory of this process (GB) and, on CUDA, peak allocated GPU memory."""
    import resource

    out = {"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if getattr(device, "type", None) == "cuda":
        import torch

        out["peak_gpu_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


#: The files of a finished run folder that prediction needs, in the order they are checked.
RUN_FILES = ("config.json", "record.json", "normalizer.npz", "best.pt")


def read_run_info(run_dir: str | os.PathLike) -> tuple[Path, dict, dict]:
    """``(path, config, record)`` of a finished run folder, checked.

    Errors (one line each): the folder is missing, it is not a run folder (neither
    ``config.json`` nor ``record.json``), one of them is missing or not valid JSON, or they
    lack the model and dataset names.
    """
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise SeldbenchError(f"{path}: no such run folder")
    if not any((path / f).is_file() for f in RUN_FILES[:2]):
        raise SeldbenchError(f"{path}: not a seldbench run folder (no config.json or "
                             "record.json); expected <runs>/<dataset>/<model>/<run id>")
    docs = []
    for name in RUN_FILES[:2]:
        file = path / name
        if not file.is_file():
            if name == "config.json" and (path / "record.json").is_file():
                # a leaderboard copy keeps record.json alone: not an unfinished run
                raise SeldbenchError(f"{path}: holds a run record only (no config.json, "
                                     "best.pt or predictions/); plot and predict need the "
                                     "whole run folder the run wrote")
            raise SeldbenchError(f"{file}: missing from the run folder (unfinished run?)")
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise SeldbenchError(f"{file}: not valid JSON ({' '.join(str(exc).split())})") from None
        if not isinstance(doc, dict):
            raise SeldbenchError(f"{file}: not a seldbench {name} (not a JSON object)")
        docs.append(doc)
    config, record = docs
    try:
        record["model"]["name"], record["dataset"]["name"]
        config["dataset"]["name"], config["features"]["name"], config["eval"], config["train"]
    except (KeyError, TypeError) as exc:
        raise SeldbenchError(f"{path}: not a seldbench run folder (config.json / record.json "
                             f"lack {exc})") from None
    if record["dataset"]["name"] != config["dataset"]["name"]:
        raise SeldbenchError(f"{path}: record.json says dataset '{record['dataset']['name']}', "
                             f"config.json '{config['dataset']['name']}'")
    return path, config, record



def write_record(run_dir: str | os.PathLike, record: dict) -> Path:
    """Check ``record`` against the schema and write it atomically to ``run_dir/record.json``."""
    path = Path(run_dir) / RECORD_NAME
    validate_record(record, path)
    atomic_write_json(path, record)
    return path


def load_records(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[dict]:
    """Read and check every run record under ``paths`` (files, or folders searched recursively
    for ``record.json``), in path order. A missing path, invalid JSON or a record that breaks
    the schema raises :class:`SeldbenchError` ``<file>: <problem>``; no records is not an
    error here (an empty list)."""
    return [rec for _, rec in load_record_files(paths)]


def load_record_files(paths: str | os.PathLike | Iterable[str | os.PathLike]
                      ) -> list[tuple[Path, dict]]:
    """:func:`load_records` with the file each record was read from."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.rglob(RECORD_NAME)))
        elif p.is_file():
            found.append(p)
        else:
            raise SeldbenchError(f"{p}: no such file or folder")
    records = []
    for path in dict.fromkeys(found):  # de-duplicate, keep order
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SeldbenchError(f"{path}: cannot read ({exc})") from None
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SeldbenchError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}); "
                                 "an unfinished run writes no record, so this file was "
                                 "edited or damaged") from None
        validate_record(rec, path)
        records.append((path, rec))
    return records


# ----------------------------------------------------------------------------- validation

_NUM = (int, float)


def _is_num(v: Any, nullable: bool = False) -> bool:
    if v is None:
        return nullable
    return isinstance(v, _NUM) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: (key path, check, what it must be) for the scalar fields of schema 1
_FIELDS: tuple[tuple[str, Any, str], ...] = (
    ("run_id", lambda v: isinstance(v, str) and v, "a non-empty string"),
    ("status", lambda v: v == "complete", "'complete'"),
    ("created", lambda v: isinstance(v, str) and _is_iso(v), "an ISO-8601 time"),
    ("seldbench_version", lambda v: isinstance(v, str), "a string"),
    ("model.name", lambda v: isinstance(v, str) and v, "a non-empty string"),
    ("model.version", lambda v: isinstance(v, str), "a string"),
    ("model.params", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    ("model.plugin", lambda v: isinstance(v, str), "a string"),
    ("dataset.name", lambda v: isinstance(v, str) and v, "a non-empty string"),
    ("dataset.version", lambda v: isinstance(v, str), "a string"),
    ("dataset.data_hash", lambda v: isinstance(v, str), "a string"),
    ("split", lambda v: isinstance(v, str) and v, "a non-empty string"),
    ("selection.split", lambda v: isinstance(v, str), "a string"),
    ("selection.suite", lambda v: isinstance(v, str), "a string"),
    ("selection.figure", lambda v: isinstance(v, str), "a string"),
    ("selection.best_epoch", _is_int, "an integer"),
    ("selection.best_value", lambda v: _is_num(v, nullable=True), "a number or null"),
    ("selection.val_is_test", lambda v: isinstance(v, bool), "true or false"),
    ("results", lambda v: isinstance(v, dict), "an object"),
    ("config", lambda v: isinstance(v, dict), "an object"),
    ("config_hash", lambda v: isinstance(v, str) and v, "a non-empty string"),
    ("seed", _is_int, "an integer"),
    ("recipe", lambda v: isinstance(v, str), "a string"),
    ("device.type", lambda v: isinstance(v, str) and v, "a non-empty string"),
    ("packages", lambda v: isinstance(v, dict), "an object"),
    ("git", lambda v: v is None or isinstance(v, dict), "an object or null"),
    ("wall_time_s", lambda v: _is_num(v) and v >= 0, "a non-negative number"),
    ("train.epochs_run", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    ("train.audio_s_per_s", lambda v: _is_num(v, nullable=True), "a number"),
    ("train.history", lambda v: isinstance(v, list), "a list"),
    ("checkpoint.file", lambda v: isinstance(v, str), "a string"),
    ("checkpoint.sha256", lambda v: isinstance(v, str), "a string"),
)

_MISSING = object()


def _is_iso(text: str) -> bool:
    import datetime as _dt

    try:
        _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _get(rec: dict, dotted: str) -> Any:
    node: Any = rec
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return _MISSING
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


def validate_record(rec: Any, path: str | os.PathLike = "record") -> None:
    """Raise :class:`SeldbenchError` ``<path>: <problem>`` at the first way ``rec`` breaks
    schema 1 (see the module docstring); return None when it conforms."""
    def fail(problem: str) -> None:
        raise SeldbenchError(f"{path}: {problem}")

    if not isinstance(rec, dict):
        fail("not a run record (expected a JSON object)")
    schema = rec.get("schema", _MISSING)
    if schema is _MISSING:
        fail("not a run record (no 'schema' key)")
    if schema != SCHEMA_VERSION:
        fail(f"run record schema {schema!r} is not supported (this seldbench reads "
             f"schema {SCHEMA_VERSION}); upgrade seldbench")
    for key, check, what in _FIELDS:
        value = _get(rec, key)
        if value is _MISSING:
            fail(f"missing key '{key}'")
        if not check(value):
            fail(f"'{key}' must be {what}, got {json.dumps(value)[:60]}")
    git = rec["git"]
    if git is not None and not (isinstance(git.get("revision"), str)
                                and isinstance(git.get("dirty"), bool)):
        fail("'git' must be null or {\"revision\": str, \"dirty\": bool}")
    for name, version in rec["packages"].items():
        if not isinstance(version, str):
            fail(f"'packages.{name}' must be a version string")
    if not rec["results"]:
        fail("'results' has no metric suite")
    for suite, res in rec["results"].items():
        _validate_result(suite, res, fail)
    for i, entry in enumerate(rec["train"]["history"]):
        if not (isinstance(entry, dict) and _is_int(entry.get("epoch"))
                and _is_num(entry.get("loss"), nullable=True)
                and isinstance(entry.get("val"), dict)):
            fail(f"'train.history[{i}]' must be {{\"epoch\": int, \"loss\": float, "
                 "\"val\": {...}}")


def _validate_result(suite: str, res: Any, fail) -> None:
    where = f"results.{suite}"
    if not isinstance(res, dict):
        fail(f"'{where}' must be an object")
    if "skipped" in res:
        if not isinstance(res["skipped"], str):
            fail(f"'{where}.skipped' must be a string (the reason)")
        return
    for key, typ in (("figures", dict), ("interval", dict), ("classwise", list),
                     ("options", dict)):
        if key not in res:
            fail(f"missing key '{where}.{key}'")
        if not isinstance(res[key], typ):
            fail(f"'{where}.{key}' must be {'a list' if typ is list else 'an object'}")
    if not res["figures"]:
        fail(f"'{where}.figures' is empty")
    for fig, value in res["figures"].items():
        if not _is_num(value, nullable=True) or (isinstance(value, float) and math.isinf(value)):
            fail(f"'{where}.figures.{fig}' must be a number or null, got {json.dumps(value)}")
    for fig, iv in res["interval"].items():
        if fig not in res["figures"]:
            fail(f"'{where}.interval.{fig}' has no figure '{fig}'")
        if not (isinstance(iv, list) and len(iv) == 2 and all(_is_num(v, True) for v in iv)):
            fail(f"'{where}.interval.{fig}' must be [lo, hi]")
