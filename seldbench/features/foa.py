"""First-order Ambisonics features: log-mel spectra plus mel-binned intensity vectors.

- ``foa_logmel_iv`` (7 x 64): the DCASE 2023 baseline's FOA input.
- ``foa_logmel_iv_128`` (7 x 128): EINV2's variant (Cao et al., "An Improved Event-Independent
  Network for Polyphonic Sound Event Localization and Detection", arXiv:2010.13092): hop 300
  (12.5 ms, 8 feature frames per 100-ms label frame), window = n_fft = 1024 as in EINV2's code,
  128 mels from 20 Hz to 12 kHz. Everything else (log, intensity-vector definition) is the same
  as ``foa_logmel_iv``.

Input channels are in ACN order W, Y, Z, X (as the DCASE FOA WAVs).
"""
from __future__ import annotations

import torch
from torch import Tensor

from seldbench.features.stft import SAMPLE_RATE, FeatureModule, mel_filterbank, power


class FoaLogmelIV(FeatureModule):
    """FOA log-mel + intensity vectors: ``(batch, 4, samples) -> (batch, 7, frames, n_mels)``.

    Channels 0-3: log-mel power of W, Y, Z, X in dB (``power_to_db``, ref 1, amin 1e-10,
    ``top_db`` below the per-clip, per-channel maximum). Channels 4-6: intensity vector
    ``I = Re(conj(W) [Y, Z, X])`` divided by ``E = eps + |W|^2 + (|Y|^2 + |Z|^2 + |X|^2) / 3``,
    then mel-binned with the same filterbank (dimensionless, order Y, Z, X: channel 4 points to
    +y (left), 6 to +x (front)). ``frames = samples // hop_length``.
    """

    channels = 7

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 1024, hop_length: int = 480,
                 win_length: int = 960, n_mels: int = 64, fmin: float = 0.0,
                 fmax: float | None = None, top_db: float | None = 80.0, amin: float = 1e-10,
                 eps: float = 1e-8, pad_mode: str = "constant", audio_offset: float = 1e-8,
                 frames_per_block: int | None = None) -> None:
        config = dict(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                      win_length=win_length, n_mels=n_mels, fmin=fmin, fmax=fmax, top_db=top_db,
                      amin=amin, eps=eps, pad_mode=pad_mode, audio_offset=audio_offset)
        super().__init__(config, n_fft, hop_length, win_length, pad_mode, audio_offset,
                         frames_per_block)
        self.bins = int(n_mels)
        self.top_db = top_db
        self.amin = float(amin)
        self.eps = float(eps)
        fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
        self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)  # (freq, mels)

    def block_features(self, spec: Tensor) -> Tensor:
        fb = self.mel_fb.to(spec.real.dtype)
        pw = power(spec)  # (B, 4, T, F)
        mel = pw @ fb  # linear mel power; dB over the whole clip in forward()
        re, im = spec.real, spec.imag
        # Re(conj(W) V) for V = Y, Z, X: (B, 3, T, F)
        intensity = re[:, :1] * re[:, 1:4] + im[:, :1] * im[:, 1:4]
        energy = pw[:, 1:4].sum(dim=1, keepdim=True).div_(3.0).add_(pw[:, :1]).add_(self.eps)
        iv = intensity.div_(energy) @ fb
        return torch.cat([mel, iv], dim=1)


#: Arguments that turn :class:`FoaLogmelIV` into EINV2's 128-mel variant.
EINV2_128 = dict(hop_length=300, win_length=1024, n_mels=128, fmin=20.0, fmax=12000.0)


def foa_logmel_iv(**overrides) -> FoaLogmelIV:
    """The DCASE baseline's ``foa_logmel_iv`` (7 x 64, hop 480); ``overrides`` change arguments."""
    return FoaLogmelIV(**overrides)


def foa_logmel_iv_128(**overrides) -> FoaLogmelIV:
    """EINV2's ``foa_logmel_iv_128`` (7 x 128, hop 300); ``overrides`` change arguments."""
    return FoaLogmelIV(**{**EINV2_128, **overrides})
