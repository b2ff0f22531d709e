"""The batch CSV reader (csvio.read_many): the same tables as the strict reader, bit for bit,
and the error of the first bad file, whichever path a file takes."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from seldbench.errors import SeldbenchError
from seldbench.metrics import csvio, suites
from seldbench.metrics.csvio import HEADER_2025, read_dcase_csv, read_many
from seldbench.metrics.score import score_folders
from seldbench.metrics.simulate import write_random_set, write_random_stereo_set

STEREO = dict(layouts={6: "fctado"}, num_classes=13, header=HEADER_2025)
FIELDS = ("frame", "cls", "track", "coords", "distance", "line", "onscreen")


def assert_same(a, b):
    assert (a.path, a.layout) == (b.path, b.layout)
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:  # bit for bit: -0.0 and 0.0 differ
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name


def strict_plain_files(monkeypatch):
    """Make the strict reader refuse files, so that only the batch path can read them."""
    def refuse(path, *a, **k):
        raise AssertionError(f"strict reader called for {path}")
    monkeypatch.setattr(csvio, "read_dcase_csv", refuse)
    monkeypatch.setattr(suites, "read_dcase_csv", refuse)


def test_plain_files_take_the_compiled_path(tmp_path, monkeypatch):
    write_random_stereo_set(tmp_path, 20, num_classes=13, seed=1)
    paths = sorted((tmp_path / "ref").iterdir())
    expected = [read_dcase_csv(p, **STEREO) for p in paths]
    strict_plain_files(monkeypatch)
    for a, b in zip(expected, read_many(paths, **STEREO)):
        assert_same(a, b)


@pytest.mark.parametrize("side,layouts", [("ref", {6: "fctaed", 5: "fctae"}),
                                          ("pred", {7: "fctxyzd"}),
                                          ("pred", {6: "fctaed", 7: "fctxyzd"})])
def test_headerless_layouts_match_the_strict_reader(tmp_path, side, layouts):
    write_random_set(tmp_path, 6, num_classes=13, seed=2)
    paths = sorted((tmp_path / side).iterdir())
    for a, b in zip([read_dcase_csv(p, layouts, 13) for p in paths], read_many(paths, layouts, 13)):
        assert_same(a, b)


NUMBERS = ["0.1", "-0", "-0.0", "1.", ".5", "-.5", "007", "123456789012345", "0.3333333333333333",
           "1234567890123456", "0." + "0" * 21 + "1", "0." + "0" * 22 + "1", "1e2", " 2", "+3",
           "-178.123456789012", "9" * 17, "0" * 300 + "12.5"]


def test_numbers_of_every_form_parse_as_float(tmp_path):
    """Up to 15 significant digits and 22 decimals the compiled pass parses; the rest the strict
    reader does; either way each value is Python's float of the field."""
    paths = []
    for k, num in enumerate(NUMBERS):
        p = tmp_path / f"{k}.csv"
        p.write_text(f"{HEADER_2025}\n3,1,0,{num},{num.strip().lstrip('-+') or 1},1\n")
        paths.append(p)
    for p, num, t in zip(paths, NUMBERS, read_many(paths, **STEREO)):
        assert t.coords[0, 0].tobytes() == np.float64(float(num)).tobytes(), num
        assert_same(read_dcase_csv(p, **STEREO), t)


ODD_FILES = {  # valid, but not in the plainest form: the strict reader reads them
    "bom": b"\xef\xbb\xbf" + HEADER_2025.encode() + b"\n1,2,0,10,100,1\n",
    "crlf": (HEADER_2025 + "\r\n1,2,0,10,100,1\r\n").encode(),
    "spaces": (HEADER_2025 + "\n1, 2,0,10 ,100,1\n").encode(),
    "header_only": HEADER_2025.encode(),
    "header_spaces": b"frame, class,source,azimuth,distance,onscreen\n1,2,0,10,100,1\n",
    "blank_lines": (HEADER_2025 + "\n\n1,2,0,10,100,1\n\n\n4,2,0,-10.5,100,0").encode(),
    "empty_body": (HEADER_2025 + "\n\n").encode(),
}


def test_odd_and_plain_files_mixed_keep_order_and_lines(tmp_path):
    paths = []
    for name, data in ODD_FILES.items():
        for suffix, body in (("", data), ("_plain", (HEADER_2025 + "\n5,3,1,-20,300,0\n").encode())):
            p = tmp_path / f"{name}{suffix}.csv"
            p.write_bytes(body)
            paths.append(p)
    tables = read_many(paths, **STEREO)
    for p, t in zip(paths, tables):
        assert_same(read_dcase_csv(p, **STEREO), t)
    assert tables[paths.index(tmp_path / "blank_lines.csv")].line.tolist() == [3, 6]


BAD = {  # each wrong in a different way; plain ones fail the vectorised checks
    "class": HEADER_2025 + "\n1,2,0,10,100,1\n2,13,0,10,100,1\n",
    "onscreen": HEADER_2025 + "\n1,2,0,10,100,2\n",
    "fields": HEADER_2025 + "\n1,2,0,10,100,1\n1,2,0,10,100\n",
    "trailing_comma": HEADER_2025 + "\n1,2,0,10,100,1,",
    "letter": HEADER_2025 + "\n1,2,0,1x0,100,1\n",
    "header": "frame,class\n1,2,0,10,100,1\n",
}


@pytest.mark.parametrize("first", sorted(BAD))
def test_the_first_bad_file_is_named(tmp_path, first):
    good = tmp_path / "a_good.csv"
    good.write_text(HEADER_2025 + "\n1,2,0,10,100,1\n")
    paths = [good]
    for name in [first] + sorted(set(BAD) - {first}):
        p = tmp_path / f"b{len(paths)}_{name}.csv"
        p.write_text(BAD[name])
        paths.append(p)
    with pytest.raises(SeldbenchError) as strict:
        read_dcase_csv(paths[1], **STEREO)
    with pytest.raises(SeldbenchError) as batch:
        read_many(paths, **STEREO)
    assert str(batch.value) == str(strict.value)
    assert str(batch.value).startswith(f"{paths[1]}:")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_named_not_waited_on(tmp_path):
    good, fifo = tmp_path / "a.csv", tmp_path / "b.csv"
    good.write_text(HEADER_2025 + "\n1,2,0,10,100,1\n")
    os.mkfifo(fifo)
    with pytest.raises(SeldbenchError, match="is a FIFO"):
        read_many([good, fifo], **STEREO)


def test_score_folders_names_the_first_bad_file_pair_by_pair(tmp_path):
    """References and predictions are read in two batches, but the error is the one reading
    them pair by pair meets first: here the prediction of 'a' before the reference of 'b'."""
    for side in ("ref", "pred"):
        (tmp_path / side).mkdir()
        for stem in "abc":
            (tmp_path / side / f"{stem}.csv").write_text(HEADER_2025 + "\n1,2,0,10,100,1\n")
    (tmp_path / "pred" / "a.csv").write_text(HEADER_2025 + "\n1,99,0,10,100,1\n")
    (tmp_path / "ref" / "b.csv").write_text(HEADER_2025 + "\n1,2,0,10,0,1\n")
    with pytest.raises(SeldbenchError) as exc:
        score_folders(tmp_path / "pred", tmp_path / "ref", "dcase2025")
    assert str(exc.value) == f"{tmp_path / 'pred' / 'a.csv'}:2: class 99 outside [0, 12]"


def test_score_folders_reads_in_batches(tmp_path, monkeypatch):
    """Scoring a folder of plain files never falls back to the one-file reader."""
    write_random_stereo_set(tmp_path, 5, num_classes=13, seed=3)
    expected = score_folders(tmp_path / "pred", tmp_path / "ref", "dcase2025").figures
    strict_plain_files(monkeypatch)
    got = score_folders(tmp_path / "pred", tmp_path / "ref", "dcase2025").figures
    assert got == expected


def test_a_scorer_without_batch_readers_is_read_file_by_file(tmp_path):
    from seldbench.metrics.score import _read_pairs
    from seldbench.registry import get_registry

    write_random_stereo_set(tmp_path, 3, num_classes=13, seed=4)
    sc = get_registry().get_metric_suite("dcase2025").build(13)

    class OneByOne:  # the plugin contract's four methods only
        read_reference, read_prediction = sc.read_reference, sc.read_prediction
        empty_prediction = sc.empty_prediction

    refs = {p.stem: p for p in sorted((tmp_path / "ref").iterdir())}
    preds = {s: tmp_path / "pred" / f"{s}.csv" for s in list(refs)[:2]}
    pairs = _read_pairs(OneByOne(), refs, preds)
    for (r1, p1), (r2, p2) in zip(pairs, _read_pairs(sc, refs, preds)):
        assert_same(r1, r2)
        assert_same(p1, p2)
    assert len(pairs[2][1]) == 0  # no prediction: an empty one


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
