"""Atomic file writes: the one helper every writer (records, checkpoints, tables, caches) uses,
and the keyed ``.npy`` cache built on it."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from seldbench.errors import SeldbenchError


def write_error(path: str | os.PathLike, exc: OSError, folder: Path | None = None
                ) -> SeldbenchError:
    """``<path>: cannot write: <cause>`` for an OSError met writing ``path``; a file standing
    where ``folder`` (default: ``path``'s) or one of its parents should be is named as the
    cause."""
    path = Path(path)
    folder = path.parent if folder is None else folder
    blocker = next((p for p in (*reversed(folder.parents), folder)
                    if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        cause = f"{blocker} is a file, not a folder"
    else:
        cause = exc.strerror or str(exc)
    return SeldbenchError(f"{path}: cannot write: {cause}")


def ensure_dir(path: str | os.PathLike, target: str | os.PathLike | None = None) -> Path:
    """Create folder ``path`` (and its parents) if needed and check that files can be made in
    it; a problem (a file in the way, read-only file system, no permission) is one
    :class:`SeldbenchError` naming ``target`` (the file to be written there) or ``path``."""
    path = Path(path)
    name = path if target is None else Path(target)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(name, exc, path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        read_only = os.statvfs(path).f_flag & os.ST_RDONLY
        raise SeldbenchError(f"{name}: cannot write: "
                             f"{'Read-only file system' if read_only else 'Permission denied'}")
    return path


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, empty file beside ``path``. Created with mode 0o666 so that the kernel applies
    the umask (and a folder's default ACL) as for any new file; ``tempfile.mkstemp`` would make
    it 0o600 whatever the umask, hiding shared runs from the rest of a team."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path.parent))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and ``os.replace`` it into place.

    An interrupted write never leaves a half-written ``path``: readers see the old file or the
    new one. On error the temporary file is removed and ``path`` is untouched; an OSError
    while writing (disk full, read-only file system, no permission, a file where a folder
    should be) becomes one :class:`SeldbenchError` naming ``path``. The new file's mode follows
    the umask, like any file the user creates.
    """
    path = Path(path)
    ensure_dir(path.parent, path)
    try:
        fd, tmp = _create_temp(path)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        # an OSError naming another file (e.g. one the body reads) is not a write failure
        if isinstance(exc, OSError) and exc.filename in (None, tmp, str(path)):
            raise write_error(path, exc) from None
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
