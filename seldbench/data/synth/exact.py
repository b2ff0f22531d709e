"""Elementary functions whose float64 results do not depend on the CPU's SIMD level.

numpy runs ``exp``, ``log``, ``power``, ``arctan2``, ``tan`` ... on float64 through AVX-512
kernels where the CPU has them, and those round differently (by 1 ulp) from the AVX2 and
baseline ones; ``sin``, ``cos``, ``sqrt`` and the four arithmetic operations agree at every
level. The diffuse background (a sum over many plane waves, so 1-ulp differences there
reach the PCM samples) uses these wrappers. They evaluate in ``np.longdouble`` (x87 extended precision on x86-64 Linux), whose
loops numpy never dispatches (the C library's scalar ``expl`` and friends), and round to float64.
Where ``longdouble`` is only float64 (Windows, macOS on ARM) they are numpy's own functions.
"""
from __future__ import annotations

import numpy as np

_WIDE = np.longdouble if np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant else np.float64


def _wide(x) -> np.ndarray:
    return np.asarray(x, dtype=_WIDE)


def power(x, y) -> np.ndarray:
    """``x ** y`` elementwise (float64)."""
    return np.power(_wide(x), _wide(y)).astype(np.float64)


def expj(phase) -> np.ndarray:
    """``exp(1j * phase)`` (complex128) from float64 ``cos`` and ``sin``, which agree at every
    SIMD level."""
    phase = np.asarray(phase, dtype=np.float64)
    out = np.empty(phase.shape, dtype=complex)
    out.real = np.cos(phase)
    out.imag = np.sin(phase)
    return out
