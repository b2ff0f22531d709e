"""Video frames aligned with the 100-ms label frames (docs/datasets.md, "Video
frames"), decoded once and cached.

For label frame ``k`` the frame shown at its centre time ``(k + 0.5) * hop_s`` is taken (the
last video frame whose presentation time is not after it; the first frame before the video
starts, the last one after it ends), resized to ``width x height`` RGB. A clip without video has
no frames (:func:`clip_video_frames` returns None); nothing is ever filled with black.

The decoded array of a clip is cached as ``.npy`` in ``cache_dir``, keyed by the video's
resolved path, size and modification time and by the frame geometry, and written atomically.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seldbench.data.labels import LABEL_HOP_S
from seldbench.errors import SeldbenchError
from seldbench.io import cached_npy, source_signature
from seldbench.specs import ClipFiles

#: Bump when the decoding rule changes, so old cache files are not reused.
CACHE_VERSION = 1
DEFAULT_WIDTH = 224
DEFAULT_HEIGHT = 112


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _open(path: Path):
    import av

    if not path.is_file():
        raise SeldbenchError(f"{path}: no such video file")
    try:
        container = av.open(str(path))
    except Exception as exc:  # PyAV raises FFmpegError subclasses, OSError, ...
        raise SeldbenchError(f"{path}: cannot read video ({_one_line(exc)})") from None
    if not container.streams.video:
        container.close()
        raise SeldbenchError(f"{path}: no video stream")
    return container


@dataclass(frozen=True)
class VideoInfo:
    """Header facts of a video file (no frame is decoded)."""

    width: int
    height: int
    fps: float  # average frame rate; 0 when unknown
    duration_s: float  # 0 when unknown


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Width, height, frame rate and duration of ``path``'s first video stream.

    Raises :class:`SeldbenchError` ``path: problem`` for a missing or unreadable file.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000  # microseconds (av.time_base)
        elif stream.frames and fps:
            duration = stream.frames / fps
        else:
            duration = 0.0
        return VideoInfo(int(stream.width), int(stream.height), fps, duration)
    finally:
        container.close()


def label_frame_times(num_frames: int, hop_s: float = LABEL_HOP_S) -> np.ndarray:
    """Centre times in seconds of ``num_frames`` label frames: ``(k + 0.5) * hop_s``."""
    return (np.arange(int(num_frames)) + 0.5) * hop_s


def decode_video_frames(path: str | os.PathLike, num_frames: int, *, width: int = DEFAULT_WIDTH,
                        height: int = DEFAULT_HEIGHT, hop_s: float = LABEL_HOP_S) -> np.ndarray:
    """Decode ``path`` once: uint8 ``(num_frames, height, width, 3)`` RGB, one frame per label
    frame (the frame shown at the label frame's centre time). No caching."""
    path = Path(path)
    targets = label_frame_times(num_frames, hop_s)
    out = np.empty((len(targets), height, width, 3), np.uint8)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate) if stream.average_rate else 0.0
        k = 0
        prev = prev_img = None

        def image(frame):
            return frame.to_ndarray(width=width, height=height, format="rgb24",
                                    interpolation="AREA")

        for index, frame in enumerate(container.decode(stream)):
            t = frame.time
            if t is None:
                t = index / rate if rate else float(index)
            cur_img = None
            while k < len(targets) and targets[k] < t - 1e-6:  # shown before this frame
                if prev is None:  # before the first frame: use the first frame
                    cur_img = image(frame) if cur_img is None else cur_img
                    out[k] = cur_img
                else:
                    prev_img = image(prev) if prev_img is None else prev_img
                    out[k] = prev_img
                k += 1
            if k >= len(targets):
                break
            prev, prev_img = frame, cur_img
        if prev is None and k < len(targets):
            raise SeldbenchError(f"{path}: video has no frames")
        if k < len(targets):  # after the last frame: hold it
            out[k:] = image(prev) if prev_img is None else prev_img
    except SeldbenchError:
        raise
    except Exception as exc:
        raise SeldbenchError(f"{path}: cannot decode video ({_one_line(exc)})") from None
    finally:
        container.close()
    return out


def load_video_frames(path: str | os.PathLike, num_frames: int, *, width: int = DEFAULT_WIDTH,
                      height: int = DEFAULT_HEIGHT, hop_s: float = LABEL_HOP_S,
                      cache_dir: str | os.PathLike | None = None,
                      mmap: bool = True) -> np.ndarray:
    """Frames of ``path`` for ``num_frames`` label frames, uint8 ``(num_frames, H, W, 3)``.

    With ``cache_dir`` the result is decoded once and stored there (atomically); later calls
    read it back (memory-mapped, read-only, when ``mmap``). A changed video file (size or
    modification time) or frame geometry gets a new cache entry. Without ``cache_dir`` the
    video is decoded every call.
    """
    path = Path(path)
    if cache_dir is None:
        return decode_video_frames(path, num_frames, width=width, height=height, hop_s=hop_s)
    if not path.is_file():
        raise SeldbenchError(f"{path}: no such video file")
    shape = (int(num_frames), height, width, 3)
    key = {**source_signature(path), "frames": int(num_frames), "width": width,
           "height": height, "hop_s": hop_s, "version": CACHE_VERSION}
    arr = cached_npy(cache_dir, f"{path.stem}-{width}x{height}", key,
                     lambda: decode_video_frames(path, num_frames, width=width, height=height,
                                                 hop_s=hop_s), mmap=mmap)
    if arr.shape != shape or arr.dtype != np.uint8:  # a foreign file under our name
        raise SeldbenchError(f"{path}: cached frames have shape {arr.shape}, expected {shape}")
    return arr


#: Camera of the perspective videos (DCASE 2025 stereo set, ``synth-stereo``): a pinhole with
#: this horizontal field of view looking along azimuth 0, elevation 0, and a 16:9 image.
PERSPECTIVE_HFOV_DEG = 100.0
PERSPECTIVE_ASPECT = 16 / 9  # width / height
PROJECTIONS = ("equirectangular", "perspective")


def _check_projection(projection: str) -> None:
    if projection not in PROJECTIONS:
        raise SeldbenchError(f"video projection '{projection}' (expected one of "
                             f"{', '.join(PROJECTIONS)})")


def grid_directions(rows: int, cols: int, projection: str = "equirectangular") -> np.ndarray:
    """Azimuth and elevation (degrees) of the cell centres of a ``rows x cols`` grid laid over
    a video frame, ``(rows * cols, 2)`` row-major. ``equirectangular`` (STARSS23 convention):
    centre column = front, azimuth grows to the left, top row = elevation +90;
    ``perspective``: see :func:`perspective_grid_directions`."""
    _check_projection(projection)
    if projection == "perspective":
        return perspective_grid_directions(rows, cols)
    az = 360.0 * (0.5 - (np.arange(cols) + 0.5) / cols)
    el = 180.0 * (0.5 - (np.arange(rows) + 0.5) / rows)
    return np.stack(np.meshgrid(az, el), -1).reshape(-1, 2)


def direction_cell(azimuth_deg, elevation_deg, rows: int, cols: int,
                   projection: str = "equirectangular") -> np.ndarray:
    """Row-major index of the ``rows x cols`` grid cell holding each direction (degrees), on a
    frame of the given ``projection`` (see :func:`grid_directions`)."""
    _check_projection(projection)
    if projection == "perspective":
        return perspective_direction_cell(azimuth_deg, elevation_deg, rows, cols)
    az = (np.asarray(azimuth_deg, np.float64) + 180.0) % 360.0 - 180.0
    c = np.clip(np.floor((0.5 - az / 360.0) * cols), 0, cols - 1).astype(np.int64)
    r = np.clip(np.floor((0.5 - np.asarray(elevation_deg) / 180.0) * rows), 0, rows - 1)
    return r.astype(np.int64) * cols + c


def _tangents(hfov_deg: float, aspect: float) -> tuple[float, float]:
    """Half-width and half-height of the image plane at unit focal distance."""
    th = float(np.tan(np.radians(hfov_deg) / 2))
    return th, th / float(aspect)


def perspective_grid_directions(rows: int, cols: int, hfov_deg: float = PERSPECTIVE_HFOV_DEG,
                                aspect: float = PERSPECTIVE_ASPECT) -> np.ndarray:
    """Azimuth and elevation (degrees) of the cell centres of a ``rows x cols`` grid laid over
    a pinhole camera's image (camera frame: azimuth 0 = the optical axis, + left; image right
    = negative azimuth, top = positive elevation), ``(rows * cols, 2)`` row-major. The grid
    covers the whole image whatever size it is resized to, so only ``hfov_deg`` and the
    original ``aspect`` (width / height) matter."""
    th, tv = _tangents(hfov_deg, aspect)
    ty = (0.5 - (np.arange(cols) + 0.5) / cols) * 2 * th  # image plane, left positive
    tz = (0.5 - (np.arange(rows) + 0.5) / rows) * 2 * tv
    y, z = np.meshgrid(ty, tz)
    az = np.degrees(np.arctan2(y, 1.0))
    el = np.degrees(np.arctan2(z, np.hypot(1.0, y)))
    return np.stack([az, el], -1).reshape(-1, 2)


def perspective_direction_cell(azimuth_deg, elevation_deg, rows: int, cols: int,
                               hfov_deg: float = PERSPECTIVE_HFOV_DEG,
                               aspect: float = PERSPECTIVE_ASPECT) -> np.ndarray:
    """Row-major index of the cell of a ``rows x cols`` grid over a pinhole camera's image
    (see :func:`perspective_grid_directions`) where each direction (degrees) projects. A
    direction off the image falls in the nearest border cell (one behind the camera: the
    border cell on its side); callers keep only sources on screen."""
    az, el = np.radians(np.asarray(azimuth_deg, np.float64)), np.radians(
        np.asarray(elevation_deg, np.float64))
    x, y, z = np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)
    th, tv = _tangents(hfov_deg, aspect)
    ahead = np.maximum(x, 1e-9)  # behind the camera: projected far out to its side
    u = 0.5 - y / ahead / (2 * th)  # 0 = left edge, 1 = right edge
    v = 0.5 - z / ahead / (2 * tv)  # 0 = top
    c = np.clip(np.floor(u * cols), 0, cols - 1).astype(np.int64)
    r = np.clip(np.floor(v * rows), 0, rows - 1).astype(np.int64)
    return r * cols + c


def clip_video_frames(clip: ClipFiles, num_frames: int, **kwargs) -> np.ndarray | None:
    """:func:`load_video_frames` of ``clip.video``, or None when the clip has no video."""
    if clip.video is None:
        return None
    return load_video_frames(clip.video, num_frames, **kwargs)


__all__ = ["VideoInfo", "video_info", "label_frame_times", "decode_video_frames",
           "load_video_frames", "clip_video_frames", "grid_directions", "direction_cell",
           "perspective_grid_directions", "perspective_direction_cell", "PERSPECTIVE_HFOV_DEG",
           "PERSPECTIVE_ASPECT", "PROJECTIONS", "CACHE_VERSION"]
