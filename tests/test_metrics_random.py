"""The vectorised suites against the per-frame loop reference (docs/metrics.md) on random input."""
import math

import numpy as np
import pytest

from seldbench.metrics import counters as K
from seldbench.metrics import reference
from seldbench.metrics.csvio import EventTable, make_table
from seldbench.metrics.simulate import random_prediction, random_reference
from seldbench.registry import get_registry


def _scorer(suite, C):
    return get_registry().get_metric_suite(suite).build(C)


def _adversarial_pair(rng, C, n_frames):
    """Small files with many same-class entries per frame on both sides and odd lengths."""
    ref = random_reference(rng, C, n_frames=n_frames, n_events=int(rng.integers(1, 12)))
    pred = random_prediction(rng, ref, C, jitter_deg=float(rng.uniform(0, 40)),
                             drop=float(rng.uniform(0, 0.6)), spurious=float(rng.uniform(0, 0.5)))
    return ref, pred


def _assert_counts_equal(a, b):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("C", [1, 3, 13])
def test_segment_2023_matches_loop_reference(seed, C):
    rng = np.random.default_rng(seed * 100 + C)
    sc = _scorer("dcase2023", C)
    for n_frames in (20, 37, 60, 95):
        ref, pred = _adversarial_pair(rng, C, n_frames)
        L = int(ref.frame.max())
        want = reference.segment_counts(ref, pred, C, math.ceil(L / 10) * 10, "FP_spatial")
        _assert_counts_equal(sc.file_counts(ref, pred), want)


@pytest.mark.parametrize("seed", range(8))
def test_segment_2021_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    C = 12
    sc = _scorer("dcase2021", C)
    ref = random_reference(rng, C, n_frames=640, with_distance=False)  # rows beyond 600 too
    pred = random_prediction(rng, ref, C, with_distance=False)
    want = reference.segment_counts(ref, pred, C, 600, "FP")
    _assert_counts_equal(sc.file_counts(ref, pred), want)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("C", [1, 3, 13])
def test_frame_2024_matches_loop_reference(seed, C):
    rng = np.random.default_rng(seed * 100 + C + 7)
    sc = _scorer("dcase2024", C)
    for n_frames in (20, 37, 95):
        ref, pred = _adversarial_pair(rng, C, n_frames)
        ref.distance = ref.distance / 100  # as the suite's reader does (cm -> m)
        want = reference.frame_counts(ref, pred, C, int(ref.frame.max()))
        _assert_counts_equal(sc.file_counts(ref, pred), want)


def test_track_identity_is_position_in_frame_list():
    # Two class-0 sources swap CSV row order between frames: parity keys tracks by position,
    # so each "track" averages one near and one far match (the official TODO).
    ref = make_table([0, 0, 1, 1], [0] * 4, [0, 1, 0, 1], [[0, 0], [90, 0], [90, 0], [0, 0]], [200] * 4)
    ref_tail = make_table([10], [0], [0], [[0, 0]], [200])
    ref = make_table(np.r_[ref.frame, ref_tail.frame], np.r_[ref.cls, 0], np.r_[ref.track, 0],
                     np.r_[ref.coords, ref_tail.coords], np.r_[ref.distance, 200])
    pred = make_table([0, 0, 1, 1], [0] * 4, [0, 1, 0, 1],
                      [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]], [2] * 4, layout="fctxyzd")
    counts = _scorer("dcase2023", 1).file_counts(ref, pred)
    assert K.get(counts, "DE_TP")[0] == 2
    assert K.get(counts, "AngE")[0] == pytest.approx(0.0, abs=1e-9)  # Hungarian per frame


@pytest.mark.parametrize("suite", ["dcase2023", "dcase2025"])
def test_jackknife_by_subtraction_equals_rescoring(tmp_path, suite):
    """The leave-one-file-out formula (as the official ``jackknife_estimation``: the interval is
    ``estimate -/+ t * std_err`` around the bias-corrected estimate) on rescored subsets."""
    from seldbench.metrics.score import score_folders
    from seldbench.metrics.simulate import write_random_set, write_random_stereo_set

    write = write_random_stereo_set if suite == "dcase2025" else write_random_set
    write(tmp_path, 5, num_classes=13, seed=3)
    full = score_folders(tmp_path / "pred", tmp_path / "ref", suite, jackknife=True)
    # rescore each leave-one-out subset the slow way and rebuild the interval
    partial = []
    for k in range(5):
        sub = tmp_path / f"sub{k}"
        for side in ("ref", "pred"):
            (sub / side).mkdir(parents=True)
            for p in sorted((tmp_path / side).iterdir()):
                if p.name != f"mix{k:03d}.csv":
                    (sub / side / p.name).write_text(p.read_text())
        partial.append(score_folders(sub / "pred", sub / "ref", suite).figures)
    from scipy import stats

    t = stats.t.ppf(0.975, 4)
    for name in get_registry().get_metric_suite(suite).figures:
        x = np.array([p[name] for p in partial])
        f = full.figures[name]
        est = f - 4 * (x.mean() - f)
        se = math.sqrt(4 * np.mean((x - x.mean()) ** 2))
        assert full.interval[name] == pytest.approx((est - t * se, est + t * se), abs=1e-9)
    assert "interval" in full.figures["classwise"][0]


@pytest.mark.parametrize("suite", ["dcase2021", "dcase2023", "dcase2024"])
def test_batched_threaded_counts_equal_per_file_counts(suite):
    """All files in one pass (and split across threads) give each file's own counters."""
    C = 12 if suite == "dcase2021" else 13
    rng = np.random.default_rng(5)
    sc = _scorer(suite, C)
    pairs = []
    for k in range(30):  # enough rows for the threaded path
        n_frames = int(rng.choice([37, 600, 640]))
        ref = random_reference(rng, C, n_frames=n_frames, with_distance=suite != "dcase2021")
        pred = random_prediction(rng, ref, C, with_distance=suite != "dcase2021")
        if suite == "dcase2024":
            ref.distance = ref.distance / 100
        pairs.append((ref, pred))
    pairs.append((pairs[0][0], EventTable.empty(layout=pairs[0][1].layout)))  # empty prediction
    one_by_one = np.stack([sc.file_counts(r, p) for r, p in pairs])
    sc.workers = 2
    assert sum(len(r) + len(p) for r, p in pairs) > 20000
    _assert_counts_equal(sc.counts(pairs), one_by_one)
