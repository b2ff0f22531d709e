"""Shared pieces of every feature set: the multichannel STFT, the mel filterbank and ``power_to_db``.

Settings are the DCASE 2023 baseline's (spec/features.md section 1): 24-kHz audio scaled as
int16 / 32768 plus a 1e-8 offset, hop 480 samples (20 ms), Hann window of 960 samples zero-padded
to n_fft 1024, centred frames with **constant (zero) padding** (librosa's default ``pad_mode``
since 0.10, which is what the baseline runs with today), frames truncated to
``floor(samples / hop)``. Everything is batched over clips and channels and runs unchanged on
CPU or GPU; float32 in, float32 out (float64 in, float64 out).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

SAMPLE_RATE = 24000
PAD_MODES = ("constant", "reflect")


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = 1024, n_mels: int = 64,
                   fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """librosa's Slaney mel filterbank, transposed: ``(n_fft // 2 + 1, n_mels)`` float32.

    ``power (..., freq) @ mel_filterbank(...)`` gives mel power. Same values as
    ``librosa.filters.mel(sr=..., n_fft=..., n_mels=...)`` (its float32 default).
    """
    import librosa  # only needed when a feature module is built

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return np.ascontiguousarray(fb.T, dtype=np.float32)


def power_to_db(power: Tensor, amin: float = 1e-10, top_db: float | None = 80.0,
                ref: float = 1.0) -> Tensor:
    """``librosa.power_to_db`` on the last two dims, per leading index (e.g. per clip and channel).

    ``power``: ``(..., frames, bins)``, non-negative. Returns dB:
    ``10 log10(max(power, amin)) - 10 log10(max(ref, amin))``, then floored at
    ``max - top_db`` where the max is over the ``(frames, bins)`` of each leading index, as
    librosa does for one channel of one clip. The floor depends on the whole clip: compute on
    whole clips, not on chunks, to match the baseline.
    """
    db = 10.0 * torch.log10(torch.clamp(power, min=amin))
    db = db - 10.0 * float(np.log10(max(amin, ref)))
    if top_db is not None:
        if top_db < 0:
            raise ValueError("top_db must be non-negative")
        peak = db.amax(dim=(-2, -1), keepdim=True)
        db = torch.maximum(db, peak - top_db)
    return db


def power(spec: Tensor) -> Tensor:
    """``|spec|^2`` of a complex tensor without the square root."""
    return spec.real.square() + spec.imag.square()


class MultichannelSTFT(nn.Module):
    """Complex STFT of every channel of every clip in one ``torch.stft`` call.

    ``forward(audio)``: ``audio`` is ``(batch, channels, samples)`` float, int16 / 32768 scale.
    Returns complex ``(batch, channels, frames, n_fft // 2 + 1)``, ``frames = samples // hop``
    (the trailing frames of the centred STFT are dropped, as the baseline does). Frame ``t`` is
    centred on sample ``t * hop``.
    """

    def __init__(self, n_fft: int = 1024, hop_length: int = 480, win_length: int = 960,
                 pad_mode: str = "constant", audio_offset: float = 1e-8) -> None:
        super().__init__()
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        if not 0 < win_length <= n_fft:
            raise ValueError("win_length must be in (0, n_fft]")
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.win_length = int(win_length)
        self.pad_mode = pad_mode
        self.audio_offset = float(audio_offset)
        # periodic Hann, as librosa's get_window("hann", N, fftbins=True); torch.stft centres it
        # in n_fft samples as librosa's pad_center does.
        self.register_buffer("window", torch.hann_window(self.win_length, periodic=True,
                                                         dtype=torch.float64), persistent=False)

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, samples: int) -> int:
        """Feature frames for ``samples`` audio samples: ``samples // hop``."""
        return samples // self.hop_length

    def forward(self, audio: Tensor) -> Tensor:
        if audio.dim() != 3:
            raise ValueError(f"audio must be (batch, channels, samples), got {tuple(audio.shape)}")
        batch, channels, samples = audio.shape
        frames = self.num_frames(samples)
        x = audio.reshape(batch * channels, samples)
        if not x.is_floating_point():
            raise ValueError("audio must be floating point (int16 / 32768 scale)")
        if self.audio_offset:
            x = x + self.audio_offset
        spec = torch.stft(x, n_fft=self.n_fft, hop_length=self.hop_length,
                          win_length=self.win_length, window=self.window.to(x.dtype),
                          center=True, pad_mode=self.pad_mode, return_complex=True)
        spec = spec[..., :frames].transpose(-1, -2)  # (batch * channels, frames, freq)
        return spec.reshape(batch, channels, frames, self.n_bins)


class FeatureModule(nn.Module):
    """Base of the feature sets: an STFT front end plus a record of the constructor arguments.

    ``config`` holds every argument (defaults included) as plain JSON values; the feature cache
    hashes it, so two modules with equal ``config`` produce identical features. Subclasses set
    ``channels`` and ``bins`` (the output's last-but-two and last sizes).
    """

    channels: int
    bins: int

    def __init__(self, config: dict, n_fft: int, hop_length: int, win_length: int,
                 pad_mode: str, audio_offset: float) -> None:
        super().__init__()
        self.config = dict(config)
        self.stft = MultichannelSTFT(n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                                     pad_mode=pad_mode, audio_offset=audio_offset)

    @property
    def hop_length(self) -> int:
        return self.stft.hop_length

    def num_frames(self, samples: int) -> int:
        """Feature frames produced from ``samples`` audio samples."""
        return self.stft.num_frames(samples)

    def forward(self, audio: Tensor) -> Tensor:
        """``(batch, 4, samples)`` audio -> ``(batch, channels, frames, bins)`` features.

        Always computed at full precision (autocast is switched off inside).
        """
        if audio.dtype in (torch.float16, torch.bfloat16):
            audio = audio.float()
        with torch.autocast(device_type=audio.device.type, enabled=False):
            return self.features(self.stft(audio))

    def features(self, spec: Tensor) -> Tensor:
        """Features from the complex STFT ``(batch, 4, frames, freq)``; defined by subclasses."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config.items())
