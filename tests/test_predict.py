"""`seldbench predict` and `seldbench plot` on a tiny trained synth-mini run."""
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from seldbench.cli import main

TINY = ["train.epochs=1", "train.batch_size=4", "train.threads=1", "eval.jackknife=false"]


@pytest.fixture(scope="session")
def trained_run(synth_env) -> Path:
    """One finished crnn run on synth-mini (1 epoch), built once per session."""
    from seldbench.training.run import run

    out = synth_env / "runs_predict"
    run("crnn", "synth-mini", overrides=[*TINY, f"features.cache_dir={synth_env / 'cache'}"],
        out=str(out), progress=False, log=lambda m: None)
    return next(out.rglob("record.json")).parent


@pytest.fixture(scope="session")
def test_clips(trained_run):
    from seldbench.data.roots import resolve_root
    from seldbench.registry import get_registry

    spec = get_registry().get_dataset("synth-mini")
    return spec.list_clips(resolve_root(spec), "test")


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A private copy of the run folder that a test may damage."""
    return Path(shutil.copytree(trained_run, tmp_path / trained_run.name,
                                ignore=shutil.ignore_patterns("last.pt")))


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_error_line(result, text):
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert text in result.stderr, result.stderr


def test_predict_file_equals_the_runs_own_test_prediction(trained_run, test_clips, tmp_path):
    from seldbench.metrics.csvio import write_dcase_csv
    from seldbench.training.inference import as_layout, load_run, predict_file

    run = load_run(trained_run, device="cpu")
    assert not run.model.training and run.with_distance is False
    clip = test_clips[0]
    table = predict_file(run, clip.audio[run.feature_spec.audio_format])
    assert table.layout == "fctxyz" and len(table) > 0
    out = tmp_path / "pred.csv"
    write_dcase_csv(out, as_layout(table))
    expected = trained_run / "predictions" / "dcase2023" / f"{clip.stem}.csv"
    assert out.read_text() == expected.read_text()
    rows = np.loadtxt(out, delimiter=",", ndmin=2)
    assert rows.shape[1] == 7 and (rows[:, 6] == 0).all()  # no distance: a zero column


def test_cli_predict_writes_the_same_csv_and_ignores_video(trained_run, test_clips, tmp_path):
    clip = test_clips[-1]
    out = tmp_path / "sub" / "pred.csv"
    r = _invoke("predict", "--checkpoint", trained_run, "--audio", clip.audio["foa"],
                "--video", clip.video, "--out", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{out}: ") and "rows" in r.stdout
    expected = trained_run / "predictions" / "dcase2023" / f"{clip.stem}.csv"
    assert out.read_bytes() == expected.read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["pred.csv"]  # no temporary file left


def test_cli_predict_a_folder_writes_one_csv_per_wav(trained_run, test_clips, tmp_path):
    import shutil

    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for clip in test_clips[:2]:
        shutil.copy(clip.audio["foa"], wavs / f"{clip.stem}.wav")
    out = tmp_path / "preds"
    r = _invoke("predict", "--checkpoint", trained_run, "--audio", wavs, "--out", out)
    assert r.exit_code == 0, r.output
    for clip in test_clips[:2]:
        expected = trained_run / "predictions" / "dcase2023" / f"{clip.stem}.csv"
        assert (out / f"{clip.stem}.csv").read_bytes() == expected.read_bytes()
    (tmp_path / "empty").mkdir()
    r = _invoke("predict", "--checkpoint", trained_run, "--audio", tmp_path / "empty", "--out", out)
    assert r.exit_code == 2 and "no .wav files to predict" in r.output


def test_side_input_models_get_test_time_streams_from_the_video(trained_run, test_clips):
    import numpy as np
    import torch

    from seldbench.training.inference import load_run, predict_file

    calls, seen = [], []

    def side_inputs(cfg, dataset, clips, frames, *, training, cache_dir, device):
        calls.append((clips[0].video, training, dict(frames)))
        return {c.stem: {"image": np.ones((frames[c.stem], 2), np.float32)} for c in clips}

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, image=None):
            seen.append(None if image is None else float(image.sum()))
            return self.inner(x)

    run = load_run(trained_run, device="cpu")
    run = dataclasses.replace(run, model=Wrapped(run.model), model_spec=dataclasses.replace(
        run.model_spec, side_inputs=side_inputs))
    clip = test_clips[0]
    predict_file(run, clip.audio["foa"], clip.video)
    (video, training, frames), = calls
    assert video == clip.video and training is False  # text-like training streams: never
    assert sum(seen) == 2 * next(iter(frames.values()))  # every frame's stream reached the model


def test_missing_and_foreign_run_folders(test_clips, tmp_path):
    wav = test_clips[0].audio["foa"]
    r = _invoke("predict", "--checkpoint", tmp_path / "nope", "--audio", wav,
                "--out", tmp_path / "o.csv")
    _one_error_line(r, f"{tmp_path / 'nope'}: no such run folder")
    r = _invoke("predict", "--checkpoint", tmp_path, "--audio", wav, "--out", tmp_path / "o.csv")
    _one_error_line(r, f"{tmp_path}: not a seldbench run folder")
    assert not (tmp_path / "o.csv").exists()


def test_missing_file_and_corrupt_checkpoint(run_copy, test_clips, tmp_path):
    wav, out = test_clips[0].audio["foa"], tmp_path / "o.csv"
    best = run_copy / "best.pt"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    r = _invoke("predict", "--checkpoint", run_copy, "--audio", wav, "--out", out)
    _one_error_line(r, f"{best}: SHA-256 ")  # the run record's checkpoint hash, checked first
    (run_copy / "normalizer.npz").unlink()
    r = _invoke("predict", "--checkpoint", run_copy, "--audio", wav, "--out", out)
    _one_error_line(r, f"{run_copy / 'normalizer.npz'}: missing from the run folder")
    assert not out.exists()


def test_a_hostile_checkpoint_is_refused_without_running_its_payload(run_copy, test_clips,
                                                                     tmp_path):
    import json

    import torch

    from seldbench.results.records import file_sha256

    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "payload-ran",))

    best, wav, out = run_copy / "best.pt", test_clips[0].audio["foa"], tmp_path / "o.csv"
    torch.save({"epoch": 1, "model": {"w": Payload()}}, best)
    r = _invoke("predict", "--checkpoint", run_copy, "--audio", wav, "--out", out)
    _one_error_line(r, f"{best}: SHA-256 ")
    record = json.loads((run_copy / "record.json").read_text())
    record["checkpoint"]["sha256"] = file_sha256(best)  # an attacker may rewrite the record too
    (run_copy / "record.json").write_text(json.dumps(record))
    r = _invoke("predict", "--checkpoint", run_copy, "--audio", wav, "--out", out)
    _one_error_line(r, f"{best}: refused to load checkpoint")
    assert not (tmp_path / "payload-ran").exists() and not out.exists()


def test_wrong_sample_rate_wav(trained_run, tmp_path):
    import soundfile as sf

    wav = tmp_path / "slow.wav"
    sf.write(wav, np.zeros((8000, 4), np.float32), 16000, subtype="PCM_16")
    r = _invoke("predict", "--checkpoint", trained_run, "--audio", wav,
                "--out", tmp_path / "o.csv")
    _one_error_line(r, f"{wav}: sample rate 16000 Hz, expected 24000 Hz")
    assert not (tmp_path / "o.csv").exists()


def test_plot_writes_a_png_of_the_first_test_clip(trained_run, test_clips, tmp_path):
    out = tmp_path / "clip.png"
    r = _invoke("plot", "--run", trained_run, "--out", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"{out}: {test_clips[0].stem}"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_plot_unknown_clip_and_suite_list_what_there_is(trained_run, test_clips, tmp_path):
    r = _invoke("plot", "--run", trained_run, "--clip", "fold9_nope", "--out", tmp_path / "x.png")
    _one_error_line(r, "clip 'fold9_nope': not a predicted test clip of this run (available: "
                    + ", ".join(c.stem for c in test_clips) + ")")
    r = _invoke("plot", "--run", trained_run, "--suite", "dcase2024", "--out", tmp_path / "x.png")
    _one_error_line(r, "no predictions for suite 'dcase2024' (this run has: dcase2023)")
    assert not (tmp_path / "x.png").exists()


def test_board_draws_one_clip_of_a_run_that_kept_its_predictions(trained_run, tmp_path):
    """The board's entry page shows reference against prediction for a run folder with
    predictions/, and says plainly when a folder holds a record only."""
    from seldbench.results.board import build_site

    full = tmp_path / "runs" / "full"
    shutil.copytree(trained_run, full, ignore=shutil.ignore_patterns("*.pt"))
    build_site(tmp_path / "runs", tmp_path / "site")
    page = next((tmp_path / "site").glob("*/crnn-*.html")).read_text()
    assert page.count('<svg class="tracks"') == 1 and "reference: " in page
    assert "prediction: " in page and "<circle" in page
    shutil.rmtree(full / "predictions")
    build_site(tmp_path / "runs", tmp_path / "site")
    page = next((tmp_path / "site").glob("*/crnn-*.html")).read_text()
    assert '<svg class="tracks"' not in page and "hold a run record only" in page
