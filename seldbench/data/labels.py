"""Label encoders: the rows of a DCASE metadata CSV -> training targets (docs/datasets.md,
"Labels and targets").

Every encoder takes an :class:`~seldbench.metrics.csvio.EventTable` (rows ``frame, class,
source, azimuth_deg, elevation_deg[, distance]`` as read by
:func:`~seldbench.metrics.csvio.read_dcase_csv`) and the clip's number of 100-ms label frames
(:func:`label_frames`). Rows at or after ``num_frames`` are dropped; a class outside
``[0, num_classes)`` is a :class:`SeldbenchError`. Directions become unit vectors
``x = cos(az) cos(el)``, ``y = sin(az) cos(el)``, ``z = sin(el)``; distances are converted to
metres with ``distance_unit_m`` (0.01 for the centimetres of STARSS23).

- :func:`adpit_targets`: multi-ACCDOA with ADPIT slots, ``(frames, 6, 4 or 5, classes)``.
- :func:`track_targets`: track-wise (EINV2-style) targets, up to 3 tracks per frame.
- :func:`describe_frames`: per-frame and per-event text for the text encoder (CRATI).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seldbench.errors import SeldbenchError
from seldbench.metrics.csvio import EventTable, polar_to_cartesian, read_dcase_csv

#: Length of one label frame in seconds.
LABEL_HOP_S = 0.1
#: ADPIT slots: A0 | B0 B1 | C0 C1 C2.
ADPIT_SLOTS = 6


def read_metadata(path: str | os.PathLike, metadata_columns: int, num_classes: int,
                  metadata_format: str = "dcase") -> EventTable:
    """Read a dataset's metadata CSV strictly: ``metadata_columns`` 5 (``frame, class, source,
    azimuth, elevation``) or 6 (``..., distance``), classes in ``[0, num_classes)``;
    ``metadata_format="dcase2025"``: the stereo layout with its header line (``frame, class,
    source, azimuth, distance_cm, onscreen``, an ``fctado`` table)."""
    if metadata_format == "dcase2025":
        from seldbench.metrics.csvio import HEADER_2025

        return read_dcase_csv(path, {6: "fctado"}, num_classes, header=HEADER_2025,
                              positive_distance=True)
    if metadata_format != "dcase":
        raise SeldbenchError(f"{path}: metadata format '{metadata_format}' is not dcase or "
                             f"dcase2025")
    layouts = {5: "fctae", 6: "fctaed"}
    if metadata_columns not in layouts:
        raise SeldbenchError(f"{path}: metadata_columns {metadata_columns} is not 5 or 6")
    return read_dcase_csv(path, {metadata_columns: layouts[metadata_columns]}, num_classes)


def label_frames(num_samples: int, sample_rate: int = 24000, hop_s: float = LABEL_HOP_S) -> int:
    """Number of label frames covering ``num_samples`` audio samples: ``ceil(samples / hop)``."""
    hop = int(round(sample_rate * hop_s))
    return -(-int(num_samples) // hop)


@dataclass
class _Rows:
    frame: np.ndarray  # (N,) int64, in table row order
    cls: np.ndarray  # (N,) int64
    source: np.ndarray  # (N,) int64
    xyz: np.ndarray  # (N, 3) float64 unit vectors
    azel: np.ndarray  # (N, 2) degrees
    distance_m: np.ndarray | None  # (N,) float64
    index: np.ndarray  # (N,) row index in the table


def _rows(table: EventTable, num_frames: int, num_classes: int | None,
          distance_unit_m: float) -> _Rows:
    keep = table.frame < int(num_frames)
    cls = table.cls[keep]
    if num_classes is not None and len(cls) and (cls.min() < 0 or cls.max() >= num_classes):
        bad = keep.nonzero()[0][int(np.argmax((cls < 0) | (cls >= num_classes)))]
        raise SeldbenchError(f"{table.path}:{int(table.line[bad])}: class {int(table.cls[bad])} "
                             f"outside [0, {num_classes - 1}]")
    if table.cartesian:
        v = table.coords[keep]
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        xyz = v / np.where(norm > 0, norm, 1.0)
        azel = table.polar()[keep]
    else:
        azel = table.polar()[keep]  # 2025 stereo rows: azimuth only, elevation 0
        xyz = polar_to_cartesian(azel)
    dist = None if table.distance is None else table.distance[keep] * float(distance_unit_m)
    return _Rows(table.frame[keep], cls, table.track[keep], xyz, azel, dist,
                 np.flatnonzero(keep))


def _need_distance(table: EventTable, rows: _Rows, with_distance: bool) -> None:
    if with_distance and rows.distance_m is None:
        raise SeldbenchError(f"{table.path}: labels with distance asked for, but the metadata "
                             f"has no distance column")


def _group_rank(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted ``keys``: rank of each element within its run of equal keys, and run size."""
    n = len(keys)
    new = np.ones(n, bool)
    new[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(new)
    gid = np.cumsum(new) - 1
    rank = np.arange(n) - starts[gid]
    size = np.diff(np.append(starts, n))[gid]
    return rank, size


# --------------------------------------------------------------------------- multi-ACCDOA / ADPIT


def _adpit_slots(frame: np.ndarray, cls: np.ndarray, num_classes: int):
    """ADPIT slot of each event row: ``(order, frame, class, slot)`` of the kept rows (row
    indices into ``frame`` / ``cls``). Per (frame, class), in row order: one event -> slot 0
    (A0), two -> 1-2 (B0, B1), three or more -> 3-5 (C0-C2; further ones dropped)."""
    n = len(frame)
    order = np.lexsort((np.arange(n), cls, frame))  # frame, then class, then row
    f, c = frame[order], cls[order]
    rank, size = _group_rank(f * num_classes + c)
    slot = np.where(size == 1, 0, np.where(size == 2, 1 + rank, 3 + rank))
    ok = slot < ADPIT_SLOTS
    return order[ok], f[ok], c[ok], slot[ok]


def adpit_targets(table: EventTable, num_frames: int, num_classes: int, *,
                  with_distance: bool = False, distance_unit_m: float = 0.01) -> np.ndarray:
    """Multi-ACCDOA targets with ADPIT slots: float32 ``(num_frames, 6, 4 or 5, num_classes)``.

    Values per slot and class: ``(activity, x, y, z[, distance_m])``. Per frame and class, the
    events (in CSV row order) fill slot 0 if there is one (A0), slots 1-2 if two (B0, B1) and
    slots 3-5 if three or more (C0, C1, C2; further ones are dropped), as in the official
    DCASE baseline (``get_adpit_labels_for_file``).
    """
    rows = _rows(table, num_frames, num_classes, distance_unit_m)
    _need_distance(table, rows, with_distance)
    out = np.zeros((int(num_frames), ADPIT_SLOTS, 5 if with_distance else 4, num_classes),
                   np.float32)
    order, f, c, slot = _adpit_slots(rows.frame, rows.cls, num_classes)
    out[f, slot, 0, c] = 1.0
    out[f, slot, 1, c] = rows.xyz[order, 0]
    out[f, slot, 2, c] = rows.xyz[order, 1]
    out[f, slot, 3, c] = rows.xyz[order, 2]
    if with_distance:
        out[f, slot, 4, c] = rows.distance_m[order]
    return out


def stereo_adpit_targets(table: EventTable, num_frames: int, num_classes: int, *,
                         distance_unit_m: float = 0.01) -> np.ndarray:
    """DCASE 2025 multi-ACCDOA targets with ADPIT slots: float32 ``(num_frames, 6, 5,
    num_classes)``, values per slot and class ``(activity, x, y, distance_m, onscreen)`` with
    ``(x, y) = (cos, sin)`` of the azimuth (the stereo task has no elevation). ``table``: an
    ``fctado`` table (:func:`read_metadata` with ``dcase2025``), distances in cm. Slots as
    :func:`adpit_targets`."""
    if table.layout != "fctado":
        raise SeldbenchError(f"{table.path}: stereo targets need the 2025 metadata layout "
                             f"(header frame,class,source,azimuth,distance,onscreen)")
    keep = table.frame < int(num_frames)
    frame, cls = table.frame[keep], table.cls[keep]
    if len(cls) and (cls.min() < 0 or cls.max() >= num_classes):
        bad = np.flatnonzero(keep)[int(np.argmax((cls < 0) | (cls >= num_classes)))]
        raise SeldbenchError(f"{table.path}:{int(table.line[bad])}: class {int(table.cls[bad])} "
                             f"outside [0, {num_classes - 1}]")
    az = np.radians(table.coords[keep, 0])
    values = np.stack([np.cos(az), np.sin(az), table.distance[keep] * float(distance_unit_m),
                       table.onscreen[keep].astype(np.float64)], axis=1)
    out = np.zeros((int(num_frames), ADPIT_SLOTS, 5, num_classes), np.float32)
    order, f, c, slot = _adpit_slots(frame, cls, num_classes)
    out[f, slot, 0, c] = 1.0
    for k in range(4):
        out[f, slot, 1 + k, c] = values[order, k]
    return out


# --------------------------------------------------------------------------- track-wise


@dataclass
class TrackTargets:
    """Track-wise targets of one clip (EINV2-style), ``T`` frames x ``K`` tracks.

    A frame's events fill tracks 0, 1, 2 in CSV row order; empty tracks have class -1 and
    zero vectors.
    """

    cls: np.ndarray  # (T, K) int64 class index, -1 where the track is empty
    xyz: np.ndarray  # (T, K, 3) float32 unit DOA vectors, 0 where empty
    distance_m: np.ndarray | None  # (T, K) float32 metres, 0 where empty; None without distance
    num_classes: int

    @property
    def activity(self) -> np.ndarray:
        """``(T, K)`` float32: 1 where the track holds an event."""
        return (self.cls >= 0).astype(np.float32)

    def onehot(self) -> np.ndarray:
        """``(T, K, classes)`` float32 class one-hot, all zero for an empty track."""
        t, k = self.cls.shape
        out = np.zeros((t, k, self.num_classes), np.float32)
        ti, ki = np.nonzero(self.cls >= 0)
        out[ti, ki, self.cls[ti, ki]] = 1.0
        return out

    def as_array(self) -> np.ndarray:
        """``(T, K, classes + 3 [+ 1])`` float32: one-hot, x, y, z[, distance_m] per track."""
        parts = [self.onehot(), self.xyz]
        if self.distance_m is not None:
            parts.append(self.distance_m[..., None])
        return np.concatenate(parts, axis=-1).astype(np.float32)


def track_targets(table: EventTable, num_frames: int, num_classes: int, *, tracks: int = 3,
                  with_distance: bool = False, distance_unit_m: float = 0.01) -> TrackTargets:
    """Track-wise targets: each frame's events go to the first free track in CSV row order;
    events beyond ``tracks`` in a frame are dropped."""
    rows = _rows(table, num_frames, num_classes, distance_unit_m)
    _need_distance(table, rows, with_distance)
    t = int(num_frames)
    cls = np.full((t, tracks), -1, np.int64)
    xyz = np.zeros((t, tracks, 3), np.float32)
    dist = np.zeros((t, tracks), np.float32) if with_distance else None
    if len(rows.frame):
        order = np.argsort(rows.frame, kind="stable")
        f = rows.frame[order]
        rank, _ = _group_rank(f)
        ok = rank < tracks
        order, f, rank = order[ok], f[ok], rank[ok]
        cls[f, rank] = rows.cls[order]
        xyz[f, rank] = rows.xyz[order]
        if dist is not None:
            dist[f, rank] = rows.distance_m[order]
    return TrackTargets(cls, xyz, dist, num_classes)


# --------------------------------------------------------------------------- text

#: Horizontal sectors of the azimuth (0 front, +90 left, +-180 behind, -90 right).
SECTORS = ("front", "left", "behind", "right")
_IN_SECTOR = ("in front", "on the left", "behind", "on the right")
_FROM_SECTOR = ("from the front", "from the left", "from behind", "from the right")
_VERTICAL = ("", " and above", " and below")  # level, above, below

_EVENT_TEMPLATES = (
    "{name}, {motion}, {hin}{v}, azimuth {az} degrees, elevation {el} degrees{dist}",
    "a {motion} {name} {hin}{v} at azimuth {az} degrees and elevation {el} degrees{dist}",
    "{name} {hfrom}{v} (azimuth {az} degrees, elevation {el} degrees), {motion}{dist}",
    "{motion} source of {name} {hin}{v}; azimuth {az}, elevation {el} degrees{dist}",
)
_DIST_TEMPLATES = (", {d:.1f} m away", ", {d:.1f} metres away", ", at a distance of {d:.1f} m",
                   ", {d:.1f} m from the microphone")
_SILENCE = ("silence", "silence: no sound events", "silence, nothing is sounding")
_ONE = ("{0}", "one sound event: {0}", "a single sound: {0}")
_MANY = ("{n} sound events: {e}", "{w} overlapping sounds: {e}", "{w} simultaneous events: {e}")
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _mix(*parts: np.ndarray | int) -> np.ndarray:
    """A deterministic integer hash (splitmix64 steps) of equally shaped integer arrays."""
    with np.errstate(over="ignore"):
        h = np.uint64(0x9E3779B97F4A7C15)
        for p in parts:
            v = np.asarray(p).astype(np.int64).astype(np.uint64)
            h = h ^ (v + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6)) + (h >> np.uint64(2)))
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h = h ^ (h >> np.uint64(31))
    return h


def azimuth_sector(azimuth_deg: np.ndarray) -> np.ndarray:
    """Index into :data:`SECTORS`: front ``|az| <= 45``, left ``45 < az <= 135``, right
    ``-135 <= az < -45``, behind otherwise (azimuth wrapped to (-180, 180])."""
    az = _wrap(np.asarray(azimuth_deg, np.float64))
    return np.select([np.abs(az) <= 45, (az > 45) & (az <= 135), (az < -45) & (az >= -135)],
                     [0, 1, 3], default=2)


def _wrap(az: np.ndarray) -> np.ndarray:
    w = np.mod(az + 180.0, 360.0) - 180.0
    return np.where(w == -180.0, 180.0, w)


@dataclass
class FrameTexts:
    """Text descriptions of one clip: one per label frame and one per (kept) event row.

    Events are listed by frame, then CSV row order; ``event_row`` maps each back to its row in
    the table.
    """

    frame: list[str]  # (T,) whole-frame descriptions ("silence" family when nothing sounds)
    event: list[str]  # (N,) per-event descriptions
    event_frame: np.ndarray  # (N,) int64
    event_class: np.ndarray  # (N,) int64
    event_row: np.ndarray  # (N,) int64 row index in the EventTable
    moving: np.ndarray  # (N,) bool
    sector: np.ndarray  # (N,) int64 index into SECTORS

    def events_at(self, frame: int) -> list[str]:
        """The descriptions of the events active in ``frame``."""
        lo, hi = np.searchsorted(self.event_frame, [frame, frame + 1])
        return self.event[lo:hi]


def _moving(rows: _Rows, window_frames: int, threshold_deg: float) -> np.ndarray:
    """Per row: does the same (class, source) move by >= ``threshold_deg`` between the first
    and the last of its frames within ``+-window_frames``?"""
    n = len(rows.frame)
    if n == 0:
        return np.zeros(0, bool)
    w = int(window_frames)
    src_key = rows.cls * (int(rows.source.max()) + 1) + rows.source
    span = int(rows.frame.max()) + 4 * w + 4
    comp = src_key * span + rows.frame + 2 * w + 2  # within a key, frames never reach the next
    order = np.argsort(comp, kind="stable")
    sorted_comp = comp[order]
    lo = order[np.searchsorted(sorted_comp, comp - w, side="left")]
    hi = order[np.searchsorted(sorted_comp, comp + w, side="right") - 1]
    cos = np.clip(np.sum(rows.xyz[lo] * rows.xyz[hi], axis=1), -1.0, 1.0)
    return np.degrees(np.arccos(cos)) >= threshold_deg


def describe_frames(table: EventTable, num_frames: int, class_names: Sequence[str], *,
                    seed: int = 0, moving_threshold_deg: float = 10.0, window_frames: int = 5,
                    distance_unit_m: float = 0.01) -> FrameTexts:
    """Per-frame and per-event text built from the annotation (training signal for CRATI).

    An event reads e.g. ``"a static female speech on the left and above at azimuth 60 degrees
    and elevation 30 degrees, 1.5 metres away"``: the class name, the azimuth sector (front /
    left / behind / right, see :func:`azimuth_sector`), ``above`` (elevation >= 20 degrees) or
    ``below`` (<= -20), azimuth and elevation rounded to degrees, ``moving`` when the DOA of
    the same (class, source) changes by ``moving_threshold_deg`` or more across
    ``+-window_frames`` frames (0.5 s) and ``static`` otherwise, and the distance in metres
    when the metadata has one. A frame reads ``"silence"`` (or a variant) or lists its events.
    The wording (one of several templates) is chosen by a hash of ``seed`` and the labels, so
    the text is deterministic given labels and seed.
    """
    rows = _rows(table, num_frames, len(class_names), distance_unit_m)
    order = np.argsort(rows.frame, kind="stable")
    f = rows.frame[order]
    cls = rows.cls[order]
    src = rows.source[order]
    azel = rows.azel[order]
    moving = _moving(rows, window_frames, moving_threshold_deg)[order]
    sector = azimuth_sector(azel[:, 0])
    el = azel[:, 1]
    vert = np.select([el >= 20, el <= -20], [1, 2], default=0)
    az_i = np.rint(_wrap(azel[:, 0])).astype(np.int64)
    az_i = np.where(az_i == -180, 180, az_i)
    el_i = np.rint(el).astype(np.int64)
    tpl = (_mix(seed, f, cls, src, 1) % np.uint64(len(_EVENT_TEMPLATES))).astype(np.int64)
    dist = None if rows.distance_m is None else rows.distance_m[order]

    names = list(class_names)
    motion = np.where(moving, "moving", "static").tolist()
    tpl_l = tpl.tolist()
    dtext = [""] * len(f) if dist is None else [
        _DIST_TEMPLATES[k].format(d=d) for k, d in zip(tpl_l, dist.tolist())]
    events = [
        _EVENT_TEMPLATES[k].format(name=names[c], motion=m, hin=_IN_SECTOR[s],
                                   hfrom=_FROM_SECTOR[s], v=_VERTICAL[v], az=a, el=e, dist=d)
        for k, c, m, s, v, a, e, d in zip(tpl_l, cls.tolist(), motion, sector.tolist(),
                                          vert.tolist(), az_i.tolist(), el_i.tolist(), dtext)]

    t = int(num_frames)
    bounds = np.searchsorted(f, np.arange(t + 1))
    count = np.diff(bounds)
    ftpl = (_mix(seed, np.arange(t), count, 2) % np.uint64(3)).astype(np.int64)
    frames: list[str] = []
    for c, k, lo, hi in zip(count.tolist(), ftpl.tolist(), bounds[:-1].tolist(),
                            bounds[1:].tolist()):
        if c == 0:
            frames.append(_SILENCE[k])
        elif c == 1:
            frames.append(_ONE[k].format(events[lo]))
        else:
            w = _NUMBER_WORDS[c] if c < len(_NUMBER_WORDS) else str(c)
            frames.append(_MANY[k].format(n=c, w=w.capitalize() if k else w,
                                          e="; ".join(events[lo:hi])))
    return FrameTexts(frames, events, f, cls, rows.index[order], moving, sector)


__all__ = ["LABEL_HOP_S", "ADPIT_SLOTS", "SECTORS", "read_metadata", "label_frames",
           "adpit_targets", "stereo_adpit_targets", "TrackTargets", "track_targets", "FrameTexts", "describe_frames", "azimuth_sector"]
