"""The DCASE 2025 stereo suite (`dcase2025`): golden fixtures, the compiled path against the loop
reference on random adversarial input, strict input, the CLI and the jackknife.

Golden values (``EXPECTED``) come from the official scorer, not from seldbench: the fixture
files under ``tests/data/golden2025/<case>/{ref,pred}`` were scored by
``ComputeSELDResults(params, ref_files_folder=...).get_SELD_Results(pred_dir)`` of
partha2409/DCASE2025_seld_baseline (``metrics.py``, ``utils.py``, ``parameters.py`` at commit
42a48b6; ``params`` with ``nb_classes`` = the case's class count, ``average='macro'``,
``modality='audio_visual'``), once with ``lad_req_onscreen=False`` (-> ``F``) and once with
``True`` (-> ``F_onscreen``), the reference folder given as the one split folder the class
expects, ``cv2`` and ``torch.utils.tensorboard`` stubbed (imported by ``utils.py`` for feature
extraction only). Its DistE (cm) is divided by 100 here. The official code is not shipped.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from seldbench.cli import main
from seldbench.errors import SeldbenchError
from seldbench.metrics import counters as K
from seldbench.metrics import reference
from seldbench.metrics.csvio import HEADER_2025, make_table
from seldbench.metrics.score import score_folders
from seldbench.metrics.simulate import random_stereo_pair, write_random_stereo_set
from seldbench.registry import get_registry

GOLDEN = Path(__file__).parent / "data" / "golden2025"
NAN = float("nan")
FIGURES = ("F", "F_onscreen", "DOAE", "DistE", "RDE", "OnscreenAcc")
# case: (classes, (F, F_onscreen, DOAE, DistE m, RDE, OnscreenAcc)) as the official scorer gives
EXPECTED = {
    # front-back folding: 150 vs 30, -170 vs -10, 180 vs 0 are all 0 degrees apart
    "G1": (3, (1.0, 1.0, 0.0, 0.0, 0.0, 1.0)),
    # fails only on distance (relative error 1.5); relative 1.0 and exactly 20 degrees pass
    "G2": (2, (0.75, 0.75, 10.0, 0.625, 0.625, 1.0)),
    # fails only on the onscreen flag: counted in F_onscreen, not in F
    "G3": (2, (1.0, 0.5, 3.0, 0.1, 0.039999999999999994, 0.5)),
    # two same-class sources, one extra prediction; class 1 absent everywhere
    "G4": (2, (0.46511627906976744, 0.46511627906976744, 2.5, 0.15, 0.058333333333333334, 1.0)),
    # classes absent everywhere: F 0 for them, their errors NaN and left out of the means
    "G5": (3, (0.3333333333333333, 0.3333333333333333, 7.0, 0.3, 0.09999999999999999, 1.0)),
    # source ids >= 10, and 12 same-class entries in one frame (10 kept, later ones overwrite)
    "G6": (2, (0.5833333333333334, 0.5833333333333334, 16.75, 0.125, 0.05972222222222223, 0.75)),
    # a header-only prediction; prediction frames at and beyond the last reference frame
    "G7": (2, (0.5, 0.5, 5.0, 0.1, 0.0833333333333333, 1.0)),
}


def _close(got, want, tol=1e-9):
    return (math.isnan(got) and math.isnan(want)) or abs(got - want) <= tol


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_golden_values_are_the_official_ones(case):
    classes, want = EXPECTED[case]
    r = score_folders(GOLDEN / case / "pred", GOLDEN / case / "ref", "dcase2025", classes)
    for name, value in zip(FIGURES, want):
        assert _close(r.figures[name], value), (name, r.figures[name], value)


def test_golden_classwise():
    r = score_folders(GOLDEN / "G5" / "pred", GOLDEN / "G5" / "ref", "dcase2025", 3)
    cw = r.figures["classwise"]
    assert [c["F"] for c in cw] == [1.0, 0.0, 0.0]
    assert all(math.isnan(c[k]) for c in cw[1:] for k in ("DOAE", "DistE", "RDE", "OnscreenAcc"))
    r = score_folders(GOLDEN / "G3" / "pred", GOLDEN / "G3" / "ref", "dcase2025", 2)
    assert [(c["F"], c["F_onscreen"], c["OnscreenAcc"]) for c in r.figures["classwise"]] == \
        [(1.0, 0.0, 0.0), (1.0, 1.0, 1.0)]
    r = score_folders(GOLDEN / "G6" / "pred", GOLDEN / "G6" / "ref", "dcase2025", 2)
    assert [round(c["DOAE"], 9) for c in r.figures["classwise"]] == [1.0, 32.5]  # official


# ------------------------------------------------------------ compiled path vs loop reference


def _adversarial(rng, C, n_frames):
    """A stereo pair with exact ties (azimuths on a 30-degree grid, so front and back fold
    onto each other), crowded (frame, class) groups, source ids >= 10 and overfull groups."""
    ref, pred = random_stereo_pair(rng, C, n_frames, n_events=int(rng.integers(1, 14)),
                                   jitter_deg=float(rng.uniform(0, 40)),
                                   drop=float(rng.uniform(0, 0.6)),
                                   spurious=float(rng.uniform(0, 0.8)))
    if rng.random() < 0.5:
        for t in (ref, pred):
            t.coords = np.round(t.coords / 30) * 30
    if rng.random() < 0.3 and len(ref):  # an overfull group in a scored frame, both sides
        f = int(rng.integers(0, max(1, int(ref.frame.max()))))
        extra = [make_table(np.full(n, f), np.zeros(n), rng.integers(0, 14, n),
                            rng.integers(-180, 180, (n, 1)), rng.integers(50, 500, n),
                            onscreen=rng.integers(0, 2, n)) for n in rng.integers(9, 14, 2)]
        ref, pred = (_concat(t, e) for t, e in zip((ref, pred), extra))
    return ref, pred


def _concat(a, b):
    cat = {k: np.concatenate([getattr(a, k), getattr(b, k)])
           for k in ("frame", "cls", "track", "coords", "distance", "onscreen")}
    order = np.argsort(cat["frame"], kind="stable")
    return make_table(*(cat[k][order] for k in ("frame", "cls", "track", "coords", "distance")),
                      onscreen=cat["onscreen"][order])


def _without_sdi(counts):
    keep = [k for k, n in enumerate(K.COUNTERS) if n not in ("S", "D", "I")]  # no ER in 2025
    return counts[..., keep, :]


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("C", [1, 3, 13])
def test_compiled_counts_equal_the_loop_reference(seed, C):
    rng = np.random.default_rng(seed * 1000 + C)
    sc = get_registry().get_metric_suite("dcase2025").build(C)
    for n_frames in (8, 23, 50):
        ref, pred = _adversarial(rng, C, n_frames)
        want = reference.stereo_frame_counts(ref, pred, C, sc.eval_frames(ref))
        np.testing.assert_allclose(_without_sdi(sc.file_counts(ref, pred)), _without_sdi(want),
                                   rtol=0, atol=1e-9)


def test_batched_threaded_counts_equal_per_file_counts():
    rng = np.random.default_rng(11)
    sc = get_registry().get_metric_suite("dcase2025").build(13)
    pairs = [_adversarial(rng, 13, 600) for _ in range(36)]
    pairs.append((pairs[0][0], sc.empty_prediction()))
    one_by_one = np.stack([sc.file_counts(r, p) for r, p in pairs])
    sc.workers = 2
    assert sum(len(r) + len(p) for r, p in pairs) > 20000  # the threaded path
    np.testing.assert_allclose(sc.counts(pairs), one_by_one, rtol=0, atol=1e-9)


def test_micro_average_is_the_pooled_ratio(tmp_path):
    write_random_stereo_set(tmp_path, 4, seed=2)
    macro = score_folders(tmp_path / "pred", tmp_path / "ref", "dcase2025")
    micro = score_folders(tmp_path / "pred", tmp_path / "ref", "dcase2025", average="micro")
    sc = get_registry().get_metric_suite("dcase2025").build(13)
    total = sum(sc.file_counts(sc.read_reference(p), sc.read_prediction(tmp_path / "pred" / p.name))
                for p in sorted((tmp_path / "ref").iterdir()))
    g = {n: K.get(total, n).sum() for n in K.COUNTERS}
    eps = np.finfo(float).eps
    assert micro.figures["F"] == pytest.approx(
        g["TP"] / (eps + g["TP"] + g["FP_spatial"] + 0.5 * (g["FP"] + g["FN"])), abs=1e-12)
    assert micro.figures["DOAE"] == pytest.approx(g["AngE"] / g["DE_TP"], abs=1e-9)
    assert micro.figures["DistE"] == pytest.approx(g["DistE"] / g["DE_TP"] / 100, abs=1e-9)
    assert micro.options == {"average": "micro"} and macro.figures["F"] != micro.figures["F"]


# ------------------------------------------------------------------------------ strict input


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("body,reference_side,message", [
    ("", False, ":1: no header line; a file of this suite starts with 'frame,class,source"),
    ("0,1,0,30,200,1\n", False, ":1: header '0,1,0,30,200,1' is not 'frame,class,source,"),
    ("frame,class,track,azimuth,distance,onscreen\n", False, ":1: header 'frame,class,track,"),
    (HEADER_2025 + "\n0,1,0,30,200,2\n", False, ":2: onscreen 2 is not 0 or 1"),
    (HEADER_2025 + "\n0,1,0.5,30,200,1\n", False, ":2: field 3 '0.5' is not an integer"),
    (HEADER_2025 + "\n0,1,0,inf,200,1\n", False, ":2: field 4 is inf, not a finite number"),
    (HEADER_2025 + "\n0,1,0,30,200\n", False, ":2: 5 fields, expected 6"),
    (HEADER_2025 + "\n0,13,0,30,200,1\n", False, ":2: class 13 outside [0, 12]"),
    (HEADER_2025 + "\n0,1,0,30,0,1\n", True, ":2: distance 0 is not above 0"),
    (HEADER_2025 + "\n0,1,-1,30,20,1\n", True, ":2: negative track/source index -1"),
    (HEADER_2025 + "\n" + HEADER_2025 + "\n", False, ":2: field 1 'frame' is not a number"),
])
def test_bad_input_is_one_line_with_file_and_line(tmp_path, body, reference_side, message):
    sc = get_registry().get_metric_suite("dcase2025").build(13)
    path = _write(tmp_path / "x.csv", body)
    read = sc.read_reference if reference_side else sc.read_prediction
    with pytest.raises(SeldbenchError) as err:
        read(path)
    assert str(err.value).startswith(str(path) + message) and "\n" not in str(err.value)


def test_header_only_prediction_is_empty_and_spaces_and_crlf_are_fine(tmp_path):
    sc = get_registry().get_metric_suite("dcase2025").build(13)
    assert len(sc.read_prediction(_write(tmp_path / "a.csv", HEADER_2025 + "\n"))) == 0
    t = sc.read_reference(_write(tmp_path / "b.csv", " frame, class,source ,azimuth,distance,"
                                 "onscreen\r\n3,2,11,-150.5,120,0\r\n"))
    assert (t.frame[0], t.cls[0], t.track[0], t.coords[0, 0], t.distance[0], t.onscreen[0]) == \
        (3, 2, 11, -150.5, 120.0, 0)
    assert t.line[0] == 2


def test_cli_json_keys_exit_codes_and_average(tmp_path):
    write_random_stereo_set(tmp_path, 3, seed=1)
    runner = CliRunner()
    args = ["score", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref"),
            "--suite", "dcase2025", "--json"]
    r = runner.invoke(main, args + ["--jackknife"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(FIGURES) <= set(out) and out["suite"] == "dcase2025" and len(out["classwise"]) == 13
    assert set(out["jackknife"]) == set(FIGURES)
    micro = json.loads(runner.invoke(main, args + ["--average", "micro"]).stdout)
    assert micro["options"] == {"average": "micro"}
    table = runner.invoke(main, args[:-1] + ["--average", "micro"]).stdout
    assert "options: average=micro" in table and "\n  F_onscreen  " in table
    assert "%" in table.split("F_onscreen", 1)[1].splitlines()[0]
    _write(tmp_path / "pred" / "mix000.csv", HEADER_2025 + "\n1,2,3,4,5,6\n")
    r = runner.invoke(main, args)
    assert r.exit_code == 2 and "mix000.csv:2: onscreen 6 is not 0 or 1" in r.output
    r = runner.invoke(main, args[:-1] + ["--suite", "dcase2024", "--average", "micro"])
    assert r.exit_code == 2 and "unknown option 'average'" in r.output


def test_reference_without_events_scores_no_frame(tmp_path):
    """Official: a reference with no events has no scored frame, so its prediction counts for
    nothing (not as false positives)."""
    sc = get_registry().get_metric_suite("dcase2025").build(13)
    ref = sc.read_reference(_write(tmp_path / "r.csv", HEADER_2025 + "\n"))
    pred = sc.read_prediction(_write(tmp_path / "p.csv", HEADER_2025 + "\n0,1,0,30,200,1\n"))
    assert sc.eval_frames(ref) == 0 and not sc.file_counts(ref, pred).any()
    fixed = get_registry().get_metric_suite("dcase2025").build(13, no_last_frame_drop=True)
    assert fixed.eval_frames(ref) == 0
    assert fixed.eval_frames(sc.read_reference(_write(tmp_path / "s.csv", HEADER_2025 +
                                                      "\n4,1,0,30,200,1\n"))) == 5
