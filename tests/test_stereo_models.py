"""EINV2 and CRATI on stereo input: EINV2's multi_accdoa_stereo head, the perspective grid cells
CRATI's image side reads, CRATI's stereo loss, and both models run end to end on
synth-stereo-mini."""
import numpy as np
import pytest
import torch

TINY_EINV2 = {"channels": [8, 16, 16, 32], "d_model": 32, "heads": 4, "conformer_blocks": 1}


def _csv(tmp_path, rows):
    path = tmp_path / "clip.csv"
    path.write_text("frame,class,source,azimuth,distance,onscreen\n"
                    + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_perspective_cells_follow_the_camera_of_the_crop():
    from seldbench.data.synth.stereo import PERSPECTIVE_SIZE, onscreen, perspective_map
    from seldbench.data.synth.video import direction_to_pixel
    from seldbench.data.video import direction_cell, grid_directions
    from seldbench.errors import SeldbenchError

    rows, cols = 3, 8
    centres = grid_directions(rows, cols, projection="perspective")
    assert np.array_equal(direction_cell(centres[:, 0], centres[:, 1], rows, cols,
                                         projection="perspective"), np.arange(rows * cols))
    # left half of the image looks left, top row up; the outer columns near the 50-deg edge
    assert (centres[:cols // 2, 0] > 0).all() and (centres[:cols, 1] > 0).all()
    assert 40 < centres[0, 0] < 50 and onscreen(centres[:, 0], centres[:, 1]).all()
    # a cell per pixel: where the synth crop shows a direction is the cell it maps to
    w, h = PERSPECTIVE_SIZE
    for az, el in [(30.0, 0.0), (-42.0, 10.0), (5.0, -20.0)]:
        img = np.zeros((720, 1440), np.uint8)  # a quarter degree a pixel
        u, v = direction_to_pixel(40.0 + az, el, 1440, 720)
        img[int(v) - 2:int(v) + 3, int(u) - 2:int(u) + 3] = 255  # seen by the crop's sampling
        ys, xs = np.nonzero(img[perspective_map(40.0, (1440, 720))])
        cell = int(direction_cell(az, el, h, w, projection="perspective"))
        assert abs(cell // w - ys.mean()) < 1.5 and abs(cell % w - xs.mean()) < 1.5
    # the equirectangular grid is another mapping: the front is its centre column
    assert int(direction_cell(0.0, 0.0, 1, 8)) in (3, 4)
    with pytest.raises(SeldbenchError, match="video projection 'fisheye'"):
        grid_directions(2, 2, projection="fisheye")


def test_einv2_stereo_head_couples_activity_and_keeps_foa_track_wise(registry,
                                                                     one_torch_thread):
    from seldbench.errors import SeldbenchError
    from seldbench.specs import model_output

    spec, ds = registry.get_model("einv2"), registry.get_dataset("stereo-seld")
    stereo = registry.get_feature("stereo_logmel_ild_ipd_ms")
    torch.manual_seed(0)
    model = spec.build(TINY_EINV2, ds, stereo).eval()
    assert model_output(model, spec) == ("multi_accdoa_stereo", True)
    C = len(ds.classes)
    x = torch.randn(1, 7, 50, 64)
    for head in model.sed_head:  # SED says nothing is active: every (x, y) is 0
        torch.nn.init.constant_(head.bias, -50.0)
    with torch.no_grad():
        y = model(x).reshape(1, 10, 3, 4, C)
    assert y[:, :, :, :2].abs().max() < 1e-6 and (y[:, :, :, 2] >= 0).all()
    assert y[:, :, :, 3].abs().sum() > 0  # onscreen logits are not gated
    with pytest.raises(SeldbenchError, match="model.with_distance is for track_wise"):
        spec.build({**TINY_EINV2, "with_distance": True}, ds, stereo)
    with pytest.raises(SeldbenchError, match="model.output 'multi_accdoa' .expected track_wise "
                                             "or stereo."):
        spec.build({**TINY_EINV2, "output": "multi_accdoa"}, ds, stereo)
    foa = spec.build(TINY_EINV2, registry.get_dataset("synth-mini"),
                     registry.get_feature("foa_logmel_iv_128"))
    assert model_output(foa, spec)[0] == "track_wise"
    # the default stereo feature set is the one whose 4 log-mels feed the SED branch
    from seldbench.training.plan import resolve_run_config

    cfg = resolve_run_config("einv2", "stereo-seld", registry=registry)
    assert cfg["features"]["name"] == "stereo_logmel_ild_ipd_ms"


def test_stereo_labels_give_track_targets_and_texts_on_the_horizon(tmp_path):
    from seldbench.data.labels import describe_frames, read_metadata, track_targets

    table = read_metadata(_csv(tmp_path, [[1, 3, 0, 30, 150, 1], [2, 3, 0, -120, 150, 0]]),
                          6, 13, "dcase2025")
    tt = track_targets(table, 3, 13)
    assert tt.cls[:, 0].tolist() == [-1, 3, 3]
    np.testing.assert_allclose(tt.xyz[1, 0], [np.cos(np.radians(30)), 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(tt.xyz[2, 0], [-0.5, -np.sin(np.radians(60)), 0.0], atol=1e-6)
    text = describe_frames(table, 3, [f"c{i}" for i in range(13)]).frame
    assert "azimuth 30" in text[1] and "on the right" in text[2]


def test_crati_stereo_loss_is_the_stereo_adpit_and_grounds_onscreen_sources(tmp_path, registry):
    from seldbench.data.labels import read_metadata, stereo_adpit_targets
    from seldbench.training.losses import stereo_adpit_loss
    from seldbench_plugins.crati import training_loss
    from seldbench_plugins.crati.loss import grounding_loss, sources

    C = 13
    # class 2 on screen at azimuth 20, class 5 off screen at azimuth 120
    table = read_metadata(_csv(tmp_path, [[0, 2, 0, 20, 150, 1], [0, 5, 0, 120, 300, 0]]),
                          6, C, "dcase2025")
    target = torch.from_numpy(stereo_adpit_targets(table, 2, C))[None]  # (1, 2, 6, 5, C)
    active, xyz = sources(target, C, "multi_accdoa_stereo")
    assert active[0, 0].any(0).nonzero().flatten().tolist() == [2, 5]
    k = active[0, 0, :, 5].nonzero()[0, 0]
    assert torch.allclose(xyz[0, 0, k, 5], torch.tensor([np.cos(np.radians(120)),
                                                         np.sin(np.radians(120)), 0.0]).float())
    seen, _ = sources(target, C, "multi_accdoa_stereo", visible=True)
    assert seen[0, 0].any(0).nonzero().flatten().tolist() == [2]
    # grounding: class 5 (off screen) has no positive cell, so its logits do not matter
    dirs = torch.eye(3)[:2]  # two cells: front, left
    logits = torch.zeros(1, 2, C, 2)
    base = grounding_loss(logits, target, dirs, torch.ones(1, 2), "multi_accdoa_stereo")
    logits[0, 0, 5] = torch.tensor([9.0, -9.0])
    assert grounding_loss(logits, target, dirs, torch.ones(1, 2),
                          "multi_accdoa_stereo") == pytest.approx(float(base))
    # the visual residual pushes multi-ACCDOA (x, y, z) vectors: refused on the stereo output
    from seldbench.errors import SeldbenchError
    from seldbench_plugins.crati import build

    with pytest.raises(SeldbenchError, match="visual_residual needs a multi-ACCDOA output .* "
                                             "not multi_accdoa_stereo"):
        build({"class_queries": True, "presence": True, "visual_residual": True},
              registry.get_dataset("stereo-seld"), registry.get_feature("stereo_logmel_ild_ipd"))
    # the loss factory picks the stereo SELD loss on stereo labels, whatever the backbone
    out = torch.randn(1, 2, 3 * 4 * C)
    for backbone in ("crnn", "einv2"):
        loss = training_loss({"backbone": backbone}, registry.get_dataset("stereo-seld"))
        assert float(loss(out, target)) == pytest.approx(float(stereo_adpit_loss(out, target)))


@pytest.mark.parametrize("model,overrides", [
    ("einv2", [f"model.{k}={v}" for k, v in TINY_EINV2.items()]),
    ("crati", ["model.backbone=einv2", "model.embed_dim=32",
               "features.name=stereo_logmel_ild_ipd_ms",  # 4 log-mels for its SED branch
               "model.trunk={" + ", ".join(f"{k}: {v}" for k, v in TINY_EINV2.items()) + "}"]),
    ("crati", ["model.embed_dim=32"]),  # the default CRNN trunk
])
def test_einv2_and_crati_run_on_synth_stereo_mini(model, overrides, synth_env, registry,
                                                  tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from seldbench.cli import main

    monkeypatch.setenv("SELDBENCH_SYNTH_STEREO_MINI_ROOT", str(synth_env / "stereo-mini"))
    args = ["run", "--model", model, "--dataset", "synth-stereo-mini",
            "--out", str(tmp_path / "runs"), "--set", "train.epochs=1",
            "--set", "train.batch_size=4", "--set", "train.threads=1",
            "--set", f"features.cache_dir={tmp_path / 'cache'}",
            "--set", "eval.jackknife=false", "--set", "eval.threshold=0.01"]
    for o in overrides:
        args += ["--set", o]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    rec = json.loads(next((tmp_path / "runs").rglob("record.json")).read_text())
    assert rec["status"] == "complete" and rec["model"]["name"] == model
    figures = rec["results"]["dcase2025"]["figures"]
    assert {"F", "F_onscreen", "OnscreenAcc"} <= set(figures)
    if model != "crati":
        return
    # the image side: tokens of the perspective frames, event cells of on-screen sources only
    from seldbench.data.roots import resolve_root
    from seldbench.data.labels import read_metadata
    from seldbench_plugins.crati import resolve
    from seldbench_plugins.crati.embeddings import ClipEmbedder

    assert len(list((tmp_path / "cache" / "crati" / "image").glob("*.npy"))) > 0
    ds = registry.get_dataset("synth-stereo-mini")
    clips = ds.list_clips(resolve_root(ds), "train")
    opts = resolve(rec["config"]["model"])
    emb = ClipEmbedder(opts["image"], opts["text"], tmp_path / "cache", "cpu")
    on_total = 0
    for clip in clips:
        table = read_metadata(clip.metadata, 6, len(ds.classes), "dcase2025")
        cells, mask = emb.event_cells(clip, ds, 50)
        on = (table.onscreen > 0) & (table.frame < 50)
        per_frame = np.bincount(table.frame[on], minlength=50)
        assert mask.sum() == np.minimum(per_frame, 3).sum()  # up to 3 tracks a frame
        assert (cells[mask == 0] == 0).all()
        on_total += int(on.sum())
    assert on_total > 0
