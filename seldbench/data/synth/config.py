"""The knobs of the synthetic set, in one dataclass (difficulty, acoustics, video)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from seldbench.errors import SeldbenchError


@dataclass(frozen=True)
class SynthConfig:
    """Everything that shapes a generated clip except its identity (seed, room, index).

    Difficulty knobs: ``snr_db``, ``rt60_s`` / ``reverb_gain_db`` (reverberation),
    ``layer_density`` (overlap: the busy fraction of each of up to three event layers),
    ``moving_prob``, ``distractors_per_minute`` and ``invisible_fraction`` (video).
    Units are in the names; ranges are (low, high) and sampled uniformly unless noted.
    """

    fs: int = 24000
    # ---- scenes
    layer_density: tuple[float, ...] = (0.7, 0.35, 0.12)  # up to 3 simultaneous events
    same_class_prob: float = 0.1  # an overlapping event takes the class of one already sounding
    moving_prob: float = 0.3
    speed_deg_s: tuple[float, float] = (10.0, 40.0)  # angular speed of moving sources
    elevation_deg: float = 45.0  # most sources within +-this
    wide_elevation_prob: float = 0.15  # the others between elevation_deg and max_elevation_deg
    max_elevation_deg: float = 70.0
    distance_m: tuple[float, float] = (0.5, 5.0)  # log-uniform, kept inside the room
    min_separation_deg: float = 20.0  # between events sounding at the same time
    # ---- levels: SNR of the direct sound of a source at snr_ref_distance_m (1/r beyond)
    snr_db: tuple[float, float] = (5.0, 30.0)
    snr_ref_distance_m: float = 1.5
    background_dbfs: float = -55.0  # RMS of the diffuse background on W (before peak limiting)
    # ---- rooms
    rt60_s: tuple[float, float] = (0.2, 0.55)
    reflection_order: int = 3
    # Scales reflections and tail against the Sabine diffuse field of an omni source. -6 dB
    # stands for sources that face the array (speech has a directivity index of ~3-5 dB) in
    # furnished rooms; it keeps the direct path dominant in the intensity vector.
    reverb_gain_db: float = -6.0
    # ---- video
    video_size: tuple[int, int] = (360, 180)  # width, height (2:1 equirectangular)
    video_fps: int = 10
    invisible_fraction: float = 0.2  # real sources not drawn
    distractors_per_minute: float = 6.0  # silent objects drawn from the same vocabulary
    distractor_moving_prob: float = 0.4
    video_crf: int = 23

    def __post_init__(self) -> None:
        def bad(name: str, problem: str) -> None:
            raise SeldbenchError(f"synth config: {name} {problem}")

        for name in ("speed_deg_s", "distance_m", "snr_db", "rt60_s"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                bad(name, f"has low {lo} above high {hi}")
        if not 1 <= len(self.layer_density) <= 3 or not all(0 <= d < 1 for d in self.layer_density):
            bad("layer_density", "must hold 1 to 3 values in [0, 1)")
        for name in ("same_class_prob", "moving_prob", "wide_elevation_prob", "invisible_fraction",
                     "distractor_moving_prob"):
            if not 0 <= getattr(self, name) <= 1:
                bad(name, "must be in [0, 1]")
        if self.distance_m[0] < 0.3:
            bad("distance_m", "must start at 0.3 m or more")
        if self.rt60_s[0] < 0.05:
            bad("rt60_s", "must be at least 0.05 s")
        w, h = self.video_size
        if w != 2 * h or h % 2:
            bad("video_size", f"{w}x{h} is not 2:1 with an even height")
        if self.fs % 10:
            bad("fs", "must be a multiple of 10 (100-ms frames)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SynthConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SeldbenchError(f"synth config: unknown key '{unknown[0]}'")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
