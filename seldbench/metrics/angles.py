"""Angular distance in the official Cartesian form (shared by decoders), and the 2025 front-back
fold of azimuths."""
from __future__ import annotations

import numpy as np


def angle_cartesian_deg(v1: np.ndarray, v2: np.ndarray) -> np.ndarray:
    """Angle in degrees between ``(N, 3)`` vectors, each normalised by ``sqrt(|v|^2 + 1e-10)``
    as the official code does (so identical unit vectors are ~0.0008 degrees apart)."""
    n1 = np.sqrt(v1[:, 0] ** 2 + v1[:, 1] ** 2 + v1[:, 2] ** 2 + 1e-10)
    n2 = np.sqrt(v2[:, 0] ** 2 + v2[:, 1] ** 2 + v2[:, 2] ** 2 + 1e-10)
    d = (v1[:, 0] / n1) * (v2[:, 0] / n2) + (v1[:, 1] / n1) * (v2[:, 1] / n2) \
        + (v1[:, 2] / n1) * (v2[:, 2] / n2)
    return np.arccos(np.clip(d, -1, 1)) * 180 / np.pi


def fold_azimuth(az_deg: np.ndarray) -> np.ndarray:
    """Azimuths folded front-back into [-90, 90] degrees, as the DCASE 2025 scorer does: wrapped
    to [-180, 180) first, then ``az < -90 -> -180 - az`` and ``az > 90 -> 180 - az`` (so 150
    and 30 are both 30). The same float operations as the official code, so bit for bit."""
    az = (np.asarray(az_deg, np.float64) + 180) % 360 - 180
    out = az.copy()
    back = az < -90
    out[back] = -180 - az[back]
    front = az > 90
    out[front] = 180 - az[front]
    return out
