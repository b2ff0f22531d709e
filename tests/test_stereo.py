"""Stereo SELD (DCASE 2025): the stereo-seld dataset, stereo features, the multi_accdoa_stereo
targets / loss / decoder, and a CRNN run end to end on a fixture tree."""
import shutil

import numpy as np
import pytest
import torch


def _stems(spec, root, split):
    return [c.stem for c in spec.list_clips(root, split)]


def test_splits_carve_val_by_whole_source_recordings(registry, stereo_root):
    from dataset_trees import STEREO_CLIPS

    spec = registry.get_dataset("stereo-seld")
    assert spec.formats == ("stereo",) and spec.metric_suites == ("dcase2025",)
    train, val, test = (_stems(spec, stereo_root, s) for s in ("train", "val", "test"))
    src = lambda stem: stem.split("_deg")[0]  # noqa: E731
    assert {src(s) for s in train}.isdisjoint({src(s) for s in val})
    assert {src(s) for s in test} == set(STEREO_CLIPS["dev-test-tau"]) | set(STEREO_CLIPS["dev-test-sony"])
    all_train = {src: n for sub in ("dev-train-tau", "dev-train-sony")
                 for src, n in STEREO_CLIPS[sub].items()}
    assert len(train) + len(val) == sum(all_train.values())
    for s in {src(v) for v in val}:  # every cut of a validation recording is in val
        assert sum(src(v) == s for v in val) == all_train[s]
    # both real folders give validation recordings, and the choice is stable
    subs = {c.audio["stereo"].parent.name for c in spec.list_clips(stereo_root, "val")}
    assert subs == {"dev-train-tau", "dev-train-sony"}
    assert val == _stems(spec, stereo_root, "val")
    clip = spec.list_clips(stereo_root, "test")[0]
    assert clip.video is not None and clip.video.is_file()


def test_bad_names_and_missing_folders_are_named(registry, stereo_root, tmp_path):
    from seldbench.errors import SeldbenchError

    spec = registry.get_dataset("stereo-seld")
    root = shutil.copytree(stereo_root, tmp_path / "t")
    bad = root / "stereo_dev/dev-train-tau/clip_without_source.wav"
    shutil.copy(next((root / "stereo_dev/dev-train-tau").glob("*.wav")), bad)
    with pytest.raises(SeldbenchError, match="clip_without_source.wav: file name does not start"):
        spec.list_clips(root, "train")
    bad.unlink()
    shutil.rmtree(root / "metadata_dev/dev-test-sony")
    with pytest.raises(SeldbenchError, match="metadata_dev/dev-test-sony: missing folder"):
        spec.list_clips(root, "test")


def test_verify_checks_two_channels_and_the_2025_csv(registry, stereo_root, tmp_path):
    from dataset_trees import write_wav

    from seldbench.data.verify import verify_dataset

    spec = registry.get_dataset("stereo-seld")
    clean = verify_dataset(spec, stereo_root, video=True)
    assert clean.ok, clean.problems
    assert clean.checked["wav"] == clean.checked["csv"] == clean.checked["mp4"] == 19
    root = shutil.copytree(stereo_root, tmp_path / "t")
    wav = next((root / "stereo_dev/dev-test-tau").glob("*.wav"))
    write_wav(wav, channels=4)
    csv = next((root / "metadata_dev/dev-test-sony").glob("*.csv"))
    csv.write_text("frame,class,source,azimuth,distance,onscreen\n3,2,0,200,100,1\n")
    lines = verify_dataset(spec, root).problems
    assert f"{wav}: 4 channels, expected 2 for the stereo format" in lines
    assert any(line.startswith(f"{csv}:2: azimuth 200") for line in lines), lines


def test_read_audio_is_format_aware(tmp_path):
    from dataset_trees import write_wav

    from seldbench.data.audio import read_audio
    from seldbench.errors import SeldbenchError

    two = write_wav(tmp_path / "two.wav", channels=2)
    assert read_audio(two, audio_format="stereo").shape == (2, 24000)
    with pytest.raises(SeldbenchError, match=r"two.wav: 2 channel\(s\), expected 4 for the foa"):
        read_audio(two, audio_format="foa")


def test_stereo_features_level_and_phase():
    from seldbench.features.stereo import stereo_logmel_ild_ipd, stereo_logmel_ild_ipd_ms

    torch.manual_seed(0)
    mono = torch.randn(1, 1, 24000, dtype=torch.float64) * 0.1
    delayed = torch.roll(mono, 1, dims=-1)
    feat = stereo_logmel_ild_ipd()
    louder_left = feat(torch.cat([2 * mono, mono], dim=1))
    assert louder_left.shape == (1, 5, 50, 64)
    assert torch.allclose(louder_left[0, 2], torch.full_like(louder_left[0, 2], 20 * np.log10(2)),
                          atol=1e-3)  # ILD: +6.02 dB everywhere
    assert torch.allclose(louder_left[0, 3], torch.ones_like(louder_left[0, 3]), atol=1e-6)
    # right lags by one sample: IPD = angle(L conj(R)) = +omega, sin > 0 rising with frequency
    lag = feat(torch.cat([mono, delayed], dim=1))
    sin_ipd = lag[0, 4, 5:-5].mean(0)
    assert (sin_ipd[1:] > 0).all() and sin_ipd[40] > sin_ipd[10]
    swapped = feat(torch.cat([delayed, mono], dim=1))
    assert torch.allclose(swapped[0, 4], -lag[0, 4], atol=1e-6)
    ms = stereo_logmel_ild_ipd_ms()(torch.cat([2 * mono, mono], dim=1))
    assert ms.shape == (1, 7, 50, 64) and torch.allclose(ms[:, 4:], louder_left[:, 2:])
    with pytest.raises(ValueError, match="need audio"):
        feat(torch.zeros(1, 4, 4800))


def test_the_baseline_input_is_the_log_mel_pair_alone(registry):
    """``stereo_logmel``: the 2025 baseline's 2 x 64 input, the log-mel channels of
    ``stereo_logmel_ild_ipd``; the sets with differences keep their config (cache hash)."""
    from seldbench.features.stereo import stereo_logmel, stereo_logmel_ild_ipd

    torch.manual_seed(0)
    audio = torch.randn(1, 2, 24000, dtype=torch.float64) * 0.1
    pair, full = stereo_logmel(), stereo_logmel_ild_ipd()
    assert torch.equal(pair(audio), full(audio)[:, :2])
    assert registry.get_feature("stereo_logmel").channels == 2
    assert "differences" not in full.config and pair.config["differences"] is False


def _table(tmp_path, rows):
    from seldbench.data.labels import read_metadata

    path = tmp_path / "clip.csv"
    path.write_text("frame,class,source,azimuth,distance,onscreen\n"
                    + "".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return read_metadata(path, 6, 13, "dcase2025")


def test_targets_loss_and_decoder_round_trip(tmp_path):
    from seldbench.data.labels import stereo_adpit_targets
    from seldbench.training.losses import stereo_adpit_loss
    from seldbench.training.predict import Predictor

    table = _table(tmp_path, [[1, 3, 0, 30, 150, 1], [2, 5, 0, -100, 250, 0],
                              [2, 5, 1, 60, 80, 1]])
    y = stereo_adpit_targets(table, 4, 13)
    assert y.shape == (4, 6, 5, 13)
    np.testing.assert_allclose(y[1, 0, :, 3], [1, np.cos(np.radians(30)),
                                                np.sin(np.radians(30)), 1.5, 1], atol=1e-6)
    assert y[2, 1, 0, 5] == y[2, 2, 0, 5] == 1 and y[2, 2, 4, 5] == 1 and y[2, 1, 4, 5] == 0
    # a perfect output: track 0 = A0 or B0, track 1 = B1, onscreen logits +-8
    out = np.zeros((4, 3, 4, 13), np.float32)
    out[1, :, :3, 3] = y[1, 0, 1:4, 3]
    out[1, :, 3, 3] = 8
    out[2, 0, :3, 5], out[2, 0, 3, 5] = y[2, 1, 1:4, 5], -8
    out[2, 1:, :3, 5], out[2, 1:, 3, 5] = y[2, 2, 1:4, 5], 8
    flat = torch.from_numpy(out.reshape(1, 4, -1))
    target = torch.from_numpy(y[None])
    best = stereo_adpit_loss(flat, target)
    assert float(best) < 1e-3
    flipped = out.copy()
    flipped[..., 3, :] *= -1
    assert float(stereo_adpit_loss(torch.from_numpy(flipped.reshape(1, 4, -1)), target)) > \
        float(best) + 0.02  # wrong onscreen flags cost (2 of 52 cells, 0.1 x 8)
    rows = Predictor("multi_accdoa_stereo", 13, 4, 5, True, "cpu", {}).decode(out.reshape(4, -1))
    assert rows.layout == "fctado"
    got = sorted(zip(rows.frame, rows.cls, np.round(rows.coords[:, 0]), np.round(rows.distance),
                     rows.onscreen))
    assert got == [(1, 3, 30, 150, 1), (2, 5, -100, 250, 0), (2, 5, 60, 80, 1)]


def test_stereo_labels_cannot_train_a_full_direction_output(tmp_path):
    from seldbench.errors import SeldbenchError
    from seldbench.training.data import make_targets

    table = _table(tmp_path, [[1, 3, 0, 30, 150, 1]])
    with pytest.raises(SeldbenchError, match="clip.csv: DCASE 2025 stereo labels"):
        make_targets("multi_accdoa", table, 4, 13, False)


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["crnn", "crati"])
def test_a_model_runs_on_stereo_seld_end_to_end(model, stereo_root, tmp_path):
    from click.testing import CliRunner

    from seldbench.cli import main
    from seldbench.metrics.csvio import HEADER_2025

    res = CliRunner().invoke(main, [
        "run", "--model", model, "--dataset", "stereo-seld", "--root", str(stereo_root),
        "--out", str(tmp_path / "runs"), "--set", "train.epochs=1", "--set", "train.batch_size=4",
        "--set", "train.threads=1", "--set", f"features.cache_dir={tmp_path / 'cache'}",
        "--set", "eval.threshold=0.01"])  # after 1 epoch: a low threshold, so rows are written
    assert res.exit_code == 0, res.output
    import json

    rec = json.loads(next((tmp_path / "runs").rglob("record.json")).read_text())
    assert rec["status"] == "complete"
    assert rec["config"]["features"]["name"] == "stereo_logmel_ild_ipd"
    figures = rec["results"]["dcase2025"]["figures"]
    assert {"F", "F_onscreen", "DOAE", "DistE", "RDE", "OnscreenAcc"} <= set(figures)
    preds = sorted((tmp_path / "runs").rglob("predictions/dcase2025/*.csv"))
    assert len(preds) == 4 and all(p.read_text().startswith(HEADER_2025) for p in preds)
    assert sum(len(p.read_text().splitlines()) - 1 for p in preds) > 0
    # `seldbench predict` on a test clip writes the same 2025 CSV as the run's test prediction
    from seldbench.training.inference import predict_to_csv

    run_dir = preds[0].parent.parent.parent
    wav = next(stereo_root.glob(f"stereo_dev/*/{preds[0].stem}.wav"))
    video = None
    if model == "crati":  # its test prediction read the perspective video, cached once
        video = next(stereo_root.glob(f"video_dev/*/{preds[0].stem}.mp4"))
        assert list((tmp_path / "cache" / "crati").rglob(f"{preds[0].stem}-*.npy"))
    predict_to_csv(run_dir, wav, tmp_path / "again.csv", video_path=video, device="cpu")
    assert (tmp_path / "again.csv").read_text() == preds[0].read_text()
    # the plot reads the 2025 reference and predictions (azimuth only: elevation 0)
    from seldbench.results.plot import clip_tracks

    _, ref, _, info = clip_tracks(run_dir, suite="dcase2025")
    assert info["dataset"] == "stereo-seld" and len(ref.azimuth_deg) == 4
    assert not ref.elevation_deg.any()


def test_a_model_without_stereo_features_is_refused_clearly(registry):
    import types

    from seldbench.errors import SeldbenchError
    from seldbench.hookspecs import hookimpl
    from seldbench.registry import Registry
    from seldbench.specs import ModelSpec
    from seldbench.training.plan import resolve_run_config

    plug = types.ModuleType("foaonly")
    plug.seldbench_register_models = hookimpl(lambda: [ModelSpec(
        name="foaonly", version="1.0", build=lambda cfg, ds, f=None: None)])
    with pytest.raises(SeldbenchError, match="reads foa audio, dataset 'stereo-seld' has stereo "
                                             r"\(model 'foaonly' has no feature set for it\)"):
        resolve_run_config("foaonly", "stereo-seld",
                           registry=Registry([plug], entry_points=False))
    with pytest.raises(SeldbenchError, match=r"use stereo_logmel_ild_ipd, stereo_logmel_ild_ipd_ms"):
        resolve_run_config("crnn", "stereo-seld", overrides=["features.name=foa_logmel_iv"],
                           registry=registry)


# --------------------------------------------------------------------------- synth-stereo


def test_rotation_mid_side_and_onscreen_geometry():
    from seldbench.data.synth.stereo import (onscreen, perspective_map, stereo_from_foa,
                                             wrap_deg)
    from seldbench.data.synth.video import direction_to_pixel

    # a plane wave from azimuth 70 (SN3D: W = s, Y = s sin az, X = s cos az), view at 40:
    # 30 degrees to the left of the view, so the left channel is louder by (1+sin30)/(1-sin30)
    s = np.random.default_rng(0).standard_normal(2400)
    az = np.radians(70)
    foa = np.stack([s, s * np.sin(az), 0 * s, s * np.cos(az)])
    left, right = stereo_from_foa(foa, 40.0)
    assert np.allclose(left, s * 0.75) and np.allclose(right, s * 0.25)
    assert list(onscreen(np.array([0, 49, 51, -49, 0, 0, 180]),
                         np.array([0, 0, 0, 0, 30, 34, 0]))) == [1, 1, 0, 1, 1, 0, 0]
    assert wrap_deg(np.array([180.0, -180.0, 190.0]))[0] == -180.0
    # the perspective crop shows a direction where a pinhole camera would: 30 deg left of the
    # view is 96 - f tan(30) = 49.5 px from the left edge of the 192-px image (f = 96 / tan 50)
    img = np.zeros((180, 360), np.uint8)
    u, v = direction_to_pixel(70.0, 0.0, 360, 180)
    img[int(v), int(u)] = 255
    rows, cols = perspective_map(40.0, (360, 180))
    ys, xs = np.nonzero(img[rows, cols])
    assert abs(xs.mean() - (96 - 96 / np.tan(np.radians(50)) * np.tan(np.radians(30)))) < 1.5
    assert abs(ys.mean() - 54) < 1.5


def test_synth_stereo_mini_is_derived_checked_and_trains(synth_env, registry, tmp_path,
                                                         monkeypatch):
    from seldbench.data.roots import resolve_root
    from seldbench.data.synth.stereo import read_manifest
    from seldbench.data.verify import verify_dataset
    from seldbench.training.run import run

    monkeypatch.setenv("SELDBENCH_SYNTH_STEREO_MINI_ROOT", str(synth_env / "stereo-mini"))
    spec = registry.get_dataset("synth-stereo-mini")
    root = resolve_root(spec)
    spec.prepare(root)
    checks = read_manifest(root)["checks"]
    # measured on synth-mini: 12.5% of rows on screen, 90% of lateral single-event frames
    # louder on the labelled side (reverberation and the background make the rest)
    assert 0.05 < checks["onscreen_fraction"] < 0.4 and checks["lr_agreement"] > 0.8
    assert checks["lr_frames"] > 100
    report = verify_dataset(spec, root, video=True)
    assert report.ok, report.problems
    sizes = report.split_sizes
    assert sizes["train"] and sizes["val"] and sizes["test"]
    first = sorted(p.read_bytes() for p in root.glob("metadata_dev/*/*.csv"))
    spec.prepare(root)  # complete: nothing is rewritten
    assert sorted(p.read_bytes() for p in root.glob("metadata_dev/*/*.csv")) == first
    # deterministic: the same derivation elsewhere writes the same audio, labels and video
    from seldbench.data.synth.stereo import derive_stereo

    params = read_manifest(root)["params"]
    again = derive_stereo(synth_env / "data", tmp_path / "again", seed=params["seed"],
                          source=params["source"])
    assert again["checks"] == checks
    for f in sorted(root.glob("*_dev/*/*.*")):
        assert (tmp_path / "again" / f.relative_to(root)).read_bytes() == f.read_bytes(), f
    rec = run("crnn", "synth-stereo-mini", overrides=[
        "train.epochs=1", "train.batch_size=4", "train.threads=1",
        f"features.cache_dir={tmp_path / 'cache'}"], out=str(tmp_path / "runs"),
        progress=False, log=lambda m: None)
    assert rec["status"] == "complete" and "F_onscreen" in rec["results"]["dcase2025"]["figures"]


def test_mixup_unites_stereo_targets(tmp_path):
    from seldbench.data.labels import stereo_adpit_targets
    from seldbench.training.augment import union_targets

    a = stereo_adpit_targets(_table(tmp_path, [[0, 3, 0, 30, 150, 1]]), 2, 13)
    b = stereo_adpit_targets(_table(tmp_path, [[0, 3, 0, -60, 250, 0], [1, 4, 0, 5, 90, 1]]),
                             2, 13)
    both = union_targets(torch.from_numpy(a[None]), torch.from_numpy(b[None]),
                         "multi_accdoa_stereo", 13)[0].numpy()
    expect = stereo_adpit_targets(_table(tmp_path, [[0, 3, 0, 30, 150, 1], [0, 3, 1, -60, 250, 0],
                                                     [1, 4, 0, 5, 90, 1]]), 2, 13)
    np.testing.assert_allclose(both, expect, atol=1e-6)


def test_channel_swap_mirrors_stereo_features_and_labels(tmp_path):
    """The mirror of the features of a clip is the features of its mirrored audio (channels
    swapped), and its targets are the mirrored labels."""
    from seldbench.data.labels import stereo_adpit_targets
    from seldbench.features.stereo import stereo_logmel_ild_ipd_ms
    from seldbench.training.augment import rotate_targets, spatial_maps

    torch.manual_seed(1)
    audio = torch.randn(1, 2, 4800, dtype=torch.float64) * 0.1
    audio[:, 0] *= 1.5
    feat = stereo_logmel_ild_ipd_ms()
    x, mirrored_audio = feat(audio), feat(audio.flip(1))
    ident, mirror = spatial_maps("stereo_logmel_ild_ipd_ms", 64)
    torch.testing.assert_close(mirror.apply_raw(x), mirrored_audio, atol=1e-6, rtol=0)
    torch.testing.assert_close(ident.apply_raw(x), x)
    y = torch.from_numpy(stereo_adpit_targets(_table(tmp_path, [[0, 3, 0, 30, 150, 1]]), 1, 13))
    flipped = stereo_adpit_targets(_table(tmp_path, [[0, 3, 0, -30, 150, 1]]), 1, 13)
    out = rotate_targets(y[None], torch.tensor(mirror.matrix, dtype=torch.float32)[None],
                         "multi_accdoa_stereo", 13)[0]
    np.testing.assert_allclose(out.numpy(), flipped, atol=1e-6)
