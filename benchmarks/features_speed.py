"""Feature extraction throughput: seldbench's batched torch features vs the DCASE baseline's way.

The reference is what the official baseline does: one file at a time in one process, a
``librosa.stft`` call per channel in float64, then numpy for the mel, intensity-vector, GCC-PHAT
or SALSA-Lite step (the definitions of docs/features.md, "The four sets"), or the stereo ILD /
IPD step (docs/features.md, "Stereo (DCASE 2025)"). seldbench runs the
torch modules on batches of clips on the CPU (all threads, and one thread for a per-core comparison) and on
the GPU when there is one (host-to-device and back included). Throughput is seconds of audio per
second of wall time (best of ``--repeat`` runs); each torch row also gives its speed-up over the reference and the largest
difference from it (log-mel in dB and spatial channels, over all clips).

    python benchmarks/features_speed.py                 # 8 clips x 60 s
    python benchmarks/features_speed.py --clips 2 --seconds 10 --features foa_logmel_iv
"""
from __future__ import annotations

import argparse
import itertools
import platform
import time

import librosa
import numpy as np
import torch

from seldbench.registry import get_registry
from timing import print_table

FS = 24000
HOP, WIN, NFFT = 480, 960, 1024


# ------------------------------------------------------------------ reference (baseline style)


def _spectrogram(audio: np.ndarray) -> np.ndarray:
    """(frames, freq, channels) complex, one librosa call per channel (baseline layout)."""
    audio = audio.astype(np.float64) + 1e-8
    frames = audio.shape[1] // HOP
    return np.stack([librosa.stft(np.asfortranarray(audio[c]), n_fft=NFFT, hop_length=HOP,
                                  win_length=WIN, window="hann")[:, :frames]
                     for c in range(audio.shape[0])], axis=-1).transpose(1, 0, 2)


def _logmel(spec: np.ndarray, mel_wts: np.ndarray) -> np.ndarray:
    return np.stack([librosa.power_to_db(np.dot(np.abs(spec[:, :, c]) ** 2, mel_wts))
                     for c in range(spec.shape[-1])])


def ref_foa_logmel_iv(audio: np.ndarray, mel_wts: np.ndarray) -> np.ndarray:
    spec = _spectrogram(audio)
    w = spec[:, :, 0]
    intensity = np.real(np.conj(w)[:, :, None] * spec[:, :, 1:])
    energy = 1e-8 + np.abs(w) ** 2 + (np.abs(spec[:, :, 1:]) ** 2).sum(-1) / 3.0
    iv = np.dot(np.transpose(intensity / energy[:, :, None], (0, 2, 1)), mel_wts)
    return np.concatenate([_logmel(spec, mel_wts), iv.transpose(1, 0, 2)])


def ref_mic_logmel_gcc(audio: np.ndarray, mel_wts: np.ndarray) -> np.ndarray:
    spec = _spectrogram(audio)
    gcc = []
    for m, n in itertools.combinations(range(spec.shape[-1]), 2):
        cc = np.fft.irfft(np.exp(1j * np.angle(np.conj(spec[:, :, m]) * spec[:, :, n])))
        gcc.append(np.concatenate((cc[:, -32:], cc[:, :32]), axis=-1))
    return np.concatenate([_logmel(spec, mel_wts), np.stack(gcc)])


def ref_mic_salsa_lite(audio: np.ndarray, mel_wts: np.ndarray) -> np.ndarray:
    spec = _spectrogram(audio)
    lower, upper, cutoff = 2, 85, 384
    delta = 2 * np.pi * FS / (NFFT * 343.0)
    freq = np.arange(NFFT // 2 + 1)
    freq[0] = 1
    phase = np.angle(spec[:, :, 1:] * np.conj(spec[:, :, 0, None])) / (delta * freq[None, :, None])
    phase = phase[:, lower:cutoff, :]
    phase[:, upper:, :] = 0
    power = np.abs(spec) ** 2
    logspec = np.stack([librosa.power_to_db(power[:, :, c], ref=1.0, amin=1e-10, top_db=None)
                        for c in range(power.shape[-1])])[:, :, lower:cutoff]
    return np.concatenate([logspec, phase.transpose(2, 0, 1)])


def ref_stereo_logmel_ild_ipd(audio: np.ndarray, mel_wts: np.ndarray) -> np.ndarray:
    spec = _spectrogram(audio[:2])
    left, right = spec[:, :, 0], spec[:, :, 1]
    ild = 10 * np.log10((np.abs(left) ** 2 + 1e-8) / (np.abs(right) ** 2 + 1e-8))
    ipd = np.angle(left * np.conj(right))
    band_mean = mel_wts / mel_wts.sum(axis=0, keepdims=True)
    diffs = np.stack([np.dot(v, band_mean) for v in (ild, np.cos(ipd), np.sin(ipd))])
    return np.concatenate([_logmel(spec, mel_wts), diffs])


REFERENCES = {"foa_logmel_iv": ref_foa_logmel_iv, "mic_logmel_gcc": ref_mic_logmel_gcc,
              "mic_salsa_lite": ref_mic_salsa_lite,
              "stereo_logmel_ild_ipd": ref_stereo_logmel_ild_ipd}
#: audio channels each feature set reads (the clips are 4-channel; stereo takes the first 2)
AUDIO_CHANNELS = {"stereo_logmel_ild_ipd": 2}


# ------------------------------------------------------------------ timing


def time_reference(name: str, clips: np.ndarray, repeat: int) -> tuple[float, list[np.ndarray]]:
    mel_wts = librosa.filters.mel(sr=FS, n_fft=NFFT, n_mels=64).T
    REFERENCES[name](clips[0, :, :FS], mel_wts)  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = [REFERENCES[name](clip, mel_wts).astype(np.float32) for clip in clips]
        best = min(best, time.perf_counter() - start)
    return best, out


def time_torch(module: torch.nn.Module, clips: np.ndarray, device: torch.device,
               batch: int, repeat: int) -> tuple[float, np.ndarray]:
    module = module.to(device).eval()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best = float("inf")
    with torch.inference_mode():
        module(torch.from_numpy(clips[:1, :, :FS]).to(device))  # warm-up
        for _ in range(repeat):
            sync()
            start = time.perf_counter()
            out = [module(torch.from_numpy(clips[i:i + batch]).to(device)).cpu()
                   for i in range(0, len(clips), batch)]
            sync()
            best = min(best, time.perf_counter() - start)
    return best, torch.cat(out).numpy()


def max_diff(out: np.ndarray, ref: list[np.ndarray], log_channels: int = 4) -> tuple[float, float]:
    ref = np.stack(ref)
    n = log_channels
    return (float(np.abs(out[:, :n] - ref[:, :n]).max()),
            float(np.abs(out[:, n:] - ref[:, n:]).max()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=4, help="clips per torch call")
    parser.add_argument("--features", default=",".join(REFERENCES))
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    n = int(args.seconds * FS)
    clips = (rng.integers(-8000, 8000, size=(args.clips, 4, n)) / 32768.0).astype(np.float32)
    audio_s = args.clips * args.seconds
    threads = torch.get_num_threads()
    print(f"{args.clips} clips x {args.seconds:g} s of 4-channel 24-kHz audio (2 for stereo); "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__} "
          f"({threads} CPU threads), librosa {librosa.__version__}")
    devices = [("torch CPU", torch.device("cpu"), threads), ("torch CPU 1 thread", torch.device("cpu"), 1)]
    if torch.cuda.is_available():
        devices.append((f"torch {torch.cuda.get_device_name(0)}", torch.device("cuda"), threads))

    registry = get_registry()
    rows = []
    for name in args.features.split(","):
        audio = np.ascontiguousarray(clips[:, :AUDIO_CHANNELS.get(name, 4)])
        ref_s, ref_out = time_reference(name, audio, args.repeat)
        rows.append((name, "librosa per channel, per file", ref_s, audio_s / ref_s, 1.0, "", ""))
        for label, device, n_threads in devices:
            torch.set_num_threads(n_threads)
            module = registry.get_feature(name).build()
            elapsed, out = time_torch(module, audio, device, args.batch, args.repeat)
            torch.set_num_threads(threads)
            d_db, d_sp = max_diff(out, ref_out, module.log_channels)
            rows.append((name, label, elapsed, audio_s / elapsed, ref_s / elapsed,
                         f"{d_db:.1e}", f"{d_sp:.1e}"))

    head = ("feature", "implementation", "wall s", "audio s / s", "speed-up", "max |d| dB", "max |d| spatial")
    print_table(head, [(feature, impl, f"{wall:.2f}", f"{rate:,.0f}", f"{ratio:.1f}x", d_db, d_sp)
                       for feature, impl, wall, rate, ratio, d_db, d_sp in rows])


if __name__ == "__main__":
    main()
