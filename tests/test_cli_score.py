"""`seldbench score`: the JSON contract and one-line errors for bad input."""
import json

import pytest
from click.testing import CliRunner

from seldbench.cli import main

GOOD_REF = "0,0,0,10,0,200\n1,0,0,10,0,200\n10,0,0,10,0,200\n"
GOOD_PRED = "0,0,0,1,0,0,2\n1,0,0,1,0,0,2\n"


def _run(args):
    return CliRunner().invoke(main, args)


def _dirs(tmp_path, ref=GOOD_REF, pred=GOOD_PRED, stem="a"):
    (tmp_path / "ref").mkdir(parents=True, exist_ok=True)
    (tmp_path / "pred").mkdir(parents=True, exist_ok=True)
    if ref is not None:
        (tmp_path / "ref" / f"{stem}.csv").write_text(ref)
    if pred is not None:
        (tmp_path / "pred" / f"{stem}.csv").write_text(pred)
    return ["--ref", str(tmp_path / "ref"), "--pred", str(tmp_path / "pred")]


@pytest.mark.parametrize("suite,keys", [
    ("dcase2023", {"ER", "F", "LE", "LR", "SELD", "classwise", "suite"}),
    ("dcase2024", {"ER", "F", "DOAE", "DistE", "RDE", "LR", "SELD", "classwise", "suite"}),
])
def test_json_contract(tmp_path, suite, keys):
    r = _run(["score", *_dirs(tmp_path), "--suite", suite, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == keys
    assert out["suite"] == suite and len(out["classwise"]) == 13
    assert 0 <= out["F"] <= 1 and 0 <= out["LR"] <= 1


def test_table_and_jackknife(tmp_path):
    args = _dirs(tmp_path)
    _dirs(tmp_path, stem="b")
    r = _run(["score", *args, "--suite", "dcase2023", "--jackknife"])
    assert r.exit_code == 0, r.output
    assert "SELD" in r.output and "[" in r.output  # interval shown


def test_missing_prediction_is_a_warning_and_counts_as_empty(tmp_path):
    args = _dirs(tmp_path)
    (tmp_path / "ref" / "b.csv").write_text(GOOD_REF)
    r = _run(["score", *args, "--suite", "dcase2023", "--json"])
    assert r.exit_code == 0
    assert "b.csv" in r.stderr and "empty prediction" in r.stderr
    assert json.loads(r.stdout)["LR"] < json.loads(_run(["score", *_dirs(tmp_path / "x"), "--suite",
                                                          "dcase2023", "--json"]).stdout)["LR"]


BAD = [
    ("garbage", GOOD_REF, "hello world\n", "a.csv:1: 1 fields, expected 7"),
    ("wrong column count", GOOD_REF, "0,0,0,1,0,0\n", "a.csv:1: 6 fields, expected 7"),
    ("mixed column count", GOOD_REF, "0,0,0,1,0,0,2\n1,0,0,1,0,0\n", "a.csv:2: 6 fields"),
    ("nan", GOOD_REF, "0,0,0,nan,0,0,2\n", "a.csv:1: field 4 is nan"),
    ("not a number", GOOD_REF, "0,0,0,1,x,0,2\n", "a.csv:1: field 5 'x' is not a number"),
    ("negative frame", GOOD_REF, "-1,0,0,1,0,0,2\n", "a.csv:1: negative frame -1"),
    ("float frame", GOOD_REF, "1.5,0,0,1,0,0,2\n", "a.csv:1: field 1 '1.5' is not an integer"),
    ("unknown class", GOOD_REF, "0,13,0,1,0,0,2\n", "a.csv:1: class 13 outside [0, 12]"),
    ("zero vector", GOOD_REF, "0,0,0,0,0,0,2\n", "a.csv:1: zero-length Cartesian vector"),
    ("bad elevation", "0,0,0,10,95,200\n", GOOD_PRED, "a.csv:1: elevation 95 outside [-90, 90]"),
    ("inf in reference", "0,0,0,inf,0,200\n", GOOD_PRED, "a.csv:1: field 4 is inf"),
    ("empty reference", "", GOOD_PRED, "reference has no events"),
]


@pytest.mark.parametrize("name,ref,pred,message", BAD, ids=[b[0] for b in BAD])
def test_bad_csv_is_one_line_error(tmp_path, name, ref, pred, message):
    r = _run(["score", *_dirs(tmp_path, ref, pred), "--suite", "dcase2023", "--json"])
    assert r.exit_code != 0
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.output


@pytest.mark.parametrize("case,message", [
    ("empty folder", "no reference CSV files"),
    ("missing folder", "reference folder does not exist"),
    ("unknown suite", "unknown metric suite 'dcase2025'; did you mean"),
    ("orphan prediction", "no reference 'z.csv'"),
])
def test_bad_folders(tmp_path, case, message):
    args = _dirs(tmp_path)
    suite = "dcase2023"
    if case == "empty folder":
        (tmp_path / "ref" / "a.csv").unlink()
    elif case == "missing folder":
        args[1] = str(tmp_path / "nope")
    elif case == "unknown suite":
        suite = "dcase2025"
    else:
        (tmp_path / "pred" / "z.csv").write_text(GOOD_PRED)
    r = _run(["score", *args, "--suite", suite])
    assert r.exit_code != 0
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr


def test_empty_prediction_file_is_valid(tmp_path):
    r = _run(["score", *_dirs(tmp_path, pred=""), "--suite", "dcase2023", "--json"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["F"] == 0.0


def test_2021_suite_reads_its_own_schema(tmp_path):
    ref = "0,0,0,10,0\n5,1,1,-20,10\n"
    pred = "0,0,0,1,0,0\n"
    r = _run(["score", *_dirs(tmp_path, ref, pred), "--suite", "dcase2021", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert len(out["classwise"]) == 12 and out["suite"] == "dcase2021"
    bad = _run(["score", *_dirs(tmp_path / "b", GOOD_REF, pred), "--suite", "dcase2021"])
    assert bad.exit_code != 0 and "6 fields, expected 5" in bad.stderr
