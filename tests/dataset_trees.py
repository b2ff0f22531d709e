"""Tiny dataset trees in the exact STARSS23, TAU-NIGENS 2021 and DCASE 2025 stereo layouts,
for the data tests.

WAVs are 1 s, 24 kHz, 4-channel int16 (2-channel for stereo); videos 32x16 at 10 fps (PyAV;
32x18 perspective frames for stereo); CSVs have a few rows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 24000
SECONDS = 1.0


def write_wav(path: Path, seconds: float = SECONDS, sr: int = SR, channels: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    data = (rng.standard_normal((int(seconds * sr), channels)) * 1000).astype(np.int16)
    sf.write(str(path), data, sr, subtype="PCM_16")
    return path


def write_csv(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def write_mp4(path: Path, frames: int, fps: int = 10, width: int = 32, height: int = 16,
              levels=None) -> Path:
    """An MP4 whose frame ``k`` is flat grey ``levels[k]`` (default ``4 + 6 k``)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps, options={"qp": "0"})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    for k in range(frames):
        level = (4 + 6 * k) % 256 if levels is None else levels[k]
        img = np.full((height, width, 3), level, np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


# STARSS23: fold 3 rooms 4 (6 clips), 6 (4), 7 (3), 21 (12, no video); fold 4 rooms 2 and 23.
STARSS_CLIPS = {(3, 4): 6, (3, 6): 4, (3, 7): 3, (3, 21): 12, (4, 2): 2, (4, 23): 2}
SONY = {21, 22, 23, 24}


def starss_sub(fold: int, room: int) -> str:
    return f"dev-{'test' if fold == 4 else 'train'}-{'sony' if room in SONY else 'tau'}"


def starss_rows(fold: int, room: int, mix: int):
    # frame, class, source, azimuth, elevation, distance_cm
    return [[0, (room + mix) % 13, 0, 30, 10, 150], [3, 2, 0, -120, -20, 200],
            [3, 2, 1, 90, 0, 80], [9, 12, 0, 180, 45, 300]]


def make_starss_tree(root: Path, clips=STARSS_CLIPS, video: bool = True) -> Path:
    """A STARSS23 dev tree; ``fold3_room21_mix001..012`` have no video."""
    for sub in ("dev-train-sony", "dev-train-tau", "dev-test-sony", "dev-test-tau"):
        for tree in ("foa_dev", "mic_dev", "metadata_dev") + (("video_dev",) if video else ()):
            (root / tree / sub).mkdir(parents=True, exist_ok=True)
    for (fold, room), n in clips.items():
        sub = starss_sub(fold, room)
        for mix in range(1, n + 1):
            stem = f"fold{fold}_room{room}_mix{mix:03d}"
            write_wav(root / "foa_dev" / sub / f"{stem}.wav")
            write_wav(root / "mic_dev" / sub / f"{stem}.wav")
            write_csv(root / "metadata_dev" / sub / f"{stem}.csv", starss_rows(fold, room, mix))
            if video and not (fold == 3 and room == 21 and mix <= 12):
                write_mp4(root / "video_dev" / sub / f"{stem}.mp4", frames=10)
    return root


# TAU-NIGENS 2021: one clip per fold; the fold-5 clip sits in dev-train on purpose (the fold
# comes from the name), and fold 2's CSV sits in dev-val.
TAU_CLIPS = {
    "fold1_room1_mix001": ("dev-train", "dev-train"),
    "fold2_room1_mix002": ("dev-train", "dev-val"),
    "fold3_room2_mix003": ("dev-train", "dev-train"),
    "fold4_room2_mix004": ("dev-train", "dev-train"),
    "fold5_room3_mix005": ("dev-train", "dev-train"),
    "fold6_room4_mix006": ("dev-test", "dev-test"),
}


def make_tau_tree(root: Path, clips=TAU_CLIPS) -> Path:
    for sub in ("dev-train", "dev-val", "dev-test"):
        for tree in ("foa_dev", "mic_dev", "metadata_dev"):
            (root / tree / sub).mkdir(parents=True, exist_ok=True)
    for stem, (sub, meta_sub) in clips.items():
        write_wav(root / "foa_dev" / sub / f"{stem}.wav")
        write_wav(root / "mic_dev" / sub / f"{stem}.wav")
        write_csv(root / "metadata_dev" / meta_sub / f"{stem}.csv",
                  [[1, 0, 0, 45, 10], [2, 11, 1, -170, -30]])
    return root


# DCASE 2025 stereo: 5-s cuts named after their STARSS23 source recording (cuts per source).
STEREO_CLIPS = {
    "dev-train-tau": {"fold3_room4_mix001": 3, "fold3_room4_mix002": 2, "fold3_room6_mix001": 2,
                      "fold3_room7_mix003": 2, "fold3_room9_mix001": 1},
    "dev-train-sony": {"fold3_room21_mix001": 2, "fold3_room22_mix004": 2,
                       "fold3_room23_mix002": 1},
    "dev-test-tau": {"fold4_room2_mix001": 2},
    "dev-test-sony": {"fold4_room23_mix001": 2},
}
STEREO_HEADER = "frame,class,source,azimuth,distance,onscreen"


def stereo_stem(source: str, cut: int) -> str:
    return f"{source}_deg{(cut * 73) % 360:03d}_start{cut * 5:03d}"


def stereo_rows(cut: int):
    # frame, class, source, azimuth (deg, view-relative), distance (cm), onscreen
    return [[0, cut % 13, 0, 30, 150, 1], [3, 2, 0, -120, 200, 0], [3, 2, 1, 90, 80, 0],
            [9, 12, 0, -20, 300, 1]]


def make_stereo_tree(root: Path, clips=STEREO_CLIPS, video: bool = True) -> Path:
    """A DCASE 2025 stereo dev tree: ``stereo_dev/``, ``metadata_dev/``, ``video_dev/``."""
    for sub, sources in clips.items():
        for tree in ("stereo_dev", "metadata_dev") + (("video_dev",) if video else ()):
            (root / tree / sub).mkdir(parents=True, exist_ok=True)
        for source, cuts in sources.items():
            for cut in range(cuts):
                stem = stereo_stem(source, cut)
                write_wav(root / "stereo_dev" / sub / f"{stem}.wav", channels=2)
                rows = [STEREO_HEADER] + [",".join(str(v) for v in r) for r in stereo_rows(cut)]
                meta = root / "metadata_dev" / sub / f"{stem}.csv"
                meta.write_text("\n".join(rows) + "\n")
                if video:
                    write_mp4(root / "video_dev" / sub / f"{stem}.mp4", frames=10, width=32,
                              height=18)
    return root
