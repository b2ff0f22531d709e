"""Input features: torch implementations against librosa/numpy references, physics, cache, normaliser.

The references below are written straight from docs/features.md, one channel and one pair at a
time with librosa and numpy in float64, as the DCASE baseline computes them.
"""
from __future__ import annotations

import itertools
import os

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from seldbench.data.audio import read_audio
from seldbench.errors import SeldbenchError
from seldbench.features import FoaLogmelIV, MicLogmelGCC, MicSalsaLite, foa_logmel_iv_128
from seldbench.features.cache import FeatureCache, Normalizer
from seldbench.registry import Registry
from seldbench.specs import ClipFiles

FS = 24000


# ----------------------------------------------------------------------------- references


def ref_stft(audio, n_fft=1024, hop=480, win=960):
    """(channels, frames, freq) complex128: librosa per channel, constant padding, truncated."""
    a = audio.astype(np.float64) + 1e-8
    frames = a.shape[-1] // hop
    return np.stack([librosa.stft(a[c], n_fft=n_fft, hop_length=hop, win_length=win,
                                  window="hann", center=True, pad_mode="constant")[:, :frames].T
                     for c in range(a.shape[0])])


def ref_logmel(spec, n_mels=64, fmin=0.0, fmax=None, n_fft=1024):
    out = []
    for c in range(spec.shape[0]):
        mel = librosa.feature.melspectrogram(S=np.abs(spec[c].T) ** 2, sr=FS, n_fft=n_fft,
                                             n_mels=n_mels, fmin=fmin, fmax=fmax)
        out.append(librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0).T)
    return np.stack(out)


def ref_iv(spec, n_mels=64, fmin=0.0, fmax=None, n_fft=1024):
    mel = librosa.filters.mel(sr=FS, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    w = spec[0]
    energy = 1e-8 + np.abs(w) ** 2 + (np.abs(spec[1]) ** 2 + np.abs(spec[2]) ** 2
                                      + np.abs(spec[3]) ** 2) / 3.0
    return np.stack([np.real(np.conj(w) * spec[k]) / energy @ mel.T for k in (1, 2, 3)])


def ref_gcc(spec, lags=64):
    out = []
    for m, n in itertools.combinations(range(4), 2):
        cc = np.fft.irfft(np.exp(1j * np.angle(np.conj(spec[m]) * spec[n])))  # 1024 lags
        out.append(np.concatenate([cc[:, -lags // 2:], cc[:, :lags // 2]], axis=-1))
    return np.stack(out)


def ref_salsa_lite(spec):
    lower, upper, cutoff = 2, 85, 384  # 50 Hz, 2 kHz, 9 kHz at n_fft 1024
    delta = 2 * np.pi * FS / (1024 * 343.0)
    logspec = np.stack([librosa.power_to_db(np.abs(spec[c]) ** 2, ref=1.0, amin=1e-10,
                                            top_db=None) for c in range(4)])
    freq = np.arange(spec.shape[-1])
    phase = np.stack([np.angle(spec[k] * np.conj(spec[0])) / (delta * np.maximum(freq, 1))
                      for k in (1, 2, 3)])
    phase = phase[..., lower:cutoff]
    phase[..., upper:] = 0  # the baseline zeroes after slicing
    return np.concatenate([logspec[..., lower:cutoff], phase])


# ----------------------------------------------------------------------------- signals


def noisy_clips(seconds=1.5, batch=2, seed=0):
    """Random 4-channel clips with per-channel and per-clip gains and a near-silent last
    third, so that the top_db floor is active and differs between channels and clips."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = rng.standard_normal((batch, 4, n))
    x *= np.array([0.5, 0.3, 0.2, 0.1])[None, :, None]
    x *= np.array([1.0, 0.3][:batch] + [1.0] * max(0, batch - 2))[:, None, None]
    x[..., 2 * n // 3:] *= 1e-5
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def clips():
    return noisy_clips()


def run(module, audio):
    with torch.no_grad():
        return module(torch.from_numpy(audio)).numpy()


# ----------------------------------------------------------------------------- parity


@pytest.mark.e2e  # long: a per-channel librosa reference over whole clips
def test_foa_logmel_iv_matches_librosa(clips):
    out = run(FoaLogmelIV(), clips)
    assert out.shape == (2, 7, clips.shape[-1] // 480, 64) and out.dtype == np.float32
    floors = []
    for b in range(2):
        spec = ref_stft(clips[b])
        logmel = ref_logmel(spec)
        np.testing.assert_allclose(out[b, :4], logmel, atol=1e-3, rtol=0)
        np.testing.assert_allclose(out[b, 4:], ref_iv(spec), atol=1e-5, rtol=0)
        assert np.abs(ref_iv(spec)).max() > 1e-2  # the IV comparison is not of zeros
        for c in range(4):  # the top_db floor is reached in every channel
            assert np.isclose(logmel[c].min(), logmel[c].max() - 80.0)
        floors.append(logmel.max(axis=(1, 2)) - 80.0)
    assert not np.allclose(floors[0], floors[1])  # the floor is per clip, not per batch


def test_foa_logmel_iv_128_matches_librosa(clips):
    out = run(foa_logmel_iv_128(), clips[:1])
    assert out.shape == (1, 7, clips.shape[-1] // 300, 128)
    spec = ref_stft(clips[0], hop=300, win=1024)
    kw = dict(n_mels=128, fmin=20.0, fmax=12000.0)
    np.testing.assert_allclose(out[0, :4], ref_logmel(spec, **kw), atol=1e-3, rtol=0)
    np.testing.assert_allclose(out[0, 4:], ref_iv(spec, **kw), atol=1e-5, rtol=0)


def test_mic_logmel_gcc_matches_numpy(clips):
    out = run(MicLogmelGCC(), clips)
    assert out.shape == (2, 10, clips.shape[-1] // 480, 64)
    for b in range(2):
        spec = ref_stft(clips[b])
        np.testing.assert_allclose(out[b, :4], ref_logmel(spec), atol=1e-3, rtol=0)
        np.testing.assert_allclose(out[b, 4:], ref_gcc(spec), atol=1e-5, rtol=0)


def test_mic_salsa_lite_matches_numpy(clips):
    out = run(MicSalsaLite(), clips)
    assert out.shape == (2, 7, clips.shape[-1] // 480, 382)
    for b in range(2):
        ref = ref_salsa_lite(ref_stft(clips[b]))
        np.testing.assert_allclose(out[b, :4], ref[:4], atol=1e-3, rtol=0)
        np.testing.assert_allclose(out[b, 4:], ref[4:], atol=1e-5, rtol=0)
    assert np.all(out[:, 4:, :, 85:] == 0) and np.all(np.abs(out[:, 4:, :, 84]).max(-1) > 0)


def test_sixty_seconds_give_3000_frames():
    audio = torch.zeros(1, 4, 60 * FS)
    audio[..., ::7] = 0.1
    # 60 s through one, 12 s through the others (same STFT framing code)
    for module, seconds, frames, bins, channels in [(FoaLogmelIV(), 60, 3000, 64, 7),
                                                    (MicSalsaLite(), 12, 600, 382, 7),
                                                    (MicLogmelGCC(), 12, 600, 64, 10),
                                                    (foa_logmel_iv_128(), 12, 960, 128, 7)]:
        with torch.no_grad():
            out = module(audio[..., :seconds * FS + module.hop_length - 1])
        assert tuple(out.shape) == (1, channels, frames, bins)  # floor(samples / hop)
        assert module.num_frames(60 * FS) == 60 * FS // module.hop_length
    assert FoaLogmelIV().num_frames(60 * FS) == 3000 and foa_logmel_iv_128().num_frames(60 * FS) == 4800
    assert tuple(FoaLogmelIV()(torch.zeros(3, 4, 959)).shape) == (3, 7, 1, 64)


def test_frame_blocks_do_not_change_the_values(clips):
    for cls in (FoaLogmelIV, MicLogmelGCC, MicSalsaLite):
        whole = run(cls(frames_per_block=10_000), clips)
        blocks = run(cls(frames_per_block=16), clips)  # 75 frames: 5 blocks, the last partial
        np.testing.assert_allclose(blocks, whole, atol=1e-6, rtol=0)
        assert cls(frames_per_block=16).config == cls().config  # not part of the cache key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_gpu_matches_cpu(clips):
    for module in (FoaLogmelIV(), MicLogmelGCC(), MicSalsaLite()):
        cpu = run(module, clips)
        with torch.no_grad():
            gpu = module.cuda()(torch.from_numpy(clips).cuda()).cpu().numpy()
        np.testing.assert_allclose(gpu, cpu, atol=1e-3, rtol=0)


# ----------------------------------------------------------------------------- physics


@pytest.mark.parametrize("azimuth_deg, elevation_deg", [(30, 0), (100, 20), (-135, -30)])
def test_intensity_vector_points_to_a_plane_wave(azimuth_deg, elevation_deg):
    rng = np.random.default_rng(1)
    s = rng.standard_normal(FS) * 0.1
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    # ACN/SN3D first order: W, Y, Z, X
    foa = np.stack([s, s * np.sin(az) * np.cos(el), s * np.sin(el), s * np.cos(az) * np.cos(el)])
    iv = run(FoaLogmelIV(), foa[None].astype(np.float32))[0, 4:].mean(axis=(1, 2))  # Y, Z, X
    assert np.degrees(np.arctan2(iv[0], iv[2])) == pytest.approx(azimuth_deg, abs=0.5)
    assert np.degrees(np.arctan2(iv[1], np.hypot(iv[0], iv[2]))) == pytest.approx(elevation_deg, abs=0.5)


def test_gcc_peaks_at_the_inter_mic_delay():
    rng = np.random.default_rng(2)
    s = rng.standard_normal(FS + 20) * 0.1
    delays = [0, 3, -5, 9]  # samples; mic k hears s(t - delays[k])
    mics = np.stack([s[10 - d:10 - d + FS] for d in delays]).astype(np.float32)
    gcc = run(MicLogmelGCC(), mics[None])[0, 4:]
    for p, (m, n) in enumerate(itertools.combinations(range(4), 2)):
        peak = np.argmax(gcc[p, 5:-5].mean(axis=0)) - 32
        assert peak == delays[n] - delays[m]


# ----------------------------------------------------------------------------- registry


def test_registry_lists_the_feature_sets():
    registry = Registry()
    names = registry.list("feature")
    assert {"foa_logmel_iv", "foa_logmel_iv_128", "mic_logmel_gcc", "mic_salsa_lite"} <= set(names)
    audio = torch.zeros(1, 4, 4800)
    audio[..., ::5] = 0.1
    for name in ("foa_logmel_iv", "foa_logmel_iv_128", "mic_logmel_gcc", "mic_salsa_lite"):
        spec = registry.get_feature(name)
        module = spec.build()
        with torch.no_grad():
            out = module(audio)
        frames = 4800 // module.hop_length
        assert tuple(out.shape) == (1, spec.channels, frames, spec.bins), name
        assert module.hop_length * spec.frames_per_label == 2400, name  # 100-ms label frames
        assert module.config["pad_mode"] == "constant"


# ----------------------------------------------------------------------------- audio reading


def write_wav(path, seconds=0.5, channels=4, sr=FS, seed=0):
    rng = np.random.default_rng(seed)
    data = (rng.standard_normal((int(seconds * sr), channels)) * 3000).astype(np.int16)
    sf.write(path, data, sr, subtype="PCM_16")
    return data


def test_read_audio_scales_int16(tmp_path):
    data = write_wav(tmp_path / "a.wav", channels=5)
    audio = read_audio(tmp_path / "a.wav")
    assert audio.shape == (4, data.shape[0]) and audio.dtype == np.float32
    np.testing.assert_array_equal(audio, data[:, :4].T / 32768.0)


def test_bad_wavs_name_the_file(tmp_path):
    write_wav(tmp_path / "good.wav")
    blob = (tmp_path / "good.wav").read_bytes()
    (tmp_path / "truncated.wav").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x00\x00" + os.urandom(50))
    write_wav(tmp_path / "rate.wav", sr=48000)
    write_wav(tmp_path / "stereo.wav", channels=2)
    cases = {"truncated.wav": "truncated", "garbage.wav": "cannot read audio",
             "rate.wav": "sample rate 48000 Hz, expected 24000 Hz",
             "stereo.wav": "2 channel(s), expected 4", "missing.wav": "no such audio file"}
    for name, problem in cases.items():
        with pytest.raises(SeldbenchError) as err:
            read_audio(tmp_path / name)
        assert str(err.value).startswith(f"{tmp_path / name}: ")
        assert problem in str(err.value) and "\n" not in str(err.value)
    # the cache checks every file before computing anything
    cache = FeatureCache(tmp_path / "cache")
    with pytest.raises(SeldbenchError, match="truncated.wav: truncated"):
        cache.get("d", "train", {"good": tmp_path / "good.wav", "bad": tmp_path / "truncated.wav"},
                  "foa_logmel_iv")
    assert cache.computed == 0


# ----------------------------------------------------------------------------- cache


def make_split(folder, n, seconds, seed, gain=1.0):
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(n):
        path = folder / f"fold1_room1_mix{seed:02d}{i}.wav"
        rng = np.random.default_rng(seed * 100 + i)
        data = np.clip(rng.standard_normal((int(seconds[i] * FS), 4)) * 3000 * gain, -32768, 32767)
        sf.write(path, data.astype(np.int16), FS, subtype="PCM_16")
        clips.append(ClipFiles(stem=path.stem, audio={"foa": path, "mic": path}, metadata=None))
    return clips


def test_cache_is_reused_and_invalidated(tmp_path):
    clips = make_split(tmp_path / "wav", 3, [1.0, 1.0, 0.6], seed=1)
    cache = FeatureCache(tmp_path / "cache")
    feats = cache.get("synth", "train", clips, "foa_logmel_iv")
    assert cache.computed == 3 and feats.path.is_file()
    assert feats.path.parent == tmp_path / "cache" / "synth" / "train"
    first = feats.load_all()
    for clip in clips:  # cached values are the module's output on the whole clip
        expected = run(FoaLogmelIV(), read_audio(clip.audio["foa"])[None])[0]
        np.testing.assert_array_equal(first[clip.stem], expected)
    assert feats.num_frames(clips[2].stem) == int(0.6 * FS) // 480
    mtime = feats.path.stat().st_mtime_ns

    again = FeatureCache(tmp_path / "cache").get("synth", "train", clips, "foa_logmel_iv")
    assert again.path == feats.path and again.path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again[clips[0].stem], first[clips[0].stem])
    assert cache.get("synth", "train", clips[:2], "foa_logmel_iv").path == feats.path
    assert cache.computed == 3

    # a different config is a different file, computed anew
    other = cache.get("synth", "train", clips, "foa_logmel_iv", {"top_db": 20.0})
    assert other.path != feats.path and cache.computed == 6
    assert other.config["options"]["top_db"] == 20.0
    assert not np.array_equal(other[clips[0].stem], first[clips[0].stem])

    # a changed WAV is recomputed, the others are kept
    data, _ = sf.read(clips[1].audio["foa"], dtype="int16")
    sf.write(clips[1].audio["foa"], data // 2, FS, subtype="PCM_16")
    os.utime(clips[1].audio["foa"], ns=(1, 1))
    changed = cache.get("synth", "train", clips, "foa_logmel_iv")
    assert cache.computed == 7
    np.testing.assert_array_equal(changed[clips[0].stem], first[clips[0].stem])
    assert np.allclose(changed[clips[1].stem][:4], first[clips[1].stem][:4] - 20 * np.log10(2),
                       atol=0.05)

    # chunk reads, zero-padded past the end
    chunk = changed.read(clips[2].stem, 20, 40)
    assert chunk.shape == (7, 20, 64)
    np.testing.assert_array_equal(chunk[:, :10], first[clips[2].stem][:, 20:30])
    assert np.all(chunk[:, 10:] == 0)

    with pytest.raises(SeldbenchError, match="feature 'foa_logmel_iv': bad options"):
        cache.get("synth", "train", clips, "foa_logmel_iv", {"n_melz": 32})
    with pytest.raises(SeldbenchError, match="unknown feature 'foa_logmel'"):
        cache.get("synth", "train", clips, "foa_logmel")


def test_normaliser_uses_the_train_split_only(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    train = cache.get("synth", "train", make_split(tmp_path / "train", 2, [1.0, 0.6], seed=3),
                      "mic_logmel_gcc")
    test = cache.get("synth", "test", make_split(tmp_path / "test", 1, [1.0], seed=4, gain=0.1),
                     "mic_logmel_gcc")
    norm = Normalizer.fit(train)
    frames = np.concatenate([train[s] for s in train], axis=1)  # (C, T, B) of train only
    np.testing.assert_allclose(norm.mean, frames.mean(axis=1), atol=1e-4)
    np.testing.assert_allclose(norm.std, frames.std(axis=1), rtol=1e-4)
    pooled = np.concatenate([frames] + [test[s] for s in test], axis=1)
    assert np.abs(norm.mean[:4] - pooled.mean(axis=1)[:4]).min() > 1.0  # test data is quieter
    assert norm.meta["split"] == "train" and norm.meta["frames"] == frames.shape[1]

    with pytest.raises(SeldbenchError, match="split 'test' given; fit it on the train split"):
        Normalizer.fit(test)

    norm.save(tmp_path / "run" / "normalizer.npz")
    loaded = Normalizer.load(tmp_path / "run" / "normalizer.npz")
    z = loaded.apply(frames)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-3)
    np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-3)
    zt = loaded.apply(torch.from_numpy(test[test.stems[0]][None]))  # torch, batched
    np.testing.assert_allclose(zt[0].numpy(), norm.apply(test[test.stems[0]]), atol=1e-5)
    with pytest.raises(SeldbenchError, match="fitted on \\(channels, bins\\) = \\(10, 64\\)"):
        loaded.apply(np.zeros((7, 5, 64), np.float32))


def test_normaliser_keeps_constant_bins_finite(tmp_path):
    clips = make_split(tmp_path / "wav", 1, [0.5], seed=5)
    feats = FeatureCache(tmp_path / "cache").get("synth", "train", clips, "mic_salsa_lite")
    norm = Normalizer.fit(feats)
    assert np.all(norm.std[4:, 85:] == 1.0) and np.all(norm.std[:, :85] != 1.0)
    assert np.isfinite(norm.apply(feats[clips[0].stem])).all()


def test_feature_caching_shows_plain_progress_lines_when_redirected(tmp_path, capsys):
    clips = make_split(tmp_path / "wav", 3, [0.6, 0.6, 0.4], seed=2)
    FeatureCache(tmp_path / "cache", progress=True).get("synth", "train", clips, "foa_logmel_iv")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "features foa_logmel_iv of synth train: 0/3 clips (0%), 0s elapsed"
    assert lines[-1].startswith("features foa_logmel_iv of synth train: 3/3 clips (100%)")
    assert all(len(line) < 120 for line in lines)  # no redrawn bar in a log file
    FeatureCache(tmp_path / "c2").get("synth", "train", clips, "foa_logmel_iv")  # default: quiet
    assert capsys.readouterr().err == ""
