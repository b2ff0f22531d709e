"""Scene sampling: which events sound when, where and how loud, plus the silent video distractors.

Times are in 100-ms label frames; directions in degrees (STARSS23 convention), distances in
metres. A trajectory holds one position per label frame of the event (at the frame centre).
Events are laid out on up to three independent layers (layer ``k`` busy a fraction
``layer_density[k]`` of the time), so at most three sound at once; onsets are on the frame grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seldbench.data.synth import exact, spatial
from seldbench.data.synth.config import SynthConfig
from seldbench.data.synth.room import Room
from seldbench.data.synth.sources import CLASSES, DURATION_RANGE_S

FRAME_S = 0.1
_MEAN_DURATION_S = float(np.mean([(lo + hi) / 2 for lo, hi in DURATION_RANGE_S]))


@dataclass(frozen=True)
class Trajectory:
    """Per-frame direction and distance, each ``(frames,)``."""

    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    distance_m: np.ndarray

    @property
    def moving(self) -> bool:
        return bool(np.ptp(self.azimuth_deg) > 0 or np.ptp(self.elevation_deg) > 0)

    def positions(self, room: Room) -> np.ndarray:
        """Source positions in the room ``(frames, 3)``."""
        u = spatial.unit_vector(self.azimuth_deg, self.elevation_deg)
        return np.asarray(room.listener_m) + self.distance_m[:, None] * u


@dataclass(frozen=True)
class Event:
    """One sound event: class, instance index, frames ``[onset, onset + frames)``, path, level."""

    class_idx: int
    source_index: int
    onset_frame: int
    frames: int
    trajectory: Trajectory
    snr_db: float
    visible: bool
    seed: int  # seeds the dry signal (and so the loudness envelope)

    @property
    def end_frame(self) -> int:
        return self.onset_frame + self.frames


@dataclass(frozen=True)
class Distractor:
    """A silent object in the video, drawn like class ``look_class``."""

    look_class: int
    onset_frame: int
    frames: int
    trajectory: Trajectory
    seed: int  # seeds its animation envelope

    @property
    def end_frame(self) -> int:
        return self.onset_frame + self.frames


@dataclass(frozen=True)
class Scene:
    frames: int
    room: Room
    events: tuple[Event, ...]
    distractors: tuple[Distractor, ...]

    def labels(self) -> np.ndarray:
        """DCASE rows ``(rows, 6)`` int: frame, class, source index, azimuth, elevation,
        distance (cm); azimuth in [-180, 180), sorted by frame, class, source index."""
        rows = []
        for ev in self.events:
            tr = ev.trajectory
            az = np.round(spatial.wrap_azimuth(tr.azimuth_deg)).astype(int)
            az[az >= 180] -= 360
            el = np.clip(np.round(tr.elevation_deg), -90, 90).astype(int)
            dist = np.round(tr.distance_m * 100).astype(int)
            f = np.arange(ev.onset_frame, ev.end_frame)
            rows.append(np.stack([f, np.full_like(f, ev.class_idx), np.full_like(f, ev.source_index),
                                  az, el, dist], axis=1))
        if not rows:
            return np.zeros((0, 6), dtype=int)
        out = np.concatenate(rows)
        return out[np.lexsort((out[:, 2], out[:, 1], out[:, 0]))]


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.rad2deg(exact.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))


def _sample_direction(rng: np.random.Generator, cfg: SynthConfig) -> tuple[float, float]:
    az = rng.uniform(-180.0, 180.0)
    if rng.random() < cfg.wide_elevation_prob:
        el = rng.uniform(cfg.elevation_deg, cfg.max_elevation_deg) * rng.choice([-1.0, 1.0])
    else:
        el = rng.uniform(-cfg.elevation_deg, cfg.elevation_deg)
    return az, el


def sample_trajectory(rng: np.random.Generator, room: Room, frames: int, cfg: SynthConfig,
                      moving: bool, start: tuple[float, float] | None = None) -> Trajectory:
    """A static or moving (arc at constant angular speed) path that stays inside ``room``."""
    az0, el0 = start if start is not None else _sample_direction(rng, cfg)
    t = np.arange(frames) * FRAME_S
    if moving:
        speed = rng.uniform(*cfg.speed_deg_s)
        heading = np.deg2rad(rng.normal(0.0, 25.0)) + (np.pi if rng.random() < 0.5 else 0.0)
        el = el0 + speed * np.sin(heading) * t
        lim = cfg.max_elevation_deg
        el = np.where(el > lim, 2 * lim - el, el)  # reflect at the elevation limits
        el = np.where(el < -lim, -2 * lim - el, el)
        el = np.clip(el, -lim, lim)
        rate = speed * np.cos(heading) / np.maximum(np.cos(np.deg2rad(el)), 0.3)
        az = az0 + np.concatenate([[0.0], np.cumsum(rate[:-1]) * FRAME_S])
        dist_rate = rng.uniform(-0.15, 0.15)
    else:
        az, el, dist_rate = np.full(frames, az0), np.full(frames, el0), 0.0
    lo, hi = cfg.distance_m
    d0 = float(exact.exp(rng.uniform(float(exact.log(lo)), float(exact.log(hi)))))
    dist = d0 + dist_rate * t
    room_max = room.max_distance(spatial.unit_vector(az, el))
    dist = np.clip(dist, min(lo, room_max.min()), np.minimum(hi, room_max))
    return Trajectory(spatial.wrap_azimuth(az), el, dist)


def sample_scene(rng: np.random.Generator, room: Room, frames: int, cfg: SynthConfig) -> Scene:
    """A random scene of ``frames`` label frames in ``room``."""
    placed: list[dict] = []
    for layer, density in enumerate(cfg.layer_density):
        if density <= 0:
            continue
        mean_gap = _MEAN_DURATION_S * (1 - density) / density / FRAME_S
        t = int(rng.exponential(mean_gap if layer else 5.0))
        while t < frames:
            cls = int(rng.integers(len(CLASSES)))
            sounding = [p for p in placed if p["onset"] <= t < p["end"]]
            if sounding and rng.random() < cfg.same_class_prob:
                cls = sounding[rng.integers(len(sounding))]["cls"]
            lo, hi = DURATION_RANGE_S[cls]
            length = int(round(rng.uniform(lo, hi) / FRAME_S))
            length = min(length, frames - t)
            if length < 3:
                break
            placed.append({"cls": cls, "onset": t, "end": t + length})
            t += length + max(1, int(round(rng.exponential(mean_gap))))

    placed.sort(key=lambda p: (p["onset"], p["cls"]))
    events: list[Event] = []
    for p in placed:
        concurrent = [e for e in events if e.onset_frame < p["end"] and p["onset"] < e.end_frame]
        start = _sample_direction(rng, cfg)
        for _ in range(30):  # keep apart from events sounding at the same time
            u = spatial.unit_vector(*start)
            if all(_angle_deg(u, spatial.unit_vector(e.trajectory.azimuth_deg, e.trajectory.elevation_deg)).min()
                   >= cfg.min_separation_deg for e in concurrent):
                break
            start = _sample_direction(rng, cfg)
        traj = sample_trajectory(rng, room, p["end"] - p["onset"], cfg,
                                 moving=rng.random() < cfg.moving_prob, start=start)
        used = {e.source_index for e in concurrent if e.class_idx == p["cls"]}
        index = min(set(range(len(used) + 1)) - used)
        events.append(Event(class_idx=p["cls"], source_index=index, onset_frame=p["onset"],
                            frames=p["end"] - p["onset"], trajectory=traj,
                            snr_db=float(rng.uniform(*cfg.snr_db)),
                            visible=bool(rng.random() >= cfg.invisible_fraction),
                            seed=int(rng.integers(2**62))))

    distractors = []
    for _ in range(int(rng.poisson(cfg.distractors_per_minute * frames * FRAME_S / 60))):
        onset = int(rng.integers(frames))
        length = min(int(rng.uniform(2.0, 20.0) / FRAME_S), frames - onset)
        if length < 3:
            continue
        traj = sample_trajectory(rng, room, length, cfg, moving=rng.random() < cfg.distractor_moving_prob)
        distractors.append(Distractor(look_class=int(rng.integers(len(CLASSES))), onset_frame=onset,
                                      frames=length, trajectory=traj, seed=int(rng.integers(2**62))))
    return Scene(frames=frames, room=room, events=tuple(events), distractors=tuple(distractors))
