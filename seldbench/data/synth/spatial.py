"""Plane-wave encoding for the two STARSS23 formats: FOA (ACN/SN3D) and the tetrahedral MIC array.

Conventions (as in STARSS23): azimuth counter-clockwise from the front (+x), 90 deg = left (+y);
elevation up from the horizontal plane; angles in degrees. A plane wave from direction ``u``
reaches the FOA channels W, Y, Z, X with gains ``[1, sin az cos el, sin el, cos az cos el]``
and the capsule at ``r_i`` (4.2 cm from the centre) ``-(r_i . u) / c`` seconds relative to the
centre, with a mild first-order directivity ``(1 - a) + a cos(angle to the capsule axis)``.

Delays are fractional: impulses go into impulse responses as Kaiser-windowed sincs
(:func:`add_impulses`), and long noise signals are delayed in the frequency domain.
"""
from __future__ import annotations

import numpy as np
from scipy import special

from seldbench.data.synth import exact

SPEED_OF_SOUND_M_S = 343.0
MIC_RADIUS_M = 0.042
#: Capsule directions (azimuth, elevation) in degrees, STARSS23 order.
MIC_CAPSULES_DEG = ((45.0, 35.0), (-45.0, -35.0), (135.0, -35.0), (-135.0, 35.0))
#: Weight of the cosine term of the capsule directivity (0 = omni, 0.5 = cardioid).
MIC_DIRECTIVITY = 0.25
#: Half length of the windowed-sinc fractional-delay kernel, in samples.
SINC_HALF = 16
_KAISER_BETA = 8.0


def unit_vector(azimuth_deg, elevation_deg) -> np.ndarray:
    """Unit vectors ``(..., 3)`` (x front, y left, z up) of directions in degrees."""
    az = np.deg2rad(np.asarray(azimuth_deg, dtype=float))
    el = np.deg2rad(np.asarray(elevation_deg, dtype=float))
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def direction_of(vec) -> tuple[np.ndarray, np.ndarray]:
    """(azimuth_deg, elevation_deg) of vectors ``(..., 3)``; azimuth in [-180, 180)."""
    vec = np.asarray(vec, dtype=float)
    az = np.rad2deg(exact.arctan2(vec[..., 1], vec[..., 0]))
    el = np.rad2deg(exact.arctan2(vec[..., 2], np.sqrt(vec[..., 0] ** 2 + vec[..., 1] ** 2)))
    return wrap_azimuth(az), el


def wrap_azimuth(azimuth_deg):
    """Azimuth wrapped into [-180, 180)."""
    return (np.asarray(azimuth_deg, dtype=float) + 180.0) % 360.0 - 180.0


def foa_gains_from_vector(u: np.ndarray) -> np.ndarray:
    """ACN/SN3D first-order gains ``(..., 4)`` in channel order W, Y, Z, X of unit vectors."""
    u = np.asarray(u, dtype=float)
    return np.stack([np.ones(u.shape[:-1]), u[..., 1], u[..., 2], u[..., 0]], axis=-1)


def foa_gains(azimuth_deg, elevation_deg) -> np.ndarray:
    """ACN/SN3D gains ``(..., 4)``: ``[1, sin az cos el, sin el, cos az cos el]`` (W, Y, Z, X)."""
    return foa_gains_from_vector(unit_vector(azimuth_deg, elevation_deg))


def capsule_vectors() -> np.ndarray:
    """Unit vectors ``(4, 3)`` of the tetrahedral capsule directions."""
    return unit_vector([a for a, _ in MIC_CAPSULES_DEG], [e for _, e in MIC_CAPSULES_DEG])


def mic_response_from_vector(u: np.ndarray, directivity: float = MIC_DIRECTIVITY
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Capsule delays (s) and gains, both ``(..., 4)``, of plane waves from unit vectors ``u``.

    Delays are relative to the array centre: negative for capsules facing the source.
    """
    cos = exact.matmul(u, capsule_vectors().T)  # (..., 4)
    delays = -MIC_RADIUS_M * cos / SPEED_OF_SOUND_M_S
    gains = (1.0 - directivity) + directivity * cos
    return delays, gains


def mic_response(azimuth_deg, elevation_deg, directivity: float = MIC_DIRECTIVITY
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mic_response_from_vector` for directions in degrees."""
    return mic_response_from_vector(unit_vector(azimuth_deg, elevation_deg), directivity)


def add_impulses(out: np.ndarray, delays: np.ndarray, gains: np.ndarray) -> None:
    """Add band-limited impulses to ``out`` ``(channels, length)`` in place.

    ``delays`` (samples, fractional) and ``gains`` are ``(channels, impulses)``. Each impulse is
    a Kaiser-windowed sinc of ``2 * SINC_HALF`` taps; taps outside ``out`` are dropped.
    """
    channels, length = out.shape
    delays = np.asarray(delays, dtype=float)
    gains = np.asarray(gains, dtype=float)
    base = np.floor(delays).astype(np.int64)  # (C, K)
    frac = delays - base
    taps = np.arange(-SINC_HALF + 1, SINC_HALF + 1)  # (T,)
    x = taps[None, None, :] - frac[..., None]  # (C, K, T) distance from the exact delay
    window = special.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (x / SINC_HALF) ** 2, 0.0, None)))
    kernel = np.sinc(0.95 * x) * 0.95 * window / special.i0(_KAISER_BETA) * gains[..., None]
    idx = base[..., None] + taps[None, None, :]
    flat = (np.arange(channels)[:, None, None] * length + idx).ravel()
    ok = ((idx >= 0) & (idx < length)).ravel()
    out += np.bincount(flat[ok], weights=kernel.ravel()[ok], minlength=channels * length
                       ).reshape(channels, length)


def fibonacci_sphere(n: int, rotation: np.ndarray | None = None) -> np.ndarray:
    """``n`` nearly uniform unit vectors ``(n, 3)``, optionally rotated by a 3x3 matrix."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = np.pi * (1.0 + 5.0 ** 0.5) * i
    r = np.sqrt(1.0 - z ** 2)
    pts = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=-1)
    return exact.matmul(pts, rotation.T) if rotation is not None else pts


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 rotation matrix (from a uniform unit quaternion; plain
    arithmetic, no LAPACK, so the same bits on every CPU)."""
    w, x, y, z = (float(v) for v in rng.standard_normal(4))
    s = 2.0 / (w * w + x * x + y * y + z * z)
    return np.array([[1 - s * (y * y + z * z), s * (x * y - w * z), s * (x * z + w * y)],
                     [s * (x * y + w * z), 1 - s * (x * x + z * z), s * (y * z - w * x)],
                     [s * (x * z - w * y), s * (y * z + w * x), 1 - s * (x * x + y * y)]])


def encode_diffuse(spectra: np.ndarray, directions: np.ndarray, fs: int, n: int) -> np.ndarray:
    """Encode independent plane waves into FOA + MIC: ``(8, n)`` time signals.

    ``spectra`` ``(D, n // 2 + 1)`` are the rfft spectra of the D plane-wave signals (length
    ``n``) arriving from ``directions`` ``(D, 3)``. Channels 0-3 are FOA (W, Y, Z, X), 4-7 the
    MIC capsules (fractional delays applied as phase shifts).
    """
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    foa = foa_gains_from_vector(directions)  # (D, 4)
    delays, gains = mic_response_from_vector(directions)  # (D, 4)
    out = np.empty((8, spectra.shape[1]), dtype=complex)
    out[:4] = np.einsum("dc,df->cf", foa, spectra)
    for c in range(4):
        phase = exact.expj(-2 * np.pi * freqs[None, :] * delays[:, c:c + 1])  # (D, F)
        out[4 + c] = np.sum(exact.cmul(phase * gains[:, c:c + 1], spectra), axis=0)
    return np.fft.irfft(out, n=n, axis=-1)
