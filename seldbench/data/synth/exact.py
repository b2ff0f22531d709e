"""Elementary functions whose float64 results are the same bits on every CPU.

Why: numpy runs ``exp``, ``log``, ``power``, ``tanh``, ``arctan2``, ``arccos`` ... on float64
through AVX-512 kernels where the CPU has them, and those differ by an ulp from the AVX2 and
baseline ones; complex multiplication fuses into FMA from AVX2 up; BLAS (``@``, ``np.dot``,
``np.convolve``, 1-D ``np.linalg.norm``) picks its kernels by CPU; the C library's own
``exp`` has FMA variants. Rounded to 16-bit PCM such differences flip a sample now and then,
so the generator calls these instead.

How: only the operations IEEE 754 rounds exactly (``+ - * /``, ``sqrt``, ``floor``,
``ldexp``/``frexp``), one numpy call each, so nothing can fuse or be vectorised differently:
range reduction and a polynomial. Accuracy is a few ulp, plenty for audio and angles.
``sin``/``cos`` are not here: numpy's float64 ``sin`` and ``cos`` agree at every SIMD level
(``tests/test_synth.py`` checks the whole generator at each level this CPU has).
"""
from __future__ import annotations

import numpy as np

_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * _LN2_HI is exact for |k| < 2^20
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_SQRT_HALF = 0.70710678118654752440
_PI = np.pi
_TAN_PI_12 = 0.26794919243112270  # tan(15 deg)
_SQRT3 = 1.7320508075688772


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _horner(x: np.ndarray, coeffs: list[float]) -> np.ndarray:
    """``sum(c_i x^i)`` with coefficients from the highest power down."""
    out = np.full(x.shape, coeffs[0])
    for c in coeffs[1:]:
        out = out * x + c
    return out


# 1/k! for k = 17 .. 0 (|r| <= ln2/2: the truncation error is below 1e-20)
_EXP_COEFFS = [1.0 / float(np.prod(np.arange(1, k + 1), dtype=np.float64)) for k in range(17, -1, -1)]


def exp(x) -> np.ndarray:
    """``e ** x`` (float64); under/overflows to 0 / inf like numpy."""
    x = _f(x)
    xc = np.clip(np.where(np.isnan(x), 0.0, x), -746.0, 710.0)
    k = np.floor(xc * _INV_LN2 + 0.5)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = _horner(r, _EXP_COEFFS)
    # two steps so that 2**k never overflows before the multiply
    k1 = np.floor(k / 2)
    with np.errstate(over="ignore"):
        out = np.ldexp(np.ldexp(p, k1.astype(np.int32)), (k - k1).astype(np.int32))
    return np.where(np.isnan(x), x, out)


def log(x) -> np.ndarray:
    """Natural logarithm (float64): -inf at 0, nan below."""
    x = _f(x)
    m, e = np.frexp(np.where((x > 0) & np.isfinite(x), x, 1.0))  # x = m 2^e, m in [0.5, 1)
    low = m < _SQRT_HALF
    m = np.where(low, 2 * m, m)  # m in [sqrt(1/2), sqrt(2))
    e = (e - low).astype(np.float64)
    s = (m - 1) / (m + 1)  # |s| < 0.1716
    s2 = s * s
    # log(m) = 2 atanh(s) = 2 (s + s^3/3 + ... + s^23/23)
    series = _horner(s2, [1.0 / k for k in range(23, 0, -2)])
    out = (2 * s * series + e * _LN2_LO) + e * _LN2_HI
    out = np.where(x > 0, out, np.where(x == 0, -np.inf, np.nan))
    return np.where(np.isinf(x) & (x > 0), np.inf, out)


def power(x, y) -> np.ndarray:
    """``x ** y`` for ``x >= 0`` (float64; ``0 ** y`` is 0 for ``y > 0``)."""
    x, y = np.broadcast_arrays(_f(x), _f(y))
    out = exp(y * log(np.where(x > 0, x, 1.0)))
    return np.where(x > 0, out, np.where(y > 0, 0.0, np.where(y == 0, 1.0, np.inf)))


def tanh(x) -> np.ndarray:
    """Hyperbolic tangent (float64)."""
    x = _f(x)
    e = exp(-2 * np.abs(x))
    return np.sign(x) * (1 - e) / (1 + e)


# arctan(t) = t (1 - t^2/3 + t^4/5 - ...), |t| <= tan(15 deg): 20 terms reach 1e-24
_ATAN_COEFFS = [(-1.0) ** k / (2 * k + 1) for k in range(20, -1, -1)]


def _atan_unit(t: np.ndarray) -> np.ndarray:
    """arctan of ``t`` in [0, 1]."""
    big = t > _TAN_PI_12
    u = np.where(big, (t * _SQRT3 - 1) / (t + _SQRT3), t)  # atan(t) = pi/6 + atan(u)
    return np.where(big, _PI / 6, 0.0) + u * _horner(u * u, _ATAN_COEFFS)


def arctan2(y, x) -> np.ndarray:
    """Angle of the point ``(x, y)`` in radians, in [-pi, pi] (float64)."""
    y, x = np.broadcast_arrays(_f(y), _f(x))
    ay, ax = np.abs(y), np.abs(x)
    swap = ay > ax
    num, den = np.where(swap, ax, ay), np.where(swap, ay, ax)
    a = _atan_unit(np.divide(num, den, out=np.zeros(num.shape), where=den > 0))
    a = np.where(swap, _PI / 2 - a, a)
    a = np.where(x < 0, _PI - a, a)
    return np.where(np.signbit(y), -a, a)


def arccos(x) -> np.ndarray:
    """Arc cosine of ``x`` in [-1, 1], in radians (float64)."""
    x = _f(x)
    return arctan2(np.sqrt(np.maximum(1 - x * x, 0.0)), x)


def tan(x) -> np.ndarray:
    """Tangent (float64), as ``sin / cos``."""
    x = _f(x)
    return np.sin(x) / np.cos(x)


def expj(phase) -> np.ndarray:
    """``exp(1j * phase)`` (complex128) from float64 ``cos`` and ``sin``."""
    phase = _f(phase)
    out = np.empty(phase.shape, dtype=complex)
    out.real = np.cos(phase)
    out.imag = np.sin(phase)
    return out


def cmul(a, b) -> np.ndarray:
    """Complex product without FMA (numpy's complex multiply fuses from AVX2 up)."""
    a, b = np.asarray(a, dtype=complex), np.asarray(b, dtype=complex)
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=complex)
    out.real = a.real * b.real - a.imag * b.imag
    out.imag = a.real * b.imag + a.imag * b.real
    return out


def convolve(a, v, mode: str = "full") -> np.ndarray:
    """``np.convolve`` without BLAS: shift-and-add over the taps of the shorter input."""
    a, v = _f(a), _f(v)
    if len(v) > len(a):
        a, v = v, a
    out = np.zeros(len(a) + len(v) - 1)
    for i, tap in enumerate(v):
        out[i:i + len(a)] += tap * a
    if mode == "same":
        start = (len(v) - 1) // 2
        return out[start:start + len(a)]
    return out


def fftconvolve(a, b) -> np.ndarray:
    """Full linear convolution of real signals along the last axis (leading axes broadcast),
    like ``scipy.signal.fftconvolve``, whose spectrum product is numpy's complex multiply."""
    from scipy import fft as sp_fft

    a, b = _f(a), _f(b)
    n = a.shape[-1] + b.shape[-1] - 1
    nfft = sp_fft.next_fast_len(n, real=True)
    spec = cmul(sp_fft.rfft(a, nfft, axis=-1), sp_fft.rfft(b, nfft, axis=-1))
    return sp_fft.irfft(spec, nfft, axis=-1)[..., :n]


def matmul(a, b) -> np.ndarray:
    """``a @ b`` for 2-D ``b`` without BLAS (an einsum, a fixed order of sums)."""
    return np.einsum("...k,kj->...j", _f(a), _f(b))
