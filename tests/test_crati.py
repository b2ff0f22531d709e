"""CRATI: CRNN equivalence, fusion masking, contrastive loss, offline encoders, end to end."""
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from seldbench.errors import SeldbenchError
from seldbench.registry import get_registry

C = 13
OFF = {"fusion": False, "loss": {"audio_text": 0.0, "audio_image": 0.0, "align": 0.0}}


@pytest.fixture(scope="module")
def specs():
    reg = get_registry()
    return reg.get_dataset("synth-mini"), reg.get_feature("foa_logmel_iv")


def _side(B=2, T=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(image=torch.randn(B, T, 32, 112, generator=g).half(), image_mask=torch.ones(B, T),
                event_cells=torch.randint(0, 32, (B, T, 3), generator=g).float(),
                event_mask=(torch.rand(B, T, 3, generator=g) > 0.5).float(),
                text=torch.randn(B, T, 384, generator=g).half(), text_mask=torch.ones(B, T))


def test_audio_only_crati_is_the_crnn(specs, one_torch_thread):
    from seldbench_plugins.crati import build
    from seldbench_plugins.crnn import build as build_crnn

    ds, fs = specs
    torch.manual_seed(3)
    crnn = build_crnn({}, ds, fs).eval()
    torch.manual_seed(3)
    crati = build(OFF, ds, fs).eval()
    x = torch.randn(2, 7, 250, 64)
    assert torch.equal(crati(x), crnn(x))
    for (name, p), q in zip(crati.trunk.named_parameters(), crnn.parameters()):
        assert torch.equal(p, q), name
    # and training mode returns the SELD output only (no contrastive term is computed)
    crati.train()
    out = crati(x, **_side())
    assert set(out) >= {"seld"} and "audio" not in out


EIN = {"channels": [8, 16, 16, 32], "d_model": 32, "heads": 4, "conformer_blocks": 1}


def test_crati_on_the_einv2_backbone_is_einv2_and_learns_with_its_pit_loss(specs,
                                                                          one_torch_thread):
    from seldbench.training.losses import pit_loss
    from seldbench_plugins.crati import build, training_loss
    from seldbench_plugins.crati.loss import frame_keys
    from seldbench_plugins.einv2 import build as build_einv2

    ds, fs = specs
    torch.manual_seed(3)
    einv2 = build_einv2(EIN, ds, fs).eval()
    torch.manual_seed(3)
    crati = build({**OFF, "backbone": "einv2", "trunk": EIN}, ds, fs).eval()
    x = torch.randn(2, 7, 250, 64)
    assert crati.output_format == "track_wise"
    assert torch.equal(crati(x), einv2(x))
    # the full model: track-wise targets (class one-hot, x, y, z per track)
    torch.manual_seed(0)
    opts = {"backbone": "einv2", "trunk": EIN, "class_queries": True,
            "loss": {"grounding": 0.1, "positive_sectors": 8}}
    m = build(opts, ds, fs).train()
    loss = training_loss(opts, ds)  # the factory: settings from the config, not the output
    y = torch.zeros(2, 50, 3, C + 3)
    y[:, :25, 0, 1] = 1.0
    y[:, :25, 0, C:] = m.fusion.directions[5]
    y[:, 10:30, 1, 7] = 1.0
    y[:, 10:30, 1, C:] = -m.fusion.directions[5]
    out = m(x, **_side())
    assert out["seld"].shape == (2, 50, 3 * (C + 3))
    seld = float(pit_loss(out["seld"].detach(), y))
    total = loss(out, y)
    assert set(out) <= {"seld", "scale", "grounding", "directions", "video_mask", "audio",
                        "image", "image_mask", "text", "text_mask"}  # tensors only
    seld_only = {k: 0.0 for k in ("audio_text", "audio_image", "align", "grounding")}
    seld_loss = training_loss({**opts, "loss": {**opts["loss"], **seld_only}}, ds)
    assert float(seld_loss(out, y)) == pytest.approx(seld, rel=1e-6)
    assert float(total) > seld + 0.1  # grounding and the contrastive terms on top
    total.backward()
    assert m.fusion.class_queries.grad.abs().sum() > 0
    assert next(m.trunk.sed_conformer.parameters()).grad.abs().sum() > 0
    # the same sources as an ADPIT target give the same positives
    adpit = torch.zeros(2, 50, 6, 4, C)
    adpit[:, :25, 0, 0, 1] = 1.0
    adpit[:, :25, 0, 1:4, 1] = m.fusion.directions[5]
    adpit[:, 10:30, 1, 0, 7] = 1.0
    adpit[:, 10:30, 1, 1:4, 7] = -m.fusion.directions[5]
    assert torch.equal(frame_keys(y, C, 8), frame_keys(adpit, C, 8))
    with pytest.raises(SeldbenchError, match="multi-ACCDOA output .*not track_wise"):
        build({"backbone": "einv2", "trunk": EIN, "class_queries": True, "presence": True,
               "visual_residual": True}, ds, fs)
    with pytest.raises(SeldbenchError, match="model.backbone='resnet'"):
        build({"backbone": "resnet"}, ds, fs)


def test_image_evidence_into_the_sed_stream_only_leaves_the_doa_stream_audio(specs,
                                                                           one_torch_thread):
    from seldbench_plugins.crati import build

    ds, fs = specs
    torch.manual_seed(0)
    m = build({"backbone": "einv2", "trunk": EIN, "class_queries": True, "fuse_into": "sed"},
              ds, fs).eval()
    for p in (m.fusion.out.weight, m.fusion.class_out.weight):  # non-zero, as after training
        torch.nn.init.normal_(p)
    x, side = torch.randn(2, 7, 250, 64), _side()
    h = m.trunk.embed(x)
    mask = side["image_mask"]
    fused, _, _ = m.fusion(h, side["image"], mask)
    d = m.trunk.d_model
    assert torch.equal(fused[..., d:], h[..., d:])  # DOA stream: the audio's own
    assert (fused[..., :d] - h[..., :d]).abs().amax() > 0.1  # SED stream: image added
    everywhere = build({"backbone": "einv2", "trunk": EIN, "class_queries": True}, ds, fs)
    everywhere.load_state_dict(m.state_dict())
    assert (everywhere.fusion(h, side["image"], mask)[0][..., d:] - h[..., d:]).abs().amax() > 0.1
    with pytest.raises(SeldbenchError, match="fuse_into='doa2': one of all, sed, doa"):
        build({"backbone": "einv2", "trunk": EIN, "fuse_into": "doa2"}, ds, fs)
    with pytest.raises(SeldbenchError, match="fuse_into='sed': one of all for backbone crnn"):
        build({"fuse_into": "sed"}, ds, fs)


def test_einv2_cpu_config_is_the_einv2_cpu_trunk_under_crati(specs, registry):
    from seldbench.config import resolve
    from seldbench_plugins.crati import build

    ds, fs = specs
    crati, einv2 = (registry.get_model(m).config for m in ("crati", "einv2"))
    experiments = Path(__file__).resolve().parent.parent / "configs" / "experiments"
    cfg = resolve(model_yaml=crati, experiment=experiments / "crati-einv2-cpu.yaml")
    ein = resolve(model_yaml=einv2, experiment=experiments / "einv2-cpu.yaml")
    assert cfg["features"] == ein["features"] and cfg["train"]["lr_milestones"] == [30]
    m = build(cfg["model"], ds, fs)
    trunk = {k: v for k, v in ein["model"].items() if k in cfg["model"]["trunk"]}
    assert cfg["model"]["trunk"] == trunk and m.output_format == "track_wise"
    assert m.trunk.d_model == 64 and len(m.trunk.sed_conformer[0]) == 1
    # its ablations change only what they ablate
    full, ablations = cfg["model"], {}
    for name, want in (("audio-only", {"fusion": False, "audio_text": 0.0, "audio_image": 0.0,
                                       "align": 0.0}),
                       ("text", {"fusion": False, "audio_text": 0.01, "audio_image": 0.0,
                                 "align": 0.0}),
                       ("image", {"fusion": True, "audio_text": 0.0, "audio_image": 0.01,
                                  "align": 0.0}),
                       ("contrastive", {"fusion": False, "audio_text": 0.01,
                                        "audio_image": 0.01, "align": 0.01})):
        ab = resolve(model_yaml=crati, experiment=experiments / f"crati-einv2-{name}.yaml")
        assert ab["features"] == cfg["features"] and ab["train"] == cfg["train"], name
        got = {"fusion": ab["model"]["fusion"], **{k: ab["model"]["loss"][k] for k in want
                                                   if k != "fusion"}}
        assert got == want, name
        same = ("backbone", "trunk", "image", "text") + (("video_dropout", "class_queries")
                                                         if want["fusion"] else ())
        assert all(ab["model"][k] == full[k] for k in same), name
        if want["fusion"] or want["audio_text"]:
            assert ab["model"]["loss"]["positive_sectors"] == 8, name
        ablations[name] = ab
    from seldbench_plugins.einv2 import build as build_einv2

    torch.manual_seed(0)
    control = build(ablations["audio-only"]["model"], ds, fs).eval()
    torch.manual_seed(0)
    einv2 = build_einv2(ein["model"], ds, fs).eval()
    x = torch.randn(1, 7, 250, 64)
    assert torch.equal(control(x), einv2(x))  # the audio-only row is einv2-cpu


def test_fusion_is_off_where_a_clip_has_no_video(specs, one_torch_thread):
    from seldbench_plugins.crati import build

    ds, fs = specs
    m = build({}, ds, fs).eval()
    torch.nn.init.normal_(m.fusion.out.weight)  # zero at init: give the fusion a say
    x, side = torch.randn(2, 7, 250, 64), _side()
    audio_only = m(x)
    masked = m(x, image=side["image"], image_mask=torch.zeros(2, 50))
    fused = m(x, image=side["image"], image_mask=side["image_mask"])
    assert torch.allclose(masked, audio_only, atol=1e-6)
    assert (fused - audio_only).abs().max() > 1e-3


def test_without_the_fusion_the_image_is_read_for_training_only(specs, tmp_path, monkeypatch):
    from seldbench.specs import ClipFiles
    from seldbench_plugins.crati import side_inputs
    from seldbench_plugins.crati.embeddings import ClipEmbedder

    ds = specs[0]
    read = []

    def tokens(self, clip, n):
        read.append(clip.stem)
        return np.ones((n, 32, 112), np.float16)

    monkeypatch.setattr(ClipEmbedder, "image_tokens", tokens)
    clips = [ClipFiles("c0", {}, None, tmp_path / "c0.mp4")]
    contrastive = {"fusion": False, "class_queries": False,
                   "loss": {"audio_text": 0.0, "align": 0.0}}  # audio-image InfoNCE only
    for cfg, want in (({}, ["c0"]), (contrastive, [])):  # test time: the fusion reads video
        read.clear()
        streams = side_inputs(cfg, ds, clips, {"c0": 10}, training=False, cache_dir=tmp_path,
                              device="cpu")
        assert read == want and ("image" in streams["c0"]) == bool(want)
    monkeypatch.setattr(ClipEmbedder, "event_cells",
                        lambda self, clip, dataset, n: (np.zeros((n, 3)), np.ones((n, 3))))
    read.clear()  # training: the audio-image terms read it with or without the fusion
    streams = side_inputs(contrastive, ds, clips, {"c0": 10}, training=True,
                          cache_dir=tmp_path, device="cpu")
    assert read == ["c0"] and streams["c0"]["image"].shape == (10, 32, 112)


def test_video_dropout_masks_whole_training_sequences_only(specs, one_torch_thread):
    from seldbench_plugins.crati import build

    ds, fs = specs
    m = build({"video_dropout": 0.5}, ds, fs)
    seen = []
    m.fusion.register_forward_hook(lambda mod, args, out: seen.append(args[2].clone()))
    x, side = torch.randn(16, 7, 250, 64), _side(B=16)
    torch.manual_seed(0)
    m.train()(x, **side)
    kept = seen[-1].amax(1)
    assert torch.equal(seen[-1], kept[:, None].expand(-1, 50))  # per sequence, not per frame
    assert 0 < kept.sum() < 16  # some sequences fused without video, some with
    m.eval()(x, image=side["image"], image_mask=side["image_mask"])
    assert torch.equal(seen[-1], torch.ones(16, 50))  # never at test time
    with pytest.raises(SeldbenchError, match="video_dropout"):
        build({"video_dropout": 1.0}, ds, fs)


def test_grounding_loss_matches_a_loop():
    from seldbench_plugins.crati.loss import grounding_loss

    g = torch.Generator().manual_seed(3)
    dirs = torch.nn.functional.normalize(torch.randn(6, 3, generator=g), dim=-1)
    logits = torch.randn(2, 4, 3, 6, generator=g)
    y = torch.zeros(2, 4, 6, 4, 3)
    events = [(0, 0, 0, 0, 2), (0, 0, 1, 0, 5), (0, 1, 3, 2, 1), (1, 2, 0, 1, 4), (1, 3, 4, 1, 4)]
    for b, t, slot, c, cell in events:  # (batch, frame, slot, class, cell of the source)
        y[b, t, slot, 0, c] = 1.0
        y[b, t, slot, 1:4, c] = dirs[cell] + 0.01
    video = torch.ones(2, 4)
    video[1, 3] = 0.0  # the last event's frame has no video: left out
    want = {}
    for b, t, slot, c, cell in events[:-1]:
        want.setdefault((b, t, c), set()).add(cell)
    terms = [-torch.log(logits[b, t, c].softmax(-1)[sorted(cells)].sum())
             for (b, t, c), cells in want.items()]
    got = grounding_loss(logits, y, dirs, video)
    assert torch.allclose(got, torch.stack(terms).mean(), atol=1e-6)


def test_class_queries_learn_from_the_grounding_term(specs, one_torch_thread):
    from seldbench.training.losses import adpit_loss
    from seldbench_plugins.crati import build, training_loss

    ds, fs = specs
    torch.manual_seed(0)
    m = build({"class_queries": True, "loss": {"grounding": 0.1}}, ds, fs).train()
    loss = training_loss({"class_queries": True, "loss": {"grounding": 0.1}}, ds)
    x, side = torch.randn(2, 7, 250, 64), _side()
    y = torch.zeros(2, 50, 6, 4, C)
    y[:, :25, 0, 0, 1] = 1.0
    y[:, :25, 0, 1:4, 1] = m.fusion.directions[5]
    out = m(x, **side)
    assert out["grounding"].shape == (2, 50, C, 32)
    total = loss(out, y)
    assert float(total) > float(adpit_loss(out["seld"], y)) + 0.1
    total.backward()
    assert m.fusion.class_queries.grad.abs().sum() > 0
    m.eval()
    assert m(x, image=side["image"], image_mask=side["image_mask"]).shape == (2, 50, 3 * 3 * C)
    with pytest.raises(SeldbenchError, match="grounding needs"):
        build({"fusion": False, "loss": {"grounding": 0.1}}, ds, fs)
    # narrow token projection (cheap fine grids): same outputs' shapes, fewer parameters
    narrow = build({"class_queries": True, "token_dim": 16, "slot_kernel": 5}, ds, fs).eval()
    assert narrow.fusion.kv.out_features == 16 and narrow.fusion.class_queries.shape == (C, 16)
    assert sum(p.numel() for p in narrow.fusion.parameters()) < \
        sum(p.numel() for p in m.fusion.parameters())
    torch.nn.init.normal_(narrow.fusion.class_out.weight)  # zero at init
    out = narrow(x, image=side["image"], image_mask=side["image_mask"])
    assert out.shape == (2, 50, 3 * 3 * C)
    # the temporal kernel: frame 10's output depends on the tokens of frames 8-12 only
    moved = {k: v.clone() for k, v in side.items()}
    moved["image"][:, 13] = moved["image"][:, 13] + 1
    diff = (narrow(x, image=moved["image"], image_mask=side["image_mask"]) - out).abs().amax((0, 2))
    assert diff[11] > 0 and diff[10] == 0 and diff[16] == 0
    with pytest.raises(SeldbenchError, match="slot_kernel=4"):
        build({"class_queries": True, "slot_kernel": 4}, ds, fs)
    with pytest.raises(SeldbenchError, match="token_dim='wide'"):
        build({"token_dim": "wide"}, ds, fs)
    with pytest.raises(SeldbenchError, match="loss.positive_sectors=-1"):
        build({"loss": {"positive_sectors": -1}}, ds, fs)


def test_positive_sectors_make_direction_part_of_a_positive():
    from seldbench_plugins.crati.loss import frame_keys

    y = torch.zeros(1, 3, 6, 4, C)
    for t, az in enumerate((10.0, 100.0, 30.0)):  # class 1 in frames 0-2 at these azimuths
        y[0, t, 0, 0, 1] = 1.0
        y[0, t, 0, 1, 1] = math.cos(math.radians(az))
        y[0, t, 0, 2, 1] = math.sin(math.radians(az))
    same = frame_keys(y, C)  # class sets: all three frames are positives
    assert torch.equal(same[0, 0], same[0, 1]) and torch.equal(same[0, 0], same[0, 2])
    keys = frame_keys(y, C, sectors=8)  # 45-deg sectors: 10 and 30 share one, 100 does not
    assert keys.shape == (1, 3, C, 8)
    assert torch.equal(keys[0, 0], keys[0, 2]) and not torch.equal(keys[0, 0], keys[0, 1])
    assert keys[0, 0, 1].sum() == 1 and keys[0, 0, 0].sum() == 0


def test_visual_presence_detector_is_trained_on_frames_with_video(specs, one_torch_thread):
    from seldbench_plugins.crati import build, training_loss

    ds, fs = specs
    torch.manual_seed(0)
    opts = {"class_queries": True, "presence": True, "loss": {"presence": 1.0}}
    m = build(opts, ds, fs)
    loss = training_loss(opts, ds)
    no_presence = training_loss({**opts, "loss": {"presence": 0.0}}, ds)
    m.train()
    x, side = torch.randn(2, 7, 250, 64), _side()
    y = torch.zeros(2, 50, 6, 4, C)
    y[:, :25, 0, 0, 1] = 1.0
    out = m(x, **side)
    assert out["presence"].shape == (2, 50, C)
    logits = out["presence"].detach()
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, (y[:, :, 0, 0] > 0.5).float())
    base = no_presence({**out, "presence": logits}, y)
    assert torch.allclose(loss(out, y) - base, want, atol=1e-5)
    side["image_mask"][:] = 0.0  # no video anywhere: no presence term
    out = m(x, **side)
    assert torch.allclose(loss(out, y), no_presence(out, y))
    loss(m(x, **_side()), y).backward()
    assert m.fusion.presence.weight.grad.abs().sum() > 0
    with pytest.raises(SeldbenchError, match="presence needs"):
        build({"class_queries": True, "loss": {"presence": 1.0}}, ds, fs)


def test_visual_residual_adds_the_gated_detector_along_the_attended_direction(specs,
                                                                              one_torch_thread):
    from seldbench_plugins.crati import build, training_loss

    ds, fs = specs
    opts = {"class_queries": True, "presence": True}
    loss = training_loss({**opts, "visual_residual": True}, ds)
    torch.manual_seed(0)
    plain = build(opts, ds, fs).eval()
    torch.manual_seed(0)
    m = build({**opts, "visual_residual": True}, ds, fs).eval()
    x, side = torch.randn(2, 7, 250, 64), _side()
    video = dict(image=side["image"], image_mask=side["image_mask"].clone())
    video["image_mask"][1, 20:] = 0.0  # the second clip loses its video at frame 20
    assert torch.equal(m(x, **video), plain(x, **video))  # gain 0 at init: nothing added
    with torch.no_grad():
        m.residual[0] = torch.linspace(0.5, 1.5, C)
        m.residual[:, 4] = torch.tensor([0.75, 2.0, -1.0])  # class 4: gain, scale, shift
    got = m(x, **video).reshape(2, 50, 3, 3, C)
    base = plain(x, **video).reshape(2, 50, 3, 3, C)
    # by hand for class 4: its presence logit and attention from the fusion
    _, grounding, seen = m.fusion(m.trunk.embed(x), video["image"], video["image_mask"])
    where = torch.nn.functional.normalize(grounding[:, :, 4].softmax(-1) @ m.fusion.directions,
                                          dim=-1)  # (B, T, 3)
    strength = 0.75 * torch.sigmoid(2.0 * seen[:, :, 4] - 1.0) * video["image_mask"]
    want = base[..., 4] + (strength[..., None] * where)[:, :, None]  # every track
    assert torch.allclose(got[..., 4], want, atol=1e-5)
    assert torch.equal(got[1, 20:], base[1, 20:])  # no video: the audio output alone
    assert (got[0, :, 0, :, 4] - base[0, :, 0, :, 4]).norm(dim=-1).amin() > 0.01
    # the SELD loss alone trains the detector through this path
    m.train()
    y = torch.zeros(2, 50, 6, 4, C)
    y[:, :25, 0, 0, 4] = 1.0
    out = m(x, **side)
    assert "presence" not in out  # no presence loss configured
    loss(out, y).backward()
    assert m.fusion.presence.weight.grad.abs().sum() > 0 and m.residual.grad[0].abs().sum() > 0
    with pytest.raises(SeldbenchError, match="visual_residual needs"):
        build({"class_queries": True, "visual_residual": True}, ds, fs)


def test_multi_positive_nce_matches_a_loop():
    from seldbench_plugins.crati.loss import multi_positive_nce

    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=-1)
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    pos = labels[:, None] == labels[None, :]
    scale = torch.tensor(5.0)

    def one_way(p, q, pos):
        total = 0.0
        for i in range(len(p)):
            logits = [float(scale * p[i] @ q[j]) for j in range(len(q))]
            lse = np.log(np.sum(np.exp(logits)))
            total += np.mean([logits[j] - lse for j in range(len(q)) if pos[i, j]])
        return -total / len(p)

    want = 0.5 * (one_way(a, b, pos) + one_way(b, a, pos.T))
    assert float(multi_positive_nce(a, b, pos, scale)) == pytest.approx(want, rel=1e-5)


def test_contrastive_terms_train_every_head(specs, one_torch_thread):
    from seldbench_plugins.crati import build, training_loss

    ds, fs = specs
    torch.manual_seed(0)
    m = build({}, ds, fs).train()
    loss = training_loss({}, ds)
    x = torch.randn(2, 7, 250, 64)
    y = torch.zeros(2, 50, 6, 4, C)
    y[:, :25, 0, 0, 1] = 1.0  # class 1 sounds in the first half: two class sets
    out = m(x, **_side())
    total = loss(out, y)
    from seldbench.training.losses import adpit_loss

    assert float(total) > float(adpit_loss(out["seld"], y)) + 1e-3
    total.backward()
    for head in (m.audio_proj, m.image_proj, m.text_proj):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert m.logit_scale.grad is not None


def test_missing_or_wrong_local_weights_are_one_clear_error(specs, tmp_path):
    from seldbench_plugins.crati import build

    ds, fs = specs
    with pytest.raises(SeldbenchError, match=r"model.image.weights: .*nope.pth: no such file"):
        build({"image": {"weights": str(tmp_path / "nope.pth")}}, ds, fs)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(SeldbenchError, match=r"wrong.pth: its 1 tensors do not match"):
        build({"image": {"weights": str(wrong)}}, ds, fs)
    with pytest.raises(SeldbenchError, match=r"model.image.weights is null.*resnet18"):
        build({"image": {"encoder": "resnet18"}}, ds, fs)
    (tmp_path / "notmodel").mkdir()
    with pytest.raises(SeldbenchError, match=r"model.text.encoder: .*notmodel: no config.json"):
        build({"text": {"encoder": str(tmp_path / "notmodel")}}, ds, fs)
    with pytest.raises(SeldbenchError, match=r"unknown config key 'model.loss.audio_txt'.*"
                                             r"did you mean 'model.loss.audio_text'"):
        build({"loss": {"audio_txt": 1.0}}, ds, fs)


def test_a_trained_crati_loads_and_predicts_without_its_text_encoder(specs, tmp_path,
                                                                   one_torch_thread):
    from seldbench_plugins.crati import build

    ds, fs = specs
    torch.manual_seed(0)
    trained = build({}, ds, fs)  # the installed text encoder (384-d)
    gone = {"text": {"encoder": str(tmp_path / "elsewhere")}}  # not on this machine
    model = build(gone, ds, fs)
    assert model.text_proj is None
    model.load_state_dict(trained.state_dict())  # strict: the text head comes from the weights
    assert model.text_proj[0].weight.shape == (256, 384)
    trained.eval(), model.eval()
    side = _side()
    x = torch.randn(2, 7, 250, 64)
    with torch.no_grad():  # test time: audio and video, no text
        assert torch.equal(model(x, image=side["image"], image_mask=side["image_mask"]),
                           trained(x, image=side["image"], image_mask=side["image_mask"]))
    untrained = build(gone, ds, fs).train()
    with pytest.raises(SeldbenchError, match=r"model.text.encoder: not found .* 384-d text"):
        untrained(x, **side)


def test_grid_cells_follow_the_video_convention():
    from seldbench.data.synth.video import direction_to_pixel
    from seldbench.data.video import direction_cell, grid_directions

    rows, cols = 4, 8
    centres = grid_directions(rows, cols)
    assert np.array_equal(direction_cell(centres[:, 0], centres[:, 1], rows, cols),
                          np.arange(rows * cols))
    rng = np.random.default_rng(0)
    az, el = rng.uniform(-180, 180, 50), rng.uniform(-89, 89, 50)
    u, v = direction_to_pixel(az, el, 360, 180)  # where the synthetic video draws a source
    cell = (np.floor(np.asarray(v) / 180 * rows) * cols + np.floor(np.asarray(u) / 360 * cols))
    assert np.array_equal(direction_cell(az, el, rows, cols), cell.astype(int) % (rows * cols))


def test_crati_trains_and_predicts_offline_on_synth_mini(synth_env, tmp_path, monkeypatch):
    from seldbench.training.inference import predict_to_csv
    from seldbench.training.run import run

    from seldbench.training.warm_cache import warm_cache

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    cache = tmp_path / "cache"
    overrides = ["train.epochs=1", "train.batch_size=4", "train.threads=1",
                 f"features.cache_dir={cache}", "eval.jackknife=false"]
    # `seldbench cache` first, in 2 processes: the run must then find everything it reads
    warm = warm_cache("crati", "synth-mini", None, overrides, workers=2, log=lambda m: None)
    assert warm["clips"] == 6

    def listing():
        return {p.relative_to(cache): p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}

    warmed = listing()
    rec = run("crati", "synth-mini", overrides=overrides, out=str(tmp_path / "runs"),
              progress=False, log=lambda m: None)
    assert listing() == warmed  # nothing computed again, nothing missing
    assert rec["status"] == "complete" and rec["model"]["name"] == "crati"
    assert set(rec["results"]["dcase2023"]["figures"]) == {"ER", "F", "LE", "LR", "SELD"}
    # frozen encoders: one cache entry per clip (image for all 6 clips, text for train only)
    images = sorted((cache / "crati" / "image").glob("*.npy"))
    texts = sorted((cache / "crati" / "text").glob("*.npy"))
    assert len(images) == 6 and 0 < len(texts) < 6
    tok = np.load(images[0])
    assert tok.dtype == np.float16 and tok.shape[1:] == (32, 112) and np.abs(tok.astype(np.float32)).sum() > 0
    # predict a user's recording with its video (image tokens computed as in training)
    root = Path(os.environ["SELDBENCH_SYNTH_MINI_ROOT"])
    wav = sorted(root.glob("foa_dev/*/*.wav"))[0]
    mp4 = next(root.glob(f"video_dev/*/{wav.stem}.mp4"))
    run_dir = next((tmp_path / "runs").rglob("record.json")).parent

    def not_installed():
        raise SeldbenchError("the text encoder package is not installed")

    # a user's machine without the text encoder: text is a training signal only
    monkeypatch.setattr("seldbench_plugins.crati.encoders.default_text_encoder", not_installed)
    table = predict_to_csv(run_dir, wav, tmp_path / "pred.csv", video_path=mp4)
    assert (tmp_path / "pred.csv").exists() and table.path is not None


def _tuned_and_frozen(specs, image: dict):
    """A CRATI with a fine-tuned image encoder and the frozen one with the same weights (and
    a non-zero fusion output, so that the image path shows in the output)."""
    from seldbench_plugins.crati import build

    ds, fs = specs
    torch.manual_seed(0)
    tuned, frozen = build({"image": image}, ds, fs), build({}, ds, fs)
    frozen.load_state_dict({k: v for k, v in tuned.state_dict().items()
                            if not k.startswith(("image_encoder.", "image_tail."))})
    torch.nn.init.normal_(tuned.fusion.out.weight)
    frozen.fusion.out.weight.data.copy_(tuned.fusion.out.weight.data)
    return tuned, frozen


def test_fine_tuned_encoder_sees_frames_and_learns(specs, one_torch_thread):
    tuned, frozen = _tuned_and_frozen(specs, {"finetune": True})
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (1, 10, 64, 128, 3), dtype=torch.uint8, generator=g)
    x, mask = torch.randn(1, 7, 50, 64), torch.ones(1, 10)
    tuned.eval()
    frozen.eval()
    with torch.no_grad():  # the same encoder: frames encoded in the model == cached tokens
        tokens = tuned.encode_frames(frames)
        assert tokens.shape == (1, 10, 32, 112)
        assert torch.equal(tokens[:, 0], tokens[:, 1])  # every 2nd frame encoded, held
        assert torch.allclose(tuned(x, frames=frames, image_mask=mask),
                              frozen(x, image=tokens, image_mask=mask), atol=1e-5)
    tuned.train()
    assert not tuned.image_encoder.training  # BN statistics stay pretrained
    out = tuned(x, frames=frames, image_mask=mask)
    out["seld"].pow(2).sum().backward()
    grads = [p.grad for p in tuned.image_encoder.parameters() if p.grad is not None]
    assert grads and sum(float(gr.abs().sum()) for gr in grads) > 0


def test_last_blocks_of_the_encoder_fine_tuned_on_cached_earlier_tokens(specs, tmp_path,
                                                                       one_torch_thread):
    from seldbench_plugins.crati import build
    from seldbench_plugins.crati.embeddings import ClipEmbedder
    from seldbench_plugins.crati.encoders import ImageEncoder

    ds, fs = specs
    tuned, frozen = _tuned_and_frozen(specs, {"finetune": True, "finetune_blocks": 6})
    assert tuned.image_encoder is None and tuned.image_tail is not None
    g = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (5, 64, 128, 3), dtype=torch.uint8, generator=g)
    with torch.no_grad():  # the cache holds the tokens 6 blocks before stage 3: stage 2's
        stage2 = ImageEncoder(stage=2).eval()(pixels)
        assert torch.equal(ImageEncoder(stage=3, cut=6).eval()(pixels), stage2)
        stage3 = ImageEncoder(stage=3).eval()(pixels)
        # one block: its input is blocks.4.1's output, 4 x 8 cells of 112 channels
        assert ImageEncoder(stage=3, cut=1).eval()(pixels).shape == (5, 32, 112)
    assert stage2.shape == (5, 128, 40) and stage3.shape == (5, 32, 112)
    x, mask = torch.randn(1, 7, 50, 64), torch.ones(1, 10)
    held = lambda t: t.repeat_interleave(2, 0).unsqueeze(0)  # noqa: E731  (1, 10, cells, ch)
    tuned.eval()
    frozen.eval()
    with torch.no_grad():  # at initialisation the tail is the pretrained encoder's layers
        assert torch.allclose(tuned(x, image=held(stage2), image_mask=mask),
                              frozen(x, image=held(stage3), image_mask=mask), atol=1e-4)
    tuned.train()
    assert not tuned.image_tail.training  # BN statistics stay pretrained
    tuned(x, image=held(stage2), image_mask=mask)["seld"].pow(2).sum().backward()
    grads = [p.grad for p in tuned.image_tail.parameters() if p.grad is not None]
    assert grads and sum(float(gr.abs().sum()) for gr in grads) > 0
    # the embedder caches stage-2 tokens under their own key, but grounds events on stage 3
    image_cfg = {"encoder": "tf_efficientnet_lite0", "weights": None, "stage": 3,
                 "input_size": [64, 128], "every": 2, "finetune": True, "finetune_blocks": 6}
    emb = ClipEmbedder(image_cfg, {"encoder": None, "seed": 0}, tmp_path)
    plain = ClipEmbedder({**image_cfg, "finetune": False}, {"encoder": None, "seed": 0}, tmp_path)
    assert emb.cached_shape == (128, 40) and emb.grid == plain.grid == (4, 8)
    assert emb._key("image")["cut"] == 6 and "cut" not in plain._key("image")
    assert {k: v for k, v in plain._key("image").items()} == {
        "what": "image", "version": 1, "encoder": "tf_efficientnet_lite0", "every": "2",
        "input_size": "[64, 128]", "stage": "3", "weights": None}  # frozen caches stay valid
    with pytest.raises(SeldbenchError, match=r"finetune_blocks=11: 1..10 \(of the 11 blocks"):
        build({"image": {"finetune": True, "finetune_blocks": 11}}, ds, fs)


def _fixture_run(tmp_path, dataset, root, more=(), log=lambda m: None):
    from seldbench.training.run import run

    return run("crati", dataset, overrides=[
        "train.epochs=1", "train.batch_size=8", "train.threads=1", "eval.jackknife=false",
        f"dataset.root={root}", f"features.cache_dir={tmp_path / 'cache'}", *more],
        out=str(tmp_path / "runs"), progress=False, log=log)


def test_tail_convolutions_are_the_library_ones_to_rounding(one_torch_thread):
    import copy

    from seldbench_plugins.crati.convs import DepthwiseConv, PointwiseConv, swap_convs
    from seldbench_plugins.crati.encoders import ImageEncoder

    ref = torch.nn.Sequential(*copy.deepcopy(ImageEncoder(stage=3)._blocks()[-4:])).double()
    fast = swap_convs(copy.deepcopy(ref))
    assert list(fast.state_dict()) == list(ref.state_dict())  # checkpoints load either way
    kinds = [type(m) for m in fast.modules()]
    # blocks.3.2 and blocks.4.*: two 1 x 1 and one depthwise 'same' conv each
    assert kinds.count(PointwiseConv) == 8 and kinds.count(DepthwiseConv) == 4
    odd = torch.nn.Sequential(torch.nn.Conv2d(6, 6, (3, 5), padding=(1, 2), groups=6, bias=False),
                              torch.nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6, bias=False),
                              torch.nn.Conv2d(6, 4, 1, bias=True)).double()
    odd_fast = swap_convs(copy.deepcopy(odd))
    assert [type(m) for m in odd_fast] == [DepthwiseConv, torch.nn.Conv2d, torch.nn.Conv2d]
    g = torch.Generator().manual_seed(0)
    for a, b, shape in ((ref, fast, (7, 80, 4, 8)), (odd, odd_fast, (3, 6, 5, 9))):
        a.eval(), b.eval()
        x = torch.randn(*shape, dtype=torch.float64, generator=g)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = a(xa), b(xb)
        assert torch.allclose(ya, yb, atol=1e-12)
        w = torch.randn(ya.shape, dtype=torch.float64, generator=g)
        (ya * w).sum().backward()
        (yb * w).sum().backward()
        assert torch.allclose(xa.grad, xb.grad, atol=1e-12)
        for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
            assert torch.allclose(pa.grad, pb.grad, atol=1e-10), name


@pytest.mark.e2e  # long: generation in worker processes, or training
def test_crati_runs_on_a_starss23_tree_with_and_without_video(tmp_path, one_torch_thread):
    from dataset_trees import make_starss_tree

    clips = {(3, 4): 3, (3, 6): 2, (3, 21): 2, (4, 2): 2, (4, 23): 1}  # room 21: no video
    root = make_starss_tree(tmp_path / "starss", clips)
    logs = []
    rec = _fixture_run(tmp_path, "starss23", root, log=logs.append)
    assert rec["status"] == "complete" and rec["results"]["dcase2023"]["figures"]
    images = list((tmp_path / "cache" / "crati" / "image").glob("*.npy"))
    assert len(images) == 8  # every clip with video, and only those
    assert not any(p.name.startswith("fold3_room21") for p in images)
    assert sum(rec["dataset"]["clips_without_video"].values()) == 2  # the room-21 clips
    assert any("reads video, but 2 of" in m for m in logs)
    assert any("first-design defaults" in m and "crati-einv2-cpu.yaml" in m for m in logs)
    # without video_dev/ the same command is a run on other data, and says so
    import shutil

    shutil.rmtree(root / "video_dev")
    logs.clear()
    bare = _fixture_run(tmp_path, "starss23", root, log=logs.append)
    assert bare["dataset"]["data_hash"] != rec["dataset"]["data_hash"]
    assert bare["run_id"] != rec["run_id"] and any("no video at all" in m for m in logs)


@pytest.mark.e2e  # long: generation in worker processes, or training
def test_crati_on_einv2_runs_on_tau_nigens_2021_without_video(tmp_path, one_torch_thread):
    from dataset_trees import make_tau_tree
    from seldbench.training.inference import predict_to_csv

    root = make_tau_tree(tmp_path / "tau")
    trunk = "{" + ", ".join(f"{k}: {v}" for k, v in EIN.items()) + "}"  # an open section
    rec = _fixture_run(tmp_path, "tau-nigens-2021", root,
                       ["model.backbone=einv2", f"model.trunk={trunk}"])
    assert rec["status"] == "complete" and rec["results"]["dcase2021"]["figures"]
    assert rec["config"]["model"]["backbone"] == "einv2"
    assert not (tmp_path / "cache" / "crati" / "image").exists()  # no video: no image work
    assert len(list((tmp_path / "cache" / "crati" / "text").glob("*.npy"))) > 0
    run_dir = next((tmp_path / "runs").rglob("record.json")).parent
    wav = sorted(Path(root).rglob("*.wav"))[0]
    table = predict_to_csv(run_dir, wav, tmp_path / "pred.csv")  # decoded as track-wise
    assert (tmp_path / "pred.csv").exists() and table.path is not None


def test_same_keys_is_row_equality_for_any_key_width():
    """The packed comparison behind the contrastive positives equals the plain definition,
    including widths at and across the 62-bit packing boundary."""
    from seldbench_plugins.crati.loss import same_keys

    g = torch.Generator().manual_seed(0)
    for k in (0, 1, 13, 61, 62, 63, 104, 130):
        base = torch.rand(30, k, generator=g) < 0.3
        keys = base[torch.randint(0, 30, (200,), generator=g)]  # repeated rows: positives
        want = (keys[:, None, :] == keys[None, :, :]).all(-1)
        got = same_keys(keys)
        assert torch.equal(got, want), k
        assert got.diagonal().all()
