"""The synthetic STARSS23-like generator: layout, determinism, and the physics of what it writes."""
from __future__ import annotations

import colorsys
import json
import os
import re
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from scipy import signal as sps

from seldbench.cli import main
from seldbench.data.layout import (
    DEV_SUBFOLDERS,
    choose_val_rooms,
    list_starss_layout,
    parse_stem,
)
from seldbench.data.synth import spatial
from seldbench.data.synth.config import SynthConfig
from seldbench.data.synth.generate import clip_scene, generate, plan_clips
from seldbench.data.synth.room import Room
from seldbench.data.synth.scene import sample_scene
from seldbench.data.synth.sources import CLASSES, DURATION_RANGE_S, synthesize
from seldbench.data.synth.video import STYLES, direction_to_pixel, draw_object, object_radius_px
from seldbench.errors import SeldbenchError

FS = 24000
TREES = ("foa_dev", "mic_dev", "metadata_dev", "video_dev")
STARSS23_CLASSES = (
    "female speech", "male speech", "clapping", "telephone", "laughter", "domestic sounds",
    "footsteps", "door open/close", "music", "musical instrument", "water tap", "bell", "knock",
)
# single static sources, half of them invisible: for the physics and video checks
PHYSICS_CFG = SynthConfig(layer_density=(0.75,), moving_prob=0.0, distance_m=(0.5, 3.0),
                          invisible_fraction=0.5)
MOVING_CFG = SynthConfig(layer_density=(0.8,), moving_prob=1.0, distance_m=(0.5, 3.0),
                         distractors_per_minute=0.0)


@pytest.fixture(scope="module")
def default_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "set"
    generate(out, clips=3, duration_s=4.0, seed=11, video=True, workers=1)
    return out


@pytest.fixture(scope="module")
def physics_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "physics"
    generate(out, clips=3, duration_s=10.0, seed=3, video=True, workers=2, config=PHYSICS_CFG)
    return out


@pytest.fixture(scope="module")
def moving_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "moving"
    generate(out, clips=1, duration_s=6.0, seed=5, video=False, workers=1, config=MOVING_CFG)
    return out


def _files(root: Path, stem: str) -> dict[str, Path]:
    sub = {p.parent.name for p in root.glob(f"*_dev/*/{stem}.*")}
    assert len(sub) == 1, sub
    sub = sub.pop()
    return {"foa": root / "foa_dev" / sub / f"{stem}.wav", "mic": root / "mic_dev" / sub / f"{stem}.wav",
            "csv": root / "metadata_dev" / sub / f"{stem}.csv", "mp4": root / "video_dev" / sub / f"{stem}.mp4"}


def _labels(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=int, ndmin=2)


# The checks below use their own geometry (written from docs/datasets.md), not the generator's.
CAPSULES_DEG = ((45, 35), (-45, -35), (135, -35), (-135, 35))


def _unit(az, el) -> np.ndarray:
    az, el = np.deg2rad(np.asarray(az, float)), np.deg2rad(np.asarray(el, float))
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def _angle(az1, el1, az2, el2) -> np.ndarray:
    dot = np.sum(_unit(az1, el1) * _unit(az2, el2), axis=-1)
    return np.rad2deg(np.arccos(np.clip(dot, -1, 1)))


def _pixel(az, el, width=360, height=180):
    """STARSS23: u = W (0.5 - az / 360), v = H (0.5 - el / 180)."""
    return width * (0.5 - np.asarray(az) / 360), height * (0.5 - np.asarray(el) / 180)


def _capsule_arrival_samples(az, el) -> np.ndarray:
    """Plane-wave arrival time at each capsule (4.2 cm radius) relative to the centre, samples."""
    pos = 0.042 * _unit([a for a, _ in CAPSULES_DEG], [e for _, e in CAPSULES_DEG])
    return -(pos @ _unit(az, el)) / 343.0 * FS


def _intensity_doa(foa: np.ndarray) -> np.ndarray:
    """Per 100-ms frame (azimuth, elevation) from the active intensity Re(W* [X, Y, Z])."""
    _, _, z = sps.stft(foa, FS, nperseg=512, noverlap=256, boundary=None, padded=False)
    w, y, zz, x = z
    inten = np.stack([np.real(np.conj(w) * x), np.real(np.conj(w) * y), np.real(np.conj(w) * zz)])
    frame = (np.arange(z.shape[-1]) * 256 + 256) // 2400  # label frame of each STFT centre
    frames = foa.shape[1] // 2400
    ix, iy, iz = np.stack([inten[:, :, frame == k].sum(axis=(1, 2)) for k in range(frames)]).T
    return np.rad2deg(np.stack([np.arctan2(iy, ix), np.arctan2(iz, np.hypot(ix, iy))], axis=1))


# ---------------------------------------------------------------- layout and schema


def test_layout_is_starss23(default_set):
    for tree in TREES:
        assert sorted(p.name for p in (default_set / tree).iterdir()) == sorted(DEV_SUBFOLDERS)
    stems = {tree: sorted(p.stem for p in (default_set / tree).glob("*/*.*")) for tree in TREES}
    assert stems["foa_dev"] == stems["mic_dev"] == stems["metadata_dev"] == stems["video_dev"]
    assert len(stems["foa_dev"]) == 3
    train_rooms, test_rooms = set(), set()
    for path in (default_set / "foa_dev").glob("*/*.wav"):
        assert re.fullmatch(r"fold[34]_room\d+_mix\d{3}", path.stem), path.stem
        fold, room, _ = parse_stem(path.stem)
        part = "train" if fold == 3 else "test"
        maker = "sony" if room >= 21 else "tau"
        assert path.parent.name == f"dev-{part}-{maker}"
        (train_rooms if fold == 3 else test_rooms).add(room)
    assert train_rooms and test_rooms and not train_rooms & test_rooms
    manifest = json.loads((default_set / "dataset.json").read_text())
    assert manifest["complete"] and manifest["seed"] == 11 and manifest["generator_version"]


def test_wav_and_csv_schema(default_set):
    for wav in sorted(default_set.glob("*_dev/*/*.wav")):
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (24000, 4, "PCM_16", "WAV")
        assert info.frames == 4 * 24000
        assert np.abs(sf.read(wav, dtype="int16")[0]).max() < 32767  # scaled, not clipped
    for csv in sorted(default_set.glob("metadata_dev/*/*.csv")):
        text = csv.read_text()
        lines = text.splitlines()
        assert lines, csv
        for line in lines:
            assert re.fullmatch(r"-?\d+(,-?\d+){5}", line), line  # 6 integers, no header
        rows = _labels(csv)
        frame, cls, idx, az, el, dist = rows.T
        assert np.all(np.diff(frame) >= 0)
        assert frame.min() >= 0 and frame.max() < 40
        assert cls.min() >= 0 and cls.max() < 13 and idx.min() >= 0
        assert az.min() >= -180 and az.max() < 180 and el.min() >= -90 and el.max() <= 90
        assert dist.min() >= 30 and dist.max() <= 500
        assert max(np.unique(frame, return_counts=True)[1]) <= 3


def test_splits_and_registry(default_set):
    from seldbench.registry import get_registry

    splits = {s: list_starss_layout(default_set, s) for s in ("train", "val", "test")}
    stems = [c.stem for clips in splits.values() for c in clips]
    assert sorted(stems) == sorted(p.stem for p in (default_set / "foa_dev").glob("*/*.wav"))
    assert {c.fold for c in splits["test"]} == {4}
    assert {c.fold for c in splits["train"] + splits["val"]} == {3}
    assert not {c.room for c in splits["train"]} & {c.room for c in splits["val"]}
    clip = splits["test"][0]
    assert set(clip.audio) == {"foa", "mic"} and clip.metadata.is_file() and clip.video.is_file()

    reg = get_registry()
    for name in ("synth", "synth-mini"):
        spec = reg.get_dataset(name)
        assert spec.classes == STARSS23_CLASSES == CLASSES
        assert spec.splits == ("train", "val", "test") and spec.has_video
        assert spec.metadata_columns == 6 and spec.metric_suites == ("dcase2023", "dcase2024")
        assert callable(spec.prepare)
    manifest_val = json.loads((default_set / "dataset.json").read_text())["val_rooms"]
    listed = reg.get_dataset("synth").list_clips(default_set, "val")
    assert sorted({c.room for c in listed}) == sorted(manifest_val)


def test_val_rooms_and_layout_errors(tmp_path):
    assert choose_val_rooms({r: 10 for r in (4, 6, 7, 9, 12, 13, 14, 21, 22)}) == (4, 6)
    assert choose_val_rooms({4: 1}) == ()
    with pytest.raises(SeldbenchError, match="unknown split 'tset'; did you mean 'test'"):
        list_starss_layout(tmp_path, "tset")
    wav = tmp_path / "foa_dev" / "dev-train-tau" / "fold3_room4_mix001.wav"
    wav.parent.mkdir(parents=True)
    sf.write(wav, np.zeros((10, 4)), FS, subtype="PCM_16")
    with pytest.raises(SeldbenchError, match=r"fold3_room4_mix001\.csv: metadata missing"):
        list_starss_layout(tmp_path, "train", val_rooms=())


def test_generate_refuses_foreign_folder_and_bad_duration(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(SeldbenchError, match="not empty and holds no synthetic set"):
        generate(tmp_path, clips=1, duration_s=1.0, video=False)
    with pytest.raises(SeldbenchError, match="not a positive multiple of 0.1 s"):
        generate(tmp_path / "new", clips=1, duration_s=1.05, video=False)


def test_prepare_regenerates_a_set_of_another_generator_version(tmp_path, monkeypatch):
    import seldbench_plugins.synth as plugin
    from seldbench.data.synth import GENERATOR_VERSION

    tiny = {"clips": 1, "duration_s": 1.0, "seed": 2, "video": False}
    monkeypatch.setitem(plugin.SIZES, "synth-mini", tiny)
    root = tmp_path / "mini"
    generate(root, workers=1, **tiny)
    manifest = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**manifest, "generator_version": "1.0"}))
    wav = next(root.glob("foa_dev/*/*.wav"))
    wav.write_bytes(b"old")
    with pytest.raises(SeldbenchError, match=r"other parameters \(generator_version\)"):
        generate(root, workers=1, **tiny)  # an explicit folder is never deleted
    (root / "notes.txt").write_text("mine")
    with pytest.raises(SeldbenchError, match=r"other parameters \(generator_version\)"):
        plugin.prepare(root, name="synth-mini", workers=1)  # nor one holding other files
    assert wav.read_bytes() == b"old"
    (root / "notes.txt").unlink()
    plugin.prepare(root, name="synth-mini", workers=1)
    assert json.loads((root / "dataset.json").read_text())["generator_version"] == GENERATOR_VERSION
    assert sf.info(wav).frames == 24000


def test_cli_data_synth(tmp_path):
    out = tmp_path / "cli"
    res = CliRunner().invoke(main, ["data", "synth", str(out), "--clips", "2", "--duration", "1",
                                    "--seed", "4", "--no-video", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "synth: 2/2 clips (100%)" in res.output  # progress, plain lines off a terminal
    assert len(list(out.glob("foa_dev/*/*.wav"))) == 2 and not list(out.glob("video_dev/*/*"))
    res = CliRunner().invoke(main, ["data", "synth", str(out), "--clips", "3", "--duration", "1", "--seed", "4"])
    assert res.exit_code != 0 and "other parameters (clips, video)" in res.output


# ---------------------------------------------------------------- determinism


@pytest.mark.e2e  # long: generation in worker processes, or training
def test_same_seed_same_bytes_any_workers(default_set, tmp_path):
    again = tmp_path / "again"
    generate(again, clips=3, duration_s=4.0, seed=11, video=True, workers=2)
    files = sorted(p.relative_to(default_set) for p in default_set.glob("*_dev/*/*.*"))
    assert len(files) == 12
    for rel in files:
        assert (default_set / rel).read_bytes() == (again / rel).read_bytes(), rel


@pytest.mark.e2e  # long: generation in worker processes, or training
def test_video_bytes_same_for_any_workers_and_runs(tmp_path):
    # x264's macroblock tree used to make a process's later clips depend on its earlier
    # allocations: about half the runs wrote a differing MP4, so several runs are compared.
    def mp4s(out):
        return {p.name: p.read_bytes() for p in sorted(out.glob("video_dev/*/*.mp4"))}

    runs = []
    for i in range(6):
        generate(tmp_path / f"run{i}", clips=4, duration_s=2.0, seed=21, workers=1 + i % 2)
        runs.append(mp4s(tmp_path / f"run{i}"))
    assert len(runs[0]) == 4
    for i, run in enumerate(runs[1:], start=1):
        assert run == runs[0], f"run {i} ({1 + i % 2} workers) wrote other MP4 bytes"


def test_video_encoding_is_exact(tmp_path):
    import av

    from seldbench.data.synth.video import X264_PARAMS, rgb_to_yuv420p, write_video

    img = np.random.default_rng(0).integers(0, 256, (180, 360, 3), dtype=np.uint8)
    yuv = rgb_to_yuv420p(img)
    assert yuv.shape == (270, 360) and yuv.dtype == np.uint8
    flat = np.repeat(np.repeat(img[::2, ::2], 2, 0), 2, 1)  # constant 2x2 blocks: no chroma loss
    back = av.VideoFrame.from_ndarray(rgb_to_yuv420p(flat), format="yuv420p").to_ndarray(format="rgb24")
    assert np.abs(back.astype(int) - flat).max() <= 5  # the decoder rounds too
    assert "mbtree=0" in X264_PARAMS and "threads=1" in X264_PARAMS
    # x264's output must not follow its SIMD level: encode at AVX2 and at the CPU's best
    frames = [np.roll(img, 3 * k, axis=1) for k in range(12)]
    cfg = SynthConfig()
    write_video(tmp_path / "a.mp4", frames, cfg)
    import seldbench.data.synth.video as video

    old = video.X264_PARAMS
    try:
        video.X264_PARAMS = old + ":asm=AVX2"
        write_video(tmp_path / "b.mp4", frames, cfg)
    finally:
        video.X264_PARAMS = old
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


_GENERATE = """
import fcntl, os, sys
from seldbench.data.synth.generate import generate
if __name__ == "__main__":
    lock = os.open(sys.argv[2], os.O_CREAT | os.O_RDWR)  # as claim_run_dir locks a run folder
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    generate(sys.argv[1], clips=8, duration_s=30.0, seed=1, video=False, workers=2)
"""


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.e2e  # long: generation in worker processes, or training
def test_workers_die_with_a_killed_generator(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "gen.py"
    script.write_text(_GENERATE)
    lock = tmp_path / ".lock"
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path / "set"), str(lock)])
    workers = []
    try:
        deadline = time.monotonic() + 30
        while len(_children(parent.pid)) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)  # let them start their first clips
        workers = _children(parent.pid)  # the workers (and spawn's resource tracker)
        assert len(workers) >= 2, "the generator started no workers"
        for w in workers:  # no worker holds the parent's lock
            assert all(os.path.realpath(fd) != str(lock) for fd in Path(f"/proc/{w}/fd").iterdir())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        parent.kill()
        left = [w for w in workers if _alive(w)]
        for w in left:
            os.kill(w, signal.SIGKILL)
    assert not left, f"{len(left)} worker(s) outlived their killed parent"


def test_other_seed_differs(default_set, tmp_path):
    other = tmp_path / "other"
    generate(other, clips=1, duration_s=4.0, seed=12, video=False, workers=1)
    a, b = _files(default_set, "fold3_room4_mix001"), _files(other, "fold3_room4_mix001")
    assert a["foa"].read_bytes() != b["foa"].read_bytes()
    assert a["csv"].read_text() != b["csv"].read_text()


# ---------------------------------------------------------------- physics


def test_encoding_conventions():
    np.testing.assert_allclose(spatial.foa_gains(90, 0), [1, 1, 0, 0], atol=1e-12)  # left = +Y
    np.testing.assert_allclose(spatial.foa_gains(0, 90), [1, 0, 1, 0], atol=1e-12)  # up = +Z
    np.testing.assert_allclose(spatial.foa_gains(180, 0), [1, 0, 0, -1], atol=1e-12)  # back = -X
    delays, gains = spatial.mic_response(45, 35)  # a source straight at capsule 1
    assert np.argmin(delays) == 0 and np.argmax(gains) == 0
    np.testing.assert_allclose(delays[0], -0.042 / 343.0)
    u, v = direction_to_pixel([0, 90, -90, 0], [0, 0, 0, 90], 360, 180)
    np.testing.assert_allclose(u, [180, 90, 270, 180])
    np.testing.assert_allclose(v, [90, 90, 90, 0])


def test_foa_intensity_doa_matches_labels(physics_set):
    errors = []
    for csv in sorted(physics_set.glob("metadata_dev/*/*.csv")):
        rows = _labels(csv)
        foa = sf.read(_files(physics_set, csv.stem)["foa"])[0].T
        est = _intensity_doa(foa)
        frames, counts = np.unique(rows[:, 0], return_counts=True)
        single = set(frames[counts == 1].tolist())
        for f, _, _, az, el, _ in rows:
            if f in single:
                errors.append(_angle(est[f, 0], est[f, 1], az, el))
    assert len(errors) >= 60
    assert np.median(errors) < 10.0, np.median(errors)


def _gcc_phat_lag(a: np.ndarray, b: np.ndarray, up: int = 16, max_lag: int = 8) -> float:
    """Delay of ``a`` relative to ``b`` in samples (sub-sample by zero-padded IFFT)."""
    n = len(a) + len(b)
    cross = np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n))
    r = np.fft.irfft(cross / (np.abs(cross) + 1e-12), n * up)
    r = np.concatenate([r[-max_lag * up:], r[:max_lag * up + 1]])
    return (np.argmax(r) - max_lag * up) / up


def test_mic_pair_delays_match_tetrahedral_geometry(physics_set):
    errors, spans = [], []
    for plan in plan_clips(3):
        scene = clip_scene(plan, 3, 10.0, PHYSICS_CFG)
        mic = sf.read(_files(physics_set, plan.stem)["mic"])[0].T
        for ev in scene.events:
            mid = (ev.onset_frame + ev.end_frame) * 1200
            half = min(ev.frames * 1200, FS)  # at most 2 s around the middle of the event
            seg = mic[:, mid - half:mid + half]
            row = _labels(_files(physics_set, plan.stem)["csv"])
            az, el = row[(row[:, 0] == ev.onset_frame) & (row[:, 1] == ev.class_idx)][0, 3:5]
            tau = _capsule_arrival_samples(az, el)
            for i in range(4):
                for j in range(i + 1, 4):
                    errors.append(_gcc_phat_lag(seg[i], seg[j]) - (tau[i] - tau[j]))
                    spans.append(abs(tau[i] - tau[j]))
    assert len(errors) >= 18
    assert max(spans) > 3.0  # the geometry gives delays of several samples, so a wrong one shows
    assert np.median(np.abs(errors)) < 0.25 and np.max(np.abs(errors)) < 1.0, errors  # labels round to 1 deg


def test_moving_sources_move_in_labels_and_audio(moving_set):
    csv = next(moving_set.glob("metadata_dev/*/*.csv"))
    rows = _labels(csv)
    scene = clip_scene(plan_clips(1)[0], 5, 6.0, MOVING_CFG)
    assert scene.events and all(ev.trajectory.moving for ev in scene.events)
    for ev in scene.events:
        tr = ev.trajectory
        steps = _angle(tr.azimuth_deg[1:], tr.elevation_deg[1:], tr.azimuth_deg[:-1], tr.elevation_deg[:-1])
        assert np.all(steps <= 4.0 + 1e-6) and np.all(steps >= 1.0 - 1e-6)  # 10-40 deg/s
    first = rows[rows[:, 0] == rows[0, 0]][0]
    later = rows[(rows[:, 1] == first[1]) & (rows[:, 0] >= first[0] + 10)]
    assert len(later) and _angle(first[3], first[4], later[0, 3], later[0, 4]) >= 5.0
    est = _intensity_doa(sf.read(_files(moving_set, csv.stem)["foa"])[0].T)
    frames, counts = np.unique(rows[:, 0], return_counts=True)
    single = set(frames[counts == 1].tolist())
    errors = [_angle(est[f, 0], est[f, 1], az, el) for f, _, _, az, el, _ in rows if f in single]
    assert len(errors) >= 20 and np.median(errors) < 12.0, np.median(errors)


# ---------------------------------------------------------------- video


def _decode(path: Path) -> tuple[np.ndarray, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        return frames, float(stream.average_rate)


def _class_pixels(img: np.ndarray, cls: int, u: float, v: float, radius: float) -> int:
    """Pixels within ``radius`` of (u, v) (wrapping in azimuth) that have class ``cls``'s hue."""
    h, w, _ = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    dx = (xx + 0.5 - u + w / 2) % w - w / 2
    near = dx ** 2 + (yy + 0.5 - v) ** 2 <= radius ** 2
    rgb = img[near].astype(float) / 255
    hsv = np.array([colorsys.rgb_to_hsv(*p) for p in rgb]).reshape(-1, 3)
    target = colorsys.rgb_to_hsv(*(np.array(STYLES[cls].rgb) / 255))[0] * 360
    dh = np.abs((hsv[:, 0] * 360 - target + 180) % 360 - 180)
    return int(np.sum((dh < 10) & (hsv[:, 1] > 0.5) & (hsv[:, 2] > 0.12)))


def test_video_format(default_set):
    for mp4 in sorted(default_set.glob("video_dev/*/*.mp4")):
        frames, fps = _decode(mp4)
        assert frames.shape[2] == 2 * frames.shape[1] == 360
        assert abs(len(frames) - 4.0 * fps) <= 1


def test_objects_shrink_with_distance_follow_loudness_and_wrap():
    def draw(az, el, dist, level):
        img = np.zeros((180, 360, 3), np.uint8)
        draw_object(img, STYLES[1], az, el, dist, level)  # male speech: a solid square
        return img

    near, far = draw(30, 10, 1.0, 1.0), draw(30, 10, 4.0, 1.0)
    assert (near.sum(-1) > 0).sum() > 4 * (far.sum(-1) > 0).sum() > 0
    loud, quiet = draw(30, 10, 1.0, 1.0), draw(30, 10, 1.0, 0.0)
    assert (loud.sum(-1) > 0).sum() > (quiet.sum(-1) > 0).sum()
    assert loud.max() > 1.5 * quiet.max()
    u, v = _pixel(30, 10)
    assert near[int(v), int(u)].max() > 0 and near[int(v), int(_pixel(-30, 10)[0])].max() == 0
    seam = draw(179, 0, 1.0, 1.0)  # straddles the azimuth seam: both image edges
    assert seam[90, 0].max() > 0 and seam[90, -1].max() > 0 and seam[90, 180].max() == 0


def test_video_objects_follow_labels(physics_set):
    checked = {"visible": 0, "invisible": 0, "silent": 0}
    for plan in plan_clips(3):
        scene = clip_scene(plan, 3, 10.0, PHYSICS_CFG)
        frames, fps = _decode(_files(physics_set, plan.stem)["mp4"])
        assert fps == 10 and len(frames) == 100  # frame k = label frame k
        rows = _labels(_files(physics_set, plan.stem)["csv"])
        drawn = [(e.class_idx, e.onset_frame, e.end_frame, e.trajectory) for e in scene.events if e.visible]
        drawn += [(d.look_class, d.onset_frame, d.end_frame, d.trajectory) for d in scene.distractors]

        def crowded(k, u, v, radius, cls, skip):
            """Another object of the same look drawn near (u, v) at frame k."""
            for c, on, end, tr in drawn:
                if tr is skip or c != cls or not on <= k < end:
                    continue
                ou, ov = _pixel(tr.azimuth_deg[k - on], tr.elevation_deg[k - on])
                if np.hypot((ou - u + 180) % 360 - 180, ov - v) < radius + 3 * object_radius_px(
                        tr.distance_m[k - on], 180) + 6:
                    return True
            return False

        for ev in scene.events:
            k = (ev.onset_frame + ev.end_frame) // 2
            row = rows[(rows[:, 0] == k) & (rows[:, 1] == ev.class_idx)][0]
            u, v = _pixel(row[3], row[4])
            radius = 1.3 * object_radius_px(row[5] / 100, 180) + 2
            if crowded(k, u, v, radius, ev.class_idx, ev.trajectory if ev.visible else None):
                continue
            count = _class_pixels(frames[k], ev.class_idx, u, v, radius)
            if ev.visible:
                assert count >= 5, (plan.stem, ev.class_idx, k, count)
                checked["visible"] += 1
                after = ev.end_frame + 2  # the object disappears with the sound
                if after < len(frames) and not crowded(after, u, v, radius, ev.class_idx, None) and not any(
                        e is not ev and e.class_idx == ev.class_idx and e.onset_frame <= after < e.end_frame
                        for e in scene.events):
                    assert _class_pixels(frames[after], ev.class_idx, u, v, radius) == 0
                    checked["silent"] += 1
            else:
                assert count == 0, (plan.stem, ev.class_idx, k, count)
                checked["invisible"] += 1
    assert min(checked.values()) >= 1, checked


# ---------------------------------------------------------------- scenes and sources


def test_scene_statistics():
    cfg = SynthConfig()
    room = Room(size_m=(9.0, 7.0, 3.5), listener_m=(4.5, 3.5, 1.5), rt60_s=0.4)
    rng = np.random.default_rng(0)
    polyphony, same_class, moving, wide, lengths, dists = [], 0, 0, 0, [], []
    for _ in range(12):
        scene = sample_scene(rng, room, 600, cfg)
        labels = scene.labels()
        counts = np.unique(labels[:, 0], return_counts=True)[1]
        polyphony.append(counts.max())
        for f in np.unique(labels[:, 0]):
            cls = labels[labels[:, 0] == f, 1]
            if len(cls) != len(set(cls)):
                same_class += 1
                idx = labels[labels[:, 0] == f][:, 1:3]
                assert len({tuple(r) for r in idx}) == len(idx)  # distinct source indices
        for ev in scene.events:
            moving += ev.trajectory.moving
            wide += np.abs(ev.trajectory.elevation_deg).max() > 45
            lengths.append(ev.frames)
            dists.extend(ev.trajectory.distance_m)
            assert np.abs(ev.trajectory.elevation_deg).max() <= 70 + 1e-9
            assert np.all(room.max_distance(spatial.unit_vector(
                ev.trajectory.azimuth_deg, ev.trajectory.elevation_deg)) >= ev.trajectory.distance_m - 1e-9)
    assert max(polyphony) == 3 and same_class > 0 and moving > 0 and wide > 0
    assert min(lengths) >= 3 and max(lengths) <= 100
    assert min(dists) >= 0.5 - 1e-9 and max(dists) <= 5.0 + 1e-9 and max(dists) > 3.0


@pytest.mark.parametrize("cls", range(13))
def test_sources(cls):
    lo, hi = DURATION_RANGE_S[cls]
    assert 0.3 <= lo <= hi <= 10
    a = synthesize(cls, 1.5, FS, np.random.default_rng(1))
    b = synthesize(cls, 1.5, FS, np.random.default_rng(2))
    assert a.signal.shape == (36000,) and np.all(np.isfinite(a.signal))
    assert not np.allclose(a.signal, b.signal)  # random variation per instance
    assert a.envelope.shape == (150,) and a.envelope.max() == pytest.approx(1.0)
    assert a.envelope[:3].max() > 0.01  # sounds from the labelled onset


def test_exact_functions_match_numpy():
    from seldbench.data.synth import exact

    rng = np.random.default_rng(0)
    x, p = rng.uniform(-40, 40, 20000), rng.uniform(1e-6, 1e4, 20000)
    y, z = rng.normal(size=20000), rng.normal(size=20000)
    np.testing.assert_allclose(exact.exp(x), np.exp(x), rtol=4e-16)
    np.testing.assert_allclose(exact.log(p), np.log(p), rtol=1e-15)
    np.testing.assert_allclose(exact.power(p, 0.7), p ** 0.7, rtol=4e-15)
    np.testing.assert_allclose(exact.tanh(y), np.tanh(y), atol=1e-15)
    np.testing.assert_allclose(exact.arctan2(y, z), np.arctan2(y, z), atol=1e-15)
    np.testing.assert_allclose(exact.arccos(np.tanh(y)), np.arccos(np.tanh(y)), atol=1e-14)
    a, b = y[:100] + 1j * z[:100], z[100:200] + 1j * y[:100]
    np.testing.assert_allclose(exact.cmul(a, b), a * b, atol=1e-15)
    np.testing.assert_allclose(exact.convolve(y[:500], np.ones(48) / 48, mode="same"),
                               np.convolve(y[:500], np.ones(48) / 48, mode="same"), atol=1e-15)
    np.testing.assert_allclose(exact.fftconvolve(y[:300], z[:77]), np.convolve(y[:300], z[:77]), atol=1e-12)
    assert exact.exp([-800.0, 800.0]).tolist() == [0.0, np.inf]
    assert exact.log([0.0])[0] == -np.inf and exact.power([0.0, 0.0], [0.3, 0.0]).tolist() == [0.0, 1.0]
    assert exact.arctan2([0.0, 1.0, -1.0, 0.0], [1.0, 0.0, 0.0, -1.0]).tolist() == [
        0.0, np.pi / 2, -np.pi / 2, np.pi]


_RENDER = """
import hashlib
from seldbench.data.synth.config import SynthConfig
from seldbench.data.synth.generate import plan_clips, render_clip
scene, audio, _ = render_clip(plan_clips(4)[0], 0, 20.0, SynthConfig(moving_prob=0.5))
print(hashlib.sha1(audio.tobytes() + scene.labels().tobytes()).hexdigest())
"""


def _simd_levels() -> dict[str, str]:
    """``NPY_DISABLE_CPU_FEATURES`` values that make numpy run at each dispatch level this CPU
    has below its best (disabling every target from a level up), keyed by the level left on."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    targets = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
    below = ["baseline"] + targets[:-1]
    return {below[i]: " ".join(__cpu_dispatch__[__cpu_dispatch__.index(t):])
            for i, t in enumerate(targets)}


@pytest.mark.e2e  # long: generation in worker processes, or training
def test_synth_audio_does_not_depend_on_the_cpus_simd_level():
    # generator 1.0 rendered the diffuse background in complex64 (13 PCM samples of this clip
    # 1 LSB apart between AVX2 and baseline x86) and its float64 samples differed in their
    # last bits at every level (numpy's exp/log/power, complex products, BLAS); now the float64
    # audio itself must be the same bits. OpenBLAS is also sent to an older kernel set.
    import subprocess
    import sys

    levels = _simd_levels()
    if not levels:
        pytest.skip("numpy has no SIMD level above its baseline on this CPU")
    envs = {"default": {}} | {name: {"NPY_DISABLE_CPU_FEATURES": off, "OPENBLAS_CORETYPE": "Sandybridge"}
                              for name, off in levels.items()}
    procs = {name: subprocess.Popen([sys.executable, "-c", _RENDER], stdout=subprocess.PIPE,
                                    text=True, env={**os.environ, **env})
             for name, env in envs.items()}
    digests = {name: p.communicate(timeout=120)[0].strip() for name, p in procs.items()}
    assert all(p.returncode == 0 for p in procs.values()), digests
    assert len(set(digests.values())) == 1, digests
