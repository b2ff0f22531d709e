"""The audio of a scene: every event rendered in its room over the diffuse background.

Levels: the background has RMS ``background_dbfs`` on W; an event's direct sound at
``snr_ref_distance_m`` is ``snr_db`` above it, and falls as 1/r with distance (so the SNR at the
array is ``snr_db + 20 log10(ref / r)``). Reflections and tail come from :mod:`.room`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seldbench.data.synth import exact
from seldbench.data.synth.config import SynthConfig
from seldbench.data.synth.room import RoomRenderer, render_background
from seldbench.data.synth.scene import FRAME_S, Scene
from seldbench.data.synth.sources import synthesize


@dataclass(frozen=True)
class RoomNoise:
    """The ambient noise character of a room."""

    tilt: float  # power ~ f ** -tilt
    highcut_hz: float
    hum_db: float


def sample_room_noise(rng: np.random.Generator) -> RoomNoise:
    return RoomNoise(tilt=float(rng.uniform(0.6, 1.4)), highcut_hz=float(rng.uniform(1500, 5000)),
                     hum_db=float(rng.uniform(-35, -20)))


def render_audio(scene: Scene, noise: RoomNoise, cfg: SynthConfig, rng: np.random.Generator
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(8, samples)`` float: FOA W, Y, Z, X then MIC 1-4; and each event's loudness envelope
    (100 Hz, see :func:`~.sources.synthesize`), in ``scene.events`` order."""
    fs = cfg.fs
    hop = int(round(fs * FRAME_S))
    n = scene.frames * hop
    bg_rms = float(exact.power(10.0, cfg.background_dbfs / 20))
    renderer = RoomRenderer(scene.room, fs, rng, reflection_order=cfg.reflection_order,
                            reverb_gain=float(exact.power(10.0, cfg.reverb_gain_db / 20)))
    out = render_background(n, fs, rng, tilt=noise.tilt, highcut_hz=noise.highcut_hz,
                            hum_db=noise.hum_db) * bg_rms
    envelopes = []
    for i, ev in enumerate(scene.events):
        src = synthesize(ev.class_idx, ev.frames * FRAME_S, fs, np.random.default_rng(ev.seed))
        envelopes.append(src.envelope)
        gain = bg_rms * float(exact.power(10.0, ev.snr_db / 20)) * cfg.snr_ref_distance_m
        y = renderer.render(gain * src.signal, ev.trajectory.positions(scene.room), hop, tail_index=i)
        start = ev.onset_frame * hop
        m = min(y.shape[1], n - start)
        out[:, start:start + m] += y[:, :m]
    return out, envelopes


def to_pcm16(audio: np.ndarray, headroom: float = 0.89) -> tuple[np.ndarray, float]:
    """``(samples, channels)`` int16 and the gain applied (< 1 only when the peak would clip)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    gain = min(1.0, headroom / peak) if peak > 0 else 1.0
    pcm = np.clip(np.round(audio.T * gain * 32767.0), -32768, 32767).astype(np.int16)
    return pcm, gain
