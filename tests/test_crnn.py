"""The CRNN plugin (DCASE 2023 SELDnet baseline): registration, shapes, size, training step."""
from __future__ import annotations

import pytest
import torch

from seldbench.config import resolve
from seldbench.errors import SeldbenchError
from seldbench.specs import DatasetSpec

DATASET = DatasetSpec(name="thirteen", version="0", classes=tuple(f"c{k}" for k in range(13)),
                      splits=("train",), list_clips=lambda root, split: [],
                      metric_suites=("dcase2023",))
# docs/models.md ("`crnn`"): ~0.74 M (FOA 7 x 64), MIC-GCC +1.7 k, SALSA-lite ~1.18 M
SPEC_PARAMS = {"foa_logmel_iv": 0.74e6, "mic_logmel_gcc": 0.74e6 + 1.7e3,
               "mic_salsa_lite": 1.18e6}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cfg(registry):
    return resolve(model_yaml=registry.get_model("crnn").config)


def params(model):
    return sum(p.numel() for p in model.parameters())


def test_registered(registry):
    assert "crnn" in registry.list("model")
    spec = registry.get_model("crnn")
    assert (spec.version, spec.output, spec.loss) == ("1.0", "multi_accdoa", None)
    assert spec.features == ("foa_logmel_iv", "mic_logmel_gcc", "mic_salsa_lite",
                             "stereo_logmel_ild_ipd", "stereo_logmel_ild_ipd_ms", "stereo_logmel")
    assert spec.config.is_file()
    for f in spec.features:
        registry.get_feature(f)


def test_config_recipe(cfg):
    assert (cfg["train"]["lr"], cfg["train"]["batch_size"], cfg["train"]["epochs"],
            cfg["train"]["chunk_s"]) == (0.001, 128, 100, 5.0)
    assert cfg["model"]["f_pool"] == [4, 4, 2] and cfg["model"]["dropout"] == 0.05


@pytest.mark.parametrize("feature", list(SPEC_PARAMS))
def test_forward_shape_and_size(registry, cfg, feature):
    torch.manual_seed(0)
    fs = registry.get_feature(feature)
    model = registry.get_model("crnn").build(cfg["model"], DATASET, fs).eval()
    assert params(model) == pytest.approx(SPEC_PARAMS[feature], rel=0.02)
    frames = 250  # 5 s at a 20-ms hop
    with torch.no_grad():
        y = model(torch.randn(2, fs.channels, frames, fs.bins))
    assert y.shape == (2, frames // 5, 3 * 3 * 13)
    assert y.abs().max() <= 1.0  # tanh


def test_mic_gcc_adds_first_conv_weights_only(registry, cfg):
    build = registry.get_model("crnn").build
    foa = build(cfg["model"], DATASET, registry.get_feature("foa_logmel_iv"))
    mic = build(cfg["model"], DATASET, registry.get_feature("mic_logmel_gcc"))
    assert params(mic) - params(foa) == 3 * 64 * 3 * 3


def test_with_distance_output(cfg):
    from seldbench_plugins.crnn import build

    model = build({**cfg["model"], "with_distance": True, "in_channels": 7, "in_bins": 64},
                  DATASET).eval()
    seen = []
    model.head.register_forward_hook(lambda mod, inp, out: seen.append(out))
    with torch.no_grad():
        y = model(torch.randn(1, 7, 100, 64))
    assert y.shape == (1, 20, 3 * 4 * 13) and model.with_distance
    assert torch.equal(y, seen[0])  # no output activation

def test_build_errors(registry, cfg):
    from seldbench_plugins.crnn import build

    foa = registry.get_feature("foa_logmel_iv")
    with pytest.raises(SeldbenchError, match=r"unknown config key 'model.rnn_sise'; did you mean 'model.rnn_size'"):
        build({**cfg["model"], "rnn_sise": 64}, DATASET, foa)
    with pytest.raises(SeldbenchError, match="model.in_channels is null and no feature set"):
        build(cfg["model"], DATASET)
    with pytest.raises(SeldbenchError, match="model.in_bins is 128 but feature set 'foa_logmel_iv' gives 64"):
        build({**cfg["model"], "in_bins": 128}, DATASET, foa)
    with pytest.raises(SeldbenchError, match="pools 8 frames per label frame"):
        build({**cfg["model"], "t_pool": [2, 2, 2]}, DATASET, foa)
