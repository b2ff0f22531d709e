"""Stereo clips derived from a generated FOA set (``synth-stereo``), the way the DCASE 2025
stereo set was derived from STARSS23 (docs/datasets.md, "The synthetic stereo sets").

For every 5-s cut of every dev clip of the source set:

- a view azimuth ``phi`` (whole degrees, uniform, from ``seed``, the clip and the cut);
- the FOA scene rotated about the vertical so that ``phi`` is the front (ACN W, Y, Z, X:
  ``X' = cos(phi) X + sin(phi) Y``, ``Y' = cos(phi) Y - sin(phi) X``), then a mid-side stereo
  pair ``L = (W + Y') / 2``, ``R = (W - Y') / 2`` (two cardioids facing left and right);
- a perspective video cropped from the 360-degree video around the same direction: a pinhole
  camera with a ``HFOV_DEG`` horizontal field of view, ``PERSPECTIVE_SIZE`` pixels,
  nearest-neighbour sampling of the equirectangular frames;
- labels in the rotated frame: azimuth ``wrap(az - phi)`` rounded to a degree (elevation
  dropped), distance in cm, and ``onscreen`` = 1 when the event's direction projects inside
  that camera's image.

The output is the ``stereo-seld`` layout (``stereo_dev/``, ``metadata_dev/``, ``video_dev/``
with the source clip's ``dev-train-*`` / ``dev-test-*`` sub-folder; stems
``<source stem>_deg<phi mod 360>_start<seconds>``) with a ``dataset.json`` manifest holding
the parameters and two checks: the fraction of label rows on screen, and how often the
level difference of the stereo pair agrees with the side of the labelled azimuth.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seldbench.data.layout import DEV_SUBFOLDERS
from seldbench.data.synth.generate import MANIFEST, read_manifest  # the same dataset.json
from seldbench.data.video import PERSPECTIVE_HFOV_DEG
from seldbench.errors import SeldbenchError
from seldbench.io import atomic_open, atomic_write_json

STEREO_GENERATOR = "seldbench-synth-stereo"
STEREO_VERSION = "1.0"
CLIP_S = 5.0
HFOV_DEG = PERSPECTIVE_HFOV_DEG  # the camera the grid-cell helpers of data.video assume
PERSPECTIVE_SIZE = (192, 108)  # width, height: 16:9, height a multiple of 4 (YUV 4:2:0)
HEADER = "frame,class,source,azimuth,distance,onscreen"
FS = 24000
FRAME_SAMPLES = FS // 10


def view_azimuth(seed: int, stem: str, cut: int) -> int:
    """The view azimuth in whole degrees, [-180, 180), of cut ``cut`` of clip ``stem``."""
    key = [int(seed), int(cut)] + [b for b in stem.encode()]
    return int(np.random.default_rng(key).integers(-180, 180))


def wrap_deg(az: np.ndarray) -> np.ndarray:
    """Azimuths wrapped to [-180, 180)."""
    return np.mod(np.asarray(az, np.float64) + 180.0, 360.0) - 180.0


def onscreen(az_deg: np.ndarray, el_deg: np.ndarray, hfov_deg: float = HFOV_DEG,
             size: tuple[int, int] = PERSPECTIVE_SIZE) -> np.ndarray:
    """1 where a direction (camera frame: azimuth 0 = the view, + left) projects inside the
    image of a pinhole camera with ``hfov_deg`` and ``size``'s aspect, else 0 (int64)."""
    az, el = np.radians(az_deg), np.radians(el_deg)
    x, y, z = np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)
    th = np.tan(np.radians(hfov_deg) / 2)
    tv = th * size[1] / size[0]
    ahead = x > 1e-9
    xs = np.where(ahead, x, 1.0)
    inside = ahead & (np.abs(y) / xs <= th) & (np.abs(z) / xs <= tv)
    return inside.astype(np.int64)


def stereo_from_foa(foa: np.ndarray, phi_deg: float) -> np.ndarray:
    """``(4, samples)`` FOA (ACN W, Y, Z, X) -> ``(2, samples)`` mid-side stereo facing
    ``phi_deg`` (left, right)."""
    c, s = np.cos(np.radians(phi_deg)), np.sin(np.radians(phi_deg))
    y_rot = c * foa[1] - s * foa[3]
    return np.stack([0.5 * (foa[0] + y_rot), 0.5 * (foa[0] - y_rot)])


def perspective_map(phi_deg: float, src_size: tuple[int, int], hfov_deg: float = HFOV_DEG,
                    size: tuple[int, int] = PERSPECTIVE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns ``(H, W)`` of the equirectangular source pixel seen at each pixel of
    the perspective image facing ``phi_deg`` (source pixel of a direction: ``u = W (0.5 -
    az / 360)``, ``v = H (0.5 - el / 180)``, as the synthetic video draws it)."""
    w, h = size
    sw, sh = src_size
    f = (w / 2) / np.tan(np.radians(hfov_deg) / 2)
    cols = np.arange(w) + 0.5 - w / 2
    rows = np.arange(h) + 0.5 - h / 2
    y = -cols[None, :] / f * np.ones((h, 1))  # image right = -y (azimuth grows to the left)
    z = -rows[:, None] / f * np.ones((1, w))
    az = np.degrees(np.arctan2(y, 1.0)) + phi_deg
    el = np.degrees(np.arctan2(z, np.hypot(1.0, y)))
    u = np.floor(sw * (0.5 - wrap_deg(az) / 360.0)).astype(np.int64) % sw
    v = np.clip(np.floor(sh * (0.5 - el / 180.0)).astype(np.int64), 0, sh - 1)
    return v, u


def _cut_rows(table, start_frame: int, frames: int, phi: float) -> list[list]:
    keep = (table.frame >= start_frame) & (table.frame < start_frame + frames)
    az = wrap_deg(table.coords[keep, 0] - phi)
    el = table.coords[keep, 1]
    on = onscreen(az, el)
    az_i = np.rint(az).astype(np.int64)
    az_i = np.where(az_i >= 180, az_i - 360, az_i)
    dist = np.maximum(np.rint(table.distance[keep]).astype(np.int64), 1)
    return [[int(f - start_frame), int(c), int(s), int(a), int(d), int(o)]
            for f, c, s, a, d, o in zip(table.frame[keep], table.cls[keep], table.track[keep],
                                        az_i, dist, on)]


def _source_clips(src_root: Path) -> list[tuple[str, Path, Path, Path | None]]:
    out = []
    for csv in sorted((src_root / "metadata_dev").glob("*/*.csv")):
        sub, stem = csv.parent.name, csv.stem
        wav = src_root / "foa_dev" / sub / f"{stem}.wav"
        if not wav.is_file():
            raise SeldbenchError(f"{wav}: missing (the source set must have FOA audio)")
        mp4 = src_root / "video_dev" / sub / f"{stem}.mp4"
        out.append((sub, wav, csv, mp4 if mp4.is_file() else None))
    if not out:
        raise SeldbenchError(f"{src_root}: no clips under metadata_dev/ to derive stereo from")
    return out


def is_complete(out_dir: str | os.PathLike, params: dict) -> bool:
    """Whether ``out_dir`` holds a finished stereo set derived with exactly ``params``."""
    m = read_manifest(out_dir)
    return bool(m and m.get("complete") and m.get("params") == params)


def derive_stereo(src_root: str | os.PathLike, out_dir: str | os.PathLike, *, seed: int = 0,
                  source: dict | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Derive (or finish) the stereo set of the generated FOA set at ``src_root`` into
    ``out_dir``; returns the manifest. ``source`` (e.g. the source set's generator version and
    seed) is recorded in the parameters, so a new source makes a new set. Cuts whose files
    exist are kept (an interrupted derivation resumes); every file is written atomically."""
    import soundfile as sf

    from seldbench.data.audio import read_audio
    from seldbench.data.labels import read_metadata
    from seldbench.data.synth.config import SynthConfig
    from seldbench.data.synth.video import write_video
    from seldbench.data.video import decode_video_frames, video_info

    src_root, out_dir = Path(src_root).expanduser(), Path(out_dir).expanduser()
    params = {"generator": STEREO_GENERATOR, "version": STEREO_VERSION, "seed": int(seed),
              "clip_s": CLIP_S, "hfov_deg": HFOV_DEG, "video_size": list(PERSPECTIVE_SIZE),
              "source": source or {}}
    if is_complete(out_dir, params):
        return read_manifest(out_dir)
    m = read_manifest(out_dir)
    if m is not None and m.get("params") != params:
        raise SeldbenchError(f"{out_dir}: holds a stereo set derived with other parameters; "
                             f"delete it or use another folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / MANIFEST, {"params": params, "complete": False})
    clips = _source_clips(src_root)
    trees = ["stereo_dev", "metadata_dev"] + (["video_dev"] if any(c[3] for c in clips) else [])
    for tree in trees:  # every official sub-folder, even where the source has no clip
        for sub in DEV_SUBFOLDERS:
            (out_dir / tree / sub).mkdir(parents=True, exist_ok=True)
    frames_per_cut = int(round(CLIP_S * 10))
    cfg = SynthConfig()
    for n, (sub, wav, csv, mp4) in enumerate(clips):
        foa = read_audio(wav, audio_format="foa")
        table = read_metadata(csv, 6, 13)
        cuts = foa.shape[1] // (frames_per_cut * FRAME_SAMPLES)
        frames360 = None
        for cut in range(cuts):
            phi = view_azimuth(seed, wav.stem, cut)
            start = cut * frames_per_cut
            stem = f"{wav.stem}_deg{phi % 360:03d}_start{int(start / 10):03d}"
            paths = {"wav": out_dir / "stereo_dev" / sub / f"{stem}.wav",
                     "csv": out_dir / "metadata_dev" / sub / f"{stem}.csv"}
            if mp4 is not None:
                paths["mp4"] = out_dir / "video_dev" / sub / f"{stem}.mp4"
            if all(p.is_file() for p in paths.values()):
                continue
            seg = foa[:, start * FRAME_SAMPLES:(start + frames_per_cut) * FRAME_SAMPLES]
            stereo = np.clip(stereo_from_foa(seg.astype(np.float64), phi), -1.0, 32767 / 32768)
            paths["wav"].parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(paths["wav"], "wb") as fh:
                sf.write(fh, np.rint(stereo.T * 32768).astype(np.int16), FS, subtype="PCM_16",
                         format="WAV")
            rows = _cut_rows(table, start, frames_per_cut, phi)
            with atomic_open(paths["csv"], "w", encoding="ascii", newline="") as fh:
                fh.write(HEADER + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
            if mp4 is not None:
                if frames360 is None:
                    info = video_info(mp4)
                    frames360 = decode_video_frames(mp4, cuts * frames_per_cut,
                                                    width=info.width, height=info.height)
                v, u = perspective_map(phi, (frames360.shape[2], frames360.shape[1]))
                paths["mp4"].parent.mkdir(parents=True, exist_ok=True)
                write_video(paths["mp4"], (img[v, u] for img in
                                           frames360[start:start + frames_per_cut]),
                            cfg, size=PERSPECTIVE_SIZE)
        if log:
            log(f"stereo: {n + 1}/{len(clips)} source clips")
    manifest = {"params": params, "complete": True, "checks": stereo_checks(out_dir)}
    atomic_write_json(out_dir / MANIFEST, manifest)
    return manifest


def stereo_checks(root: str | os.PathLike, lateral_deg: float = 20.0) -> dict:
    """Two checks of a derived set: ``onscreen_fraction`` (label rows on screen) and
    ``lr_agreement``: over label frames with exactly one event at least ``lateral_deg`` off
    the front-back axis, the fraction where the stereo pair's level difference in that 100-ms
    frame (``10 log10(E_L / E_R)``) has the sign of the azimuth (positive = left)."""
    import soundfile as sf

    rows_on = rows_all = agree = lateral = 0
    for csv in sorted(Path(root).glob("metadata_dev/*/*.csv")):
        lines = csv.read_text(encoding="ascii").splitlines()[1:]
        rows = np.array([[float(v) for v in ln.split(",")] for ln in lines]).reshape(-1, 6)
        rows_all += len(rows)
        rows_on += int(rows[:, 5].sum())
        if not len(rows):
            continue
        audio, _ = sf.read(str(Path(root) / "stereo_dev" / csv.parent.name / f"{csv.stem}.wav"),
                           dtype="float64", always_2d=True)
        frames, counts = np.unique(rows[:, 0].astype(np.int64), return_counts=True)
        for f in frames[counts == 1]:
            az = rows[rows[:, 0] == f][0, 3]
            if abs(az) < lateral_deg or abs(az) > 180 - lateral_deg:
                continue
            seg = audio[f * FRAME_SAMPLES:(f + 1) * FRAME_SAMPLES]
            if len(seg) == 0:
                continue
            el, er = (seg ** 2).sum(axis=0) + 1e-12
            lateral += 1
            agree += int(np.sign(np.log10(el / er)) == np.sign(az))
    return {"label_rows": rows_all,
            "onscreen_fraction": round(rows_on / rows_all, 4) if rows_all else None,
            "lr_frames": lateral, "lr_agreement": round(agree / lateral, 4) if lateral else None}


__all__ = ["CLIP_S", "HFOV_DEG", "PERSPECTIVE_SIZE", "derive_stereo", "is_complete", "onscreen",
           "perspective_map", "read_manifest", "stereo_checks", "stereo_from_foa",
           "view_azimuth", "wrap_deg"]
