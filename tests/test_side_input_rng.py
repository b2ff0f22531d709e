"""A run's random streams do not depend on whether its side-input cache is already filled."""
import json

import pytest

from seldbench.training.run import run
from seldbench.training.warm_cache import warm_cache


def _overrides(cache):
    return ["train.epochs=1", "train.batch_size=4", "train.threads=1", "eval.jackknife=false",
            f"features.cache_dir={cache}"]


@pytest.mark.parametrize("model, dataset", [("crati", "synth-mini"),
                                            ("crnn-av", "synth-stereo-mini")])
def test_a_cold_run_trains_as_a_run_on_a_warmed_cache(synth_env, tmp_path, monkeypatch, model,
                                                      dataset, one_torch_thread):
    monkeypatch.setenv("SELDBENCH_SYNTH_STEREO_MINI_ROOT", str(synth_env / "stereo-mini"))
    # the same command twice, each with its own cache: empty, and filled by `seldbench cache`
    warm_cache(model, dataset, None, _overrides(tmp_path / "warm"), log=lambda m: None)
    records = {}
    for name in ("cold", "warm"):
        rec = run(model, dataset, overrides=_overrides(tmp_path / name),
                  out=str(tmp_path / f"runs-{name}"), progress=False, log=lambda m: None)
        assert rec["status"] == "complete"
        records[name] = rec
    assert list((tmp_path / "cold" / model).rglob("*.npy"))  # the cold run encoded clips
    cold, warm = records["cold"], records["warm"]
    assert json.dumps(cold["train"]["history"]) == json.dumps(warm["train"]["history"])
    assert cold["checkpoint"]["sha256"] == warm["checkpoint"]["sha256"]
