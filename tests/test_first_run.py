"""The README's main job learns: the command of its set-up block, run as written, ends with a
visibly non-trivial test F (a model that learned nothing scores F 0 and LE 180 degrees).

About 10 CPU-minutes, so it runs only with SELDBENCH_SLOW=1 (the quick suite checks the same
command line and dataset below)."""
import os
import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _main_job() -> list[str]:
    block = README.read_text(encoding="utf-8").split("```bash", 1)[1].split("```", 1)[0]
    command = block.strip().split("&&")[-1]
    args = shlex.split(command)
    assert Path(args[0]).name == "seldbench" and args[1] == "run", command
    return args[2:]


def test_the_main_job_is_the_first_run_set_with_its_recipe():
    from seldbench.registry import get_registry

    args = _main_job()
    dataset = args[args.index("--dataset") + 1]
    assert dataset == "synth-small"
    assert get_registry().get_dataset(dataset).has_video  # the same bytes as the set measured
    assert re.search(r"test F 9\.5%, LE 84°", README.read_text(encoding="utf-8"))


@pytest.mark.e2e
@pytest.mark.skipif(not os.environ.get("SELDBENCH_SLOW"), reason="about 10 CPU-minutes: "
                    "set SELDBENCH_SLOW=1 to run the README's main job")
def test_the_main_job_learns(tmp_path):
    from click.testing import CliRunner

    from seldbench.cli import main

    out = CliRunner().invoke(main, ["run", *_main_job(), "--out", str(tmp_path / "runs"),
                                    "--quiet"])
    assert out.exit_code == 0, out.output
    (rec,) = [__import__("json").loads(p.read_text())
              for p in (tmp_path / "runs").rglob("record.json")]
    figures = rec["results"]["dcase2023"]["figures"]
    assert figures["F"] > 0.05 and figures["LE"] < 120.0, figures
