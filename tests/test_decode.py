"""Vectorised decoders against slow, obviously-correct per-frame references written here."""
import math

import numpy as np
import pytest

from seldbench.metrics.decode import (multi_accdoa_decode, stereo_multi_accdoa_decode,
                                      trackwise_decode)


def _angle(a, b):
    na = math.sqrt(sum(x * x for x in a) + 1e-10)
    nb = math.sqrt(sum(x * x for x in b) + 1e-10)
    d = sum(x / na * y / nb for x, y in zip(a, b))
    return math.degrees(math.acos(max(-1.0, min(1.0, d))))


def slow_multi_accdoa(out, C, with_distance, thr=0.5, unify=15.0):
    """The rule of docs/metrics.md ("Decoders"), one frame and class at a time."""
    V = 4 if with_distance else 3
    rows = []
    for t in range(out.shape[0]):
        for c in range(C):
            tr = []
            for k in range(3):
                base = k * V * C
                v = [out[t, base + a * C + c] for a in range(V)]
                tr.append(v)
            act = [math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2) > thr for v in tr]
            sim = [act[a] and act[b] and _angle(tr[a][:3], tr[b][:3]) < unify
                   for a, b in ((0, 1), (1, 2), (2, 0))]
            n = sum(sim)
            if n == 0:
                rows += [(t, c, tr[k]) for k in range(3) if act[k]]
            elif n == 1:
                a, b = ((0, 1), (1, 2), (2, 0))[sim.index(True)]
                odd = 3 - a - b
                if act[odd]:
                    rows.append((t, c, tr[odd]))
                rows.append((t, c, [(x + y) / 2 for x, y in zip(tr[a], tr[b])]))
            else:
                rows.append((t, c, [(x + y + z) / 3 for x, y, z in zip(*tr)]))
    return rows


def _random_output(rng, T, C, V):
    out = rng.normal(0, 0.45, (T, 3 * V * C))
    # force similar tracks and exact-threshold edge cases to appear often
    for t in range(T):
        c = rng.integers(0, C)
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        for k in rng.choice(3, size=rng.integers(2, 4), replace=False):
            jitter = rng.normal(0, 0.1, 3)
            for a in range(3):
                out[t, k * V * C + a * C + c] = d[a] * 0.9 + jitter[a]
    return out


@pytest.mark.parametrize("with_distance", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_multi_accdoa_matches_slow_reference(seed, with_distance):
    rng = np.random.default_rng(seed)
    C, T = 5, 40
    V = 4 if with_distance else 3
    out = _random_output(rng, T, C, V)
    table = multi_accdoa_decode(out[None], C, with_distance=with_distance)[0]
    want = slow_multi_accdoa(out, C, with_distance)
    assert len(table) == len(want) > 0
    for k, (t, c, v) in enumerate(want):
        assert (table.frame[k], table.cls[k]) == (t, c)
        np.testing.assert_allclose(table.coords[k], v[:3], atol=1e-12)
        if with_distance:
            assert table.distance[k] == pytest.approx(max(v[3], 0.0))


def test_multi_accdoa_batches_files_and_covers_all_cases():
    C = 1
    same = [0.9, 0, 0]
    near = [0.9 * math.cos(0.1), 0.9 * math.sin(0.1), 0]  # ~5.7 deg from `same`
    far = [0, 0.9, 0]

    def frame(t0, t1, t2):
        return [x for tr in (t0, t1, t2) for x in tr]  # C = 1: x, y, z per track

    out = np.array([[frame(same, far, [0, 0, 0]),  # 0 similar: two active tracks
                     frame(same, near, far),  # 1 similar: far, then the mean of 0 and 1
                     frame(same, near, near)]])  # 3 similar: one mean of all
    t = multi_accdoa_decode(np.concatenate([out, out]), C)
    assert len(t) == 2 and list(t[0].frame) == list(t[1].frame) == [0, 0, 1, 1, 2]
    np.testing.assert_allclose(t[0].coords[3], (np.array(same) + near) / 2)
    np.testing.assert_allclose(t[0].coords[2], far)


def test_trackwise_matches_slow_reference():
    rng = np.random.default_rng(0)
    F, T, K, C = 2, 30, 3, 4
    prob = rng.random((F, T, K, C))
    doa = rng.normal(size=(F, T, K, 3))
    tables = trackwise_decode(prob, doa)
    for f in range(F):
        want = []
        for t in range(T):
            for k in range(K):
                c = int(np.argmax(prob[f, t, k]))
                if prob[f, t, k, c] > 0.5:
                    want.append((t, c, k, tuple(doa[f, t, k])))
        want.sort(key=lambda r: (r[0], r[1], r[2]))
        got = [(int(a), int(b), int(c), tuple(d)) for a, b, c, d in
               zip(tables[f].frame, tables[f].cls, tables[f].track, tables[f].coords)]
        assert got == want


def slow_stereo_multi_accdoa(out, C, with_onscreen, thr=0.5, unify=15.0):
    """The 2025 baseline's rule (``get_multiaccdoa_labels`` and
    ``get_output_dict_format_multi_accdoa``), one frame and class at a time: rows
    (frame, class, azimuth deg, distance cm, onscreen)."""
    V = 4 if with_onscreen else 3
    rows = []
    for t in range(out.shape[0]):
        for c in range(C):
            x, y, d, on = [], [], [], []
            for k in range(3):
                base = k * V * C
                x.append(out[t, base + c])
                y.append(out[t, base + C + c])
                d.append(max(out[t, base + 2 * C + c], 0.0))
                on.append(int(out[t, base + 3 * C + c] > 0) if with_onscreen else 0)
            act = [math.sqrt(x[k] ** 2 + y[k] ** 2) > thr for k in range(3)]

            def similar(a, b):
                return act[a] and act[b] and _angle((x[a], y[a]), (x[b], y[b])) < unify

            def row(xs, ys, ds, o):
                return (t, c, math.degrees(math.atan2(ys, xs)), ds * 100, o)

            f01, f12, f20 = similar(0, 1), similar(1, 2), similar(2, 0)
            if f01 + f12 + f20 == 0:
                rows += [row(x[k], y[k], d[k], on[k]) for k in range(3) if act[k]]
            elif f01 + f12 + f20 == 1:
                a, b, odd = (0, 1, 2) if f01 else (1, 2, 0) if f12 else (2, 0, 1)
                if act[odd]:
                    rows.append(row(x[odd], y[odd], d[odd], on[odd]))
                rows.append(row((x[a] + x[b]) / 2, (y[a] + y[b]) / 2, (d[a] + d[b]) / 2, on[a]))
            else:
                rows.append(row(sum(x) / 3, sum(y) / 3, sum(d) / 3, on[0]))
    return rows


@pytest.mark.parametrize("with_onscreen", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_stereo_multi_accdoa_matches_slow_reference(seed, with_onscreen):
    rng = np.random.default_rng(seed)
    C, T = 5, 40
    V = 4 if with_onscreen else 3
    out = _random_output(rng, T, C, V)  # x, y (and z, here the distance) of one class agree
    out[:, 2 * C::V * C] -= 0.2  # some negative distances
    tables = stereo_multi_accdoa_decode(np.stack([out, out[::-1]]), C, with_onscreen=with_onscreen)
    for table, o in zip(tables, (out, out[::-1])):
        want = slow_stereo_multi_accdoa(o, C, with_onscreen)
        assert table.layout == "fctado" and len(table) == len(want) > 0
        got = list(zip(table.frame, table.cls, table.coords[:, 0], table.distance, table.onscreen))
        for g, w in zip(got, want):
            assert g[:2] == w[:2] and g[4] == w[4], (g, w)
            assert g[2] == pytest.approx(w[2], abs=1e-9) and g[3] == pytest.approx(w[3], abs=1e-9)
        assert not table.track.any()
    active = sum(int((np.hypot(out[:, k * V * C:k * V * C + C],
                               out[:, k * V * C + C:k * V * C + 2 * C]) > 0.5).sum())
                 for k in range(3))
    assert len(tables[0]) < active  # some tracks were unified


def test_stereo_decode_writes_csvs_the_suite_reads(tmp_path):
    from seldbench.metrics.csvio import write_dcase2025_csv
    from seldbench.registry import get_registry

    rng = np.random.default_rng(3)
    out = _random_output(rng, 50, 13, 4)
    table = stereo_multi_accdoa_decode(out, 13)[0]
    write_dcase2025_csv(tmp_path / "p.csv", table)
    back = get_registry().get_metric_suite("dcase2025").build(13).read_prediction(tmp_path / "p.csv")
    assert len(back) == len(table) and (back.onscreen == table.onscreen).all()
    np.testing.assert_allclose(back.coords, table.coords, atol=1e-4)
    write_dcase2025_csv(tmp_path / "r.csv", table, decimals=0)  # as the baseline's writer
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == "frame,class,source,azimuth,distance,onscreen"
    assert lines[1].split(",")[3] == str(round(float(table.coords[0, 0])))
