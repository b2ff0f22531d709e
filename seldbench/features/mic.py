"""Tetrahedral microphone-array features.

- ``mic_logmel_gcc`` (10 x 64): the DCASE 2023 baseline's MIC input: log-mel spectra of the four
  microphones and GCC-PHAT of the six pairs.
- ``mic_salsa_lite`` (7 x 382): SALSA-Lite (Nguyen et al., "SALSA-Lite: A Fast and Effective
  Feature for Polyphonic Sound Event Localization and Detection with Microphone Arrays",
  arXiv:2111.08192), with the DCASE 2023 baseline's settings.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import Tensor

from seldbench.features.stft import SAMPLE_RATE, FeatureModule, mel_filterbank, power

SPEED_OF_SOUND = 343.0  # m/s, as in the baseline


class MicLogmelGCC(FeatureModule):
    """Log-mel + GCC-PHAT: ``(batch, 4, samples) -> (batch, 10, frames, n_mels)``.

    Channels 0-3: log-mel power of mics 1-4 in dB (as :class:`FoaLogmelIV`). Channels 4-9:
    GCC-PHAT of the pairs (1,2), (1,3), (1,4), (2,3), (2,4), (3,4):
    ``irfft(exp(i angle(conj(X_m) X_n)), n_fft)`` per frame, lags ``-n_lags/2 .. n_lags/2 - 1``
    samples (lag 0 at index ``n_lags // 2``; a positive lag means mic n hears the sound later).
    ``n_lags`` is ``n_mels`` unless given, so all channels have the same width. Only the kept
    lags are computed, as one matmul with a real DFT basis (:func:`irfft_basis`): the same
    values as the full ``irfft``, without computing the 960 lags that are thrown away.
    """

    channels = 10

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 1024, hop_length: int = 480,
                 win_length: int = 960, n_mels: int = 64, n_lags: int | None = None,
                 fmin: float = 0.0, fmax: float | None = None, top_db: float | None = 80.0,
                 amin: float = 1e-10, pad_mode: str = "constant", audio_offset: float = 1e-8,
                 frames_per_block: int | None = None) -> None:
        n_lags = n_mels if n_lags is None else n_lags
        if n_lags != n_mels:
            raise ValueError(f"n_lags ({n_lags}) must equal n_mels ({n_mels}) to stack channels")
        if n_lags % 2 or n_lags > n_fft:
            raise ValueError("n_lags must be even and at most n_fft")
        config = dict(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                      win_length=win_length, n_mels=n_mels, n_lags=n_lags, fmin=fmin, fmax=fmax,
                      top_db=top_db, amin=amin, pad_mode=pad_mode, audio_offset=audio_offset)
        super().__init__(config, n_fft, hop_length, win_length, pad_mode, audio_offset,
                         frames_per_block)
        self.bins = int(n_mels)
        self.n_lags = int(n_lags)
        self.top_db = top_db
        self.amin = float(amin)
        fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
        self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)
        pairs = list(itertools.combinations(range(4), 2))
        self.register_buffer("pair_m", torch.tensor([m for m, _ in pairs]), persistent=False)
        self.register_buffer("pair_n", torch.tensor([n for _, n in pairs]), persistent=False)
        self.register_buffer("lag_basis", torch.from_numpy(irfft_basis(n_fft, self.n_lags)),
                             persistent=False)

    def block_features(self, spec: Tensor) -> Tensor:
        mel = power(spec) @ self.mel_fb.to(spec.real.dtype)  # linear; dB in forward()
        cross = spec[:, self.pair_m].conj() * spec[:, self.pair_n]  # (B, 6, T, F)
        mag = cross.abs()
        # exp(i angle(cross)) = cross / |cross|, and 1 where cross == 0 (angle 0)
        phat = torch.where(mag > 0, cross / mag, torch.ones((), dtype=cross.dtype, device=cross.device))
        # irfft(phat, n_fft) at the kept lags, as one matmul on interleaved (re, im) pairs
        gcc = torch.view_as_real(phat).flatten(-2) @ self.lag_basis.to(mel.dtype)
        return torch.cat([mel, gcc], dim=1)


def irfft_basis(n_fft: int, n_lags: int) -> np.ndarray:
    """``(2 (n_fft // 2 + 1), n_lags)`` float64 matrix ``B`` such that, for a half spectrum ``c``
    stored as interleaved real/imaginary parts, ``c @ B`` equals ``numpy.fft.irfft(c, n_fft)`` at
    lags ``-n_lags/2 .. n_lags/2 - 1`` (lag 0 in the middle). As ``irfft``, the imaginary parts of
    the DC and Nyquist bins are ignored.
    """
    bins = np.arange(n_fft // 2 + 1)
    lags = np.arange(-(n_lags // 2), n_lags // 2) % n_fft
    weight = np.full(bins.size, 2.0 / n_fft)
    weight[0] = 1.0 / n_fft
    if n_fft % 2 == 0:
        weight[-1] = 1.0 / n_fft
    angle = 2.0 * np.pi * ((bins[:, None] * lags[None, :]) % n_fft) / n_fft
    basis = np.stack([weight[:, None] * np.cos(angle), -weight[:, None] * np.sin(angle)], axis=1)
    return basis.reshape(2 * bins.size, n_lags)


class MicSalsaLite(FeatureModule):
    """SALSA-Lite: ``(batch, 4, samples) -> (batch, 7, frames, 382)`` with the default arguments.

    Linear-frequency STFT bins ``lower_bin .. cutoff_bin - 1`` (2 .. 383 = 47 Hz .. 8.98 kHz):
    channels 0-3 are ``power_to_db`` of the power spectra of mics 1-4 (dB, ref 1, amin 1e-10,
    no top_db); channels 4-6 are the phase differences ``angle(X_k conj(X_1))`` of mics 2-4
    against mic 1 divided by ``delta * f`` with ``delta = 2 pi fs / (n_fft c)`` and ``f`` the STFT
    bin index (a normalised inter-channel delay, in metres). Phases are kept on the first
    ``upper_bin`` **output** bins and zeroed from there on: the baseline zeroes
    ``[:, upper_bin:]`` after slicing from ``lower_bin``, so with ``upper_bin = floor(2 kHz)`` =
    85 the phases cover STFT bins 2 .. 86 (47 Hz .. 2.02 kHz). Bins: ``lower_bin =
    max(1, floor(fmin_doa n_fft / fs))``, ``upper_bin = floor(min(fmax_doa, fs/2) n_fft / fs)``,
    ``cutoff_bin = floor(fmax_spectra n_fft / fs)``.
    """

    channels = 7

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 1024, hop_length: int = 480,
                 win_length: int = 960, fmin_doa: float = 50.0, fmax_doa: float = 2000.0,
                 fmax_spectra: float = 9000.0, speed_of_sound: float = SPEED_OF_SOUND,
                 amin: float = 1e-10, pad_mode: str = "constant", audio_offset: float = 1e-8,
                 frames_per_block: int | None = None) -> None:
        config = dict(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                      win_length=win_length, fmin_doa=fmin_doa, fmax_doa=fmax_doa,
                      fmax_spectra=fmax_spectra, speed_of_sound=speed_of_sound, amin=amin,
                      pad_mode=pad_mode, audio_offset=audio_offset)
        super().__init__(config, n_fft, hop_length, win_length, pad_mode, audio_offset,
                         frames_per_block)
        self.lower_bin = max(1, int(math.floor(fmin_doa * n_fft / sample_rate)))
        self.upper_bin = int(math.floor(min(fmax_doa, sample_rate // 2) * n_fft / sample_rate))
        self.cutoff_bin = int(math.floor(fmax_spectra * n_fft / sample_rate))
        if not self.lower_bin < self.cutoff_bin <= n_fft // 2 + 1 or self.upper_bin > self.cutoff_bin:
            raise ValueError("need lower_bin < cutoff_bin <= n_fft/2 + 1 and upper_bin <= cutoff_bin")
        self.bins = self.cutoff_bin - self.lower_bin
        self.amin = float(amin)
        self.top_db = None
        delta = 2.0 * math.pi * sample_rate / (n_fft * speed_of_sound)
        freq = torch.arange(self.lower_bin, self.cutoff_bin, dtype=torch.float64)
        keep = (torch.arange(self.bins) < self.upper_bin).to(torch.float64)
        # 1 / (delta f) where the phase is kept, 0 above: one multiply does both
        self.register_buffer("phase_scale", keep / (delta * freq), persistent=False)

    def block_features(self, spec: Tensor) -> Tensor:
        spec = spec[..., self.lower_bin:self.cutoff_bin]
        pw = power(spec)  # dB (no top_db) in forward()
        phase = torch.angle(spec[:, 1:] * spec[:, :1].conj())  # (B, 3, T, bins)
        return torch.cat([pw, phase * self.phase_scale.to(phase.dtype)], dim=1)


def mic_logmel_gcc(**overrides) -> MicLogmelGCC:
    """The DCASE baseline's ``mic_logmel_gcc`` (10 x 64, hop 480)."""
    return MicLogmelGCC(**overrides)


def mic_salsa_lite(**overrides) -> MicSalsaLite:
    """The DCASE baseline's ``mic_salsa_lite`` (7 x 382, hop 480)."""
    return MicSalsaLite(**overrides)
