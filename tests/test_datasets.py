"""Dataset plugins (starss23, tau-nigens-2021), root resolution and video frames."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dataset_trees import STARSS_CLIPS, write_mp4, write_wav
from seldbench.data.roots import resolve_root
from seldbench.data.video import clip_video_frames, decode_video_frames, load_video_frames
from seldbench.errors import SeldbenchError
from seldbench.specs import ClipFiles


# --------------------------------------------------------------------------- specs


def test_specs_registered(registry):
    s = registry.get_dataset("starss23")
    assert len(s.classes) == 13 and s.classes[0] == "female speech" and s.classes[12] == "knock"
    assert s.classes[7] == "door open/close" and s.classes[9] == "musical instrument"
    assert s.metric_suites == ("dcase2023", "dcase2024")
    assert s.has_video and s.metadata_columns == 6 and s.root_env == "SELDBENCH_STARSS23_ROOT"
    t = registry.get_dataset("tau-nigens-2021")
    assert len(t.classes) == 12 and t.classes[0] == "alarm" and t.classes[11] == "piano"
    assert t.classes[5] == "female speech" and t.classes[9] == "male speech"
    assert t.metric_suites == ("dcase2021", "dcase2023")
    assert not t.has_video and t.metadata_columns == 5 and t.root_env == "SELDBENCH_TAU2021_ROOT"


# --------------------------------------------------------------------------- STARSS23


def _split(spec, root, split):
    return spec.list_clips(root, split)


def test_starss_splits(registry, starss_root):
    spec = registry.get_dataset("starss23")
    train, val, test = (_split(spec, starss_root, s) for s in ("train", "val", "test"))
    assert {c.fold for c in test} == {4} and len(test) == 4
    assert {c.fold for c in train} == {3} and {c.fold for c in val} == {3}
    train_rooms, val_rooms = {c.room for c in train}, {c.room for c in val}
    assert val_rooms and not (train_rooms & val_rooms)  # whole rooms
    n3 = sum(n for (fold, _), n in STARSS_CLIPS.items() if fold == 3)
    assert len(train) + len(val) == n3
    assert 0.15 <= len(val) / n3 <= 0.20
    assert [c.stem for c in val] == [c.stem for c in _split(spec, starss_root, "val")]
    for c in train + val + test:
        assert c.metadata.is_file() and set(c.audio) == {"foa", "mic"}
        assert c.audio["foa"].parent.name == c.metadata.parent.name


def test_starss_no_video_clips(registry, starss_root):
    clips = _split(registry.get_dataset("starss23"), starss_root, "train") + \
        _split(registry.get_dataset("starss23"), starss_root, "val")
    none = sorted(c.stem for c in clips if c.video is None)
    assert none == [f"fold3_room21_mix{i:03d}" for i in range(1, 13)]
    assert all(c.video.is_file() for c in clips if c.video is not None)


def test_starss_missing_mp4_is_not_a_clip_without_video(registry, starss_copy):
    (starss_copy / "video_dev/dev-train-tau/fold3_room4_mix002.mp4").unlink()
    clips = {c.stem: c for c in _split(registry.get_dataset("starss23"), starss_copy, "train")
             + _split(registry.get_dataset("starss23"), starss_copy, "val")}
    assert clips["fold3_room4_mix002"].video == \
        starss_copy / "video_dev/dev-train-tau/fold3_room4_mix002.mp4"


def test_starss_audio_only_download_has_no_video(registry, starss_copy):
    shutil.rmtree(starss_copy / "video_dev")
    clips = _split(registry.get_dataset("starss23"), starss_copy, "test")
    assert clips and all(c.video is None for c in clips)


def test_starss_extra_train_folds(registry, starss_copy, monkeypatch):
    from seldbench_plugins.starss23 import list_clips

    stem = "fold1_room1_mix001"
    for tree in ("foa_dev", "mic_dev"):
        write_wav(starss_copy / tree / "dev-train-synth" / f"{stem}.wav")
    (starss_copy / "metadata_dev/dev-train-synth").mkdir()
    (starss_copy / f"metadata_dev/dev-train-synth/{stem}.csv").write_text("0,1,0,10,0,100\n")
    monkeypatch.delenv("SELDBENCH_STARSS23_EXTRA_FOLDS", raising=False)
    assert stem not in {c.stem for c in list_clips(starss_copy, "train")}
    extra = [c for c in list_clips(starss_copy, "train", extra_train_folds=[1]) if c.stem == stem]
    assert len(extra) == 1 and extra[0].fold == 1 and extra[0].video is None
    monkeypatch.setenv("SELDBENCH_STARSS23_EXTRA_FOLDS", "1,2")
    assert stem in {c.stem for c in list_clips(starss_copy, "train")}
    others = list_clips(starss_copy, "val") + list_clips(starss_copy, "test")
    assert stem not in {c.stem for c in others}


def test_starss_missing_subfolder_is_named(registry, starss_copy):
    shutil.rmtree(starss_copy / "mic_dev/dev-test-tau")
    with pytest.raises(SeldbenchError, match=r"mic_dev/dev-test-tau: missing folder"):
        _split(registry.get_dataset("starss23"), starss_copy, "test")


def test_missing_root_names_env_var(registry, monkeypatch, tmp_path):
    spec = registry.get_dataset("starss23")
    monkeypatch.delenv("SELDBENCH_STARSS23_ROOT", raising=False)
    with pytest.raises(SeldbenchError) as err:
        resolve_root(spec)
    msg = str(err.value)
    assert "SELDBENCH_STARSS23_ROOT" in msg and "dataset.root" in msg and "\n" not in msg
    monkeypatch.setenv("SELDBENCH_STARSS23_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(SeldbenchError,
                       match=r"nowhere: .*not found \(from SELDBENCH_STARSS23_ROOT\)"):
        resolve_root(spec)
    monkeypatch.setenv("SELDBENCH_STARSS23_ROOT", str(tmp_path))
    assert resolve_root(spec) == tmp_path
    (tmp_path / "x").mkdir()
    assert resolve_root(spec, tmp_path / "x") == tmp_path / "x"  # --root wins over the variable
    with pytest.raises(SeldbenchError, match="not found"):
        spec.list_clips(tmp_path / "nowhere", "train")


# --------------------------------------------------------------------------- TAU-NIGENS 2021


def test_tau_folds_from_names(registry, tau_root):
    spec = registry.get_dataset("tau-nigens-2021")
    train, val, test = (spec.list_clips(tau_root, s) for s in ("train", "val", "test"))
    assert [c.fold for c in train] == [1, 2, 3, 4]
    assert [c.stem for c in val] == ["fold5_room3_mix005"]  # although it sits in dev-train
    assert val[0].audio["foa"].parent.name == "dev-train"
    assert [c.stem for c in test] == ["fold6_room4_mix006"]
    fold2 = next(c for c in train if c.fold == 2)
    assert fold2.metadata == tau_root / "metadata_dev/dev-val/fold2_room1_mix002.csv"
    assert all(c.video is None and c.metadata.is_file() for c in train + val + test)
    assert [c.room for c in train] == [1, 1, 2, 2]


def test_tau_bad_name_is_named(registry, tau_root, tmp_path):
    root = Path(shutil.copytree(tau_root, tmp_path / "tau"))
    write_wav(root / "foa_dev/dev-train/recording7.wav")
    with pytest.raises(SeldbenchError,
                       match=r"recording7\.wav: file name is not foldK_roomR_mixNNN"):
        registry.get_dataset("tau-nigens-2021").list_clips(root, "train")


# --------------------------------------------------------------------------- video frames


def _reference_levels(path: Path) -> np.ndarray:
    """Mean grey level of every decoded video frame, decoded independently with PyAV."""
    import av

    with av.open(str(path)) as c:
        return np.array([f.to_ndarray(format="rgb24").mean() for f in c.decode(video=0)])


def test_video_frames_at_label_centres(tmp_path):
    path = write_mp4(tmp_path / "v.mp4", frames=40, fps=25, width=64, height=32)
    ref = _reference_levels(path)
    assert len(ref) == 40
    frames = decode_video_frames(path, 20, width=32, height=16)
    assert frames.shape == (20, 16, 32, 3) and frames.dtype == np.uint8
    got = [int(np.argmin(np.abs(ref - f.mean()))) for f in frames]
    # label frame j is centred on (j + 0.5) * 0.1 s: video frame floor(25 * t), then held
    expected = [min(int(np.floor((j + 0.5) * 0.1 * 25 + 1e-9)), 39) for j in range(20)]
    assert got == expected
    assert got[:4] == [1, 3, 6, 8] and got[-1] == 39


def test_video_cache(tmp_path, monkeypatch):
    import seldbench.data.video as video

    path = write_mp4(tmp_path / "clip.mp4", frames=10, fps=10)
    cache = tmp_path / "cache"
    first = load_video_frames(path, 10, width=16, height=8, cache_dir=cache)
    assert len(list(cache.glob("*.npy"))) == 1

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(video, "decode_video_frames", boom)
    again = load_video_frames(path, 10, width=16, height=8, cache_dir=cache)
    np.testing.assert_array_equal(first, again)
    with pytest.raises(AssertionError, match="decoded again"):  # another size: new entry
        load_video_frames(path, 10, width=32, height=16, cache_dir=cache)
    monkeypatch.undo()
    write_mp4(path, frames=12, fps=10, levels=[200] * 12)  # file changed: cache key changes
    changed = load_video_frames(path, 10, width=16, height=8, cache_dir=cache)
    assert abs(float(changed.mean()) - 200) < 5 and abs(float(first.mean()) - 200) > 50


def test_unreadable_video_is_named(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video" * 50)
    with pytest.raises(SeldbenchError, match=r"broken\.mp4: cannot read video"):
        load_video_frames(bad, 5, cache_dir=tmp_path / "cache")
    assert not list((tmp_path).glob("cache/*.npy"))


def test_clip_without_video_has_no_frames(tmp_path):
    clip = ClipFiles(stem="fold3_room21_mix001", audio={}, metadata=None, video=None)
    assert clip_video_frames(clip, 10, cache_dir=tmp_path) is None


def _manifest(root, **over):
    import json

    from seldbench.data.synth import GENERATOR_VERSION
    from seldbench.data.synth.generate import GENERATOR

    m = {"generator": GENERATOR, "generator_version": GENERATOR_VERSION, "seed": 3,
         "clips": 4, "duration_s": 4.0, "video": False, "complete": True, **over}
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps(m))
    return m


def test_a_custom_synthetic_set_is_used_as_it_is(tmp_path, caplog):
    """`seldbench data synth DIR` with its own parameters, then `run --dataset synth --root
    DIR`: the set is read, not regenerated or refused; unfinished or old-version sets are a
    clear error and are never deleted."""
    from seldbench_plugins.synth import prepare

    custom = tmp_path / "custom"
    before = _manifest(custom)
    prepare(custom, name="synth")  # returns at once: nothing generated
    assert sorted(p.name for p in custom.iterdir()) == ["dataset.json"]
    assert "using the synthetic set generated there (4 clips of 4.0 s, seed 3" in caplog.text
    _manifest(custom, complete=False)
    with pytest.raises(SeldbenchError, match="other parameters than 'synth'.*unfinished"):
        prepare(custom, name="synth")
    _manifest(custom, generator_version="0.9")
    with pytest.raises(SeldbenchError, match="another generator version"):
        prepare(custom, name="synth")
    assert (custom / "dataset.json").exists() and before["seed"] == 3  # never deleted


def test_run_says_which_synthetic_set_it_uses(tmp_path):
    from click.testing import CliRunner

    from seldbench.cli import main

    custom = tmp_path / "custom"
    _manifest(custom)
    res = CliRunner().invoke(main, ["run", "--model", "crnn", "--dataset", "synth", "--root",
                                    str(custom), "--out", str(tmp_path / "runs")])
    assert "using the synthetic set generated there (4 clips of 4.0 s" in res.output
    assert res.exit_code == 2 and "Traceback" not in res.output  # the empty tree: one error
