"""The process's global random streams (Python, numpy, torch on the CPU and CUDA), saved and put
back: a checkpoint resumes them (:mod:`seldbench.training.trainer`), and work that must not
change a run's draws, such as encoding side inputs (:func:`seldbench.side_inputs.collect`), is
undone from them."""
from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch


def rng_state(cuda: Sequence[int] | None = None) -> dict:
    """Every global random state, in types a checkpoint holds (numpy's key array as a list).
    ``cuda``: the CUDA devices whose generators are kept (``{index: state}``); None: every
    device's (a list) when CUDA is available."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    if cuda is None:
        gpus = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    else:
        gpus = {int(i): torch.cuda.get_rng_state(int(i)) for i in cuda}
    return {"python": random.getstate(),
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
            "torch": torch.get_rng_state(), "cuda": gpus}


def set_rng_state(state: dict) -> None:
    """Put back the random states of :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    gpus = state.get("cuda")
    if isinstance(gpus, dict):
        for index, s in gpus.items():
            torch.cuda.set_rng_state(s, int(index))
    elif gpus is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(gpus)
