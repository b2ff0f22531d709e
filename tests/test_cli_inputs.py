"""`seldbench run` refuses bad settings and unwritable output folders before any work."""
from click.testing import CliRunner

from seldbench.cli import main


def _error(tmp_path, *args):
    r = CliRunner().invoke(main, ["run", "--model", "crnn", "--dataset", "synth-mini", "--quiet",
                                  *map(str, args)])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1, r.stderr
    return r.stderr[len("Error: "):].strip()


def test_nonsense_settings_stop_the_run_before_it_makes_a_folder(tmp_path):
    out = tmp_path / "runs"
    assert _error(tmp_path, "--out", out, "--set", "train.epochs=0") == \
        "--set train.epochs=0: train.epochs must be an integer >= 1"
    assert _error(tmp_path, "--out", out, "--seed", 10**23).startswith(
        f"--set seed={10**23}: seed must be an integer in [0, 4294967295]")
    assert _error(tmp_path, "--out", out, "--set", "train.device=tpu").startswith(
        "--set train.device=tpu: train.device must be auto, cpu, mps, cuda or cuda:N")
    assert not out.exists()


def test_an_output_folder_under_a_file_is_one_error_naming_it(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("")
    msg = _error(tmp_path, "--out", blocker / "runs")
    assert msg.endswith(f": cannot write: {blocker} is a file, not a folder"), msg
    assert msg.startswith(str(blocker / "runs" / "synth-mini" / "crnn"))


def test_a_binary_config_file_is_one_error_naming_it(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    msg = _error(tmp_path, "--config", config, "--out", tmp_path / "runs")
    assert msg.startswith(f"{config}:1: not UTF-8 text (byte 0x89 at offset 0)"), msg
