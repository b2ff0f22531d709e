"""Stereo features (DCASE 2025 Task 3): log-mel spectra of both channels, and interchannel
level and phase differences.

- ``stereo_logmel`` (2 x 64): log-mel of left and right only, the 2025 baseline's input
  (``extract_log_mel_spectrogram`` of ``DCASE2025_seld_baseline``: n_fft 1024, hop 480, window
  960, 64 mels); hop 20 ms (5 feature frames per 100-ms label frame).
- ``stereo_logmel_ild_ipd`` (5 x 64): the same plus the interchannel level difference (ILD)
  and the cosine and sine of the interchannel phase difference (IPD), which the baseline does
  not give its CRNN: the direction cues of the pair made explicit at every mel band.
- ``stereo_logmel_ild_ipd_ms`` (7 x 64): the same plus log-mel of mid (L + R) / 2 and side
  (L - R) / 2, whose level ratio carries the left-right energy balance at every frequency
  explicitly (a richer choice).

ILD, IPD are computed per STFT bin and then mel-binned with the normalised filterbank (each
mel band a weighted mean of its bins): ``ILD = 10 log10((|L|^2 + eps) / (|R|^2 + eps))`` in dB
(positive: louder on the left), ``IPD = angle(L conj(R))`` as (cos, sin). Input channels:
left, right (the WAV's order).
"""
from __future__ import annotations

import torch
from torch import Tensor

from seldbench.features.stft import SAMPLE_RATE, FeatureModule, mel_filterbank, power


class StereoLogmelIldIpd(FeatureModule):
    """Stereo log-mel + ILD + IPD: ``(batch, 2, samples) -> (batch, 5 or 7, frames, n_mels)``.

    Channels 0-1: log-mel power of left, right in dB (``top_db`` below the per-clip,
    per-channel maximum); with ``mid_side`` also 2-3: log-mel of mid and side. Then ILD (dB),
    cos IPD, sin IPD, mel-binned (band means). ``frames = samples // hop_length``. Without
    ``differences`` only the log-mel channels (2 or 4).
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 1024, hop_length: int = 480,
                 win_length: int = 960, n_mels: int = 64, fmin: float = 0.0,
                 fmax: float | None = None, top_db: float | None = 80.0, amin: float = 1e-10,
                 eps: float = 1e-8, mid_side: bool = False, pad_mode: str = "constant",
                 audio_offset: float = 1e-8, frames_per_block: int | None = None,
                 differences: bool = True) -> None:
        config = dict(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                      win_length=win_length, n_mels=n_mels, fmin=fmin, fmax=fmax, top_db=top_db,
                      amin=amin, eps=eps, mid_side=bool(mid_side), pad_mode=pad_mode,
                      audio_offset=audio_offset)
        if not differences:  # only when off: the feature sets with differences keep their hash
            config["differences"] = False
        super().__init__(config, n_fft, hop_length, win_length, pad_mode, audio_offset,
                         frames_per_block)
        self.mid_side = bool(mid_side)
        self.log_channels = 4 if self.mid_side else 2
        self.differences = bool(differences)
        self.channels = self.log_channels + 3 * self.differences
        self.bins = int(n_mels)
        self.top_db = top_db
        self.amin = float(amin)
        self.eps = float(eps)
        fb = torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax))
        self.register_buffer("mel_fb", fb, persistent=False)  # (freq, mels)
        # band means for the difference features: each mel band's weights summing to 1
        self.register_buffer("mel_avg", fb / fb.sum(dim=0, keepdim=True).clamp(min=1e-12),
                             persistent=False)

    def forward(self, audio: Tensor) -> Tensor:
        if audio.dim() != 3 or audio.shape[1] != 2:
            raise ValueError(f"stereo features need audio (batch, 2, samples), got "
                             f"{tuple(audio.shape)}")
        return super().forward(audio)

    def block_features(self, spec: Tensor) -> Tensor:
        dtype = spec.real.dtype
        left, right = spec[:, 0], spec[:, 1]  # (B, T, F)
        if self.mid_side:
            spec = torch.stack([left, right, (left + right) / 2, (left - right) / 2], dim=1)
        mel = power(spec) @ self.mel_fb.to(dtype)  # linear; dB in forward()
        if not self.differences:
            return mel
        pl, pr = power(left), power(right)
        ild = 10.0 * torch.log10((pl + self.eps) / (pr + self.eps))
        cross = left * right.conj()
        mag = cross.abs().clamp(min=1e-30)
        cos_ipd = torch.where(cross.abs() > 0, cross.real / mag, torch.ones_like(mag))
        sin_ipd = cross.imag / mag
        diffs = torch.stack([ild, cos_ipd, sin_ipd], dim=1) @ self.mel_avg.to(dtype)
        return torch.cat([mel, diffs], dim=1)


def stereo_logmel(**overrides) -> StereoLogmelIldIpd:
    """``stereo_logmel`` (2 x 64, hop 480): the 2025 baseline's input, log-mel of L and R."""
    return StereoLogmelIldIpd(**{"differences": False, **overrides})


def stereo_logmel_ild_ipd(**overrides) -> StereoLogmelIldIpd:
    """``stereo_logmel_ild_ipd`` (5 x 64, hop 480); ``overrides`` change arguments."""
    return StereoLogmelIldIpd(**overrides)


def stereo_logmel_ild_ipd_ms(**overrides) -> StereoLogmelIldIpd:
    """``stereo_logmel_ild_ipd_ms`` (7 x 64, hop 480): with mid/side log-mel."""
    return StereoLogmelIldIpd(**{"mid_side": True, **overrides})
