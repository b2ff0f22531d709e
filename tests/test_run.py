"""`seldbench run` end to end on synth-mini: record, resume after a kill, concurrent runs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["train.epochs=2", "train.batch_size=4", "train.threads=1", "eval.jackknife=true"]


def _run(tmp, tag, overrides=(), **kw):
    from seldbench.training.run import run

    return run("crnn", "synth-mini", overrides=[*TINY, f"features.cache_dir={tmp / 'cache'}",
                                                *overrides],
               out=str(tmp / tag), progress=False, log=lambda m: None, **kw)


def test_run_writes_a_complete_record(synth_env):
    rec = _run(synth_env, "runs_a")
    assert rec["status"] == "complete" and rec["split"] == "test"
    assert rec["selection"]["split"] == "val" and rec["selection"]["val_is_test"] is False
    res = rec["results"]["dcase2023"]
    assert set(res["figures"]) == {"ER", "F", "LE", "LR", "SELD"}
    assert set(res["interval"]) == {"ER", "F", "LE", "LR", "SELD"}
    assert rec["results"]["dcase2024"] == {"skipped": "the model predicts no distance"}
    assert rec["model"]["params"] > 700_000 and rec["train"]["epochs_run"] == 2
    assert 0.2 < rec["train"]["peak_rss_gb"] < 64 and rec["train"]["audio_s_per_s"] > 0
    run_dir = next((synth_env / "runs_a").rglob("record.json")).parent
    for name in ("best.pt", "last.pt", "normalizer.npz", "config.json"):
        assert (run_dir / name).exists(), name
    preds = sorted((run_dir / "predictions" / "dcase2023").glob("*.csv"))
    assert len(preds) == 3  # the test split of synth-mini
    # the record's figures are exactly what `seldbench score` gives on the written CSVs
    from seldbench.metrics.score import score_folders

    refs = synth_env / "refs"
    refs.mkdir(exist_ok=True)
    root = Path(os.environ["SELDBENCH_SYNTH_MINI_ROOT"])
    for p in preds:
        (refs / p.name).write_text(next(root.glob(f"metadata_dev/*/{p.name}")).read_text())
    again = score_folders(run_dir / "predictions" / "dcase2023", refs, "dcase2023")
    for k, v in res["figures"].items():
        assert again.figures[k] == pytest.approx(v, abs=1e-12)
    # a finished run is not trained again
    assert _run(synth_env, "runs_a")["created"] == rec["created"]
    # ... unless the data differ: the same command on a tree without one test clip runs
    # in a folder of its own, and the record says which data it saw
    import shutil

    from seldbench.training.run import run

    other = synth_env / "other-data"
    if not other.exists():
        shutil.copytree(root, other)
        for f in other.glob("*_dev/*/fold4_room2_mix001.*"):
            f.unlink()
    logs = []
    rec2 = run("crnn", "synth-mini", overrides=[*TINY, f"features.cache_dir={synth_env / 'c2'}",
                                                f"dataset.root={other}"],
               out=str(synth_env / "runs_a"), progress=False, log=logs.append)
    assert rec2["config_hash"] == rec["config_hash"]
    assert rec2["dataset"]["data_hash"] != rec["dataset"]["data_hash"]
    assert rec2["run_id"] == f"{rec['run_id']}-data-{rec2['dataset']['data_hash'][:8]}"
    assert any("made with other data" in m for m in logs)
    assert rec2["dataset"]["clips"]["test"] == rec["dataset"]["clips"]["test"] - 1 == 2


class Killed(Exception):
    pass


def _kill(epoch, step):
    if epoch == 2 and step == 1:
        raise Killed


def _assert_kill_and_resume_match(tmp, tag, full, overrides=()):
    """A run killed in epoch 2 and run again ends exactly as the uninterrupted ``full``."""
    with pytest.raises(Killed):
        _run(tmp, tag, overrides, on_step=_kill)
    resumed = _run(tmp, tag, overrides)
    assert resumed["checkpoint"]["sha256"] == full["checkpoint"]["sha256"]
    assert resumed["results"] == full["results"]
    assert [e["loss"] for e in resumed["train"]["history"]] == \
        [e["loss"] for e in full["train"]["history"]]


def test_killed_run_resumes_to_the_same_result(synth_env):
    _assert_kill_and_resume_match(synth_env, "runs_killed", _run(synth_env, "runs_full"))


def test_two_runs_at_once_get_separate_folders(synth_env):
    cmd = [sys.executable, "-m", "seldbench.cli", "run", "--model", "crnn", "--dataset",
           "synth-mini", "--quiet", "--out", str(synth_env / "runs_par"),
           *[a for s in [*TINY, f"features.cache_dir={synth_env / 'cache'}"] for a in ("--set", s)]]
    _run(synth_env, "runs_warm")  # features cached first, so both start at the same point
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    records = sorted((synth_env / "runs_par").rglob("record.json"))
    assert len(records) == 2 and records[0].parent != records[1].parent
    assert all(json.loads(r.read_text())["status"] == "complete" for r in records)


def test_bad_names_and_keys_fail_before_any_work(synth_env):
    from click.testing import CliRunner

    from seldbench.cli import main

    r = CliRunner().invoke(main, ["run", "--model", "crn", "--dataset", "synth-mini"])
    assert r.exit_code == 2 and "unknown model 'crn'; did you mean 'crnn'" in r.stderr
    r = CliRunner().invoke(main, ["run", "--model", "crnn", "--dataset", "synth-mini",
                                  "--set", "train.lrate=1"])
    assert r.exit_code == 2 and "unknown key 'train.lrate'" in r.stderr


def test_example_plugin_installs_and_trains_one_epoch(synth_env, tmp_path):
    """examples/tiny_seld_plugin, pip-installed like any third-party package, trains."""
    example = Path(__file__).resolve().parent.parent / "examples" / "tiny_seld_plugin"
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "--target", str(target), str(example)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-800:]
    assert (target / "tiny_seld" / "__init__.py").exists()
    env = {**os.environ, "PYTHONPATH": str(target)}
    listed = subprocess.run([sys.executable, "-m", "seldbench.cli", "list", "models"],
                            env=env, capture_output=True, text=True)
    assert "tiny-seld 0.1.0 [tiny_seld]" in listed.stdout, listed.stderr
    out = subprocess.run([sys.executable, "-m", "seldbench.cli", "run", "--model", "tiny-seld",
                          "--dataset", "synth-mini", "--epochs", "1", "--quiet",
                          "--out", str(tmp_path / "runs"), "--set", "train.threads=1",
                          "--set", "train.batch_size=4",
                          "--set", f"features.cache_dir={synth_env / 'cache'}"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-800:]
    assert "tiny-seld@0.1.0 on synth-mini" in out.stdout and "dcase2023: ER" in out.stdout
    rec = json.loads(next((tmp_path / "runs").rglob("record.json")).read_text())
    assert rec["model"]["plugin"] == "tiny_seld" and rec["train"]["epochs_run"] == 1


def test_torchrun_two_processes_gloo(synth_env, tmp_path):
    """Data-parallel training with torch.distributed (gloo on CPU, 2 processes)."""
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m",
                          "seldbench.cli", "run", "--model", "crnn", "--dataset", "synth-mini",
                          "--quiet", "--out", str(tmp_path / "runs"),
                          *[a for s in [*TINY, f"features.cache_dir={synth_env / 'cache'}"]
                            for a in ("--set", s)]],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-1500:]
    records = list((tmp_path / "runs").rglob("record.json"))
    assert len(records) == 1  # one run, written by rank 0 only
    rec = json.loads(records[0].read_text())
    assert rec["device"]["processes"] == 2 and rec["train"]["epochs_run"] == 2
    assert out.stdout.count("crnn@1.0 on synth-mini") == 1


def test_provenance_is_taken_before_training(synth_env, monkeypatch):
    """A checkout that moves during a long run must not misdate its record."""
    import seldbench.results.records as records

    events, real = [], records.provenance
    monkeypatch.setattr(records, "provenance", lambda: events.append("provenance") or real())
    _run(synth_env, "runs_prov", on_step=lambda epoch, step: events.append("step"))
    assert events[0] == "provenance" and events.count("provenance") == 1 and "step" in events


def test_run_folder_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    from seldbench.training.run import claim_run_dir
    base = tmp_path / "r"
    first = claim_run_dir(base)
    second = claim_run_dir(base)  # a second holder, even in this process, must go elsewhere
    assert (first.path, second.path) == (base, tmp_path / "r-2")
    first.release()
    assert claim_run_dir(base).path == base
    # a process killed while holding a folder leaves it free at once: that run resumes there
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys,time; from pathlib import Path;"
                               "from seldbench.training.run import claim_run_dir;"
                               f"claim_run_dir(Path({str(tmp_path / 'k')!r})); print('held', flush=True);"
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert claim_run_dir(tmp_path / "k").path == tmp_path / "k-2"
    holder.kill()
    holder.wait()
    assert claim_run_dir(tmp_path / "k").path == tmp_path / "k"


def test_cache_command_fills_the_cache_a_run_reads(synth_env, tmp_path):
    """`seldbench cache` computes the features a run of the same options reads (one file per
    split); a wrong key is one line naming it."""
    from click.testing import CliRunner

    from seldbench.cli import main

    cache = tmp_path / "cache"
    args = ["cache", "--model", "crnn", "--dataset", "synth-mini", "--set",
            f"features.cache_dir={cache}"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    files = sorted(p.relative_to(cache).parts[:2] for p in cache.rglob("*.h5"))
    assert files == [("synth-mini", "test"), ("synth-mini", "train"), ("synth-mini", "val")]
    bad = CliRunner().invoke(main, [*args, "--set", "features.nope=1"])
    assert bad.exit_code != 0 and "features.nope" in bad.output
    assert "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1


def test_rerun_of_a_record_reproduces_its_config_and_figures(synth_env, tmp_path):
    """`seldbench rerun RECORD` trains the record's model, dataset, seed and config again:
    on the same code and machine, the same config hash and the same test figures."""
    from click.testing import CliRunner

    from seldbench.cli import main

    rec = _run(synth_env, "runs_a")
    run_dir = next((synth_env / "runs_a").rglob(f"{rec['run_id']}/record.json")).parent
    out = CliRunner().invoke(main, ["rerun", str(run_dir), "--out", str(tmp_path / "again"),
                                    "--quiet", "--set", f"features.cache_dir={tmp_path / 'c'}"])
    assert out.exit_code == 0, out.output
    (again,) = [json.loads(p.read_text()) for p in (tmp_path / "again").rglob("record.json")]
    assert again["config_hash"] == rec["config_hash"] and again["seed"] == rec["seed"]
    assert again["config"]["train"] == rec["config"]["train"]
    assert again["results"]["dcase2023"]["figures"] == rec["results"]["dcase2023"]["figures"]
    assert f"config {rec['config_hash'][:8]}: the record's" in out.output
    assert f"data {rec['dataset']['data_hash'][:8]}: the record's" in out.output
    import re  # figures as the result tables show them: F in %, LE in degrees

    assert re.search(r"F \d+\.\d% -> \d+\.\d%, LE \d+\.\d° -> \d+\.\d°", out.output), out.output
    # a record whose config holds a key today's config does not know: one line naming both
    bad = json.loads((run_dir / "record.json").read_text())
    bad["config"]["train"]["warmup_epochs"] = 3
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "record.json").write_text(json.dumps(bad))
    out = CliRunner().invoke(main, ["rerun", str(tmp_path / "bad"), "--out", str(tmp_path / "x")])
    assert out.exit_code != 0 and "record.json: config" in out.output
    assert "train.warmup_epochs" in out.output and "Traceback" not in out.output


def test_run_takes_the_dataset_folder_from_root(tmp_path):
    from click.testing import CliRunner

    from seldbench.cli import main

    missing = tmp_path / "no-such-starss"
    res = CliRunner().invoke(main, ["run", "--model", "crnn", "--dataset", "starss23",
                                    "--root", str(missing), "--out", str(tmp_path / "runs")])
    assert res.exit_code == 2
    assert f"{missing}: dataset folder of 'starss23' not found (from --root" in res.output


AUGMENT = "train.augment=[{name: channel_swap}, {name: spec_mask, time_masks: 1}]"


def test_augmented_run_resumes_to_the_same_result_and_augments_only_training_batches(
        synth_env, monkeypatch):
    from seldbench.training import augment, data

    plain = _run(synth_env, "runs_plain_aug")
    seen, sets = [], []
    call, init = augment.Augmenter.__call__, data.ChunkDataset.__init__

    def spy(self, x, y, side):
        seen.append(x.shape[0])
        return call(self, x, y, side)

    def spy_init(self, *a, **kw):
        init(self, *a, **kw)
        sets.append(self)

    monkeypatch.setattr(augment.Augmenter, "__call__", spy)
    monkeypatch.setattr(data.ChunkDataset, "__init__", spy_init)
    full = _run(synth_env, "runs_aug_full", overrides=[AUGMENT])
    assert full["config_hash"] != plain["config_hash"]
    assert full["config"]["train"]["augment"][0] == {"name": "channel_swap"}
    # every chunk of the training split, once per epoch, and nothing else: validation and
    # test clips never pass through the augmenter
    assert len(sets) == 1 and sum(seen) == 2 * len(sets[0]) > 0
    assert full["checkpoint"]["sha256"] != plain["checkpoint"]["sha256"]
    _assert_kill_and_resume_match(synth_env, "runs_aug_killed", full, [AUGMENT])


def test_init_from_a_run_with_freeze_and_tensorboard(synth_env):
    import torch
    from click.testing import CliRunner

    from seldbench.cli import main

    source = _run(synth_env, "runs_src")
    src_dir = next((synth_env / "runs_src").rglob("record.json")).parent
    args = ["run", "--model", "crnn", "--dataset", "synth-mini", "--quiet", "--out",
            str(synth_env / "runs_ft"), "--init-from", str(src_dir)]
    for s in [*TINY, f"features.cache_dir={synth_env / 'cache'}", "train.freeze=[conv.]",
              "train.tensorboard=true", "train.epochs=1", "train.max_clips=1"]:
        args += ["--set", s]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output + r.stderr
    rec_path = next((synth_env / "runs_ft").rglob("record.json"))
    rec = json.loads(rec_path.read_text())
    assert rec["init"]["sha256"] == source["checkpoint"]["sha256"]
    assert rec["config"]["train"]["init_sha256"] == source["checkpoint"]["sha256"]
    assert rec["init"]["reinitialised"] == [] and rec["init"]["frozen"] == ["conv."]
    assert rec["config_hash"] != source["config_hash"]
    # fine-tuned on a slice of the train split (what the data hash says it saw)
    assert rec["dataset"]["clips"]["train"] == 1 < source["dataset"]["clips"]["train"]
    before = torch.load(src_dir / "best.pt", weights_only=True)["model"]
    after = torch.load(rec_path.parent / "best.pt", weights_only=True)["model"]
    # frozen parameters are as the source left them (batch-norm statistics still adapt)
    frozen = [k for k in before if k.startswith("conv.") and k.endswith((".weight", ".bias"))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["head.weight"], after["head.weight"])
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(rec_path.parent / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "val/SELD", "val/F"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [1]
    # the DCASE 2024 baseline's recipe: a distance model started from a direction-only one;
    # only the output layer (whose width differs) starts fresh, and 2024 figures are scored
    dist = _run(synth_env, "runs_dist", overrides=[f"train.init_from={src_dir}",
                                                   "model.with_distance=true", "train.epochs=1"])
    assert dist["init"]["reinitialised"] == ["head.weight", "head.bias"]
    assert "DistE" in dist["results"]["dcase2024"]["figures"]
    # a checkpoint of another model is one clear error, before any training
    r = CliRunner().invoke(main, ["run", "--model", "einv2", "--dataset", "synth-mini",
                                  "--init-from", str(src_dir / "best.pt"), "--out",
                                  str(synth_env / "runs_bad"),
                                  "--config", str(Path(__file__).resolve().parent.parent /
                                                  "configs/experiments/einv2-small.yaml")])
    assert r.exit_code != 0 and "do not fit this model" in r.stderr


def test_the_model_is_built_and_checked_before_any_data_is_read(tmp_path):
    """A model the builder refuses fails before the dataset is even looked for."""
    from seldbench.errors import SeldbenchError
    from seldbench.training.run import run

    with pytest.raises(SeldbenchError, match=r"model 'crnn': model.t_pool \[2, 1, 1\] pools 2"):
        run("crnn", "starss23", overrides=["model.t_pool=[2, 1, 1]",
                                            f"dataset.root={tmp_path / 'no-such-tree'}"],
            out=str(tmp_path / "runs"), progress=False, log=lambda m: None)
