"""A few hundred malformed DCASE CSVs per run (fixed seed): no tracebacks, no warnings, garbage
always rejected, valid odd input always scored. `python tests/fuzz_score.py` runs thousands."""
import pytest

from fuzz_score import PROBLEMS, fuzz


@pytest.mark.parametrize("suite", ["dcase2021", "dcase2022", "dcase2023", "dcase2024", "dcase2025"])
def test_fuzzed_csvs_are_scored_or_rejected_cleanly(tmp_path, suite):
    res = fuzz(suite, cases=75, seed=1234, folder=tmp_path)
    found = {p: res["counts"][p] for p in PROBLEMS if res["counts"][p]}
    assert not found, (found, {p: res["examples"][p][:2] for p in found})
    assert res["counts"]["garbage"] > 30 and res["counts"]["valid"] > 5
