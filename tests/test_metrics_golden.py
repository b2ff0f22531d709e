"""The golden fixtures F1-F10 (docs/metrics.md), with values from the official scorers."""
import math
from pathlib import Path

import pytest

from seldbench.metrics.score import score_folders

GOLDEN = Path(__file__).parent / "data" / "golden"
NAN = float("nan")
CLASSES = {"F5": 2, "F8": 3}
# case: (2023 segment: ER, F, LE, LR, SELD), (2024 frame: ER, F, DOAE, DistE, RDE, LR, SELD)
EXPECTED = {
    "F1": ((0, 1, 0, 1, 0), (0, 1, 0.0008, 0, 0, 1, 0)),
    "F2": ((1, 0, 30, 1, 0.5417), (1, 0, 30, 0, 0, 1, 0.3889)),
    "F3": ((0, 1, 10, 1, 0.0139), (0, 1, 10, 0, 0, 1, 0.0185)),
    "F4": ((0, 1, 0, 1, 0), (0.5, 0.6667, 0.0008, 0, 0, 0.5, 0.1111)),
    "F5": ((1, 0, 180, 0, 1), (1, 0, NAN, NAN, NAN, 0, 1)),
    "F6": ((0.5, 0.6667, 0, 0.5, 0.3333), (0.5, 0.6667, 0.0008, 0, 0, 0.5, 0.1111)),
    "F7": ((1, 0, 180, 0, 1), (2.0, 0, NAN, NAN, NAN, 0, 1)),
    "F8": ((0, 0.3333, 120, 0.3333, 0.5), (0, 0.3333, 0.0008, 0, 0, 0.3333, 0.6667)),
    "F9": ((0, 1, 0, 1, 0), (1, 0, 0.0008, 3.0, 1.5, 1, 0.8333)),
    "F10": ((1, 0.6667, 0, 1, 0.3333), (1, 0.6667, 0.0008, 0, 0, 1, 0.1111)),
}


def _check(result, names, expected):
    for name, want in zip(names, expected):
        got = result.figures[name]
        if math.isnan(want):
            assert math.isnan(got), (name, got)
        else:
            assert round(got, 4) == pytest.approx(want, abs=1e-12), (name, got, want)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_golden_dcase2023(case):
    d = GOLDEN / case
    for suite in ("dcase2022", "dcase2023"):  # identical rules
        r = score_folders(d / "pred", d / "ref", suite, CLASSES.get(case, 1))
        _check(r, ("ER", "F", "LE", "LR", "SELD"), EXPECTED[case][0])


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_golden_dcase2024(case):
    d = GOLDEN / case
    r = score_folders(d / "pred", d / "ref", "dcase2024", CLASSES.get(case, 1))
    _check(r, ("ER", "F", "DOAE", "DistE", "RDE", "LR", "SELD"), EXPECTED[case][1])


def test_absent_class_penalty_is_per_class():
    r = score_folders(GOLDEN / "F8" / "pred", GOLDEN / "F8" / "ref", "dcase2023", 3)
    cw = r.figures["classwise"]
    assert [round(c["F"], 4) for c in cw] == [1.0, 0.0, 0.0]
    assert [c["LE"] for c in cw][1:] == [180.0, 180.0]


def test_no_last_frame_drop_scores_the_extra_reference_frame():
    # F1's reference has an extra frame-10 row that parity mode never scores; the fix scores it
    # as a miss because the prediction stops at frame 9.
    d = GOLDEN / "F1"
    parity = score_folders(d / "pred", d / "ref", "dcase2024", 1)
    fixed = score_folders(d / "pred", d / "ref", "dcase2024", 1, no_last_frame_drop=True)
    assert parity.figures["LR"] == pytest.approx(1.0)
    assert fixed.figures["LR"] == pytest.approx(10 / 11)
    assert fixed.options == {"no_last_frame_drop": True}
