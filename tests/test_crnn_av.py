"""The audio-visual CRNN (``crnn-av``): the masking of clips without video, the fusion's
padding, and a 1-epoch run on synth-stereo-mini whose predictions read the cached video."""
import json

import numpy as np
import pytest
import torch

from seldbench.errors import SeldbenchError
from seldbench.registry import get_registry
from seldbench.specs import ClipFiles
from test_onscreen_tool import _tool as _onscreen_tool

REG = get_registry()


@pytest.fixture(scope="module")
def specs():
    return (REG.get_model("crnn-av"), REG.get_dataset("synth-stereo-mini"),
            REG.get_feature("stereo_logmel_ild_ipd"))


@pytest.fixture(scope="module")
def model(specs):
    spec, ds, fs = specs
    torch.manual_seed(0)
    return spec.build({}, ds, fs).eval()


def test_a_clip_without_video_gets_zeros_and_mask_0_and_runs_audio_only(specs, model, tmp_path):
    spec, ds, _ = specs
    clip = ClipFiles("fold3_room1_mix001", {}, None, video=None)
    streams = spec.side_inputs({}, ds, [clip], {clip.stem: 50}, training=False,
                               cache_dir=tmp_path, device="cpu")[clip.stem]
    assert streams["video"].shape == (50, 28) and streams["video"].dtype == np.float16
    assert not streams["video"].any() and not streams["video_mask"].any()
    assert not list(tmp_path.rglob("*.npy"))  # nothing encoded, nothing cached
    x = torch.randn(1, 5, 250, 64)
    video = torch.from_numpy(streams["video"])[None]
    with torch.no_grad():
        masked = model(x, video, torch.from_numpy(streams["video_mask"])[None])
        shown = model(x, video, torch.ones(1, 50))  # the same zeros, taken as frames
        assert torch.equal(masked, model(x))  # mask 0: the audio CRNN, no fusion
        assert not torch.allclose(shown, masked)


def test_padded_video_frames_are_ignored(model):
    torch.manual_seed(1)
    x, video = torch.randn(2, 5, 250, 64), torch.randn(2, 50, 28)
    mask = torch.ones(2, 50)
    mask[:, 30:] = 0  # the end of a clip's last chunk: zero-padded, mask 0
    other = video.clone()
    other[:, 30:] = 5.0
    with torch.no_grad():
        torch.testing.assert_close(model(x, video, mask), model(x, other, mask))
        assert not torch.allclose(model(x, video, torch.ones(2, 50)),
                                  model(x, other, torch.ones(2, 50)))


def test_bad_video_settings_are_one_error(specs):
    spec, ds, fs = specs
    with pytest.raises(SeldbenchError, match=r"model 'crnn-av': model.video.input_size="):
        spec.build({"video": {"input_size": [128]}}, ds, fs)
    with pytest.raises(SeldbenchError, match=r"model.video.weights: .*nope.pth: no such file"):
        spec.build({"video": {"weights": "/nonexistent/nope.pth"}}, ds, fs)
    with pytest.raises(SeldbenchError, match=r"fusion_heads=5 does not divide"):
        spec.build({"fusion_heads": 5}, ds, fs)
    with pytest.raises(SeldbenchError, match=r"not stereo"):
        spec.build({}, REG.get_dataset("synth-mini"), REG.get_feature("foa_logmel_iv"))


def test_one_epoch_on_synth_stereo_mini_scores_2025_and_reads_the_video(synth_env, tmp_path,
                                                                        monkeypatch):
    from click.testing import CliRunner

    from seldbench.cli import main
    from seldbench.config import cache_dir_of
    from seldbench.data.audio import read_audio
    from seldbench.data.roots import resolve_root
    from seldbench.side_inputs import collect
    from seldbench.training.inference import load_run

    monkeypatch.setenv("SELDBENCH_SYNTH_STEREO_MINI_ROOT", str(synth_env / "stereo-mini"))
    res = CliRunner().invoke(main, [
        "run", "--model", "crnn-av", "--dataset", "synth-stereo-mini", "--epochs", "1",
        "--out", str(tmp_path / "runs"), "--set", "train.batch_size=4",
        "--set", "train.threads=1", "--set", f"features.cache_dir={tmp_path / 'cache'}",
        "--set", "eval.jackknife=false"])
    assert res.exit_code == 0, res.output
    record_path = next((tmp_path / "runs").rglob("record.json"))
    rec = json.loads(record_path.read_text())
    assert rec["status"] == "complete" and rec["model"]["name"] == "crnn-av"
    assert {"F", "F_onscreen", "OnscreenAcc"} <= set(rec["results"]["dcase2025"]["figures"])
    cached = sorted((tmp_path / "cache" / "crnn-av" / "video").glob("*.npy"))
    assert cached  # the run encoded the clips' video once, into the side-input cache

    # leaderboards/onscreen.py --video: the run's own video reproduces its test figures; the
    # other two conditions give the model no video (mask 0) and another cut's video
    from seldbench.training.predict import Predictor

    seen, predict = [], Predictor.predict
    monkeypatch.setattr(Predictor, "predict", lambda self, model, clips, sides=None: (
        seen.append(sides), predict(self, model, clips, sides))[1])
    figures = _onscreen_tool().compare_video(record_path.parent)
    assert set(figures) == {"video", "none", "other"}
    recorded = rec["results"]["dcase2025"]["figures"]
    for k, v in figures["video"].items():
        assert v == pytest.approx(recorded[k], abs=1e-4), k
    own, none, other = seen
    assert all(s["video_mask"].all() for s in own) and not any(s["video_mask"].any() for s in none)
    assert not any(s["video"].any() for s in none)
    half = len(own) // 2
    assert half and all(np.array_equal(other[i]["video"], own[(i + half) % len(own)]["video"])
                        for i in range(len(own)))
    assert not np.array_equal(other[0]["video"], own[0]["video"])
    monkeypatch.setattr(Predictor, "predict", predict)

    # the trained model reads the cached visual vectors: zeroing them changes its output
    run = load_run(record_path.parent, "cpu")
    ds = run.dataset_spec
    clip = ds.list_clips(resolve_root(ds), "test")[0]
    audio = read_audio(clip.audio["stereo"], audio_format="stereo")
    with torch.no_grad():
        x = run.feature(torch.from_numpy(audio)[None]).float().numpy()[0]
    x = run.normalizer.apply(x)
    frames = x.shape[1] // run.feature_spec.frames_per_label

    def output():
        side = collect(run.model_spec, run.config["model"], ds, [clip], {clip.stem: frames},
                       training=False, cache_dir=cache_dir_of(run.config), device="cpu")
        return run.predictor.raw(run.model, x, side[clip.stem]), side[clip.stem]

    before, side = output()
    assert side["video_mask"].all() and np.abs(side["video"]).sum() > 0
    for path in cached:
        np.save(path, np.zeros_like(np.load(path)))
    after, side = output()
    assert not side["video"].any()  # read back from the cache, not encoded again
    assert np.abs(before - after).max() > 1e-4


def test_parameters_are_the_2025_baselines(specs):
    """On the baseline's input (``stereo_logmel``) the network has the 2025 audio-visual
    baseline's trained parameters: 2,064,348 (its module also registers an unused template
    decoder layer, 659,328 more), less 21 x 128 weights for 28 visual values instead of 49."""
    spec, ds, _ = specs
    model = spec.build({}, ds, REG.get_feature("stereo_logmel"))
    assert sum(p.numel() for p in model.parameters()) == 2_064_348 - 21 * 128
    assert sum(p.numel() for p in model.fusion.parameters()) == 2 * 659_328 + 29 * 128
