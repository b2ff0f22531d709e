"""Random DCASE reference/prediction sets for tests and benchmarks (not for training).

References look like STARSS23 metadata (up to 3 overlapping events, same-class overlaps,
static and moving sources); predictions are a noisy system output of them: DOA jitter, dropped
and spurious frames, wrong classes, duplicated same-class entries.
"""
from __future__ import annotations

import numpy as np

from seldbench.metrics.csvio import (EventTable, as_stereo, make_table, polar_to_cartesian,
                                     write_dcase2025_csv, write_dcase_csv)


def random_reference(rng: np.random.Generator, num_classes: int, n_frames: int = 600,
                     n_events: int = 25, with_distance: bool = True) -> EventTable:
    """Events of 0.3-10 s with static or moving DOAs, integer degrees, distance in cm."""
    rows = []
    for src in range(n_events):
        length = int(rng.integers(3, 100))
        start = int(rng.integers(0, max(1, n_frames - 3)))
        c = int(rng.integers(0, num_classes))
        az0, el0 = rng.uniform(-180, 180), rng.uniform(-60, 60)
        speed = rng.choice([0.0, rng.uniform(-4, 4)])  # degrees per frame
        dist = rng.uniform(50, 500)
        for f in range(start, min(n_frames, start + length)):
            az = (az0 + speed * (f - start) + 180) % 360 - 180
            rows.append((f, c, src % 3, round(az), round(el0), round(dist)))
    rows.sort(key=lambda r: r[0])  # by frame, keeping the event order inside a frame
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    az = np.where(a[:, 3] >= 180, a[:, 3] - 360, a[:, 3])
    dist = a[:, 5] if with_distance else None
    return make_table(a[:, 0], a[:, 1], a[:, 2], np.stack([az, a[:, 4]], 1), dist,
                      layout="fctaed" if with_distance else "fctae")


def random_prediction(rng: np.random.Generator, ref: EventTable, num_classes: int,
                      jitter_deg: float = 12.0, drop: float = 0.2, spurious: float = 0.05,
                      with_distance: bool = True) -> EventTable:
    """A plausible system output for ``ref`` in the Cartesian prediction layout."""
    n = len(ref)
    keep = rng.random(n) > drop
    frame, cls, trk = ref.frame[keep], ref.cls[keep].copy(), ref.track[keep]
    azel = ref.coords[keep] + rng.normal(0, jitter_deg, (keep.sum(), 2))
    azel[:, 1] = np.clip(azel[:, 1], -90, 90)
    wrong = rng.random(len(cls)) < 0.05
    cls[wrong] = rng.integers(0, num_classes, wrong.sum())
    dist = (ref.distance[keep] / 100 * rng.uniform(0.6, 1.6, keep.sum())) if ref.distance is not None \
        else np.zeros(keep.sum())
    # spurious entries, some duplicating a (frame, class) that is already there
    n_sp = int(spurious * n) + 1
    last = int(ref.frame.max()) if n else 10
    sp_frame = rng.integers(0, last + 15, n_sp)
    sp_cls = rng.integers(0, num_classes, n_sp)
    sp_azel = np.stack([rng.uniform(-180, 180, n_sp), rng.uniform(-80, 80, n_sp)], 1)
    frame = np.concatenate([frame, sp_frame])
    cls = np.concatenate([cls, sp_cls])
    trk = np.concatenate([trk, rng.integers(0, 3, n_sp)])
    azel = np.concatenate([azel, sp_azel])
    dist = np.concatenate([dist, rng.uniform(0.5, 5, n_sp)])
    order = np.argsort(frame, kind="stable")
    xyz = polar_to_cartesian(azel[order]) * rng.uniform(0.6, 1.0, (len(order), 1))
    return make_table(frame[order], cls[order], trk[order], xyz,
                      dist[order] if with_distance else None,
                      layout="fctxyzd" if with_distance else "fctxyz")


def write_random_set(out_dir, n_files: int, num_classes: int = 13, seed: int = 0,
                     n_frames: int = 600, with_distance: bool = True) -> None:
    """Write ``ref/`` and ``pred/`` folders of ``n_files`` random one-minute CSV pairs."""
    from pathlib import Path

    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    for k in range(n_files):
        ref = random_reference(rng, num_classes, n_frames, with_distance=with_distance)
        pred = random_prediction(rng, ref, num_classes, with_distance=with_distance)
        write_dcase_csv(out / "ref" / f"mix{k:03d}.csv", ref)
        write_dcase_csv(out / "pred" / f"mix{k:03d}.csv", pred)


def random_stereo_pair(rng: np.random.Generator, num_classes: int, n_frames: int = 50,
                       n_events: int = 6, flip_onscreen: float = 0.15,
                       **noise) -> tuple[EventTable, EventTable]:
    """A 2025 (``fctado``) reference and prediction: :func:`random_reference` and
    :func:`random_prediction` (``noise``: their keyword arguments) in the stereo layout, with
    integer source ids up to 12 and a share ``flip_onscreen`` of predicted flags wrong."""
    ref = as_stereo(random_reference(rng, num_classes, n_frames, n_events))
    pred = as_stereo(random_prediction(rng, ref_polar(ref), num_classes, **noise))
    for t in (ref, pred):
        t.track = rng.integers(0, 13, len(t))
    flip = rng.random(len(pred)) < flip_onscreen
    pred.onscreen = np.where(flip, 1 - pred.onscreen, pred.onscreen)
    return ref, pred


def ref_polar(table: EventTable) -> EventTable:
    """An ``fctado`` table as ``fctaed`` (elevation 0), the input :func:`random_prediction` takes."""
    coords = np.concatenate([table.coords, np.zeros((len(table), 1))], axis=1)
    return make_table(table.frame, table.cls, table.track, coords, table.distance, layout="fctaed")


def write_random_stereo_set(out_dir, n_files: int, num_classes: int = 13, seed: int = 0,
                            n_frames: int = 50) -> None:
    """Write ``ref/`` and ``pred/`` folders of ``n_files`` random 2025 CSV pairs (5-s clips by
    default)."""
    from pathlib import Path

    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    for k in range(n_files):
        ref, pred = random_stereo_pair(rng, num_classes, n_frames)
        write_dcase2025_csv(out / "ref" / f"mix{k:03d}.csv", ref)
        write_dcase2025_csv(out / "pred" / f"mix{k:03d}.csv", pred)
