"""Shared pieces of every feature set: the multichannel STFT, the mel filterbank and ``power_to_db``.

Settings are the DCASE 2023 baseline's (docs/features.md, "The common STFT"): 24-kHz audio scaled as
int16 / 32768 plus a 1e-8 offset, hop 480 samples (20 ms), Hann window of 960 samples zero-padded
to n_fft 1024, centred frames with **constant (zero) padding** (librosa's default ``pad_mode``
since 0.10, which is what the baseline runs with today), frames truncated to
``floor(samples / hop)``. Everything is batched over clips and channels and runs unchanged on
CPU or GPU; float32 in, float32 out (float64 in, float64 out).

Precision of float32 against librosa in float64 (benchmarks/features_speed.py, 8 x 60 s): log-mel
within 1e-5 dB, intensity vectors 2e-8, GCC-PHAT 3e-6; SALSA-Lite's per-bin (unsmoothed) log
power and phase differ by up to ~1e-2 dB / 4e-5 on the rare bins 50+ dB below their frame's level,
where float32 FFT rounding dominates. Pass float64 audio for float64 features.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
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
    """Complex STFT of every channel of every clip, in one ``torch.stft`` call per frame block.

    ``forward(audio)``: ``audio`` is ``(batch, channels, samples)`` float, int16 / 32768 scale.
    Returns complex ``(batch, channels, frames, n_fft // 2 + 1)``, ``frames = samples // hop``
    (the trailing frames of the centred STFT are dropped, as the baseline does). Frame ``t`` is
    centred on sample ``t * hop``. ``pad`` + ``block`` compute frames ``t0:t1`` only, with the
    same values as ``forward`` (the centring padding is applied once to the whole signal).
    """

    def __init__(self, n_fft: int = 1024, hop_length: int = 480, win_length: int = 960,
                 pad_mode: str = "constant", audio_offset: float = 1e-8) -> None:
        super().__init__()
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        if not 0 < win_length <= n_fft:
            raise ValueError("win_length must be in (0, n_fft]")
        if hop_length <= 0:
            raise ValueError("hop_length must be positive")
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

    def pad(self, audio: Tensor) -> Tensor:
        """``(batch, channels, samples)`` -> ``(batch * channels, samples + n_fft)``: the audio
        plus ``audio_offset``, padded by ``n_fft // 2`` on each side (``center=True``)."""
        if audio.dim() != 3:
            raise ValueError(f"audio must be (batch, channels, samples), got {tuple(audio.shape)}")
        if not audio.is_floating_point():
            raise ValueError("audio must be floating point (int16 / 32768 scale)")
        x = audio.reshape(-1, audio.shape[-1])
        if self.audio_offset:
            x = x + self.audio_offset
        half = self.n_fft // 2
        if self.pad_mode == "constant":
            return F.pad(x, (half, half))
        return F.pad(x.unsqueeze(1), (half, half), mode=self.pad_mode).squeeze(1)

    def block(self, padded: Tensor, t0: int, t1: int, batch: int) -> Tensor:
        """Frames ``t0:t1`` of a ``pad``-ed signal: complex ``(batch, channels, t1 - t0, freq)``."""
        segment = padded[:, t0 * self.hop_length:(t1 - 1) * self.hop_length + self.n_fft]
        spec = torch.stft(segment, n_fft=self.n_fft, hop_length=self.hop_length,
                          win_length=self.win_length, window=self.window.to(padded.dtype),
                          center=False, return_complex=True)  # (batch * channels, freq, t1 - t0)
        return spec.transpose(-1, -2).reshape(batch, -1, t1 - t0, self.n_bins)

    def forward(self, audio: Tensor) -> Tensor:
        frames = self.num_frames(audio.shape[-1])
        if frames == 0:
            raise ValueError(f"audio shorter than one hop ({self.hop_length} samples)")
        return self.block(self.pad(audio), 0, frames, audio.shape[0])


class FeatureModule(nn.Module):
    """Base of the feature sets: an STFT front end, frame blocks, and the constructor arguments.

    ``config`` holds every argument that changes the values (defaults included) as plain JSON
    values; the feature cache hashes it. Subclasses set ``channels`` and ``bins`` (the output's
    sizes), ``log_channels`` (how many leading channels are power spectra turned into dB over
    the whole clip), ``top_db`` and ``amin``, and implement ``block_features``.

    ``frames_per_block`` bounds the size of the intermediate tensors: features are computed on
    blocks of that many frames. By default, on CPU, a block holds 256 frames in all (``256 //
    batch`` per clip), so temporaries stay a few MB and are reused from the heap (fresh
    multi-hundred-MB temporaries cost more page faults than arithmetic); on GPU all frames go at
    once. It does not change the values (the
    ``top_db`` floor is still taken over the whole clip) and is not part of ``config``.
    """

    channels: int
    bins: int
    log_channels: int = 4
    top_db: float | None = 80.0
    amin: float = 1e-10
    cpu_block_frames = 256  # frames x clips per block on CPU

    def __init__(self, config: dict, n_fft: int, hop_length: int, win_length: int,
                 pad_mode: str, audio_offset: float, frames_per_block: int | None = None) -> None:
        super().__init__()
        self.config = dict(config)
        self.stft = MultichannelSTFT(n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                                     pad_mode=pad_mode, audio_offset=audio_offset)
        if frames_per_block is not None and frames_per_block <= 0:
            raise ValueError("frames_per_block must be positive")
        self.frames_per_block = frames_per_block

    @property
    def hop_length(self) -> int:
        return self.stft.hop_length

    def num_frames(self, samples: int) -> int:
        """Feature frames produced from ``samples`` audio samples."""
        return self.stft.num_frames(samples)

    def forward(self, audio: Tensor) -> Tensor:
        """``(batch, 4, samples)`` audio -> ``(batch, channels, samples // hop, bins)`` features.

        Always computed at full precision (autocast is switched off inside); float32 unless the
        audio is float64.
        """
        if audio.dtype in (torch.float16, torch.bfloat16):
            audio = audio.float()
        batch, frames = audio.shape[0], self.num_frames(audio.shape[-1])
        if frames == 0:
            return audio.new_zeros(batch, self.channels, 0, self.bins)
        block = self.frames_per_block or (
            frames if audio.is_cuda else max(1, self.cpu_block_frames // batch))
        with torch.autocast(device_type=audio.device.type, enabled=False):
            padded = self.stft.pad(audio)
            out = audio.new_empty(batch, self.channels, frames, self.bins)
            for t0 in range(0, frames, block):  # blocks of frames, not single frames
                t1 = min(frames, t0 + block)
                out[:, :, t0:t1] = self.block_features(self.stft.block(padded, t0, t1, batch))
            n = self.log_channels
            out[:, :n] = power_to_db(out[:, :n], amin=self.amin, top_db=self.top_db)
        return out

    def block_features(self, spec: Tensor) -> Tensor:
        """Features of a block of frames from its complex STFT ``(batch, 4, frames, freq)``:
        ``(batch, channels, frames, bins)``, the first ``log_channels`` as linear power."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config.items())
