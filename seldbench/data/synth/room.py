"""Shoebox room acoustics: image-source early reflections, a diffuse late tail, moving sources.

Every path is a plane wave at the array encoded at its own direction, into 8 channels at once:
0-3 FOA (W, Y, Z, X; ACN/SN3D), 4-7 the tetrahedral MIC capsules (:mod:`.spatial`).

- Early part: the direct path and the image sources up to ``reflection_order`` (Allen & Berkley),
  amplitude ``beta ** order / distance``, delay ``distance / c``; beta from the Sabine
  absorption that gives the room's RT60. The direct path (gain ``1/r``) is what the labels say.
- Late tail: exponentially decaying noise (RT60) from many directions spread over the sphere,
  so its mean intensity is nearly zero and the direct path keeps the DOA; its energy is the
  Sabine diffuse energy ``16 pi (1 - alpha) / A`` minus the early reflections, which sets the
  direct-to-reverberant ratio by distance.
- Moving sources: one early response per 100-ms label frame at the frame-centre position; the
  dry signal is cut into raised-cosine cross-faded blocks (hop 100 ms, sum exactly 1), each
  convolved with its own response and overlap-added. The tail is shared.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from scipy import signal as sps

from seldbench.data.synth import exact, spatial

CHANNELS = 8  # FOA W, Y, Z, X + MIC 1-4


@dataclass(frozen=True)
class Room:
    """A shoebox: size and listener position (m, corner at the origin), reverberation time (s).

    The array faces +x (azimuth 0) with +y to its left (azimuth 90) and +z up.
    """

    size_m: tuple[float, float, float]
    listener_m: tuple[float, float, float]
    rt60_s: float

    @property
    def volume_m3(self) -> float:
        x, y, z = self.size_m
        return x * y * z

    @property
    def surface_m2(self) -> float:
        x, y, z = self.size_m
        return 2 * (x * y + x * z + y * z)

    @property
    def absorption(self) -> float:
        """Mean absorption coefficient from Sabine's formula, clipped to [0.02, 0.95]."""
        return float(np.clip(0.161 * self.volume_m3 / (self.surface_m2 * self.rt60_s), 0.02, 0.95))

    @property
    def beta(self) -> float:
        """Pressure reflection coefficient of every wall."""
        return float(np.sqrt(1.0 - self.absorption))

    @property
    def diffuse_energy(self) -> float:
        """Reverberant energy relative to the direct energy at 1 m: ``16 pi (1 - alpha) / A``."""
        a = self.absorption
        return 16 * np.pi * (1 - a) / (a * self.surface_m2)

    def max_distance(self, u: np.ndarray, margin_m: float = 0.25) -> np.ndarray:
        """Largest distance along unit vectors ``u`` ``(..., 3)`` that stays ``margin_m`` inside."""
        u = np.asarray(u, dtype=float)
        lo = np.asarray(self.listener_m) - margin_m
        hi = np.asarray(self.size_m) - margin_m - np.asarray(self.listener_m)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(u > 1e-9, hi / u, np.where(u < -1e-9, lo / -u, np.inf))
        return np.min(t, axis=-1)


def sample_room(rng: np.random.Generator, rt60_range_s: tuple[float, float]) -> Room:
    """A random furnished-room-like shoebox with the listener near the middle."""
    size = (rng.uniform(5.0, 11.0), rng.uniform(4.0, 9.0), rng.uniform(2.7, 4.2))
    listener = (size[0] * rng.uniform(0.35, 0.65), size[1] * rng.uniform(0.35, 0.65),
                rng.uniform(1.2, 1.7))
    return Room(size_m=tuple(round(v, 3) for v in size), listener_m=tuple(round(v, 3) for v in listener),
                rt60_s=round(float(rng.uniform(*rt60_range_s)), 3))


def image_sources(room: Room, source_m: np.ndarray, max_order: int) -> tuple[np.ndarray, np.ndarray]:
    """Image sources of a point source: vectors from the listener ``(K, 3)`` and reflection
    orders ``(K,)``; row 0 is the direct path (order 0)."""
    size = np.asarray(room.size_m)
    m = np.arange(-(max_order // 2 + 1), max_order // 2 + 2)
    p = np.array([0, 1])
    grids = np.stack(np.meshgrid(p, p, p, m, m, m, indexing="ij"), -1).reshape(-1, 6)
    pp, mm = grids[:, :3], grids[:, 3:]
    order = (np.abs(mm - pp) + np.abs(mm)).sum(1)
    keep = order <= max_order
    pp, mm, order = pp[keep], mm[keep], order[keep]
    pos = (1 - 2 * pp) * np.asarray(source_m) + 2 * mm * size
    vec = pos - np.asarray(room.listener_m)
    idx = np.argsort(order, kind="stable")
    return vec[idx], order[idx]


class RoomRenderer:
    """Renders dry sources at positions in one room into 8-channel (FOA + MIC) signals.

    ``reverb_gain`` scales the reflections and tail (1 = the room's physics); ``n_tails``
    independent tail realisations are drawn once (from ``rng``) and shared by the clip's events.
    """

    def __init__(self, room: Room, fs: int, rng: np.random.Generator, *, reflection_order: int = 3,
                 reverb_gain: float = 1.0, n_tails: int = 4, tail_directions: int = 24,
                 wall_lowpass_hz: float = 4000.0) -> None:
        self.room, self.fs = room, fs
        self.order, self.reverb_gain = reflection_order, reverb_gain
        self._lp = float(exact.exp(-2 * np.pi * wall_lowpass_hz / fs))
        self._tails = [self._make_tail(rng, tail_directions) for _ in range(n_tails)]

    # -------------------------------------------------------------- responses

    def _make_tail(self, rng: np.random.Generator, directions: int) -> np.ndarray:
        """A unit-energy (W channel) diffuse tail ``(8, L)`` starting at t = 0."""
        fs, rt60 = self.fs, self.room.rt60_s
        mean_free_time = 4 * self.room.volume_m3 / (self.room.surface_m2 * spatial.SPEED_OF_SOUND_M_S)
        n = int((rt60 + 2 * mean_free_time) * fs)
        t = np.arange(n) / fs
        env = exact.exp(-6.91 * t / rt60) * (1 - exact.exp(-t / max(mean_free_time, 1e-3))) ** 2
        dirs = spatial.fibonacci_sphere(directions, spatial.random_rotation(rng))
        noise = rng.standard_normal((directions, n)) * env
        spec = np.fft.rfft(noise, axis=-1)
        f = np.fft.rfftfreq(n, 1 / fs)
        spec *= 1 / np.sqrt(1 + (f / rng.uniform(3000, 7000)) ** 2)  # walls absorb highs
        tail = spatial.encode_diffuse(spec, dirs, fs, n)
        return tail / np.sqrt(np.sum(tail[0] ** 2))

    def early(self, source_m: np.ndarray) -> tuple[np.ndarray, float]:
        """Direct path + image sources ``(8, L)`` and the early-reflection energy (W, no direct)."""
        vec, order = image_sources(self.room, source_m, self.order)
        dist = np.linalg.norm(vec, axis=1)
        u = vec / dist[:, None]
        gain = exact.power(self.room.beta, order) / dist
        gain[1:] *= self.reverb_gain
        delay = dist / spatial.SPEED_OF_SOUND_M_S * self.fs  # samples
        mic_delay, mic_gain = spatial.mic_response_from_vector(u)
        delays = np.concatenate([np.repeat(delay[None], 4, 0), (delay[:, None] + mic_delay * self.fs).T])
        gains = np.concatenate([(spatial.foa_gains_from_vector(u) * gain[:, None]).T,
                                (mic_gain * gain[:, None]).T])
        length = int(delays.max()) + spatial.SINC_HALF + 2
        out = np.zeros((CHANNELS, length))
        spatial.add_impulses(out, delays[:, :1], gains[:, :1])
        if len(gain) > 1:  # walls absorb more of the highs: one-pole lowpass on the reflections
            refl = np.zeros((CHANNELS, length))
            spatial.add_impulses(refl, delays[:, 1:], gains[:, 1:])
            out += sps.lfilter([1 - self._lp], [1, -self._lp], refl, axis=-1)
        return out, float(np.sum(gain[1:] ** 2))

    def tail(self, index: int, source_m: np.ndarray, early_energy: float) -> np.ndarray:
        """Tail ``index`` scaled to the diffuse energy left after the early part, delayed to
        start with the direct sound: ``(8, L)``."""
        d = np.asarray(source_m, dtype=float) - np.asarray(self.room.listener_m)
        dist = float(np.sqrt(np.sum(d * d)))  # not linalg.norm: BLAS picks kernels by CPU
        energy = self.room.diffuse_energy * self.reverb_gain ** 2
        energy = max(energy - early_energy, 0.2 * energy)
        t = self._tails[index % len(self._tails)] * np.sqrt(energy)
        shift = int(round(dist / spatial.SPEED_OF_SOUND_M_S * self.fs))
        return np.pad(t, ((0, 0), (shift, 0)))

    # -------------------------------------------------------------- rendering

    def render(self, x: np.ndarray, positions_m: np.ndarray, hop: int, tail_index: int = 0) -> np.ndarray:
        """Render dry ``x`` (samples,) from ``positions_m`` ``(frames, 3)`` (one per ``hop``
        samples, at the frame centres): ``(8, samples + response length - 1)``."""
        positions_m = np.asarray(positions_m, dtype=float)
        static = np.allclose(positions_m, positions_m[:1], atol=1e-9)
        mid = positions_m[len(positions_m) // 2]
        if static:
            e, e_energy = self.early(mid)
            t = self.tail(tail_index, mid, e_energy)
            h = np.zeros((CHANNELS, max(e.shape[1], t.shape[1])))
            h[:, :e.shape[1]] += e
            h[:, :t.shape[1]] += t
            return exact.fftconvolve(x[None, :], h)
        responses = [self.early(p) for p in positions_m]
        t = self.tail(tail_index, mid, float(np.mean([r[1] for r in responses])))
        y_tail = exact.fftconvolve(x[None, :], t)
        y_early = _blockwise_convolve(x, [r[0] for r in responses], hop)
        out = np.zeros((CHANNELS, max(y_tail.shape[1], y_early.shape[1])))
        out[:, :y_tail.shape[1]] += y_tail
        out[:, :y_early.shape[1]] += y_early
        return out


def crossfade_weights(n: int, frames: int, hop: int) -> list[tuple[int, np.ndarray]]:
    """Per block k: (start sample, weights) of raised-cosine cross-fades between block centres
    ``(k + 0.5) * hop``; block 0 holds weight 1 before its centre and the last block after
    its centre. The weights of all blocks sum to exactly 1 at every sample of ``[0, n)``."""
    centres = (np.arange(frames) + 0.5) * hop
    out = []
    idx = np.arange(n)
    for k in range(frames):
        lo = int(np.ceil(centres[k - 1])) if k > 0 else 0
        hi = int(np.ceil(centres[k + 1])) if k < frames - 1 else n
        lo, hi = min(lo, n), min(hi, n)
        s = idx[lo:hi].astype(float)
        w = np.ones(hi - lo)
        if k > 0:
            rise = s < centres[k]
            w[rise] = 0.5 - 0.5 * np.cos(np.pi * (s[rise] - centres[k - 1]) / hop)
        if k < frames - 1:
            fall = s >= centres[k]
            w[fall] = 0.5 + 0.5 * np.cos(np.pi * (s[fall] - centres[k]) / hop)
        out.append((lo, w))
    return out


def _blockwise_convolve(x: np.ndarray, responses: list[np.ndarray], hop: int, chunk: int = 16) -> np.ndarray:
    """Time-varying convolution: block k of ``x`` (cross-faded) with ``responses[k]`` (8, L_k)."""
    n = len(x)
    length = max(r.shape[1] for r in responses)
    weights = crossfade_weights(n, len(responses), hop)
    seg_len = max(len(w) for _, w in weights)
    nfft = sp_fft.next_fast_len(seg_len + length - 1, real=True)
    out = np.zeros((CHANNELS, n + length - 1 + seg_len))
    for c0 in range(0, len(responses), chunk):
        ks = range(c0, min(c0 + chunk, len(responses)))
        segs = np.zeros((len(ks), seg_len))
        hs = np.zeros((len(ks), CHANNELS, length))
        for i, k in enumerate(ks):
            lo, w = weights[k]
            segs[i, :len(w)] = x[lo:lo + len(w)] * w
            hs[i, :, :responses[k].shape[1]] = responses[k]
        y = np.fft.irfft(exact.cmul(np.fft.rfft(segs, nfft)[:, None, :], np.fft.rfft(hs, nfft)), nfft)
        for i, k in enumerate(ks):
            lo, w = weights[k]
            m = len(w) + length - 1
            out[:, lo:lo + m] += y[i, :, :m]
    return out[:, :n + length - 1]


def render_background(n: int, fs: int, rng: np.random.Generator, *, directions: int = 16,
                      pool: int = 64, tilt: float = 1.0, highcut_hz: float = 4000.0,
                      hum_db: float = -25.0) -> np.ndarray:
    """Diffuse ambient noise ``(8, n)`` with unit RMS on W: coloured noise (power ~ f**-tilt,
    rolled off above ``highcut_hz``), a faint mains hum on the omni part, slow level changes.

    Each band of bins (8192 bins) is the sum of ``directions`` independent plane waves drawn
    from a ``pool`` of directions spread over the sphere, so over the whole band the field is
    diffuse (no direction stands out in the intensity or in a GCC) at a modest cost.
    """
    f = np.fft.rfftfreq(n, 1 / fs)
    top = int(np.searchsorted(f, min(2.5 * highcut_hz, fs / 2)))  # above: silent (-14 dB and falling)
    fb = f[:top]
    # float64 / complex128 throughout: complex64 sums took their last bits from numpy's SIMD
    # dispatch, so the same seed gave other PCM samples on AVX-512 than on AVX2 CPUs
    shape = (exact.power(np.maximum(fb, 30.0) / 100.0, -tilt / 2)
             / np.sqrt(1 + exact.power(fb / highcut_hz, 4.0)))
    shape[fb < 20] = 0
    dirs = spatial.fibonacci_sphere(pool, spatial.random_rotation(rng))
    foa = spatial.foa_gains_from_vector(dirs).astype(complex)  # (P, 4)
    mic_delay, mic_gain = spatial.mic_response_from_vector(dirs)  # (P, 4)
    spec = np.zeros((8, len(f)), dtype=complex)
    # exp(-j w tau) in a band starting at bin k0 = exp(-j k0 dw tau) * exp(-j k dw tau): the
    # second factor is one table for all bands
    chunk = 8192
    dw = 2 * np.pi * fs / n
    tau = mic_delay.T  # (4, P)
    local = exact.expj(-dw * tau[:, :, None] * np.arange(chunk)[None, None, :])
    for k0 in range(0, top, chunk):
        k1 = min(k0 + chunk, top)
        sel = np.sort(rng.choice(pool, directions, replace=False))
        noise = rng.standard_normal((directions, 2 * (k1 - k0))).view(complex)
        noise *= shape[None, k0:k1]
        spec[:4, k0:k1] = np.einsum("dc,dk->ck", foa[sel], noise)  # no BLAS: same bits anywhere
        lead = exact.expj(-dw * tau[:, sel] * k0) * mic_gain.T[:, sel]
        for c in range(4):
            spec[4 + c, k0:k1] = np.einsum("dk,dk->k", exact.cmul(local[c, sel, :k1 - k0], lead[c][:, None]),
                                           noise)
    out = np.fft.irfft(spec, n=n, axis=-1)
    out /= np.sqrt(np.mean(out[0] ** 2))
    t = np.arange(n) / fs
    hum_f = 50.0 if rng.random() < 0.5 else 60.0
    hum = sum(np.sin(2 * np.pi * k * hum_f * t + rng.uniform(0, 6.28)) / k for k in (1, 2, 3))
    hum *= float(exact.power(10.0, hum_db / 20))
    out[0] += hum
    out[4:] += hum[None]
    knots = max(int(n / fs / 4) + 2, 2)
    mod = np.interp(np.linspace(0, knots - 1, n), np.arange(knots), rng.uniform(0.8, 1.2, knots))
    out *= mod[None]
    return out / np.sqrt(np.mean(out[0] ** 2))
