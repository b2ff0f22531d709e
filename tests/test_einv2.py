"""The EINV2 plugin (track-wise output) and the core PIT loss: registration, shapes, size,
cross-stitch initialisation, relative attention, PIT against brute force, decoding shapes."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from seldbench.config import resolve
from seldbench.errors import SeldbenchError
from seldbench.specs import DatasetSpec
from seldbench.training.losses import pit_loss, pit_order_losses, track_wise_output_size

C = 13
DATASET = DatasetSpec(name="thirteen", version="0", classes=tuple(f"c{k}" for k in range(C)),
                      splits=("train",), list_clips=lambda root, split: [],
                      metric_suites=("dcase2023",))
FULL_PARAMS = 85e6  # docs/models.md ("`einv2`"): about 85 M (6 Conformer stacks ~75 M, CNNs ~9 M)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cfg(registry):
    return resolve(model_yaml=registry.get_model("einv2").config)


@pytest.fixture(scope="module")
def small_cfg(registry):
    return resolve(model_yaml=registry.get_model("einv2").config,
                   experiment="configs/experiments/einv2-small.yaml")


@pytest.fixture(scope="module")
def small(registry, small_cfg):
    torch.manual_seed(0)
    return registry.get_model("einv2").build(small_cfg["model"], DATASET,
                                             registry.get_feature("foa_logmel_iv_128"))


def params(model):
    return sum(p.numel() for p in model.parameters())


def test_registered(registry):
    assert "einv2" in registry.list("model")
    spec = registry.get_model("einv2")
    assert (spec.version, spec.output, spec.loss) == ("1.0", "track_wise", None)
    assert spec.features[0] == "foa_logmel_iv_128"
    assert spec.config.is_file()
    for f in spec.features:
        registry.get_feature(f)


def test_config_recipe(cfg, small_cfg):
    t = cfg["train"]
    assert (t["optimizer"], t["lr"], t["batch_size"], t["epochs"], t["chunk_s"]) == \
        ("adamw", 3e-4, 32, 80, 5.0)
    assert t["lr_milestones"] and t["lr_gamma"] == 0.1 and t["weight_decay"] > 0
    m = cfg["model"]
    assert (m["channels"], m["d_model"], m["heads"], m["conformer_blocks"], m["ff_mult"],
            m["conv_kernel"], m["dropout"], m["tracks"]) == ([64, 128, 256, 512], 512, 8, 2, 4,
                                                             31, 0.1, 3)
    assert small_cfg["model"]["d_model"] == 128 and small_cfg["model"]["conformer_blocks"] == 1


def test_small_forward_directions_are_bounded(small):
    model = small.eval()  # shapes: tests/test_contract.py, for every registered model
    with torch.no_grad():
        y = model(torch.randn(2, 7, 400, 128))  # 5 s at a 12.5-ms hop
    assert y.shape[-1] == track_wise_output_size(C)
    xyz = y.reshape(2, 50, 3, C + 3)[..., C:]
    assert xyz.abs().max() <= 1.0  # tanh


def test_full_parameter_count(registry, cfg):
    with torch.device("meta"):
        model = registry.get_model("einv2").build(cfg["model"], DATASET,
                                                  registry.get_feature("foa_logmel_iv_128"))
    assert params(model) == pytest.approx(FULL_PARAMS, rel=0.1)
    cnn = params(model.sed_cnn) + params(model.doa_cnn)
    conformers = params(model.sed_conformer) + params(model.doa_conformer)
    assert cnn == pytest.approx(9e6, rel=0.1) and conformers == pytest.approx(75e6, rel=0.1)


def test_time_pools_follow_the_feature_set(registry, small_cfg):
    from seldbench_plugins.einv2.model import time_pools

    assert time_pools(8) == [2, 2, 2, 1] and time_pools(5) == [5, 1, 1, 1]
    assert time_pools(64) == [4, 4, 2, 2] and time_pools(1) == [1, 1, 1, 1]
    model = registry.get_model("einv2").build(small_cfg["model"], DATASET,
                                              registry.get_feature("mic_logmel_gcc")).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 10, 100, 64))  # 2 s at a 20-ms hop
    assert y.shape == (1, 20, 3 * (C + 3))


def test_cross_stitch_init_and_mixing(small):
    from seldbench_plugins.einv2.model import CrossStitch

    units = [*small.cnn_stitch, *small.track_stitch]
    assert [u.weight.shape for u in units] == [(32, 2, 2), (64, 2, 2), (128, 2, 2)] + \
        [(128, 2, 2)] * 3
    w = torch.cat([u.weight.detach().flatten() for u in units])
    assert w.min() >= 0.1 and w.max() <= 0.9 and w.std() > 0.1  # uniform, not constant
    unit = CrossStitch(2, channel_dim=-1)
    with torch.no_grad():
        unit.weight.copy_(torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.5, 0.0], [0.0, 0.5]]]))
    a, b = torch.tensor([[1.0, 1.0]]), torch.tensor([[10.0, 10.0]])
    a2, b2 = unit(a, b)  # both outputs mix the unit's inputs
    assert torch.equal(a2, torch.tensor([[21.0, 0.5]])) and torch.equal(b2, torch.tensor([[43.0, 5.0]]))


def test_relative_attention_against_a_loop():
    """Score of (query i, key j) = ((q_i + u) . k_j + (q_i + v) . W_pos r(i - j)) / sqrt(d_head),
    r(i - j) the sinusoid of the distance i - j (Transformer-XL)."""
    from seldbench_plugins.einv2 import model as einv2

    torch.manual_seed(0)
    T, H, D = 6, 2, 4
    pe = einv2.relative_sinusoids(T, H * D)  # rows: distances T-1 .. -(T-1)
    assert pe.shape == (2 * T - 1, H * D)
    assert torch.allclose(pe[T - 1], torch.tensor([0.0, 1.0] * (H * D // 2)))  # distance 0
    attn = einv2.RelPositionSelfAttention(H * D, H, dropout=0.0).eval()
    x = torch.randn(1, T, H * D)
    with torch.no_grad():
        q, k, v = (m(x)[0].view(T, H, D) for m in (attn.q, attn.k, attn.v))
        r = attn.pos(pe).view(2 * T - 1, H, D)
        scores = torch.empty(H, T, T)
        for i in range(T):
            for j in range(T):
                scores[:, i, j] = ((q[i] + attn.bias_u) * k[j]).sum(-1) + \
                    ((q[i] + attn.bias_v) * r[T - 1 - (i - j)]).sum(-1)
        w = torch.softmax(scores / math.sqrt(D), dim=-1)  # (H, T, T)
        want = attn.out(torch.einsum("htj,jhd->thd", w, v).reshape(1, T, H * D))
        assert torch.allclose(attn(x), want, atol=1e-5)


def brute_force_pit(output, target, num_classes, with_distance=False, weight=0.1):
    B, T, K, W = target.shape
    out = output.reshape(B, T, K, W)
    total = 0.0
    for b in range(B):
        for t in range(T):
            best = None
            for order in itertools.permutations(range(K)):
                tgt = target[b, t, list(order)]
                sed = F.binary_cross_entropy_with_logits(out[b, t, :, :num_classes],
                                                         tgt[:, :num_classes])
                doa = F.mse_loss(out[b, t, :, num_classes:num_classes + 3],
                                 tgt[:, num_classes:num_classes + 3])
                loss = 0.5 * sed + 0.5 * doa
                if with_distance:
                    loss = loss + weight * F.mse_loss(out[b, t, :, -1], tgt[:, -1])
                best = loss if best is None else torch.minimum(best, loss)
            total = total + best
    return total / (B * T)


def random_targets(gen, B, T, K=3, with_distance=False):
    cls = torch.randint(-1, C, (B, T, K), generator=gen)
    onehot = F.one_hot(cls.clamp(min=0), C).float() * (cls >= 0)[..., None]
    xyz = F.normalize(torch.randn(B, T, K, 3, generator=gen), dim=-1) * (cls >= 0)[..., None]
    parts = [onehot, xyz]
    if with_distance:
        parts.append((torch.rand(B, T, K, 1, generator=gen) * 5) * (cls >= 0)[..., None])
    return torch.cat(parts, dim=-1)


@pytest.mark.parametrize("with_distance", [False, True])
def test_pit_loss_matches_brute_force(with_distance):
    gen = torch.Generator().manual_seed(0)
    B, T, K = 2, 5, 3
    target = random_targets(gen, B, T, K, with_distance)
    W = target.shape[-1]
    output = torch.randn(B, T, K * W, generator=gen) * 2
    got = pit_loss(output, target, with_distance=with_distance)
    want = brute_force_pit(output, target, C, with_distance)
    assert got.shape == () and torch.allclose(got, want, atol=1e-6)
    assert pit_loss(output, target, with_distance=with_distance, reduction="none").shape == (B, T)
    losses, orders = pit_order_losses(output, target, with_distance=with_distance)
    assert losses.shape == (B, T, 6) and orders.shape == (6, 3) and orders[0].tolist() == [0, 1, 2]


def test_pit_loss_is_invariant_to_target_track_order():
    gen = torch.Generator().manual_seed(1)
    B, T, K = 3, 7, 3
    target = random_targets(gen, B, T, K)
    output = torch.randn(B, T, K * (C + 3), generator=gen)
    perms = torch.stack([torch.randperm(K, generator=gen) for _ in range(B * T)]).view(B, T, K)
    shuffled = torch.gather(target, 2, perms[..., None].expand_as(target))
    assert not torch.equal(shuffled, target)
    assert torch.allclose(pit_loss(output, shuffled), pit_loss(output, target), atol=1e-6)


def test_pit_loss_is_minimal_for_a_permuted_perfect_prediction():
    gen = torch.Generator().manual_seed(2)
    B, T, K = 2, 6, 3
    target = random_targets(gen, B, T, K)
    perms = torch.stack([torch.randperm(K, generator=gen) for _ in range(B * T)]).view(B, T, K)
    pred = torch.gather(target, 2, perms[..., None].expand_as(target)).clone()
    pred[..., :C] = (pred[..., :C] * 2 - 1) * 30.0  # logits: +30 for 1, -30 for 0
    loss = pit_loss(pred.reshape(B, T, -1), target)
    assert loss < 1e-12
    # any other prediction costs more
    assert pit_loss(pred.reshape(B, T, -1) + 0.1, target) > loss


def test_pit_loss_shape_errors():
    target = torch.zeros(1, 2, 3, C + 3)
    with pytest.raises(ValueError, match=r"expected \(1, 2, 3 tracks x \(13 classes \+ 3\) = 48\)"):
        pit_loss(torch.zeros(1, 2, 47), target)
    with pytest.raises(ValueError, match="reduction 'sum'"):
        pit_loss(torch.zeros(1, 2, 48), target, reduction="sum")


def test_backward_and_trackwise_decode(small):
    from seldbench.metrics.decode import trackwise_decode

    torch.manual_seed(0)
    model = small.train()
    target = random_targets(torch.Generator().manual_seed(3), 2, 10)
    y = model(torch.randn(2, 7, 80, 128))  # 1 s
    assert y.shape == (2, 10, 3 * (C + 3))
    loss = pit_loss(y, target)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.zero_grad()
    r = y.detach().reshape(2, 10, 3, C + 3).numpy()
    tables = trackwise_decode(1 / (1 + torch.exp(-torch.from_numpy(r[..., :C]))).numpy(),
                              r[..., C:C + 3], threshold=0.0)
    assert len(tables) == 2 and all(len(t) == 10 * 3 for t in tables)  # every track active


def test_with_distance_output(small_cfg):
    from seldbench_plugins.einv2 import build

    model = build({**small_cfg["model"], "with_distance": True, "in_channels": 7,
                   "in_bins": 128, "conformer_blocks": 1}, DATASET).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 7, 80, 128))
    assert model.with_distance and y.shape == (1, 10, 3 * (C + 4))
    assert (y.reshape(1, 10, 3, C + 4)[..., -1] >= 0).all()  # softplus metres


def test_build_errors(registry, cfg):
    from seldbench_plugins.einv2 import build

    fs = registry.get_feature("foa_logmel_iv_128")
    with pytest.raises(SeldbenchError, match=r"model 'einv2': unknown config key 'model.d_modle'; "
                                             r"did you mean 'model.d_model'\?"):
        build({**cfg["model"], "d_modle": 64}, DATASET, fs)
    with pytest.raises(SeldbenchError, match="unknown config key 'model.zzz' \\(known: in_channels"):
        build({"zzz": 1}, DATASET, fs)
    with pytest.raises(SeldbenchError, match="model.in_channels is null and no feature set"):
        build(cfg["model"], DATASET)
    with pytest.raises(SeldbenchError, match="model.in_bins is 64 but feature set "
                                             "'foa_logmel_iv_128' gives 128"):
        build({**cfg["model"], "in_bins": 64}, DATASET, fs)
    with pytest.raises(SeldbenchError, match=r"pools 4 frames per label frame, feature set "
                                             r"'foa_logmel_iv_128' has 8"):
        build({**cfg["model"], "t_pool": [2, 2, 1, 1]}, DATASET, fs)
    with pytest.raises(SeldbenchError, match="d_model 100 is not a multiple of model.heads 8"):
        build({**cfg["model"], "d_model": 100}, DATASET, fs)


def test_einv2_small_runs_end_to_end_on_synth_mini(synth_env, tmp_path):
    """`seldbench run --model einv2 --config configs/experiments/einv2-small.yaml` on CPU:
    track-wise targets, PIT loss, AdamW with step decay, track-wise decoding, scoring."""
    from seldbench.training.run import run

    rec = run("einv2", "synth-mini", config_file="configs/experiments/einv2-small.yaml",
              overrides=["train.epochs=2", "train.batch_size=4", "train.threads=1",
                         "train.lr_milestones=[1]", "model.channels=[16,32,64,64]",
                         "model.d_model=64", f"features.cache_dir={synth_env / 'cache'}",
                         "eval.jackknife=false"],
              out=str(tmp_path / "runs"), progress=False, log=lambda m: None)
    assert rec["status"] == "complete" and rec["model"]["name"] == "einv2"
    assert rec["config"]["train"]["optimizer"] == "adamw" and rec["train"]["epochs_run"] == 2
    assert set(rec["results"]["dcase2023"]["figures"]) == {"ER", "F", "LE", "LR", "SELD"}
    run_dir = next((tmp_path / "runs").rglob("record.json")).parent
    from seldbench.training.trainer import load_checkpoint

    last = load_checkpoint(run_dir / "last.pt")
    assert last["scheduler"]["last_epoch"] == 2 and last["scheduler"]["_last_lr"][0] == \
        pytest.approx(3e-5)  # 3e-4 decayed once, after epoch 1


def test_cpu_config_is_einv2_at_crnn_scale_on_64_mel_features(registry):
    cfg = resolve(model_yaml=registry.get_model("einv2").config,
                  experiment="configs/experiments/einv2-cpu.yaml")
    assert cfg["features"]["name"] == "foa_logmel_iv"
    feature = registry.get_feature(cfg["features"]["name"])
    m = registry.get_model("einv2").build(cfg["model"], DATASET, feature)
    assert 1.0e6 < params(m) < 1.5e6  # the CRNN has 0.74 M, the published EINV2 85 M
    x = torch.randn(2, feature.channels, 5 * 50, feature.bins)  # 5 s at 5 frames per label
    assert m(x).shape == (2, 50, 3 * (13 + 3))
