"""Label encoders: ADPIT slots, track-wise targets, per-frame text."""
from __future__ import annotations

import time

import numpy as np
import pytest

from seldbench.data.labels import (
    SECTORS,
    adpit_targets,
    azimuth_sector,
    describe_frames,
    label_frames,
    track_targets,
)
from seldbench.errors import SeldbenchError
from seldbench.metrics.csvio import make_table, read_dcase_csv

CLASSES13 = ("female speech", "male speech", "clapping", "telephone", "laughter",
             "domestic sounds", "footsteps", "door open/close", "music", "musical instrument",
             "water tap", "bell", "knock")


def table(rows, distance=True):
    """rows: (frame, class, source, az, el[, dist_cm])."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 6 if distance else 5)
    return make_table(a[:, 0], a[:, 1], a[:, 2], a[:, 3:5], a[:, 5] if distance else None,
                      layout="fctaed" if distance else "fctae")


def unit(az, el=0.0):
    a, e = np.radians(az), np.radians(el)
    return np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])


def test_label_frames():
    assert label_frames(24000 * 60) == 600
    assert label_frames(24000 * 60 + 1) == 601
    assert label_frames(2400) == 1


# --------------------------------------------------------------------------- ADPIT


def test_adpit_one_event_fills_a0():
    y = adpit_targets(table([[2, 5, 0, 90, 0, 250]]), 4, 13, with_distance=True)
    assert y.shape == (4, 6, 5, 13) and y.dtype == np.float32
    np.testing.assert_allclose(y[2, 0, :, 5], [1, 0, 1, 0, 2.5], atol=1e-6)
    assert np.count_nonzero(y[:, :, 0]) == 1
    assert y[2, 1:].sum() == 0 and y[[0, 1, 3]].sum() == 0


def test_adpit_two_same_class_fill_b0_b1_in_row_order():
    y = adpit_targets(table([[1, 3, 0, 0, 0, 100], [1, 3, 1, 90, 0, 100]]), 2, 13)
    assert y.shape == (2, 6, 4, 13)
    assert y[1, 0, 0, 3] == 0  # not A0
    np.testing.assert_allclose(y[1, 1, 1:, 3], unit(0), atol=1e-6)
    np.testing.assert_allclose(y[1, 2, 1:, 3], unit(90), atol=1e-6)
    assert y[1, 1:3, 0, 3].tolist() == [1, 1] and y[1, 3:, 0].sum() == 0


@pytest.mark.parametrize("n", [3, 4])
def test_adpit_three_or_more_fill_c0_c2(n):
    azs = [10, 100, -100, 170][:n]
    rows = [[0, 7, k, az, 20, 100] for k, az in enumerate(azs)]
    y = adpit_targets(table(rows), 1, 13)
    assert y[0, :3, 0, 7].tolist() == [0, 0, 0]
    assert y[0, 3:, 0, 7].tolist() == [1, 1, 1]
    for slot, az in zip((3, 4, 5), azs[:3]):
        np.testing.assert_allclose(y[0, slot, 1:, 7], unit(az, 20), atol=1e-6)
    assert np.count_nonzero(y[0, :, 0]) == 3  # the 4th is dropped


def test_adpit_classes_are_independent_and_rows_beyond_clip_dropped():
    rows = [[0, 1, 0, 0, 0, 100], [0, 2, 0, 45, 0, 100], [0, 2, 1, -45, 0, 100],
            [0, 1, 1, 180, 0, 100], [0, 4, 0, 30, 0, 100], [0, 1, 2, 90, 0, 100],
            [5, 0, 0, 0, 0, 100]]
    y = adpit_targets(table(rows), 3, 13)
    assert y.shape[0] == 3 and y[:, :, 0, 0].sum() == 0  # frame 5 >= 3 frames: dropped
    assert y[0, 3:, 0, 1].tolist() == [1, 1, 1]  # class 1: three events (rows 0, 3, 5)
    np.testing.assert_allclose(y[0, 4, 1:, 1], unit(180), atol=1e-6)
    assert y[0, 1:3, 0, 2].tolist() == [1, 1]  # class 2: two events
    np.testing.assert_allclose(y[0, 2, 1:, 2], unit(-45), atol=1e-6)
    assert y[0, 0, 0, 4] == 1 and y[0, 0, 0].sum() == 1


def test_adpit_distance_needs_a_distance_column():
    with pytest.raises(SeldbenchError, match="no distance column"):
        adpit_targets(table([[0, 1, 0, 0, 0]], distance=False), 2, 12, with_distance=True)
    y = adpit_targets(table([[0, 1, 0, 0, 0]], distance=False), 2, 12)
    assert y.shape == (2, 6, 4, 12) and y[0, 0, 0, 1] == 1


def test_adpit_class_out_of_range_is_named():
    with pytest.raises(SeldbenchError, match=r":1: class 13 outside \[0, 12\]"):
        adpit_targets(table([[0, 13, 0, 0, 0, 100]]), 2, 13)


def test_adpit_from_csv(tmp_path):
    p = tmp_path / "fold3_room4_mix001.csv"
    p.write_text("0,0,0,-90,0,120\n0,0,1,90,0,300\n")
    y = adpit_targets(read_dcase_csv(p, {6: "fctaed"}, 13), 1, 13, with_distance=True)
    np.testing.assert_allclose(y[0, 1, :, 0], [1, 0, -1, 0, 1.2], atol=1e-6)
    np.testing.assert_allclose(y[0, 2, :, 0], [1, 0, 1, 0, 3.0], atol=1e-6)


def test_adpit_is_fast():
    rng = np.random.default_rng(0)
    tabs = []
    for _ in range(170):
        n = 900
        tabs.append(make_table(np.sort(rng.integers(0, 600, n)), rng.integers(0, 13, n),
                               rng.integers(0, 3, n), np.c_[rng.integers(-180, 181, n),
                                                            rng.integers(-60, 61, n)],
                               rng.integers(50, 500, n), layout="fctaed"))
    t = time.perf_counter()
    for tb in tabs:
        adpit_targets(tb, 600, 13, with_distance=True)
    assert time.perf_counter() - t < 3.0  # about 0.1 s here; generous for a shared machine


# --------------------------------------------------------------------------- track-wise


def test_track_wise_first_free_track_in_row_order():
    rows = [[0, 9, 0, 0, 0, 100], [0, 2, 0, 90, 0, 200], [0, 9, 1, 180, 0, 300],
            [0, 4, 0, -90, 0, 400], [1, 5, 0, 45, 0, 100]]
    t = track_targets(table(rows), 3, 13, with_distance=True)
    assert t.cls.tolist() == [[9, 2, 9], [5, -1, -1], [-1, -1, -1]]  # row order, 4th dropped
    np.testing.assert_allclose(t.xyz[0, 1], unit(90), atol=1e-6)
    np.testing.assert_allclose(t.xyz[0, 2], unit(180), atol=1e-6)
    np.testing.assert_allclose(t.distance_m[0], [1, 2, 3], atol=1e-6)
    assert t.activity.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    arr = t.as_array()
    assert arr.shape == (3, 3, 13 + 3 + 1)
    assert arr[0, 0, 9] == 1 and arr[0, 0, :13].sum() == 1 and arr[1, 1].sum() == 0
    np.testing.assert_allclose(arr[1, 0, 13:16], unit(45), atol=1e-6)
    assert track_targets(table(rows), 3, 13).as_array().shape == (3, 3, 16)


# --------------------------------------------------------------------------- text


def test_azimuth_sectors():
    az = np.array([0, 44, 46, 90, 135, 136, 180, -180, -136, -135, -90, -46, -45, 360 + 90])
    words = [SECTORS[i] for i in azimuth_sector(az)]
    assert words == ["front", "front", "left", "left", "left", "behind", "behind", "behind",
                     "behind", "right", "right", "right", "front", "left"]


def _moving_and_static_table():
    rows = []
    for f in range(20):
        rows.append([f, 0, 0, -60 + 5 * f, 0, 150])  # female speech moving 50 deg/s
        rows.append([f, 12, 0, 170, 40, 300])  # knock, static, behind and above
    rows.append([25, 3, 0, 90, -30, 120])  # telephone, left, below
    return table(rows)


def test_text_content():
    tx = describe_frames(_moving_and_static_table(), 30, CLASSES13, seed=0)
    assert len(tx.frame) == 30 and len(tx.event) == 41
    speech = [e for e, c in zip(tx.event, tx.event_class) if c == 0]
    knock = [e for e, c in zip(tx.event, tx.event_class) if c == 12]
    assert all("female speech" in e and "moving" in e and "static" not in e for e in speech[5:15])
    assert all("knock" in e and "static" in e and "moving" not in e for e in knock)
    assert all("behind" in e and "above" in e and "azimuth 170" in e and "3.0 m" in e
               for e in knock)
    # frame 4: az -40 -> front; frame 15: az 15 -> front; frame 19: az 35; frame 2: -50 -> right
    ev2 = tx.events_at(2)
    assert any("right" in e and "azimuth -50" in e for e in ev2)
    assert any("front" in e and "azimuth 15" in e for e in tx.events_at(15))
    tel = tx.events_at(25)
    assert len(tel) == 1 and "telephone" in tel[0] and "left" in tel[0] and "below" in tel[0]
    assert "azimuth 90" in tel[0] and "1.2 m" in tel[0] and "static" in tel[0]
    assert "silence" in tx.frame[22] and tx.events_at(22) == []
    assert tel[0] in tx.frame[25]
    assert all(e in tx.frame[3] for e in tx.events_at(3)) and len(tx.events_at(3)) == 2
    assert tx.moving.dtype == bool and tx.moving[tx.event_class == 0].sum() > 10


def test_text_moving_threshold_and_window():
    rows = [[f, 1, 0, 2 * f, 0, 100] for f in range(30)]  # 2 deg per frame: 20 deg over +-5
    t = table(rows)
    assert describe_frames(t, 30, CLASSES13, moving_threshold_deg=15).moving[10:20].all()
    assert not describe_frames(t, 30, CLASSES13, moving_threshold_deg=25).moving.any()
    short = describe_frames(t, 30, CLASSES13, window_frames=2, moving_threshold_deg=10)
    assert not short.moving.any()  # 8 degrees over +-2 frames
    # another source of the same class does not make a static one moving
    rows2 = [[f, 1, 0, 0, 0, 100] for f in range(10)]
    rows2 += [[f, 1, 1, 9 * f, 0, 100] for f in range(10)]
    tx = describe_frames(table(rows2), 10, CLASSES13)
    src0 = tx.event_row < 10
    assert not tx.moving[src0].any() and tx.moving[~src0].all()


def test_text_deterministic_and_varied():
    t = _moving_and_static_table()
    a = describe_frames(t, 30, CLASSES13, seed=3)
    b = describe_frames(t, 30, CLASSES13, seed=3)
    c = describe_frames(t, 30, CLASSES13, seed=4)
    assert a.frame == b.frame and a.event == b.event
    assert a.event != c.event  # the seed picks among several wordings
    knock = [e for e, k in zip(a.event, a.event_class) if k == 12]  # 20 identical events
    assert len(set(knock)) >= 3  # ... in several wordings within one clip


def test_text_without_distance():
    tx = describe_frames(table([[0, 11, 0, -100, 0]], distance=False), 2, CLASSES13[:12])
    assert "bell" in tx.event[0] and "right" in tx.event[0]
    assert " m " not in tx.event[0] + " " and "metre" not in tx.event[0]
    assert "above" not in tx.event[0] and "below" not in tx.event[0]
    assert tx.frame[1].startswith("silence")
