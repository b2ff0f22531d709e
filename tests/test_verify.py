"""``seldbench data verify``: every defect is one ``path: problem`` line and a non-zero exit."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataset_trees import write_csv, write_mp4, write_wav
from seldbench.cli import main


def run(dataset: str, root: Path | None, env: dict | None = None):
    args = ["data", "verify", "--dataset", dataset] + (["--root", str(root)] if root else [])
    return CliRunner().invoke(main, args, env=env)


def problems(result) -> list[str]:
    return result.output.strip().splitlines()[:-1]  # the last line is the summary


def snapshot(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_clean_trees_pass(starss_root, tau_root):
    before = snapshot(starss_root)
    r = run("starss23", starss_root)
    assert r.exit_code == 0, r.output
    assert problems(r) == []
    summary = r.output.strip().splitlines()[-1]
    assert "no problems" in summary and "58 WAV" in summary and "29 CSV" in summary
    assert "17 MP4" in summary  # the 12 clips without video are not reported
    assert snapshot(starss_root) == before  # nothing modified, nothing written
    r = run("tau-nigens-2021", None, env={"SELDBENCH_TAU2021_ROOT": str(tau_root)})
    assert r.exit_code == 0, r.output
    assert "12 WAV" in r.output and "6 CSV" in r.output and "0 MP4" in r.output


def _truncate(p: Path):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


TRAIN = "dev-train-tau"
STEM = "fold3_room4_mix002"


@pytest.mark.parametrize("defect, rel, expected", [
    ("truncated", f"foa_dev/{TRAIN}/{STEM}.wav", "truncated WAV"),
    ("rate", f"mic_dev/{TRAIN}/{STEM}.wav", "sample rate 48000 Hz, expected 24000 Hz"),
    ("channels2", f"foa_dev/{TRAIN}/{STEM}.wav", "2 channel(s), expected 4"),
    ("channels6", f"mic_dev/{TRAIN}/{STEM}.wav", "6 channels, expected 4"),
    ("no_csv", f"metadata_dev/{TRAIN}/{STEM}.csv", "metadata missing for"),
    ("bad_row", f"metadata_dev/{TRAIN}/{STEM}.csv:2", "field 4 'left' is not a number"),
    ("azimuth", f"metadata_dev/{TRAIN}/{STEM}.csv:1", "azimuth 270 outside [-180, 180]"),
    ("class", f"metadata_dev/{TRAIN}/{STEM}.csv:1", "class 13 outside [0, 12]"),
    ("distance", f"metadata_dev/{TRAIN}/{STEM}.csv:1", "negative distance -5"),
    ("columns", f"metadata_dev/{TRAIN}/{STEM}.csv:1", "5 fields, expected 6"),
    ("frame", f"metadata_dev/{TRAIN}/{STEM}.csv:2", "frame 10 beyond the audio (10 label frames"),
    ("bad_mp4", f"video_dev/{TRAIN}/{STEM}.mp4", "cannot read video"),
    ("no_mp4", f"video_dev/{TRAIN}/{STEM}.mp4", "video missing for"),
    ("aspect", f"video_dev/{TRAIN}/{STEM}.mp4", "frame size 32x32 is not 2:1"),
    ("short_video", f"video_dev/{TRAIN}/{STEM}.mp4", "video lasts 3.00 s, its audio 1.00 s"),
    ("no_mic", f"mic_dev/{TRAIN}/{STEM}.wav", "missing (clip fold3_room4_mix002 has"),
    ("no_folder", "mic_dev/dev-test-tau", "missing folder"),
])
def test_defect_reported(starss_copy, defect, rel, expected):
    wav = starss_copy / "foa_dev" / TRAIN / f"{STEM}.wav"
    mic = starss_copy / "mic_dev" / TRAIN / f"{STEM}.wav"
    csv = starss_copy / "metadata_dev" / TRAIN / f"{STEM}.csv"
    mp4 = starss_copy / "video_dev" / TRAIN / f"{STEM}.mp4"
    if defect == "truncated":
        _truncate(wav)
    elif defect == "rate":
        write_wav(mic, sr=48000)
    elif defect == "channels2":
        write_wav(wav, channels=2)
    elif defect == "channels6":
        write_wav(mic, channels=6)
    elif defect == "no_csv":
        csv.unlink()
    elif defect == "bad_row":
        write_csv(csv, [[0, 1, 0, 30, 0, 100], [1, 1, 0, "left", 0, 100]])
    elif defect == "azimuth":
        write_csv(csv, [[0, 1, 0, 270, 0, 100]])
    elif defect == "class":
        write_csv(csv, [[0, 13, 0, 10, 0, 100]])
    elif defect == "distance":
        write_csv(csv, [[0, 1, 0, 10, 0, -5]])
    elif defect == "columns":
        write_csv(csv, [[0, 1, 0, 10, 0]])
    elif defect == "frame":
        write_csv(csv, [[9, 1, 0, 10, 0, 100], [10, 1, 0, 10, 0, 100]])
    elif defect == "bad_mp4":
        mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    elif defect == "no_mp4":
        mp4.unlink()
    elif defect == "aspect":
        write_mp4(mp4, frames=10, width=32, height=32)
    elif defect == "short_video":
        write_mp4(mp4, frames=30)
    elif defect == "no_mic":
        mic.unlink()
    elif defect == "no_folder":
        shutil.rmtree(starss_copy / rel)
    r = run("starss23", starss_copy)
    assert r.exit_code == 1, r.output
    lines = problems(r)
    want = f"{starss_copy / rel}: {expected}"
    assert any(line.startswith(want) for line in lines), f"{want!r} not in\n{r.output}"
    assert len(lines) == 1, r.output  # one defect, one line
    assert "1 problem" in r.output.strip().splitlines()[-1]


def test_several_problems_all_listed(starss_copy):
    (starss_copy / f"metadata_dev/{TRAIN}/{STEM}.csv").unlink()
    _truncate(starss_copy / "foa_dev/dev-test-tau/fold4_room2_mix001.wav")
    (starss_copy / "video_dev/dev-test-sony/fold4_room23_mix002.mp4").write_bytes(b"x" * 64)
    r = run("starss23", starss_copy)
    assert r.exit_code == 1
    lines = problems(r)
    assert len(lines) == 3, r.output
    assert {Path(line.split(": ")[0]).name for line in lines} == {
        f"{STEM}.csv", "fold4_room2_mix001.wav", "fold4_room23_mix002.mp4"}
    assert "3 problems" in r.output


def test_tau_defects(tau_root, tmp_path):
    root = Path(shutil.copytree(tau_root, tmp_path / "tau"))
    (root / "metadata_dev/dev-train/fold3_room2_mix003.csv").write_text("0,1,0,10,0,100\n")
    (root / "metadata_dev/dev-train/fold4_room2_mix004.csv").unlink()
    r = run("tau-nigens-2021", root)
    assert r.exit_code == 1
    assert problems(r) == [
        f"{root}/metadata_dev/dev-train/fold3_room2_mix003.csv:1: 6 fields, expected 5",
        f"{root}/metadata_dev/dev-train/fold4_room2_mix004.csv: metadata missing for "
        f"{root}/foa_dev/dev-train/fold4_room2_mix004.wav",
    ]


def test_cli_errors_are_one_line(tmp_path):
    r = run("starss", tmp_path)
    assert r.exit_code != 0 and r.output.count("\n") == 1
    assert r.output.startswith("Error: unknown dataset 'starss'; did you mean 'starss23'")
    r = run("starss23", None, env={"SELDBENCH_STARSS23_ROOT": ""})
    assert r.exit_code != 0 and r.output.count("\n") == 1
    assert r.output.startswith("Error: dataset 'starss23': no root folder; set "
                               "SELDBENCH_STARSS23_ROOT")
    r = run("starss23", tmp_path / "missing")
    assert r.exit_code != 0
    assert r.output.startswith(f"Error: {tmp_path / 'missing'}: dataset folder")


def test_eval_audio_checked_when_present(starss_copy):
    write_wav(starss_copy / "foa_eval/mix001.wav")
    write_wav(starss_copy / "mic_eval/mix001.wav", sr=16000)
    write_wav(starss_copy / "foa_eval/mix002.wav")
    r = run("starss23", starss_copy)
    assert r.exit_code == 1
    assert problems(r) == [
        f"{starss_copy}/mic_eval/mix001.wav: sample rate 16000 Hz, expected 24000 Hz",
        f"{starss_copy}/mic_eval/mix002.wav: missing (clip mix002 has foa_eval/mix002.wav)",
    ]


def test_missing_video_tree_is_a_note_unless_video_is_required(registry, starss_copy):
    import shutil

    from seldbench.data.verify import verify_dataset

    shutil.rmtree(starss_copy / "video_dev")
    spec = registry.get_dataset("starss23")
    audio_only = verify_dataset(spec, starss_copy)
    assert audio_only.ok, audio_only.problems
    assert any("video_dev: missing folder: fine for audio-only" in n for n in audio_only.notes)
    strict = verify_dataset(spec, starss_copy, video=True)
    assert f"{starss_copy / 'video_dev'}: missing folder" in strict.problems
