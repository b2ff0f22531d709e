"""Run records: provenance, device info, data hashes, atomic writes, strict loading."""
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import socket
from pathlib import Path

import pytest
from run_records import make_record, result

import seldbench
from seldbench.errors import SeldbenchError
from seldbench.results import records as rr
from seldbench.results.records import (device_info, file_sha256, git_info, hash_files,
                                       load_records, provenance, validate_record, write_record)

CHECKOUT = Path(seldbench.__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- provenance


def test_provenance_versions_and_no_hostname():
    prov = provenance()
    assert set(prov) == {"packages", "python", "platform", "git"}
    pkgs = prov["packages"]
    assert pkgs["numpy"] == __import__("numpy").__version__
    assert pkgs["seldbench"]
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    # torch is not imported here (seconds); its distribution metadata gives the version
    assert pkgs["torch"] == importlib.metadata.version("torch")
    assert re.match(r"\d+\.\d+", pkgs["torch"])
    assert all(isinstance(v, str) for v in pkgs.values())
    assert set(pkgs) <= set(rr.PACKAGES)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", prov["python"])
    text = json.dumps(prov)
    assert "hostname" not in text
    host = socket.gethostname()
    if len(host) >= 6:
        assert host not in text


@pytest.mark.skipif(not (CHECKOUT / ".git").exists(), reason="seldbench is not a git checkout")
def test_provenance_git_revision_in_checkout():
    git = provenance()["git"]
    assert git is not None
    assert re.fullmatch(r"[0-9a-f]{40}", git["revision"])
    assert isinstance(git["dirty"], bool)


def test_git_info_none_outside_a_checkout(tmp_path):
    assert git_info(tmp_path) is None


def test_device_info_cpu():
    info = device_info("cpu")
    assert info["type"] == "cpu"
    assert isinstance(info["name"], str) and info["name"]
    assert isinstance(info["count"], int) and info["count"] >= 1


# ----------------------------------------------------------------------------- hashes


def test_file_sha256(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"x" * 3_000_000)
    assert file_sha256(p) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    with pytest.raises(SeldbenchError, match=r"missing\.bin: cannot read"):
        file_sha256(tmp_path / "missing.bin")


def _tree(root: Path) -> list[Path]:
    (root / "metadata").mkdir(parents=True)
    (root / "foa").mkdir()
    csv = root / "metadata" / "clip1.csv"
    csv.write_text("0,1,0,10,20,150\n")
    wav = root / "foa" / "clip1.wav"
    wav.write_bytes(bytes(range(256)) * 8192)  # 2 MiB: sampled
    return [csv, wav]


def test_hash_files_is_location_and_order_independent(tmp_path):
    files = _tree(tmp_path / "one")
    h = hash_files(files)
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert hash_files(reversed(files)) == h
    assert hash_files([*files, None, files[0]]) == h  # None and duplicates skipped
    copy = Path(shutil.copytree(tmp_path / "one", tmp_path / "elsewhere" / "two"))
    os.utime(copy / "foa" / "clip1.wav", (0, 0))  # mtimes do not count
    assert hash_files([copy / "metadata" / "clip1.csv", copy / "foa" / "clip1.wav"]) == h


def test_hash_files_sees_changes(tmp_path):
    csv, wav = _tree(tmp_path)
    h = hash_files([csv, wav])
    csv.write_text("0,1,0,10,20,151\n")  # same size, other content: small files hashed whole
    h_csv = hash_files([csv, wav])
    assert h_csv != h
    data = bytearray(wav.read_bytes())
    data[-1] ^= 0xFF  # the tail of a large file is sampled
    wav.write_bytes(bytes(data))
    assert hash_files([csv, wav]) != h_csv
    assert hash_files([csv]) != hash_files([csv, wav])  # a missing file changes the hash
    with pytest.raises(SeldbenchError, match="gone.wav: cannot read"):
        hash_files([csv, tmp_path / "gone.wav"])


# ----------------------------------------------------------------------------- write / load


def test_write_record_atomic_roundtrip(tmp_path):
    rec = make_record()
    rec["train"]["history"][0]["val"]["LE"] = float("nan")  # written as null
    path = write_record(tmp_path / "run", rec)
    assert path == tmp_path / "run" / "record.json"
    assert os.listdir(tmp_path / "run") == ["record.json"]  # no temporary file left
    back = load_records(tmp_path)
    assert len(back) == 1 and back[0]["run_id"] == rec["run_id"]
    assert back[0]["train"]["history"][0]["val"]["LE"] is None


def test_write_record_invalid_or_interrupted_keeps_old_file(tmp_path, monkeypatch):
    old = write_record(tmp_path, make_record(seed=1)).read_bytes()
    bad = make_record(seed=2)
    del bad["checkpoint"]
    with pytest.raises(SeldbenchError, match=r"record\.json: missing key 'checkpoint\.file'"):
        write_record(tmp_path, bad)

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(SeldbenchError, match=r"record\.json: cannot write: disk full"):
        write_record(tmp_path, make_record(seed=3))
    monkeypatch.undo()
    assert (tmp_path / "record.json").read_bytes() == old
    assert os.listdir(tmp_path) == ["record.json"]


def test_load_records_recursive_and_sorted(tmp_path):
    for i, sub in enumerate(["b/run", "a/run", "a/deeper/run"]):
        write_record(tmp_path / sub, make_record(seed=i))
    (tmp_path / "a" / "notes.json").write_text("{}")  # only record.json files are read
    recs = load_records(tmp_path)
    assert [r["seed"] for r in recs] == [2, 1, 0]  # path order: a/deeper, a/run, b/run
    assert len(load_records([tmp_path / "a", tmp_path / "a/run/record.json"])) == 2
    assert load_records(tmp_path / "a" / "deeper" / "run" / "record.json")[0]["seed"] == 2
    (tmp_path / "empty").mkdir()
    assert load_records(tmp_path / "empty") == []
    with pytest.raises(SeldbenchError, match=r"nope: no such file or folder"):
        load_records(tmp_path / "nope")


def test_load_records_invalid_json_names_file_and_line(tmp_path):
    p = tmp_path / "r1" / "record.json"
    p.parent.mkdir()
    p.write_text('{"schema": 1,\n "run_id": oops}\n')
    with pytest.raises(SeldbenchError) as exc:
        load_records(tmp_path)
    msg = str(exc.value)
    assert msg.startswith(f"{p}:2: invalid JSON") and "\n" not in msg


@pytest.mark.parametrize("mutate,problem", [
    (lambda r: r.pop("model"), "missing key 'model.name'"),
    (lambda r: r["model"].update(params="big"), "'model.params' must be a non-negative integer"),
    (lambda r: r.update(schema=2), "run record schema 2 is not supported"),
    (lambda r: r.pop("schema"), "not a run record (no 'schema' key)"),
    (lambda r: r.update(status="running"), "'status' must be 'complete'"),
    (lambda r: r.update(seed=True), "'seed' must be an integer"),
    (lambda r: r.update(created="yesterday"), "'created' must be an ISO-8601 time"),
    (lambda r: r.update(git={"revision": 3}), "'git' must be null or"),
    (lambda r: r.update(results={}), "'results' has no metric suite"),
    (lambda r: r["results"]["dcase2023"]["figures"].update(F="high"),
     "'results.dcase2023.figures.F' must be a number or null"),
    (lambda r: r["results"]["dcase2023"]["interval"].update(F=[0.1]),
     "'results.dcase2023.interval.F' must be [lo, hi]"),
    (lambda r: r["results"]["dcase2023"].pop("classwise"),
     "missing key 'results.dcase2023.classwise'"),
    (lambda r: r["train"]["history"].append({"epoch": "two"}), "'train.history[1]' must be"),
])
def test_malformed_record_names_file(tmp_path, mutate, problem):
    rec = make_record()
    mutate(rec)
    p = tmp_path / "run" / "record.json"
    p.parent.mkdir()
    p.write_text(json.dumps(rec))
    with pytest.raises(SeldbenchError) as exc:
        load_records(tmp_path)
    assert str(exc.value).startswith(f"{p}: ")
    assert problem in str(exc.value)


def test_validate_accepts_skipped_suite_null_figures_and_no_git():
    rec = make_record(git=None, results={
        "dcase2023": result({"ER": 1.0, "F": 0.0, "LE": None, "LR": 0.0, "SELD": 0.75}),
        "dcase2024": {"skipped": "the model predicts no distance"}})
    validate_record(rec, "x")
    validate_record(json.loads(json.dumps({**rec, "extra": {"future": 1}})), "x")
    with pytest.raises(SeldbenchError, match=r"^where: not a run record"):
        validate_record([1, 2], "where")


def test_data_identity_covers_splits_the_read_audio_and_video(tmp_path):
    from seldbench.results.records import data_identity
    from seldbench.specs import ClipFiles

    def clip(stem, video=True):
        files = {}
        for kind, ext in (("foa", "wav"), ("mic", "wav"), ("meta", "csv"), ("video", "mp4")):
            f = tmp_path / kind / f"{stem}.{ext}"
            f.parent.mkdir(exist_ok=True)
            if not f.exists():
                f.write_bytes(f"{kind} {stem}".encode())
            files[kind] = f
        return ClipFiles(stem, {"foa": files["foa"], "mic": files["mic"]}, files["meta"],
                         files["video"] if video else None)

    base = {"train": [clip("a"), clip("b")], "test": [clip("c")]}
    h = data_identity(base, "foa", video=True)["data_hash"]
    assert data_identity(base, "foa", video=True)["data_hash"] == h
    moved = {"train": [clip("a")], "test": [clip("b"), clip("c")]}
    assert data_identity(moved, "foa", video=True)["data_hash"] != h  # split membership
    no_video = {"train": [clip("a", False), clip("b")], "test": [clip("c")]}
    ident = data_identity(no_video, "foa", video=True)
    assert ident["data_hash"] != h and ident["clips_without_video"] == {"train": 1, "test": 0}
    # an audio-only model reads neither the video nor the other audio format
    audio = data_identity(base, "foa", video=False)["data_hash"]
    assert data_identity(no_video, "foa", video=False)["data_hash"] == audio
    (tmp_path / "mic" / "a.wav").write_bytes(b"other mic")
    assert data_identity(base, "foa", video=False)["data_hash"] == audio
    (tmp_path / "foa" / "a.wav").write_bytes(b"other foa")
    assert data_identity(base, "foa", video=False)["data_hash"] != audio


def test_data_folder_moves_a_run_of_other_data_aside(tmp_path):
    import json

    from seldbench.training.run import data_folder

    base = tmp_path / "crnn-synth-s0-abcd"
    assert data_folder(base, "1" * 64) == base  # nothing there yet
    base.mkdir()
    (base / "data.json").write_text(json.dumps({"data_hash": "1" * 64}))
    assert data_folder(base, "1" * 64) == base  # same data: resume or reuse
    logs = []
    assert data_folder(base, "2" * 64, logs.append) == base.with_name(f"{base.name}-data-22222222")
    assert "made with other data (data hash 11111111, this data 22222222)" in logs[0]
    (base / "data.json").unlink()  # a record alone (runs from before data.json) counts too
    (base / "record.json").write_text(json.dumps({"dataset": {"data_hash": "3" * 64}}))
    assert data_folder(base, "2" * 64, logs.append).name.endswith("-data-22222222")


def test_record_table_marks_intervals_that_mean_little():
    from run_records import make_record

    from seldbench.results.tables import record_table

    rec = make_record()
    res = rec["results"]["dcase2023"]
    res["interval"]["ER"] = [-0.2, 1.2]
    res["jackknife_check"] = {"files": 3, "too_few_files": True, "out_of_range": ["ER"],
                              "excludes_estimate": []}
    text = record_table(rec)
    assert "ER 0.500 [-0.200, 1.200]*," in text and "F 50.0% [45.0%, 55.0%]," in text
    assert "note: jackknife over 3 files: below 10 files" in text
    assert "reach outside the figure's possible range (* in the table" in text


def test_next_steps_name_the_run_folder_and_what_to_run():
    from run_records import make_record

    from seldbench.results.tables import next_steps

    rec = make_record()
    rec["config"].setdefault("output", {})["runs_dir"] = "runs"
    text = next_steps(rec, "my-runs")
    assert "`seldbench compare --runs my-runs`" in text
    assert f"--checkpoint my-runs/synth-mini/A/{rec['run_id']} " in text
    assert "--dataset synth`" in text
