"""`seldbench score`: the JSON contract and one-line errors for bad input."""
import json
import os
import warnings

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
    ("unknown suite", "unknown metric suite 'dcase2026'; did you mean"),
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
        suite = "dcase2026"
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


# ---------------------------------------------------------------- hardening (outside audit)


def _one_error(r) -> str:
    """The single ``Error:`` line of a failed run (exit 2, nothing on stdout)."""
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    assert r.stdout == "" and "Traceback" not in r.output
    return lines[0]


def _write(folder, name, data: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def _score_quietly(args):
    """Run `score` with every Python warning an error (numpy overflow noise included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return _run(["score", *args])


@pytest.mark.parametrize("pred,where", [
    (GOOD_PRED.replace("2\n", "2\x1c\n", 1), "a.csv:1: control character '\\x1c'"),
    ("0,0,0,1,0,0,2\n1,0,0,1\x0b,0,0,2\n", "a.csv:2: control character '\\x0b'"),
    ("0,0,0,1,0,0,2\x0c\n1,0,0,1,0,0,2\n", "a.csv:1: control character '\\x0c'"),
    ("0,0,0,1,0,0,2\u2028\n1,0,0,1,0,x,2\n", "a.csv:1: control character '\\u2028'"),
    ("0,0,0,1,0,0,2\x85\n", "a.csv:1: control character '\\x85'"),
    ("0,0,0,1,0,0,2\r1,0,0,1,0,0,2\n", "a.csv:1: control character '\\r'"),
    ("0,0,0,1,0,0,2\n\n\n0,0,0,1_0,0,0,2\n", "a.csv:4: field 4 '1_0' is not a number"),
    ("0,0,0,1,0,0,2\n0,0,0,\u0661,0,0,2\n", "a.csv:2: character '\u0661' (U+0661)"),
], ids=["FS", "VT", "FF", "LS", "NEL", "CR", "underscore", "arabic digit"])
def test_control_and_odd_characters_are_rejected_with_their_line(tmp_path, pred, where):
    args = _dirs(tmp_path, pred=None)
    _write(tmp_path / "pred", "a.csv", pred.encode())
    assert where in _one_error(_run(["score", *args, "--suite", "dcase2023"]))


def test_bom_and_crlf_are_read_like_plain_lines(tmp_path):
    plain = _run(["score", *_dirs(tmp_path / "p"), "--suite", "dcase2023", "--json"])
    args = _dirs(tmp_path / "b", pred=None)
    _write(tmp_path / "b" / "pred", "a.csv", b"\xef\xbb\xbf" + GOOD_PRED.replace("\n", "\r\n").encode())
    bom = _run(["score", *args, "--suite", "dcase2023", "--json"])
    assert bom.exit_code == 0, bom.output
    assert json.loads(bom.stdout) == json.loads(plain.stdout)


@pytest.mark.parametrize("pred,message", [
    ("0,1e19,0,1,0,0,2\n", "a.csv:1: class 1e19 outside [0, 12]"),
    ("1e30,0,0,1,0,0,2\n", "a.csv:1: field 1 '1e30' is too large for an index"),
    ("0,0,9.3e18,1,0,0,2\n", "a.csv:1: field 3 '9.3e18' is too large for an index"),
    ("frame,class,track,x,y,z,distance\n0,0,0,1,0,0,2\n", "a.csv:1: looks like a header row"),
    ("frame,class,track,x,y,z\n", "a.csv:1: looks like a header row"),
    ("0,0,0,1e400,0,0,2\n", "a.csv:1: field 4 is 1e400, not a finite number"),
], ids=["class", "frame", "track", "header", "header only", "overflow"])
def test_huge_values_and_headers_are_named_as_written(tmp_path, pred, message):
    assert message in _one_error(_score_quietly([*_dirs(tmp_path, pred=pred), "--suite", "dcase2023"]))


def test_huge_cartesian_and_distance_values_score_without_warnings(tmp_path):
    ref = "0,0,0,0,45,200\n10,0,0,0,45,1e300\n25,1,0,0,0,100\n"
    pred = "0,0,0,1e308,0,1e308,-1e300\n10,0,0,1e-310,0,1e-310,2\n"
    for suite in ("dcase2023", "dcase2024"):
        r = _score_quietly([*_dirs(tmp_path / suite, ref, pred), "--suite", suite, "--json"])
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        # both predictions point at elevation 45 deg, as the reference does
        assert out["classwise"][0]["LE" if suite == "dcase2023" else "DOAE"] < 0.01


def test_escapes_in_fields_and_file_names_never_reach_the_terminal(tmp_path):
    line = _one_error(_run(["score", *_dirs(tmp_path / "f", pred="0,0,0,1\x1b]0;OWNED\x07,0,0,2\n"),
                            "--suite", "dcase2023"]))
    assert "\x1b" not in line and "\\x1b" in line
    args = _dirs(tmp_path / "n")
    _write(tmp_path / "n" / "ref", "b\x1b]0;OWNED\x07\n.csv", GOOD_REF.encode())
    r = _run(["score", *args, "--suite", "dcase2023"])
    assert r.exit_code == 0 and "\x1b" not in r.stderr and "b\\x1b]0;OWNED\\x07\\n.csv" in r.stderr
    _write(tmp_path / "n" / "pred", "c\x1b[2J.csv", GOOD_PRED.encode())
    line = _one_error(_run(["score", *args, "--suite", "dcase2023"]))
    assert "no reference" in line and "c\\x1b[2J.csv" in line and "\x1b" not in line
    unknown = _run(["list", "\x1b]0;OWNED\x07"])
    assert unknown.exit_code == 2 and "\x1b" not in unknown.output


def test_binary_file_is_one_line_naming_it(tmp_path):
    args = _dirs(tmp_path, pred=None)
    _write(tmp_path / "pred", "a.csv", b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    assert "pred/a.csv:1: byte 0x89 is not UTF-8 text" in _one_error(
        _run(["score", *args, "--suite", "dcase2023"]))


@pytest.mark.parametrize("case,message", [
    ("dangling reference", "ref/b.csv: dangling symbolic link"),
    ("looping reference", "ref/b.csv: symbolic link loop"),
    ("two cases", "another reference of 'a' is"),
    ("folder prediction", "pred/a.csv: is a folder, not a prediction CSV file"),
    ("fifo prediction", "pred/a.csv: is a FIFO, not a regular prediction CSV file"),
    ("looping prediction", "pred/a.csv: symbolic link loop"),
])
def test_odd_file_system_entries_are_errors(tmp_path, case, message):
    args = _dirs(tmp_path)
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    if case == "dangling reference":
        (ref / "b.csv").symlink_to(tmp_path / "gone.csv")
    elif case == "looping reference":
        (ref / "b.csv").symlink_to(ref / "b.csv")
    elif case == "two cases":
        (ref / "a.CSV").write_text(GOOD_REF)
    else:
        (pred / "a.csv").unlink()
        if case == "folder prediction":
            (pred / "a.csv").mkdir()
        elif case == "fifo prediction":
            os.mkfifo(pred / "a.csv")  # opening it would block: it must not be opened
        else:
            (pred / "a.csv").symlink_to(pred / "a.csv")
    assert message in _one_error(_run(["score", *args, "--suite", "dcase2023"]))


def test_huge_class_count_is_refused_before_allocating(tmp_path):
    line = _one_error(_run(["score", *_dirs(tmp_path), "--suite", "dcase2023",
                            "--classes", "2000000000"]))
    assert "2000000000 classes; scoring takes 1 to 1000" in line


def test_jackknife_on_few_files_says_its_intervals_mean_little(tmp_path):
    args = _dirs(tmp_path)
    _dirs(tmp_path, pred="", stem="b")  # LR 1 on a, 0 on b: a leave-one-out spread of 1
    r = _run(["score", *args, "--suite", "dcase2023", "--jackknife"])
    assert r.exit_code == 0, r.output
    warns = [ln for ln in r.stderr.splitlines() if ln.startswith("Warning: jackknife")]
    assert len(warns) == 2 and "2 files: below 10 files" in warns[0]
    assert "LR" in warns[1] and "possible range" in warns[1]
    lr_row = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("LR"))
    assert lr_row.rstrip().endswith("]*")  # the marked interval, numbers unchanged
    out = json.loads(_run(["score", *args, "--suite", "dcase2023", "--jackknife", "--json"]).stdout)
    check = out["jackknife_check"]
    assert check["files"] == 2 and check["too_few_files"] and "LR" in check["out_of_range"]
    lo, hi = out["jackknife"]["LR"]
    assert lo < 0  # the spec's formula, unchanged: only flagged


def test_interval_checks_name_out_of_range_and_displaced_intervals():
    from seldbench.metrics.jackknife import check_intervals, interval_warnings
    from seldbench.metrics.score import ScoreResult
    from seldbench.results.tables import score_table

    figures = {"LE": 106.7, "LR": 0.909, "F": 0.5,
               "classwise": [{"class": 0, "LE": 20.0, "interval": {"LE": [-3.0, 40.0]}}]}
    interval = {"LE": (82.1, 96.8), "LR": (-0.018, 1.797), "F": (0.4, 0.6)}
    check = check_intervals(figures, interval, 12)
    assert check == {"files": 12, "too_few_files": False, "out_of_range": ["LR", "LE[0]"],
                     "excludes_estimate": ["LE"]}
    assert len(interval_warnings(check)) == 2
    table = score_table(ScoreResult("dcase2023", figures, ["a"] * 12, interval, [], {}, check))
    rows = {ln.split()[0]: ln for ln in table.splitlines()[1:4]}
    assert rows["LE"].endswith("]!") and rows["LR"].endswith("]*") and rows["F"].endswith("]")


def test_dataset_names_the_classes(tmp_path):
    from pathlib import Path

    import json as _json

    from click.testing import CliRunner

    from seldbench.cli import main

    ex = Path(__file__).resolve().parent.parent / "examples" / "scoring"
    args = ["score", "--pred", str(ex / "pred"), "--ref", str(ex / "ref"), "--suite", "dcase2023"]
    r = CliRunner().invoke(main, [*args, "--dataset", "starss23"])
    assert r.exit_code == 0, r.output
    assert "\n               knock " in r.stdout and "\n     12 " not in r.stdout
    r = CliRunner().invoke(main, [*args, "--dataset", "starss23", "--json"])
    assert _json.loads(r.stdout)["classwise"][12]["name"] == "knock"
    r = CliRunner().invoke(main, [*args, "--dataset", "tau-nigens-2021", "--classes", "13"])
    assert r.exit_code == 2 and "--classes 13: dataset 'tau-nigens-2021' has 12 classes" in r.output
