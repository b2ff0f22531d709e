"""Distance outputs on the FOA/MIC sets (``model.with_distance``): the experiment files, CRATI
on the EINV2 trunk, and runs scored with dcase2024 as well as dcase2023."""
from pathlib import Path

import numpy as np
import pytest
import torch

from seldbench.config import resolve

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "configs" / "experiments"
#: experiment file -> (model, the file it adds distance to; None: the model's defaults)
DISTANCE_FILES = {"crnn-distance.yaml": ("crnn", None),
                  "einv2-cpu-distance.yaml": ("einv2", "einv2-cpu.yaml"),
                  "crati-einv2-distance.yaml": ("crati", "crati-einv2-cpu.yaml")}
EIN = {"channels": [8, 16, 16, 32], "d_model": 32, "heads": 4, "conformer_blocks": 1}


def _leaves(cfg, prefix=""):
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict) and v:
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("name", sorted(DISTANCE_FILES))
def test_a_distance_file_is_its_base_with_distance_on(name, registry):
    model, base = DISTANCE_FILES[name]
    yaml = registry.get_model(model).config
    got = _leaves(resolve(model_yaml=yaml, experiment=EXPERIMENTS / name))
    want = _leaves(resolve(model_yaml=yaml, experiment=base and EXPERIMENTS / base))
    differ = {k for k in got.keys() | want.keys() if got.get(k) != want.get(k)}
    assert differ == {"model.with_distance", "output.recipe"}
    assert got["model.with_distance"] is True and "distance" in got["output.recipe"]


def test_crati_passes_distance_to_the_einv2_trunk_and_trains_it(one_torch_thread):
    from seldbench.registry import get_registry
    from seldbench.specs import model_output
    from seldbench_plugins.crati import build, training_loss
    from seldbench_plugins.einv2 import build as build_einv2

    reg = get_registry()
    ds, fs = reg.get_dataset("synth-mini"), reg.get_feature("foa_logmel_iv")
    C = len(ds.classes)
    opts = {"backbone": "einv2", "trunk": EIN, "with_distance": True, "fusion": False}
    torch.manual_seed(3)
    crati = build(opts, ds, fs).eval()
    torch.manual_seed(3)
    einv2 = build_einv2({**EIN, "with_distance": True}, ds, fs).eval()
    assert model_output(crati, reg.get_model("crati")) == ("track_wise", True)
    x = torch.randn(2, 7, 250, 64)
    y = crati(x)
    assert y.shape == (2, 50, 3 * (C + 4)) and torch.equal(y, einv2(x))
    dist = y.reshape(2, 50, 3, C + 4)[..., -1]
    assert torch.all(dist > 0)  # softplus: metres, no clipping needed when decoding
    # the PIT loss reads the distance: a target 2 m away on every track trains the head
    target = torch.zeros(2, 50, 3, C + 4)
    target[:, :, :, 0], target[:, :, :, C] = 1.0, 1.0
    target[:, :, :, -1] = 2.0
    crati.train()
    loss_fn = training_loss(opts, ds)
    near = loss_fn(crati(x), target)
    near.backward()
    assert all(h.weight.grad.abs().sum() > 0 for h in crati.trunk.dist_head)
    target[:, :, :, -1] = 20.0
    with torch.no_grad():
        assert float(loss_fn(crati(x), target)) > near.item()


@pytest.mark.parametrize("name", sorted(DISTANCE_FILES))
def test_a_distance_run_records_dcase2024_figures(name, synth_env, tmp_path):
    """One epoch of each distance experiment on synth-mini: the record has both suites'
    figures and the dcase2024 predictions carry a distance column in metres."""
    from seldbench.training.run import run

    model = DISTANCE_FILES[name][0]
    rec = run(model, "synth-mini", config_file=str(EXPERIMENTS / name),
              overrides=["train.epochs=1", "train.batch_size=4", "train.threads=1",
                         f"features.cache_dir={synth_env / 'cache'}", "eval.jackknife=false"],
              out=str(tmp_path / "runs"), progress=False, log=lambda m: None)
    assert rec["status"] == "complete" and rec["config"]["model"]["with_distance"] is True
    assert set(rec["results"]["dcase2023"]["figures"]) == {"ER", "F", "LE", "LR", "SELD"}
    assert set(rec["results"]["dcase2024"]["figures"]) == \
        {"ER", "F", "DOAE", "DistE", "RDE", "LR", "SELD"}
    run_dir = next((tmp_path / "runs").rglob("record.json")).parent
    rows = [np.loadtxt(p, delimiter=",", ndmin=2)
            for p in sorted((run_dir / "predictions" / "dcase2024").glob("*.csv"))]
    rows = np.concatenate([r for r in rows if r.size])
    assert rows.shape[1] == 7 and np.all(rows[:, 6] >= 0) and np.any(rows[:, 6] > 0)


def test_distance_on_a_dataset_without_distance_labels_is_refused_before_any_data(tmp_path):
    from dataset_trees import make_tau_tree

    from seldbench.errors import SeldbenchError
    from seldbench.training.run import run

    root = make_tau_tree(tmp_path / "tau")
    cache = tmp_path / "cache"
    with pytest.raises(SeldbenchError, match=r"^model 'crnn' predicts distance \(model.with_"
                       r"distance\), but dataset 'tau-nigens-2021' has no distance labels "
                       r"\(5-column metadata\): set model.with_distance=false$"):
        run("crnn", "tau-nigens-2021", config_file=str(EXPERIMENTS / "crnn-distance.yaml"),
            overrides=[f"dataset.root={root}", f"features.cache_dir={cache}"],
            out=str(tmp_path / "runs"), progress=False, log=lambda m: None)
    assert not cache.exists()  # no feature was computed
