"""The 360-degree video of a scene: equirectangular 2:1 frames drawn with numpy, MP4 via PyAV.

Pixel of a direction (STARSS23): ``u = W (0.5 - az / 360)``, ``v = H (0.5 - el / 180)`` (centre
column = front, azimuth grows to the left, top row = elevation +90). Each class has its own
object (:data:`STYLES`: shape, colour, texture); a visible event's object sits at its labelled
direction, its size shrinks with distance (an object of :data:`OBJECT_RADIUS_M` seen from the
array) and its size and brightness follow the event's loudness envelope. Distractors are silent
objects of the same vocabulary. Objects wrap around the azimuth seam and widen by
``1 / cos(el)`` as the projection does.

Frame ``k`` (pts ``k / fps``) shows the scene at the middle of its interval,
``(k + 0.5) / fps``; at 10 fps frame ``k`` is label frame ``k``.
"""
from __future__ import annotations

import colorsys
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seldbench.data.synth import exact
from seldbench.data.synth.config import SynthConfig
from seldbench.data.synth.scene import FRAME_S, Scene, Trajectory
from seldbench.data.synth.sources import ENVELOPE_RATE_HZ, synthesize
from seldbench.io import atomic_open

OBJECT_RADIUS_M = 0.3


@dataclass(frozen=True)
class Style:
    shape: str  # circle, square, diamond, triangle, triangle_down, ring, plus, tall, wide, pair_h, pair_v
    texture: str  # solid, hstripes, vstripes, checker
    rgb: tuple[int, int, int]


def _hue_rgb(hue_deg: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue_deg / 360.0, 1.0, 1.0)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


#: Class index -> style. Hues are 360/13 deg apart, so every class also has its own colour.
STYLES: tuple[Style, ...] = tuple(
    Style(shape, texture, _hue_rgb(k * 360.0 / 13))
    for k, (shape, texture) in enumerate([
        ("circle", "solid"),  # female speech
        ("square", "solid"),  # male speech
        ("pair_h", "solid"),  # clapping
        ("wide", "hstripes"),  # telephone
        ("ring", "solid"),  # laughter
        ("square", "checker"),  # domestic sounds
        ("pair_v", "solid"),  # footsteps
        ("tall", "solid"),  # door open/close
        ("circle", "hstripes"),  # music
        ("triangle", "solid"),  # musical instrument
        ("triangle_down", "vstripes"),  # water tap
        ("plus", "solid"),  # bell
        ("diamond", "solid"),  # knock
    ])
)


def direction_to_pixel(azimuth_deg, elevation_deg, width: int, height: int):
    """Float pixel coordinates (u, v) of directions (STARSS23 formula)."""
    return (width * (0.5 - np.asarray(azimuth_deg) / 360.0),
            height * (0.5 - np.asarray(elevation_deg) / 180.0))


def _mask(shape: str, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Shape inside the unit box, dx right, dy down."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return dx ** 2 + dy ** 2 <= 1
    if shape == "ring":
        r2 = dx ** 2 + dy ** 2
        return (r2 <= 1) & (r2 >= 0.3)
    if shape == "square":
        return (ax <= 0.85) & (ay <= 0.85)
    if shape == "diamond":
        return ax + ay <= 1
    if shape == "triangle":  # apex up
        return (dy <= 0.8) & (ax <= (dy + 1) * 0.55)
    if shape == "triangle_down":
        return (dy >= -0.8) & (ax <= (1 - dy) * 0.55)
    if shape == "plus":
        return ((ax <= 0.3) & (ay <= 1)) | ((ay <= 0.3) & (ax <= 1))
    if shape == "tall":
        return (ax <= 0.45) & (ay <= 1)
    if shape == "wide":
        return (ax <= 1) & (ay <= 0.5)
    if shape == "pair_h":
        return ((ax - 0.5) ** 2 + dy ** 2 <= 0.2) & (ay <= 0.45)
    if shape == "pair_v":
        return (dx ** 2 + (ay - 0.5) ** 2 <= 0.2) & (ax <= 0.45)
    raise ValueError(shape)


def _texture(texture: str, rows: np.ndarray, cols: np.ndarray, period: int) -> np.ndarray:
    """Brightness factor of a texture at pixel rows/cols (broadcast)."""
    if texture == "solid":
        return np.ones(np.broadcast_shapes(rows.shape, cols.shape))
    if texture == "hstripes":
        return np.where((rows // period) % 2 == 0, 1.0, 0.45) + 0 * cols
    if texture == "vstripes":
        return np.where((cols // period) % 2 == 0, 1.0, 0.45) + 0 * rows
    if texture == "checker":
        return np.where(((rows // period) + (cols // period)) % 2 == 0, 1.0, 0.45)
    raise ValueError(texture)


def object_radius_px(distance_m, height: int) -> np.ndarray:
    """Angular radius in pixels of an :data:`OBJECT_RADIUS_M` object at ``distance_m``."""
    return np.rad2deg(exact.arctan2(OBJECT_RADIUS_M, np.asarray(distance_m))) * height / 180.0


def draw_object(img: np.ndarray, style: Style, azimuth_deg: float, elevation_deg: float,
                distance_m: float, level: float) -> None:
    """Draw one object in place; ``level`` in [0, 1] (loudness) scales its size and brightness."""
    h, w, _ = img.shape
    u, v = direction_to_pixel(azimuth_deg, elevation_deg, w, h)
    r = max(float(object_radius_px(distance_m, h)) * (0.8 + 0.4 * level), 2.5 * h / 180)
    rx = min(r / max(np.cos(np.deg2rad(elevation_deg)), 0.15), w / 2 - 1)
    rows = np.arange(max(int(np.floor(v - r)), 0), min(int(np.ceil(v + r)) + 1, h))
    cols = np.arange(int(np.floor(u - rx)), int(np.ceil(u + rx)) + 1)
    if rows.size == 0 or cols.size == 0:
        return
    dy = (rows[:, None] + 0.5 - v) / r
    dx = (cols[None, :] + 0.5 - u) / rx
    mask = _mask(style.shape, dx, dy)
    if not mask.any():
        return
    period = max(int(r / 2.5), 1)
    shade = _texture(style.texture, rows[:, None] - int(v), cols[None, :] - int(u), period)
    bright = 0.4 + 0.6 * float(np.clip(level, 0, 1))
    colour = np.asarray(style.rgb, dtype=float)[None, None, :] * (shade * bright)[..., None]
    wrapped = cols % w
    patch = img[rows[0]:rows[-1] + 1][:, wrapped]
    patch[mask] = colour[mask].astype(np.uint8)
    img[rows[0]:rows[-1] + 1, wrapped] = patch


def background_image(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A low-saturation room panorama: ceiling, walls with a faint texture, floor."""
    el = 90.0 - (np.arange(height) + 0.5) * 180.0 / height
    base = rng.uniform(70, 140)
    tint = rng.uniform(-8, 8, 3)
    col = np.where(el[:, None] > 35, base + 50, np.where(el[:, None] < -30, base - 35, base))
    col = col + tint[None, :]
    img = np.repeat(col[:, None, :], width, axis=1)
    az = np.linspace(0, 2 * np.pi, width, endpoint=False)
    walls = 10 * np.sin(az * rng.integers(2, 6) + rng.uniform(0, 6.28))  # soft wall shading
    img += walls[None, :, None] * (np.abs(el) <= 35)[:, None, None]
    img += rng.normal(0, 3, (height, width, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def _position(tr: Trajectory, idx: float):
    """Direction and distance at fractional frame index ``idx`` (clamped, azimuth unwrapped)."""
    n = len(tr.azimuth_deg)
    i0 = int(np.clip(np.floor(idx), 0, n - 1))
    i1 = min(i0 + 1, n - 1)
    a = float(np.clip(idx - i0, 0.0, 1.0))
    az0, az1 = tr.azimuth_deg[i0], tr.azimuth_deg[i1]
    daz = (az1 - az0 + 180.0) % 360.0 - 180.0
    return (az0 + a * daz, tr.elevation_deg[i0] * (1 - a) + tr.elevation_deg[i1] * a,
            tr.distance_m[i0] * (1 - a) + tr.distance_m[i1] * a)


def render_frames(scene: Scene, envelopes: list[np.ndarray], cfg: SynthConfig,
                  rng: np.random.Generator):
    """Yield the video frames ``(H, W, 3)`` uint8 of ``scene`` (``envelopes`` per event)."""
    width, height = cfg.video_size
    fps = cfg.video_fps
    bg = background_image(width, height, rng)
    objects = [(STYLES[e.class_idx], e.onset_frame, e.frames, e.trajectory, env)
               for e, env in zip(scene.events, envelopes) if e.visible]
    for d in scene.distractors:
        env = synthesize(d.look_class, d.frames * FRAME_S, 8000, np.random.default_rng(d.seed)).envelope
        objects.append((STYLES[d.look_class], d.onset_frame, d.frames, d.trajectory, env))
    n_frames = int(round(scene.frames * FRAME_S * fps))
    for k in range(n_frames):
        t = (k + 0.5) / fps
        label_pos = t / FRAME_S  # in label frames
        img = bg.copy()
        active = []
        for style, onset, frames, tr, env in objects:
            if onset <= label_pos < onset + frames:
                az, el, dist = _position(tr, label_pos - onset - 0.5)
                ei = int((t - onset * FRAME_S) * ENVELOPE_RATE_HZ)
                level = float(env[min(max(ei, 0), len(env) - 1)])
                active.append((dist, style, az, el, level))
        for dist, style, az, el, level in sorted(active, key=lambda a: -a[0]):  # far first
            draw_object(img, style, az, el, dist, level)
        yield img


def rgb_to_yuv420p(img: np.ndarray) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB frame as planar YUV 4:2:0 ``(3 H / 2, W)`` uint8 (PyAV's
    ``yuv420p`` layout): BT.601 limited range (what decoders assume for an untagged stream),
    chroma from the mean of each 2x2 block. Integer arithmetic only, so the bytes are the same
    on every CPU (FFmpeg's swscale picks SIMD paths that need not agree bit for bit)."""
    h, w, _ = img.shape
    rgb = img.astype(np.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    q = rgb.reshape(h // 2, 2, w // 2, 2, 3).sum(axis=(1, 3))  # 4x the block means
    r4, g4, b4 = q[..., 0], q[..., 1], q[..., 2]
    u = ((-38 * r4 - 74 * g4 + 112 * b4 + 512) >> 10) + 128
    v = ((112 * r4 - 94 * g4 - 18 * b4 + 512) >> 10) + 128
    return np.concatenate([y, u.reshape(h // 4, w), v.reshape(h // 4, w)]).astype(np.uint8)


#: libx264 settings. One thread (no frame or slice threading), and no macroblock tree: x264's
#: mbtree made the bytes of a clip depend on what the process had allocated before (about one
#: run in two wrote different bytes for the second clip of a process) and on the CPU's SIMD
#: level; without it the output is the same in every process and from SSE4.2 to AVX-512.
X264_PARAMS = "threads=1:lookahead-threads=1:sliced-threads=0:mbtree=0"


def write_video(path: str | os.PathLike, frames, cfg: SynthConfig,
                size: tuple[int, int] | None = None) -> int:
    """Encode RGB ``frames`` to an H.264 MP4 at ``path`` atomically; returns the frame count.
    ``size`` (width, height; height a multiple of 4) overrides ``cfg.video_size``, e.g. for
    perspective frames.

    The bytes depend only on the frames, ``cfg`` and the PyAV/FFmpeg/x264 build."""
    import av

    width, height = size or cfg.video_size
    count = 0
    with atomic_open(Path(path), "wb") as fh:
        with av.open(fh, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=cfg.video_fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.thread_count = 1
            stream.options = {"crf": str(cfg.video_crf), "preset": "veryfast",
                              "x264-params": X264_PARAMS}
            for img in frames:
                frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(img), format="yuv420p")
                for packet in stream.encode(frame):
                    container.mux(packet)
                count += 1
            for packet in stream.encode():
                container.mux(packet)
    return count
