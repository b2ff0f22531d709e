"""train.augment: spatial transforms in the feature domain, SpecAugment masks, their seeding,
config rules and hash; fine-tuning helpers (init weights, freeze)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from seldbench.data.synth.spatial import (capsule_vectors, direction_of, foa_gains_from_vector,
                                          mic_response_from_vector, unit_vector)
from seldbench.errors import SeldbenchError
from seldbench.training.augment import (Augmenter, build_augmenter, foa_transforms,
                                        mic_transforms, rotate_targets, spatial_maps)

FS = 24000
SOURCE = np.random.default_rng(0).standard_normal(FS // 2) * 0.1  # 0.5 s of noise
DIRECTIONS = [(30.0, 20.0), (-120.0, -40.0), (170.0, 5.0)]


def _foa(u):
    """FOA (W, Y, Z, X) of a plane wave of SOURCE from unit vector ``u``: (1, 4, samples)."""
    return torch.tensor(foa_gains_from_vector(u)[:, None] * SOURCE[None])[None]


def _mic(u):
    """The tetrahedral array's capsules for the same wave (delays as phase shifts)."""
    delays, gains = mic_response_from_vector(u)
    spec = np.fft.rfft(SOURCE)
    f = np.fft.rfftfreq(len(SOURCE), 1 / FS)
    return torch.tensor(np.stack([np.fft.irfft(g * spec * np.exp(-2j * np.pi * f * d),
                                               len(SOURCE)) for d, g in zip(delays, gains)]))[None]


def _iv_direction(feats):
    """Direction (az, el) of the frame- and bin-summed FOA intensity vector (channels 4-6 are
    Y, Z, X)."""
    y, z, x = feats[0, 4:7].sum(dim=(1, 2)).numpy()
    return direction_of(np.array([x, y, z]))


def test_there_are_16_foa_and_8_mic_transforms_all_distinct_identity_first():
    foa = foa_transforms()
    assert len(foa) == 16 and np.array_equal(foa[0], np.eye(3))
    assert len({m.tobytes() for m in foa}) == 16
    for m in foa:  # signed permutations; z never mixes with x, y
        assert np.allclose(m @ m.T, np.eye(3)) and abs(m[2, 2]) == 1
    mic = mic_transforms()
    assert len(mic) == 8 and mic[0][1] == [0, 1, 2, 3]
    caps = capsule_vectors()
    for m, p in mic:  # derived from the capsule directions: m moves capsule i onto p[i]
        assert np.allclose(caps @ m.T, caps[p])
    # e.g. azimuth - 90 deg together with z -> -z is one of them (the literature's [2,4,1,3])
    rot = np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, -1]])
    assert any(np.array_equal(m, rot) for m, _ in mic)


@pytest.mark.parametrize("az, el", DIRECTIONS)
def test_foa_feature_transform_equals_features_of_the_rotated_wave(az, el):
    from seldbench.features import foa_logmel_iv

    fe = foa_logmel_iv()
    u = unit_vector(az, el)
    x = fe(_foa(u))
    for fm in spatial_maps("foa_logmel_iv", 64):
        moved = fm.apply_raw(x)
        rotated = fe(_foa(fm.matrix @ u))
        # log-mel in dB (the 1e-8 audio offset does not change sign with a channel): 1e-3 dB
        assert torch.allclose(moved[:, :4], rotated[:, :4], atol=1e-3)
        assert torch.allclose(moved[:, 4:], rotated[:, 4:], atol=1e-6)
        # the intensity vector now points where the label goes
        target = torch.einsum("ij,bj->bi", torch.tensor(fm.matrix), torch.tensor(u)[None])
        az2, el2 = _iv_direction(moved)
        want_az, want_el = direction_of(target.numpy()[0])
        assert abs((az2 - want_az + 180) % 360 - 180) < 0.5 and abs(el2 - want_el) < 0.5
        assert torch.equal(fm.inverse().apply_raw(moved), x)


def test_foa_128_variant_uses_the_same_channel_layout():
    from seldbench.features import foa_logmel_iv_128

    fe = foa_logmel_iv_128()
    u = unit_vector(-60.0, 30.0)
    x = fe(_foa(u))
    for fm in spatial_maps("foa_logmel_iv_128", 128)[1:4]:
        assert torch.allclose(fm.apply_raw(x)[:, 4:], fe(_foa(fm.matrix @ u))[:, 4:], atol=1e-6)


@pytest.mark.parametrize("az, el", DIRECTIONS[:2])
def test_mic_permutation_equals_features_of_the_rotated_wave(az, el):
    from seldbench.features import mic_logmel_gcc

    fe = mic_logmel_gcc()
    u = unit_vector(az, el)
    x = fe(_mic(u))
    for fm in spatial_maps("mic_logmel_gcc", 64):
        moved, rotated = fm.apply_raw(x), fe(_mic(fm.matrix @ u))
        assert torch.allclose(moved[:, :4], rotated[:, :4], atol=1e-6)
        # GCC: every lag but -n_lags/2, which has no mirror among the kept lags
        assert torch.allclose(moved[:, 4:, :, 1:], rotated[:, 4:, :, 1:], atol=1e-6)
        assert torch.equal(fm.inverse().apply_raw(moved), x)


def test_unsupported_feature_and_side_inputs_are_refused():
    kw0 = dict(feature="foa_logmel_iv", mean=np.zeros((7, 64)), std=np.ones((7, 64)),
               output="multi_accdoa", num_classes=13, seed=0)
    with pytest.raises(SeldbenchError, match="mixup: the model reads side inputs"):
        build_augmenter([{"name": "mixup"}], has_side_inputs=True, **kw0)
    with pytest.raises(SeldbenchError, match="no channel transform is known for feature "
                                             "'mic_salsa_lite'"):
        spatial_maps("mic_salsa_lite", 382)
    kw = dict(feature="foa_logmel_iv", mean=np.zeros((7, 64)), std=np.ones((7, 64)),
              output="multi_accdoa", num_classes=13, seed=0)
    with pytest.raises(SeldbenchError, match="side inputs"):
        build_augmenter([{"name": "channel_swap"}], has_side_inputs=True, **kw)
    assert build_augmenter([], has_side_inputs=False, **kw) is None


def _write_csv(path, rows):
    path.write_text("".join(f"{f},{c},{s},{a:g},{e:g}\n" for f, c, s, a, e in rows))
    return path


ROWS = [(0, 1, 0, 30, 20), (1, 1, 0, 40, 10), (1, 1, 1, -90, 0), (2, 2, 0, 180, -30),
        (2, 2, 1, 0, 45), (2, 2, 2, 90, 60), (2, 1, 0, -45, 0), (3, 0, 0, 135, -10)]


@pytest.mark.parametrize("output", ["multi_accdoa", "track_wise"])
def test_rotated_targets_are_the_targets_of_the_rotated_scene(tmp_path, output):
    """Augmented ADPIT / track-wise targets are exactly what the label encoders give for the
    rotated annotations: slots, tracks, activities and classes stay put."""
    from seldbench.data.labels import read_metadata
    from seldbench.training.data import make_targets

    classes, frames = 3, 5
    base = make_targets(output, read_metadata(_write_csv(tmp_path / "a.csv", ROWS), 5, classes),
                        frames, classes, False)
    for m in foa_transforms():
        moved_rows = []
        for f, c, s, a, e in ROWS:
            az, el = direction_of(m @ unit_vector(a, e))
            moved_rows.append((f, c, s, round(float(az)), round(float(el))))
        want = make_targets(output, read_metadata(_write_csv(tmp_path / "b.csv", moved_rows), 5,
                                                  classes), frames, classes, False)
        got = rotate_targets(torch.tensor(base)[None], torch.tensor(m, dtype=torch.float32)[None],
                             output, classes)[0]
        assert torch.allclose(got, torch.tensor(want), atol=1e-6)


ROWS_B = [(0, 1, 0, 90, 0), (1, 1, 0, 10, 10), (2, 2, 0, -90, 0), (3, 0, 0, 45, 0),
          (3, 0, 1, -45, 0), (4, 1, 0, 0, 0)]


@pytest.mark.parametrize("output", ["multi_accdoa", "track_wise"])
def test_mixup_targets_are_the_targets_of_both_chunks_events(tmp_path, output):
    """The union of two chunks' targets is what the encoders give for the rows of both (one
    chunk's rows first), overflow past three events dropped the same way."""
    from seldbench.data.labels import read_metadata
    from seldbench.training.augment import union_targets
    from seldbench.training.data import make_targets

    def targets(rows, name):
        table = read_metadata(_write_csv(tmp_path / name, rows), 5, 3)
        return torch.tensor(make_targets(output, table, 5, 3, False))[None]

    a, b = targets(ROWS, "a.csv"), targets(ROWS_B, "b.csv")
    want = targets(ROWS + ROWS_B, "ab.csv")
    assert torch.equal(union_targets(a, b, output, 3), want)
    empty = torch.zeros_like(a)
    assert torch.equal(union_targets(a, empty, output, 3), a)
    assert torch.equal(union_targets(empty, a, output, 3), a)


def test_mixup_mixes_features_of_two_chunks_and_p_zero_changes_nothing():
    x, y = _batch(B=6)
    y = torch.zeros_like(y)
    y[:, :, 0, 0, 0] = 1.0  # one event of class 0 per chunk: the union has two
    none = _augmenter(entries=[{"name": "mixup", "p": 0.0}])
    out_x, out_y, _ = none(x, y, {})
    assert torch.equal(out_x, x) and torch.equal(out_y, y)
    every = _augmenter(entries=[{"name": "mixup", "p": 1.0, "lam_min": 0.3}])
    out_x, out_y, _ = every(x, y, {})
    for b in range(6):  # a mix of itself and one other chunk, weights in [0.3, 0.7]
        fits = [float(((out_x[b] - x[j]) / (x[b] - x[j])).median()) for j in range(6) if j != b]
        assert any(0.3 - 1e-4 <= lam <= 0.7 + 1e-4 for lam in fits)
    assert torch.all(out_y[:, :, 1:3, 0, 0] == 1) and torch.all(out_y[:, :, 0, 0, 0] == 0)


def test_a_joint_rotation_of_output_and_target_leaves_the_adpit_and_pit_losses_alone():
    from seldbench.training.losses import core_loss

    g = torch.Generator().manual_seed(1)
    B, T, C = 4, 6, 3
    m = torch.tensor(np.stack(foa_transforms()[5:9]), dtype=torch.float32)  # one per chunk
    # ADPIT: (B, T, 6, 4, C) targets, (B, T, 3 tracks x 3 x C) output
    y = torch.zeros(B, T, 6, 4, C)
    y[:, :, 0, 0, 0] = 1.0
    y[:, :, 0, 1:4, 0] = torch.nn.functional.normalize(torch.randn(B, T, 3, generator=g), dim=-1)
    y[:, :, 1:3, 0, 2] = 1.0
    y[:, :, 1:3, 1:4, 2] = torch.nn.functional.normalize(torch.randn(B, T, 2, 3, generator=g), dim=-1)
    out = torch.randn(B, T, 3 * 3 * C, generator=g)
    out_rot = torch.einsum("bij,btkjc->btkic", m, out.reshape(B, T, 3, 3, C)).reshape(B, T, -1)
    loss = core_loss("multi_accdoa")
    assert torch.allclose(loss(out_rot, rotate_targets(y, m, "multi_accdoa", C)), loss(out, y),
                          atol=1e-6)
    # track-wise: (B, T, 3, C + 3) targets and output
    yt = torch.zeros(B, T, 3, C + 3)
    yt[:, :, 0, 1] = 1.0
    yt[:, :, 0, C:] = torch.nn.functional.normalize(torch.randn(B, T, 3, generator=g), dim=-1)
    ot = torch.randn(B, T, 3, C + 3, generator=g)
    ot_rot = ot.clone()
    ot_rot[..., C:] = torch.einsum("bij,btkj->btki", m, ot[..., C:])
    loss = core_loss("track_wise")
    assert torch.allclose(loss(ot_rot.reshape(B, T, -1), rotate_targets(yt, m, "track_wise", C)),
                          loss(ot.reshape(B, T, -1), yt), atol=1e-6)


def _batch(seed=0, B=8):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, 7, 50, 64, generator=g), torch.rand(B, 5, 6, 4, 13, generator=g))


def _norm():
    """A normaliser's per (channel, bin) mean and std."""
    rng = np.random.default_rng(1)
    return rng.standard_normal((7, 64)), rng.uniform(0.5, 2, (7, 64))


def _augmenter(seed=3, entries=({"name": "channel_swap"}, {"name": "spec_mask"})):
    mean, std = _norm()
    return build_augmenter(list(entries), feature="foa_logmel_iv", mean=mean, std=std,
                           output="multi_accdoa", num_classes=13, has_side_inputs=False,
                           seed=seed)


def test_normalised_domain_transform_is_the_raw_transform_between_normalisations():
    aug = _augmenter(entries=[{"name": "channel_swap"}])
    step = aug.steps[0]
    mean, std = (torch.tensor(a, dtype=torch.float32) for a in _norm())
    raw = torch.randn(16, 7, 20, 64)
    x = (raw - mean[:, None]) / std[:, None]
    out, _ = step(x, torch.zeros(16, 2, 6, 4, 13), torch.Generator().manual_seed(0))
    maps = spatial_maps("foa_logmel_iv", 64)
    pick = torch.randint(16, (16,), generator=torch.Generator().manual_seed(0))
    for b in range(16):
        want = (maps[pick[b]].apply_raw(raw[b:b + 1]) - mean[:, None]) / std[:, None]
        assert torch.allclose(out[b:b + 1], want, atol=1e-4)
    # frames that are zero in every channel and bin (a short clip's padding) stay zero
    x[:, :, 5:9] = 0.0
    out, _ = step(x, torch.zeros(16, 2, 6, 4, 13), torch.Generator().manual_seed(0))
    assert torch.all(out[:, :, 5:9] == 0) and not torch.any(out[:, :, :5] == 0)


def test_same_seed_same_batches_and_a_restored_state_continues_the_stream():
    x, y = _batch()
    a, b = _augmenter(), _augmenter()
    first = [a(x, y, {}) for _ in range(3)]
    again = [b(x, y, {}) for _ in range(3)]
    for (xa, ya, _), (xb, yb, _) in zip(first, again):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(first[0][0], first[1][0])  # the stream moves on
    other = _augmenter(seed=4)(x, y, {})
    assert not torch.equal(other[0], first[0][0])
    # resume: a fresh augmenter given the saved state draws what the first drew next
    c = _augmenter()
    c(x, y, {})
    state = c.state_dict()
    d = _augmenter()
    d.load_state_dict(state)
    assert torch.equal(d(x, y, {})[0], first[1][0])


def test_spec_mask_zeroes_whole_stripes_and_leaves_targets_alone():
    x, y = torch.ones(4, 7, 50, 64), torch.rand(4, 5, 6, 4, 13)
    aug = Augmenter([], 0)
    aug.steps = _augmenter(entries=[{"name": "spec_mask", "time_masks": 1, "time_width": 10,
                                     "freq_masks": 1, "freq_width": 8}]).steps
    for _ in range(5):
        out, out_y, _ = aug(x, y, {})
        assert torch.equal(out_y, y)
        zero = out == 0
        # a masked frame is masked in every channel and bin, a masked bin in every frame
        frames = zero.all(dim=(1, 3))
        bins = zero.all(dim=(1, 2))
        assert torch.equal(zero, (frames[:, None, :, None] | bins[:, None, None, :]).expand_as(zero))
        assert frames.sum(dim=1).max() <= 10 and bins.sum(dim=1).max() <= 8


# ---------------------------------------------------------------- config: rules and hash

@pytest.mark.parametrize("value, problem", [
    ("[{name: rotate}]", "unknown augmentation 'rotate'"),
    ("[{name: channel_swap, q: 1}]", "unknown parameter 'q'"),
    ("[{name: channel_swap, p: 2}]", "p must be a finite number, >= 0, <= 1"),
    ("[{name: spec_mask, time_width: 0}]", "time_width must be an integer >= 1"),
    ("[channel_swap]", "entry 1 is 'channel_swap'"),
])
def test_bad_augment_entries_are_one_error_naming_the_entry(value, problem):
    from seldbench.config import resolve

    with pytest.raises(SeldbenchError, match=f"train.augment .*{problem}"):
        resolve(overrides=[f"train.augment={value}"])


def test_new_train_keys_at_their_neutral_values_leave_the_config_hash_alone():
    from seldbench.config import config_hash, hashed_config, resolve

    cfg = resolve()
    before = {k: v for k, v in cfg["train"].items()
              if k not in ("augment", "init_from", "init_sha256", "freeze", "tensorboard",
                           "max_clips")}
    old = dict(cfg, train=before)  # a config from before these keys existed
    assert config_hash(cfg) == config_hash(old)
    assert "augment" not in hashed_config(cfg)["train"]
    assert config_hash(resolve(overrides=["train.tensorboard=true"])) == config_hash(cfg)
    for change in ("train.augment=[{name: channel_swap}]", "train.freeze=[encoder.]",
                   "train.max_clips=10",
                   f"train.init_sha256={'a' * 64}"):
        assert config_hash(resolve(overrides=[change])) != config_hash(cfg), change
    # a checkpoint counts by its hash, not by where it lies
    a = resolve(overrides=["train.init_from=/x/best.pt", f"train.init_sha256={'b' * 64}"])
    b = resolve(overrides=["train.init_from=/y/best.pt", f"train.init_sha256={'b' * 64}"])
    assert config_hash(a) == config_hash(b)


# ---------------------------------------------------------------- fine-tuning helpers

class _Net(torch.nn.Module):
    def __init__(self, classes=3):
        super().__init__()
        self.trunk = torch.nn.Linear(4, 8)
        self.head = torch.nn.Linear(8, 3 * classes)


def _source(tmp_path, net, classes_json=None):
    from seldbench.training.finetune import InitSource
    from seldbench.training.trainer import save_checkpoint

    path = tmp_path / "best.pt"
    save_checkpoint(path, {"epoch": 1, "model": net.state_dict()})
    from seldbench.results.records import file_sha256

    return InitSource(path, file_sha256(path), classes_json)


def test_init_weights_load_strictly_and_a_head_is_reset_only_when_the_output_differs(tmp_path):
    from seldbench.training.finetune import load_init

    src = _Net()
    fresh = _Net()
    assert load_init(fresh, _source(tmp_path, src, 3), 3) == []
    assert torch.equal(fresh.trunk.weight, src.trunk.weight)
    with pytest.raises(SeldbenchError, match=r"tensor 'head.weight' is \(9, 8\) in the "
                                             r"checkpoint, \(12, 8\) in this model .*class count "
                                             "and the distance output are the same"):
        load_init(_Net(4), _source(tmp_path, src, 4), 4)
    other = _Net(4)
    head = other.head.weight.clone()
    assert load_init(other, _source(tmp_path, src, 3), 4) == ["head.weight", "head.bias"]
    assert torch.equal(other.head.weight, head) and torch.equal(other.trunk.weight, src.trunk.weight)
    # a direction-only source starting a distance model (the DCASE 2024 baseline's recipe): the
    # head, whose width differs, starts fresh; without that reason it is still an error
    from dataclasses import replace

    dist = _Net(4)  # 3 tracks x 4 values for 3 classes: the width of _Net(4)'s head
    plain = replace(_source(tmp_path, src, 3), with_distance=False)
    assert load_init(dist, plain, 3, with_distance=True) == ["head.weight", "head.bias"]
    assert torch.equal(dist.trunk.weight, src.trunk.weight)
    with pytest.raises(SeldbenchError, match="class count and the distance output are the same"):
        load_init(_Net(4), plain, 3, with_distance=False)
    wrong = torch.nn.Sequential(torch.nn.Linear(4, 8))
    with pytest.raises(SeldbenchError, match="'0.weight', '0.bias' missing, 'trunk.weight'"):
        load_init(wrong, _source(tmp_path, src, 3), 3)
    source = _source(tmp_path, src, 3)
    (tmp_path / "best.pt").write_bytes((tmp_path / "best.pt").read_bytes() + b"x")
    with pytest.raises(SeldbenchError, match="SHA-256"):
        load_init(_Net(), source, 3)


def test_freeze_fixes_the_named_parts_and_names_the_parts_when_nothing_matches():
    from seldbench.training.finetune import freeze

    net = _Net()
    assert freeze(net, ["trunk."]) == 4 * 8 + 8
    assert not net.trunk.weight.requires_grad and net.head.weight.requires_grad
    with pytest.raises(SeldbenchError, match=r"'encoder' matches no parameter .*head, trunk"):
        freeze(net, ["encoder"])


def test_init_from_a_run_folder_checks_its_record_and_fills_in_the_hash(tmp_path):
    import json

    from seldbench.config import resolve
    from seldbench.results.records import file_sha256
    from seldbench.training.finetune import resolve_init
    from seldbench.training.trainer import save_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "best.pt", {"epoch": 1, "model": _Net().state_dict()})
    sha = file_sha256(run / "best.pt")
    (run / "record.json").write_text(json.dumps({"checkpoint": {"sha256": sha}}))
    (run / "config.json").write_text(json.dumps({"dataset": {"name": "synth-mini"}}))
    cfg = resolve(overrides=[f"train.init_from={run}"])
    source = resolve_init(cfg)
    assert cfg["train"]["init_sha256"] == sha and source.num_classes == 13
    assert cfg["train"]["init_from"] == str((run / "best.pt").resolve())
    with pytest.raises(SeldbenchError, match="is not the train.init_sha256"):
        resolve_init(resolve(overrides=[f"train.init_from={run}", f"train.init_sha256={'c' * 64}"]))
    with pytest.raises(SeldbenchError, match="train.init_from is not"):
        resolve_init(resolve(overrides=[f"train.init_sha256={sha}"]))
    with pytest.raises(SeldbenchError, match="no such run folder or checkpoint"):
        resolve_init(resolve(overrides=[f"train.init_from={tmp_path / 'nope'}"]))
    (run / "record.json").write_text(json.dumps({"checkpoint": {"sha256": "1" * 64}}))
    with pytest.raises(SeldbenchError, match="SHA-256"):
        resolve_init(resolve(overrides=[f"train.init_from={run}"]))


def test_a_train_slice_is_spread_over_the_split_and_the_same_for_every_seed():
    from types import SimpleNamespace

    from seldbench.training.run import train_slice

    clips = [SimpleNamespace(stem=f"fold3_room{r}_mix{m:03d}") for m in range(5) for r in (1, 2)]
    picked = [c.stem for c in train_slice(clips, 4)]
    assert picked == ["fold3_room1_mix000", "fold3_room1_mix003", "fold3_room2_mix001",
                      "fold3_room2_mix004"]
    assert train_slice(clips, None) is clips and train_slice(clips, 50) is clips
    assert len(train_slice(clips, 1)) == 1 and len(train_slice(clips, 9)) == 9


def test_a_committed_board_run_keeping_only_its_record_still_describes_its_output():
    """The fine-tuning boards start from leaderboards/runs folders holding record.json and
    best.pt only: the class count and the distance output come from the record's config."""
    from seldbench.training.finetune import init_source, locate_init

    run = Path(__file__).resolve().parent.parent / "leaderboards/runs/synth/crnn/" \
        "crnn-synth-s0-8aefc4be-h200"
    assert not (run / "config.json").exists()
    read = init_source(run / "best.pt", "unchecked")
    assert read.num_classes == 13 and read.with_distance is False
    source = locate_init(str(run))
    assert (source.num_classes, source.with_distance) == (13, False)
