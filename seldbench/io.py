"""Atomic file writes: the one helper every writer (records, checkpoints, tables, caches) uses,
and the keyed ``.npy`` cache built on it."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and ``os.replace`` it into place.

    An interrupted write never leaves a half-written ``path``: readers see the old file or the
    new one. On error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically; NaN is written as ``null``."""
    atomic_write_text(path, json.dumps(nan_to_none(obj), indent=2, sort_keys=False) + "\n")


def nan_to_none(obj: Any) -> Any:
    """Replace float NaN/inf by None recursively, so the JSON is standard."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nan_to_none(v) for v in obj]
    return obj


def source_signature(path: str | os.PathLike) -> dict:
    """What identifies a source file's content for a cache key: resolved path, size, mtime."""
    path = Path(path)
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cached_npy(cache_dir: str | os.PathLike, name: str, key: dict, compute,
               mmap: bool = True) -> np.ndarray:
    """``compute()`` once per ``key`` (a JSON-able dict, e.g. a :func:`source_signature` plus
    the settings), stored as ``cache_dir/<name>-<hash>.npy`` atomically and read back after
    (memory-mapped, read-only, when ``mmap``). An unreadable entry is computed again."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{name}-{digest}.npy"
    if path.is_file():
        try:
            return np.load(path, mmap_mode="r" if mmap else None)
        except (OSError, ValueError):
            pass  # damaged entry: compute it again and replace it
    arr = np.asarray(compute())
    with atomic_open(path, "wb") as fh:
        np.save(fh, arr)
    return arr
