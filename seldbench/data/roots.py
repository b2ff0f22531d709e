"""Where a dataset's files live: ``--root`` / config ``dataset.root``, else the dataset's
environment variable (:attr:`DatasetSpec.root_env`), else its default location."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from seldbench.errors import SeldbenchError
from seldbench.specs import DatasetSpec


def data_home() -> Path:
    """Where generated datasets live by default: ``$SELDBENCH_DATA``, or ``~/.cache/seldbench``."""
    return Path(os.environ.get("SELDBENCH_DATA") or "~/.cache/seldbench").expanduser()


def resolve_root(spec: DatasetSpec, root: str | os.PathLike | None = None,
                 environ: Mapping[str, str] | None = None) -> Path:
    """The root folder of ``spec``'s files.

    Order: ``root`` (from ``--root`` or the config key ``dataset.root``), then the environment
    variable ``spec.root_env``, then ``spec.default_root``. A root that does not exist is an
    error naming where it came from, except a default root of a dataset with ``prepare`` (it is
    generated on first use) - wherever the root of such a dataset comes from. No root at all is an error naming the variable and the config key.
    """
    environ = os.environ if environ is None else environ
    if root is not None and str(root) != "":
        path, origin = Path(root).expanduser(), "--root / dataset.root"
    elif spec.root_env and environ.get(spec.root_env):
        path, origin = Path(environ[spec.root_env]).expanduser(), spec.root_env
    elif spec.default_root is not None:
        path = Path(spec.default_root).expanduser()
        if spec.prepare is not None:
            return path
        origin = "the dataset's default location"
    else:
        how = f"set {spec.root_env} or " if spec.root_env else ""
        raise SeldbenchError(f"dataset '{spec.name}': no root folder; {how}set dataset.root in "
                             f"the config (or pass --root)")
    if spec.prepare is not None:
        return path  # generated there on first use
    if not path.is_dir():
        raise SeldbenchError(f"{path}: dataset folder of '{spec.name}' not found (from {origin})")
    return path


__all__ = ["data_home", "resolve_root"]
